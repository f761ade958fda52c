// How a swift store's account is read from Glance's options: glance-swift.conf (swift_store_config_file,
// default_swift_reference) as Python's configparser reads it, or the swift_store_* options inline. No
// Swift is needed: these are the settings a store starts with (the login itself is swift-keystone.test.ts).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { swiftAuth } from '../../src/stores/swift-options.ts';
import { ConfigError } from '../../src/config/index.ts';
import { StoreAddDisabled, StoreLeftOut } from '../../src/stores/add-disabled.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'gaze-swift-refs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** glance-api.conf (empty: only its directory matters) and glance-swift.conf beside it. */
function beside(swiftConf: string): string[] {
  const sub = mkdtempSync(path.join(dir, 'etc-'));
  writeFileSync(path.join(sub, 'glance-api.conf'), '');
  writeFileSync(path.join(sub, 'glance-swift.conf'), swiftConf);
  return [path.join(sub, 'glance-api.conf')];
}

const fromFile = (files: string[], options: Record<string, string> = {}) =>
  swiftAuth('swift1', { swift_store_config_file: 'glance-swift.conf', ...options }, files);

test('glance-swift.conf: ref1 by default; [DEFAULT] shared; quotes, case and %-interpolation as configparser reads them', () => {
  const files = beside(
    [
      '[DEFAULT]',
      'auth_address = "http://127.0.0.1:5000/v3"',
      'Project_Domain_Name = Default',
      '',
      '[ref1]',
      'user = demo:demo',
      "key = 'pa%%ss'",
      '',
      '[ref2]',
      'USER: alt:%(name)s',
      'name = alt',
      'key = %(name)s-secret',
      'auth_version = 3',
      'user_domain_id = users',
      'auth_address = http://keystone.example:5000',
    ].join('\n'),
  );
  assert.deepEqual(fromFile(files), {
    version: '3',
    url: 'http://127.0.0.1:5000/v3',
    endpoint: { region: undefined, interface: 'public', serviceType: 'object-store' },
    password: {
      username: 'demo',
      password: 'pa%ss',
      userDomainId: undefined,
      userDomainName: undefined,
      scope: { projectName: 'demo', projectDomainId: undefined, projectDomainName: 'Default' },
    },
  });
  const ref2 = fromFile(files, {
    default_swift_reference: 'ref2',
    swift_store_region: 'RegionTwo',
    swift_store_endpoint_type: 'internalURL',
    swift_store_service_type: 'storage',
  });
  assert.equal(ref2.url, 'http://keystone.example:5000');
  assert.ok(ref2.version === '3');
  assert.deepEqual(ref2.endpoint, { region: 'RegionTwo', interface: 'internal', serviceType: 'storage' });
  assert.equal(ref2.password?.username, 'alt');
  assert.equal(ref2.password?.password, 'alt-secret');
  assert.equal(ref2.password?.userDomainId, 'users');
  assert.deepEqual(ref2.password?.scope, { projectName: 'alt', projectDomainId: undefined, projectDomainName: 'Default' });
});

test('glance-swift.conf: application credentials, and tempauth accounts (auth_version 1 or a /auth/v1.0 address)', () => {
  const files = beside(
    [
      '[appcred]',
      'application_credential_id = 0123abcd',
      'application_credential_secret = s3cret',
      'auth_address = http://127.0.0.1:5000',
      '',
      '[tempauth]',
      'user = test:tester',
      'key = testing',
      'auth_address = http://127.0.0.1:8080/auth/v1.0',
      '',
      '[swauth]',
      'user = test:tester',
      'key = testing',
      'auth_version = 1',
      'auth_address = http://127.0.0.1:8080/auth/',
    ].join('\n'),
  );
  const appcred = fromFile(files, { default_swift_reference: 'appcred' });
  assert.ok(appcred.version === '3');
  assert.deepEqual(appcred.applicationCredential, { id: '0123abcd', secret: 's3cret' });
  assert.equal(appcred.password, undefined);
  assert.deepEqual(fromFile(files, { default_swift_reference: 'tempauth' }), {
    version: '1',
    url: 'http://127.0.0.1:8080/auth/v1.0',
    user: 'test:tester',
    key: 'testing',
  });
  assert.equal(fromFile(files, { default_swift_reference: 'swauth' }).version, '1');
});

