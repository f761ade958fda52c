import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, message, rawRequest } from '../helpers/http.ts';

let gaze: RunningGaze;
let api: ReturnType<typeof client>;
before(async () => { gaze = await startGazeInProcess(); api = client(gaze.url); });
after(async () => { await gaze.stop(); });

test('GET / answers 300 with the version document; /versions answers 200', async () => {
  const root = await api.get('/');
  assert.equal(root.status, 300);
  assert.equal(root.headers.get('content-type'), 'application/json');
  const ids = root.json.versions.map((v: any) => v.id);
  assert.deepEqual(ids, ['v2.15', 'v2.13', 'v2.12', 'v2.11', 'v2.10', 'v2.9', 'v2.8', 'v2.7', 'v2.6', 'v2.5', 'v2.4', 'v2.3', 'v2.2', 'v2.1', 'v2.0']);
  assert.equal(root.json.versions[0].status, 'CURRENT');
  assert.equal(root.json.versions[0].links[0].href, `${gaze.url}/v2/`);
  assert.equal(root.headers.get('x-openstack-request-id'), null, 'version documents are answered before the context middleware');
  const versions = await api.get('/versions');
  assert.equal(versions.status, 200);
  assert.deepEqual(versions.json, root.json);
});

test('unknown version prefixes get the 300 document, known ones are aliases of /v2', async () => {
  assert.equal((await api.get('/v3/images')).status, 300);
  assert.equal((await api.get('/images')).status, 300);
  const alias = await api.get('/v2.3/images');
  assert.equal(alias.status, 200);
  assert.ok(Array.isArray(alias.json.images));
  assert.equal((await api.get('/v2.12/images')).status, 200, 'listed even with one store (the image tasks API needs it)');
  assert.equal((await api.get('/v2.14/images')).status, 300, 'v2.14 comes with the image cache, which Gaze has not');
});

test('every API response carries a request id; a given one is reused with the req- prefix', async () => {
  const r = await api.get('/v2/images');
  assert.match(r.headers.get('x-openstack-request-id')!, /^req-[0-9a-f-]{36}$/);
  const given = await api.get('/v2/images', { headers: { 'x-openstack-request-id': 'abc' } });
  assert.equal(given.headers.get('x-openstack-request-id'), 'req-abc');
  const kept = await api.get('/v2/images/nope', { headers: { 'x-openstack-request-id': 'req-xyz' } });
  assert.equal(kept.status, 404);
  assert.equal(kept.headers.get('x-openstack-request-id'), 'req-xyz');
  const long = await api.get('/v2/images', { headers: { 'x-openstack-request-id': 'x'.repeat(65) } });
  assert.equal(long.status, 431);
});

test('error bodies follow the Accept header: JSON, HTML or plain text', async () => {
  const json = await api.get('/v2/images/x', { headers: { accept: 'application/json' } });
  assert.equal(json.status, 404);
  assert.equal(json.headers.get('content-type'), 'application/json');
  assert.deepEqual(json.json, { message: 'No image found with ID x<br /><br />\n\n\n', code: '404 Not Found', title: 'Not Found' });

  const html = await api.get('/v2/images/x', { headers: { accept: '*/*' } });
  assert.equal(html.headers.get('content-type'), 'text/html; charset=UTF-8');
  assert.equal(html.text, '<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  No image found with ID x<br /><br />\n\n\n\n </body>\n</html>');

  const plain = await api.get('/v2/images/x', { headers: { accept: '' } });
  assert.equal(plain.headers.get('content-type'), 'text/plain; charset=UTF-8');
  assert.equal(plain.text, '404 Not Found\n\nNo image found with ID x\n\n   ');
});

test('a wrong method answers 405 with Allow; an unknown method 501; an unknown path 404', async () => {
  const r = await api.call('PUT', '/v2/images', { headers: { accept: 'application/json' } });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET, POST');
  assert.equal(message(r), 'The method PUT is not allowed for this resource.');
  const opts = await api.call('OPTIONS', '/v2/images');
  assert.equal(opts.status, 501);
  const missing = await api.get('/v2/nothing-here', { headers: { accept: 'application/json' } });
  assert.equal(missing.status, 404);
  assert.equal(missing.json.title, 'Not Found');
});

test('malformed JSON, non-object bodies and unexpected bodies are 400s with Glance wording', async () => {
  const bad = await api.call('POST', '/v2/images', { body: '{"name":', headers: { 'content-type': 'application/json', accept: 'application/json' } });
  assert.equal(bad.status, 400);
  assert.equal(message(bad), 'Malformed JSON in request body.');
  const scalar = await api.call('POST', '/v2/images', { body: '"just a string"', headers: { 'content-type': 'text/plain', accept: 'application/json' } });
  assert.equal(scalar.status, 400);
  assert.equal(message(scalar), 'Unexpected body type. Expected list/dict.');
  const noBody = await api.call('POST', '/v2/images', { headers: { accept: 'application/json' } });
  assert.equal(noBody.status, 400);
  assert.equal(message(noBody), 'Body expected in request.');
  const getWithBody = await rawRequest(gaze.url, 'GET', '/v2/images', { 'content-type': 'application/json', accept: 'application/json', 'content-length': 2 }, '{}');
  assert.equal(getWithBody.status, 400);
  assert.equal(message(getWithBody), 'A body is not expected with this request.');
  // JSON is parsed whatever the Content-Type says.
  const anyType = await api.call('POST', '/v2/images', { body: '{"name":"typed"}', headers: { 'content-type': 'text/plain' } });
  assert.equal(anyType.status, 201);
});

test('healthcheck answers OK without authentication', async () => {
  const r = await api.get('/healthcheck');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'OK');
});

test('schemas are served, with the custom properties marked is_base false', async () => {
  for (const name of ['image', 'images', 'member', 'members', 'task', 'tasks', 'metadefs/namespace', 'metadefs/resource_type']) {
    const r = await api.get(`/v2/schemas/${name}`);
    assert.equal(r.status, 200, name);
    assert.ok(r.json.properties, `${name} has properties`);
  }
  const image = (await api.get('/v2/schemas/image')).json;
  assert.equal(image.name, 'image');
  assert.deepEqual(image.additionalProperties, { type: 'string' });
  assert.equal(image.properties.os_distro.is_base, false);
  assert.equal(image.properties.name.is_base, undefined);
  assert.deepEqual(image.properties.disk_format.enum, [null, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']);
  const images = (await api.get('/v2/schemas/images')).json;
  assert.deepEqual(images.properties.images.items.properties, image.properties);
});

test('a request the HTTP parser refuses (a Content-Length that is not a number) gets a Glance-shaped 400', async () => {
  for (const length of ['abc', '99999999999999999999']) {
    const r = await rawRequest(gaze.url, 'PUT', '/v2/images/00000000-0000-4000-8000-000000000000/file',
      { 'content-type': 'application/octet-stream', 'content-length': length }, 'x');
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('connection'), 'close');
    assert.equal(r.text, '400 Bad Request\n\nThe request could not be read: its HTTP framing is malformed.\n\n   ');
  }
});
