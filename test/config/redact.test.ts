import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withoutPasswords } from '../../src/config/redact.ts';
import { databaseUrlShown, parseDatabaseUrl } from '../../src/db/connection-url.ts';
import { StoreError } from '../../src/stores/driver.ts';
import { DownloadError } from '../../src/net/download-error.ts';

// A URL's password never reaches a message, whatever it holds.
test('withoutPasswords masks every password of every URL in a text, commas and other separators included', () => {
  const cases: Array<[string, string]> = [
    ['http://webuser:comma,PW9@127.0.0.1:31244/404', 'http://webuser:****@127.0.0.1:31244/404'],
    ['http://u:semi;colon=eq@h/x', 'http://u:****@h/x'],
    ['swift+http://svc%3Auser:KEY@127.0.0.1:8080/v1/c/o', 'swift+http://svc%3Auser:****@127.0.0.1:8080/v1/c/o'],
    ['rabbit://u1:p1@h1:5672,u2:p2@h2:5672/vhost', 'rabbit://u1:****@h1:5672,u2:****@h2:5672/vhost'],
    ['rabbit://u1:p,1@h1,u2:p,2@h2/', 'rabbit://u1:****@h1,u2:****@h2/'],
    ['cannot read http://a:b@h/x; then http://c:d@e/y', 'cannot read http://a:****@h/x; then http://c:****@e/y'],
    ['http://nouser@h/ and http://h/path@x', 'http://nouser@h/ and http://h/path@x'],
  ];
  for (const [text, shown] of cases) assert.equal(withoutPasswords(text), shown, text);
});

test("store and download errors never carry a location's password in their message", () => {
  assert.equal(new StoreError('FAILED', 'http://u:se,cret@h/x: HTTP status 500').message, 'http://u:****@h/x: HTTP status 500');
  assert.equal(new DownloadError('HTTP_STATUS', 'HTTP status 404 from http://u:se,cret@h/x').message, 'HTTP status 404 from http://u:****@h/x');
});

test("a database URL's password is shown nowhere: not in the query, not as a port when its @ is missing", () => {
  assert.equal(databaseUrlShown('mysql+pymysql://glance@db/glance?password=top&charset=utf8'), 'mysql+pymysql://glance@db/glance?password=****&charset=utf8');
  assert.throws(
    () => parseDatabaseUrl('postgresql://glance:PWnoat127.0.0.1:5432/glance'),
    (err: Error) => err.message === "the database URL's port (after postgresql://glance:) is not a number",
  );
});