test('glance-swift.conf: what would stop Glance, or make it use another account, stops the start, and what glance_store finds missing disables adding, with the file and reference named', () => {
  const files = beside(
    [
      '[ref1]',
      'user = demo:demo',
      'key = 50%off',
      'auth_address = http://127.0.0.1:5000/v3',
      '',
      '[unclosed]',
      'user = demo:demo',
      'key = "demo-secret',
      'auth_address = http://127.0.0.1:5000/v3',
      '',
      '[nouser]',
      'key = k',
      'auth_address = http://127.0.0.1:5000/v3',
      '',
      '[v2]',
      'user = demo:demo',
      'key = k',
      'auth_version = 2',
      'auth_address = http://127.0.0.1:5000/v2.0',
      '',
      '[noproject]',
      'user = demo',
      'key = k',
      'auth_address = http://127.0.0.1:5000/v3',
      '',
      '[appcred]',
      'application_credential_id = 0123abcd',
      'auth_address = http://127.0.0.1:5000/v3',
      '',
      '[good]',
      'user = demo:demo',
      'key = demo-secret',
      'unread = "not closed, never read',
      'auth_address = http://127.0.0.1:5000/v3',
    ].join('\n'),
  );
  // Stops the start (a value no reader makes sense of), or, for what glance_store finds missing, only
  // disables adding to the store (StoreAddDisabled, as its BadStoreConfiguration).
  const refused = (options: Record<string, string>, pattern: RegExp, disables = false) =>
    assert.throws(
      () => fromFile(files, options),
      (err: unknown) => err instanceof ConfigError && err instanceof StoreAddDisabled === disables && pattern.test(err.message),
    );
  refused({}, /\[ref1\] key has a '%' that is not '%%' or '%\(option\)s'/);
  refused({ default_swift_reference: 'unclosed' }, /\[unclosed\] key has a quote that is not closed/);
  refused({ default_swift_reference: 'nouser' }, /store swift1: \[nouser\] of glance-swift.conf: user is required/, true);
  refused({ default_swift_reference: 'v2' }, /auth_version 2 \(Keystone v2.0\) is not supported/);
  refused({ default_swift_reference: 'noproject' }, /user 'demo' must be project:user/);
  refused({ default_swift_reference: 'appcred' }, /application_credential_secret is required/, true);
  refused(
    { default_swift_reference: 'absent' },
    /glance-swift.conf has no reference \[absent\] \(default_swift_reference\); it has \[ref1\], \[unclosed\]/,
    true,
  );
  refused({ default_swift_reference: 'good', swift_store_endpoint_type: 'private' }, /swift_store_endpoint_type 'private' is not one of publicURL/);
  assert.equal(fromFile(files, { default_swift_reference: 'good' }).version, '3');
});

test('glance-swift.conf that is missing or that configparser cannot parse leaves the store out; one that cannot be opened reads as empty and disables adding', () => {
  const files = beside('user = demo:demo\n');
  assert.throws(
    () => swiftAuth('swift1', { swift_store_config_file: 'missing-swift.conf' }, files),
    (err: unknown) => err instanceof StoreLeftOut && /swift config file missing-swift.conf cannot be read: it does not exist/.test(err.message),
  );
  assert.throws(
    () => fromFile(files),
    (err: unknown) => err instanceof StoreLeftOut && /glance-swift.conf/.test(err.message),
    'an option before any section header',
  );
  const folder = path.join(path.dirname(files[0]!), 'swift.d');
  mkdirSync(folder);
  assert.throws(
    () => swiftAuth('swift1', { swift_store_config_file: 'swift.d' }, files),
    (err: unknown) =>
      err instanceof StoreAddDisabled &&
      err.readable === null &&
      /swift config file .*swift\.d cannot be read \(.*\): it names no reference \[ref1\]/.test(err.message),
  );
});

test('inline options (no swift_store_config_file): tempauth as before, Keystone v3 with project:user', () => {
  const inline = { swift_store_user: 'demo:demo', swift_store_key: 'demo-secret' };
  assert.equal(swiftAuth('s', { ...inline, swift_store_auth_address: 'http://127.0.0.1:8080/auth/v1.0' }, []).version, '1');
  const v3 = swiftAuth('s', { ...inline, swift_store_auth_address: 'http://127.0.0.1:5000/v3', swift_store_auth_version: '3' }, []);
  assert.ok(v3.version === '3');
  assert.equal(v3.password?.username, 'demo');
  // An inline account has the default domains, as in glance_store.
  assert.equal(v3.password?.userDomainId, undefined);
  assert.equal(v3.password?.userDomainName, undefined);
  assert.throws(
    () => swiftAuth('s', inline, []),
    (err: unknown) => err instanceof StoreAddDisabled && err.readable === null && /store s: swift_store_auth_address is required/.test(err.message),
  );
});
