import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, message, rawRequest } from '../helpers/http.ts';

let gaze: RunningGaze;
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess();
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

test('GET / answers 300 with the version document; /versions answers 200', async () => {
  const root = await api.get('/');
  assert.equal(root.status, 300);
  assert.equal(root.headers.get('content-type'), 'application/json');
  const ids = root.json.versions.map((v: any) => v.id);
  // Glance 2024.2's order: the current version (2.17, the locations API) after 2.8.
  assert.deepEqual(ids, ['v2.15', 'v2.13', 'v2.12', 'v2.11', 'v2.10', 'v2.9', 'v2.8', 'v2.17', 'v2.7', 'v2.6', 'v2.5', 'v2.4', 'v2.3', 'v2.2', 'v2.1', 'v2.0']);
  assert.deepEqual(
    root.json.versions.filter((v: any) => v.status === 'CURRENT').map((v: any) => v.id),
    ['v2.17'],
  );
  assert.equal(root.json.versions[0].links[0].href, `${gaze.url}/v2/`);
  assert.equal(root.headers.get('x-openstack-request-id'), null, 'version documents are answered before the context middleware');
  const versions = await api.get('/versions');
  assert.equal(versions.status, 200);
  assert.deepEqual(versions.json, root.json);
  // Glance answers the document under /versions/ and below it too.
  for (const path of ['/versions/', '/versions/anything?x=1']) {
    const below = await api.get(path);
    assert.equal(below.status, 200, path);
    assert.deepEqual(below.json, root.json, path);
  }
});

test('/v2 and /v2.N without a trailing slash redirect to /v2/ (302), as Glance; /v2/ itself is 404', async () => {
  for (const path of ['/v2', '/v2.1', '/v2?a=b']) {
    const r = await rawRequest(gaze.url, 'GET', path, {});
    assert.equal(r.status, 302, path);
    assert.equal(r.headers.get('location'), `${gaze.url}/v2/`, path);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf8');
    assert.equal(r.text, '');
  }
  assert.equal((await rawRequest(gaze.url, 'POST', '/v2', { 'content-length': 0 })).status, 302, 'whatever the method');
  assert.equal((await api.get('/v2/')).status, 404);
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

test('the version may come as a media type in Accept instead of the path, as Glance reads it first', async () => {
  const vnd = (path: string, accept: string) => api.get(path, { headers: { accept } });
  const listed = await vnd('/images?limit=1', 'application/vnd.openstack.images-v2.1');
  assert.equal(listed.status, 200, listed.text);
  assert.equal(listed.json.first, '/v2/images?limit=1');
  assert.equal((await vnd('/images', 'application/vnd.openstack.images-v2')).status, 200);
  const created = await api.post('/images', { name: 'by media type' }, { headers: { accept: 'application/vnd.openstack.images-v2.3' } });
  assert.equal(created.status, 201, created.text);
  assert.equal((await api.get(`/v2/images/${created.json.id}`)).json.name, 'by media type');
  // The whole header must name a version this service has; anything else gets the version document.
  for (const accept of ['application/vnd.openstack.images-v2.1+json', 'application/vnd.openstack.images-v3', 'application/vnd.openstack.images-v2.14']) {
    const r = await vnd('/images', accept);
    assert.equal(r.status, 300, accept);
    assert.ok(Array.isArray(r.json.versions), accept);
  }
  // The path goes under /v2 whatever it holds (a versioned path then names nothing); /versions stays itself.
  assert.equal((await vnd('/v2/images', 'application/vnd.openstack.images-v2.1')).status, 404);
  assert.equal((await vnd('/versions', 'application/vnd.openstack.images-v2.1')).status, 200);
  assert.equal((await vnd('/healthcheck', 'application/vnd.openstack.images-v2.1')).text, 'OK');
});

test('every API response carries a request id; a given one is reused with the req- prefix', async () => {
  const r = await api.get('/v2/images');
  assert.match(r.headers.get('x-openstack-request-id')!, /^req-[0-9a-f-]{36}$/);
  const given = await api.get('/v2/images', { headers: { 'x-openstack-request-id': 'abc' } });
  assert.equal(given.headers.get('x-openstack-request-id'), 'req-abc');
  const kept = await api.get('/v2/images/nope', { headers: { 'x-openstack-request-id': 'req-xyz' } });
  assert.equal(kept.status, 404);
  assert.equal(kept.headers.get('x-openstack-request-id'), 'req-xyz');
  const long = await api.get('/v2/images', { headers: { 'x-openstack-request-id': 'x'.repeat(65), accept: 'application/json' } });
  assert.equal(long.status, 431);
  assert.equal(message(long), 'x-openstack-request-id is too long, max size 64');
  assert.match(long.headers.get('x-openstack-request-id')!, /^req-[0-9a-f-]{36}$/, 'a fresh id, the given one refused');
});

test('error bodies follow the Accept header: JSON, HTML or plain text', async () => {
  const json = await api.get('/v2/images/x', { headers: { accept: 'application/json' } });
  assert.equal(json.status, 404);
  assert.equal(json.headers.get('content-type'), 'application/json');
  assert.deepEqual(json.json, { message: 'No image found with ID x<br /><br />\n\n\n', code: '404 Not Found', title: 'Not Found' });

  const html = await api.get('/v2/images/x', { headers: { accept: '*/*' } });
  assert.equal(html.headers.get('content-type'), 'text/html; charset=UTF-8');
  assert.equal(
    html.text,
    '<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  No image found with ID x<br /><br />\n\n\n\n </body>\n</html>',
  );

  const plain = await api.get('/v2/images/x', { headers: { accept: '' } });
  assert.equal(plain.headers.get('content-type'), 'text/plain; charset=UTF-8');
  assert.equal(plain.text, '404 Not Found\n\nNo image found with ID x\n\n   ');

  // Quotes are escaped in HTML only, as WebOb escapes them (the CLI shows what it gets).
  const quoted = (accept: string) => api.post('/v2/images', { name: 5 }, { headers: { accept } });
  const htmlQuoted = (await quoted('text/html')).text;
  assert.match(htmlQuoted, /Provided object does not match schema &#x27;image&#x27;: 5 is not of type &#x27;null&#x27;, &#x27;string&#x27;/);
  assert.ok(!htmlQuoted.includes("'"));
  assert.match((await quoted('text/plain')).text, /schema 'image': 5 is not of type 'null', 'string'/);
  assert.match((await quoted('application/json')).json.message, /schema 'image': 5 is not of type 'null', 'string'/);

  // Beyond ASCII: character references in HTML (WebOb's), \u escapes in JSON, the characters in plain text.
  const img = await api.createImage({ name: 'n' });
  const nonAscii = (accept: string) => api.post(`/v2/images/${img.id}/members`, { member: 'é☃' }, { headers: { accept } });
  assert.equal((await nonAscii('text/html')).status, 200);
  assert.match((await nonAscii('text/html')).text, /\n {2}Member &#233;&#9731; is duplicated for image [0-9a-f-]{36}<br \/>/);
  assert.match((await nonAscii('application/json')).text, /^\{"message": "Member \\u00e9\\u2603 is duplicated/);
  assert.match((await nonAscii('text/plain')).text, /Member é☃ is duplicated/);
  // A character beyond the Basic Multilingual Plane is one reference, by its code point.
  const astral = await api.get('/v2/images/%F0%9F%92%A5', { headers: { accept: 'text/html' } });
  assert.equal(astral.status, 404);
  assert.match(astral.text, /No image found with ID &#128165;<br \/>/);
});

test('a wrong method answers 405 with Allow; OPTIONS 200 with Allow; an unknown method on an unknown path 501; an unknown path 404', async () => {
  const r = await api.call('PUT', '/v2/images', { headers: { accept: 'application/json' } });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET, POST');
  // WebOb's own template for 405 (and 501 below): a space before the breaks, nothing after.
  assert.equal(r.json.message, 'The method PUT is not allowed for this resource. <br /><br />\n');
  const html = await api.call('PUT', '/v2/images', { headers: { accept: 'text/html' } });
  assert.match(html.text, /<h1>405 Method Not Allowed<\/h1>\n  The method PUT is not allowed for this resource\. <br \/><br \/>\n\n <\/body>/);
  const plain = await api.call('PUT', '/v2/images', { headers: { accept: 'text/plain' } });
  assert.equal(plain.text, '405 Method Not Allowed\n\nThe method PUT is not allowed for this resource. \n\n ');
  // Glance answers OPTIONS with 200 (without credentials); Gaze adds the path's methods.
  for (const [path, allow] of [
    ['/v2/images', 'GET, POST'],
    ['/v2/images/x/file', 'GET, PUT'],
    ['/v2/cache/x', 'DELETE, PUT'],
    ['/v2/images/x/tags/t', 'PUT, DELETE'],
  ]) {
    const opts = await rawRequest(gaze.url, 'OPTIONS', path, {});
    assert.equal(opts.status, 200, path);
    assert.equal(opts.headers.get('allow'), allow, path);
    assert.equal(opts.text, '');
  }
  assert.equal((await rawRequest(gaze.url, 'OPTIONS', '/v2/nothing-here', {})).status, 200);
  for (const method of ['TRACE', 'PROPFIND', 'MKCOL', 'LOCK', 'QUERY']) {
    const refused = await rawRequest(gaze.url, method, '/v2/images/x/file', { accept: 'application/json' });
    assert.equal(refused.status, 405, method);
    assert.equal(refused.headers.get('allow'), 'GET, PUT', "in the order of Glance's router");
    assert.equal(refused.json?.message, `The method ${method} is not allowed for this resource. <br /><br />\n`);
    const nowhere = await rawRequest(gaze.url, method, '/v2/nothing-here', { accept: 'application/json' });
    assert.equal(nowhere.status, 501, method);
    assert.equal(nowhere.json?.message, `\nThe request method ${method} is not implemented for this server. <br /><br />\n`);
  }
  // Where Glance's router has no 405 route for a path, another method finds no route at all.
  for (const path of ['/v2/info/usage', '/v2/images/x/tasks']) {
    assert.equal((await rawRequest(gaze.url, 'POST', path, {})).status, 404, path);
    assert.equal((await rawRequest(gaze.url, 'DELETE', path, {})).status, 404, path);
    assert.equal((await rawRequest(gaze.url, 'PROPFIND', path, {})).status, 501, path);
  }
  const missing = await api.get('/v2/nothing-here', { headers: { accept: 'application/json' } });
  assert.equal(missing.status, 404);
  assert.equal(missing.json.title, 'Not Found');
  // Glance routes the decoded path without its empty segments (checked against Glance 25).
  const doubled = await api.get('/v2/images//members', { headers: { accept: 'application/json' } });
  assert.equal(doubled.status, 404);
  assert.equal(message(doubled), 'No image found with ID members');
  assert.equal((await api.get('/v2//images')).status, 200);
  assert.equal((await rawRequest(gaze.url, 'PUT', '/v2/images/%2F/stage', {})).status, 405);
  assert.equal(message(await api.get('/v2/images/%252F', { headers: { accept: 'application/json' } })), 'No image found with ID %2F');
  for (const [method, path] of [
    ['GET', '/v2/images/a%2Fb'],
    ['PUT', '/v2/images/00000000-0000-4000-8000-000000000000/tags/a%2Fb'],
    ['DELETE', '/v2/metadefs/namespaces//tags/x'],
    ['GET', '/v2/metadefs/namespaces/'],
  ] as const) {
    const unrouted = await rawRequest(gaze.url, method, path, { accept: 'application/json' });
    assert.equal(unrouted.status, 404, path);
    assert.equal(message(unrouted), 'The resource could not be found.', path);
  }
});

test('URLs the router cannot decode, and over-long path parameters, get Glance-shaped errors', async () => {
  // Text that is not UTF-8: Glance's words for it in a query (in a path, eventlet answers an empty 500).
  const decoding = /^Error decoding your request\. Either the URL or the request body contained characters that could not be decoded by Glance$/;
  for (const path of ['/v2/images/%ff', '/v2/images/%E0%A4%A', '/v2/images/00000000-0000-4000-8000-000000000000/members/%c3%28', '/v2/images?name=%ff']) {
    const r = await rawRequest(gaze.url, 'GET', path, { accept: 'application/json' });
    assert.equal(r.status, 400, path);
    assert.deepEqual(Object.keys(r.json), ['message', 'code', 'title']);
    assert.match(message(r), decoding);
    assert.ok(r.headers.get('x-openstack-request-id')?.startsWith('req-'));
  }
  const given = await rawRequest(gaze.url, 'GET', '/v2/images/%ff', { 'x-openstack-request-id': 'req-given-one' });
  assert.equal(given.headers.get('x-openstack-request-id'), 'req-given-one');
  // A % that starts no escape is itself, as Python's unquote reads it.
  for (const [path, text] of [
    ['/v2/images/%', 'No image found with ID %'],
    ['/v2/images/%ZZ', 'No image found with ID %ZZ'],
  ]) {
    const r = await rawRequest(gaze.url, 'GET', path!, { accept: 'application/json' });
    assert.equal(r.status, 404, path);
    assert.equal(message(r), text);
  }
  const literal = await rawRequest(gaze.url, 'GET', '/v2/images?name=%ZZ', { accept: 'application/json' });
  assert.equal(literal.status, 200);
  assert.equal((literal.json as { first: string }).first, '/v2/images?name=%25ZZ');
  const tag = await rawRequest(gaze.url, 'PUT', '/v2/images/00000000-0000-4000-8000-000000000000/tags/%ff', {});
  assert.equal(tag.status, 400);
  assert.equal(tag.headers.get('content-type'), 'text/plain; charset=UTF-8');
  assert.match(tag.text, /^400 Bad Request\n\nError decoding your request/);
  const long = await rawRequest(gaze.url, 'GET', `/v2/images/${'a'.repeat(10_000)}`, { accept: 'text/html' });
  assert.equal(long.status, 414);
  assert.match(long.text, /<title>414 Request-URI Too Long<\/title>/);
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
  // Glance's router rejects a body on most routes that read none, but lets one through (ignored) on the
  // image and task lists, a task and the usage.
  const withBody = (path: string) =>
    rawRequest(gaze.url, 'GET', path, { 'content-type': 'application/json', accept: 'application/json', 'content-length': 2 }, '{}');
  const created = await api.createImage({ name: 'with-body' });
  const showWithBody = await withBody(`/v2/images/${created.id}`);
  assert.equal(showWithBody.status, 400);
  assert.equal(message(showWithBody), 'A body is not expected with this request.');
  for (const path of ['/v2/images', '/v2/tasks', '/v2/info/usage']) assert.equal((await withBody(path)).status, 200, path);
  // Where Glance's default deserializer reads that body (a task, the usage, a refused method), it must
  // still be JSON and an object or a list. Checked against Glance 25.
  const rawBody = (method: string, path: string, body: string) =>
    rawRequest(gaze.url, method, path, { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) }, body);
  for (const [method, path] of [
    ['GET', '/v2/info/usage'],
    ['GET', '/v2/tasks/00000000-0000-4000-8000-000000000000'],
    ['GET', '/v2/schemas/task'],
    ['GET', '/v2/schemas/tasks'],
    ['PUT', '/v2/images'],
    ['PATCH', '/v2/images/x/actions/reactivate'],
  ]) {
    const malformed = await rawBody(method!, path!, '{');
    assert.equal(malformed.status, 400, `${method} ${path}`);
    assert.equal(message(malformed), 'Malformed JSON in request body.');
    const scalarBody = await rawBody(method!, path!, '"x"');
    assert.equal(scalarBody.status, 400, `${method} ${path}`);
    assert.equal(message(scalarBody), 'Unexpected body type. Expected list/dict.');
  }
  assert.equal((await rawBody('PUT', '/v2/images', '{}')).status, 405);
  // JSON is parsed whatever the Content-Type says, even one that is no media type at all.
  const anyType = await api.call('POST', '/v2/images', { body: '{"name":"typed"}', headers: { 'content-type': 'text/plain' } });
  assert.equal(anyType.status, 201);
  const garbage = await rawRequest(
    gaze.url,
    'POST',
    '/v2/images',
    { 'content-type': 'garbage', accept: 'application/json', 'content-length': 16 },
    '{"name":"typed"}',
  );
  assert.equal(garbage.status, 201, garbage.text);
  const deleted = await rawRequest(gaze.url, 'DELETE', `/v2/images/${(garbage.json as { id: string }).id}`, { 'content-type': 'garbage' });
  assert.equal(deleted.status, 204, deleted.text);
});

test("healthcheck answers OK without authentication, as oslo.middleware's: any method, the Accept header's shape, HEAD 204", async () => {
  const r = await api.get('/healthcheck');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'OK');
  assert.equal(r.headers.get('content-type'), 'text/plain; charset=UTF-8');
  const json = await api.get('/healthcheck', { headers: { accept: 'application/json' } });
  assert.equal(json.headers.get('content-type'), 'application/json');
  assert.equal(json.text, '{\n    "detailed": false,\n    "reasons": [\n        "OK"\n    ]\n}');
  const html = await api.get('/healthcheck', { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
  assert.equal(html.headers.get('content-type'), 'text/html; charset=UTF-8');
  assert.match(html.text, /^<HTML>\n<HEAD><TITLE>Healthcheck Status<\/TITLE><\/HEAD>[\s\S]*<TD>OK<\/TD>[\s\S]*<\/HTML>$/);
  assert.equal((await api.get('/healthcheck', { headers: { accept: 'image/png' } })).text, 'OK');
  const head = await rawRequest(gaze.url, 'HEAD', '/healthcheck', {});
  assert.equal(head.status, 204);
  // HEAD: the version documents and the healthcheck answer it; the API's resources do not (Glance 25).
  assert.equal((await rawRequest(gaze.url, 'HEAD', '/versions', {})).status, 200);
  assert.equal((await rawRequest(gaze.url, 'HEAD', '/', {})).status, 300);
  const headImage = await rawRequest(gaze.url, 'HEAD', '/v2/images/00000000-0000-4000-8000-000000000000', {});
  assert.equal(headImage.status, 405);
  assert.equal(headImage.headers.get('allow'), 'GET, PATCH, DELETE');
  // WebOb's errors to a HEAD request have no body: Content-Length 0, where a GET's would be counted.
  assert.equal(headImage.headers.get('content-length'), '0');
  // and WebOb's default content type, whatever the Accept header asks for.
  assert.equal(headImage.headers.get('content-type'), 'text/html; charset=UTF-8');
  const headMissing = await rawRequest(gaze.url, 'HEAD', '/v2/nothing-here', { accept: 'application/json' });
  assert.deepEqual(
    [headMissing.status, headMissing.headers.get('content-length'), headMissing.headers.get('content-type')],
    [404, '0', 'text/html; charset=UTF-8'],
  );
  assert.ok(Number((await rawRequest(gaze.url, 'HEAD', '/versions', {})).headers.get('content-length')) > 0, 'a success keeps its length');
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'PROPFIND', 'QUERY']) {
    assert.equal((await rawRequest(gaze.url, method, '/healthcheck', {})).status, 200, method);
    assert.equal((await rawRequest(gaze.url, method, '/versions', {})).status, 200, method);
    assert.equal((await rawRequest(gaze.url, method, '/', {})).status, 300, method);
  }
  // OPTIONS too (Glance 25): the healthcheck and /versions answer with their bodies, / with an empty 200; no Allow.
  const options = await Promise.all(['/healthcheck', '/versions', '/'].map((path) => rawRequest(gaze.url, 'OPTIONS', path, {})));
  assert.deepEqual(
    options.map((o) => [o.status, o.headers.get('allow')]),
    [
      [200, null],
      [200, null],
      [200, null],
    ],
  );
  assert.equal(options[0]!.text, 'OK');
  assert.match(options[1]!.text, /^\{"versions": \[\{"id": "v2\.\d+", "status": "(CURRENT|SUPPORTED)"/);
  assert.equal(options[2]!.text, '');
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
  // One store: no `stores`, which Debian's glanceclient 4.1 would turn into a clashing --stores option.
  assert.equal(image.properties.stores, undefined);
  assert.deepEqual(image.properties.disk_format.enum, [null, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']);
  const images = (await api.get('/v2/schemas/images')).json;
  assert.deepEqual(images.properties.images.items.properties, image.properties);
  assert.deepEqual(
    Object.keys(images.properties.images.items),
    ['name', 'properties', 'additionalProperties', 'links'],
    "Glance's nesting of the image schema",
  );
  assert.equal(images.properties.images.items.name, 'image');
  // The task and member collections as Glance's minimal form: no first and next links.
  for (const [name, items] of [
    ['tasks', 'task'],
    ['members', 'member'],
  ]) {
    const collection = (await api.get(`/v2/schemas/${name}`)).json;
    assert.deepEqual(Object.keys(collection.properties), [name, 'schema'], name);
    assert.deepEqual(collection.links, [{ rel: 'describedby', href: '{schema}' }], name);
    assert.equal(collection.properties[name].items.name, items);
  }
});

test('a request the HTTP parser refuses (a Content-Length that is not a number) gets a Glance-shaped 400', async () => {
  for (const length of ['abc', '99999999999999999999']) {
    const r = await rawRequest(
      gaze.url,
      'PUT',
      '/v2/images/00000000-0000-4000-8000-000000000000/file',
      { 'content-type': 'application/octet-stream', 'content-length': length },
      'x',
    );
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('connection'), 'close');
    assert.equal(r.text, '400 Bad Request\n\nThe request could not be read: its HTTP framing is malformed.\n\n   ');
  }
});

/** Writes these bytes in one go on a new connection and reads until the server closes it (or 3 s pass). */
function oneWrite(base: string, bytes: string): Promise<string> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(bytes));
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    setTimeout(() => socket.destroy(), 3000).unref();
  });
}

test('requests read whole before bytes the parser refuses get their own answers first, as from Glance', async () => {
  // An answer's status line follows the one before it directly (its body ends with no newline).
  const statusLines = (answer: string) => answer.match(/HTTP\/1\.1 \d{3} [^\r]*/g) ?? [];
  // Pipelined: the schema, then a method Node does not know on a resource (Glance's router: 405).
  const pipelined = await oneWrite(gaze.url, 'GET /v2/schemas/member HTTP/1.1\r\nHost: x\r\n\r\nFOO /v2/images HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.deepEqual(statusLines(pipelined), ['HTTP/1.1 200 OK', 'HTTP/1.1 405 Method Not Allowed']);
  assert.match(pipelined, /"name": ?"member"/);
  assert.match(pipelined, /allow: GET, POST/i);
  // A body longer than its Content-Length: the image is created and the client is told so.
  const body = JSON.stringify({ name: 'framed' });
  const created = await oneWrite(
    gaze.url,
    `POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}xyz`,
  );
  assert.equal(statusLines(created)[0], 'HTTP/1.1 201 Created');
  // One byte short: the body is malformed JSON to the request, and what is left is no request.
  const short = await oneWrite(
    gaze.url,
    `POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ${body.length - 1}\r\n\r\n${body}`,
  );
  assert.deepEqual(statusLines(short), ['HTTP/1.1 400 Bad Request', 'HTTP/1.1 400 Bad Request']);
  assert.match(short, /Malformed JSON in request body/);
});

test("a request's head has the sizes Glance's server allows: lines, not their sum", async () => {
  // Two Keystone-sized tokens of 9000 bytes each are read (Node's default would refuse 16 KiB in all).
  const long = 'a'.repeat(9000);
  assert.equal((await rawRequest(gaze.url, 'GET', '/v2/schemas/member', { 'x-auth-token': long, 'x-service-token': long })).status, 200);
  const tooLong = await rawRequest(gaze.url, 'GET', '/v2/schemas/member', { 'x-foo': 'b'.repeat(16400), accept: 'application/json' });
  assert.equal(tooLong.status, 400);
  assert.equal(message(tooLong), 'Header Line Too Long');
  assert.equal(tooLong.headers.get('connection'), 'close');
  // The request line: under 8192 bytes is read, at 8192 or more a 414.
  assert.equal((await rawRequest(gaze.url, 'GET', `/v2/images?x=${'q'.repeat(8100)}`, {})).status, 200);
  for (const size of [8300, 20_000]) assert.equal((await rawRequest(gaze.url, 'GET', `/v2/images?x=${'q'.repeat(size)}`, {})).status, 414, String(size));
});

test('Expect: 100-continue gets 100 only once the body is read: a refusal comes alone and closes the connection, as from Glance', async () => {
  const { port } = new URL(gaze.url);
  /** Sends the headers only; the body follows once the server says 100 Continue. Resolves with all the server wrote. */
  const expectingUpload = (path: string, body: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () =>
        socket.write(
          `PUT ${path} HTTP/1.1\r\nHost: x\r\nX-Roles: admin\r\nX-Project-Id: p\r\nContent-Type: application/octet-stream\r\n` +
            `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
        ),
      );
      let answer = '';
      socket.on('data', (d) => {
        answer += d.toString('latin1');
        if (answer === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write(body);
        if (/\r\n\r\n[\s\S]*HTTP\/1\.1 204|^HTTP\/1\.1 204/.test(answer)) socket.end();
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(answer));
      setTimeout(() => socket.destroy(), 3000).unref();
    });
  const refused = await expectingUpload('/v2/images/00000000-0000-4000-8000-000000000000/file', 'hello');
  assert.match(refused, /^HTTP\/1\.1 404 Not Found\r\n/, 'no 100 Continue before the refusal');
  assert.match(refused, /\r\nConnection: close\r\n/i);
  const img = await api.createImage();
  const taken = await expectingUpload(`/v2/images/${img.id}/file`, 'hello');
  assert.match(taken, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 204 No Content\r\n/);
  assert.equal((await api.get(`/v2/images/${img.id}`)).json.size, 5);
});

/**
 * A client that writes its whole request before it reads anything (python-requests, openstacksdk):
 * one raw socket, the request, then the answer; a second request on the same socket must work too.
 */
function sendAllThenRead(base: string, head: string, body: Buffer, then?: string): Promise<string> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => {
      answer += d.toString('latin1');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.write(head);
    socket.write(body, () => {
      if (then) setTimeout(() => socket.write(then), 200);
      setTimeout(() => socket.end(), then ? 1500 : 1000);
    });
  });
}

test('an early error answer reaches a client that sends its whole body first (no reset, no hang)', async () => {
  const big = Buffer.concat([Buffer.from('{"name": "'), Buffer.alloc(20 << 20, 'x'), Buffer.from('"}')]);
  const next = 'GET /v2/images?limit=1 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n';
  const started = Date.now();
  const answer = await sendAllThenRead(
    gaze.url,
    `POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ${big.length}\r\n\r\n`,
    big,
    next,
  );
  assert.match(answer, /^HTTP\/1\.1 413 /);
  assert.match(answer, /Request is too large\./);
  assert.match(answer, /HTTP\/1\.1 200 OK[\s\S]*"images"/, 'the connection stays usable once the body was drained');
  assert.ok(Date.now() - started < 10_000);

  // an upload to an image that does not exist: 404 before a byte is read, then drained
  const upload = await sendAllThenRead(
    gaze.url,
    `PUT /v2/images/00000000-0000-4000-8000-00000000dead/file HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${30 << 20}\r\n\r\n`,
    Buffer.alloc(30 << 20, 1),
  );
  assert.match(upload, /^HTTP\/1\.1 404 /);
});

test('a JSON body that is not valid UTF-8 is malformed (400), never stored with replacement characters', async () => {
  for (const bytes of [
    Buffer.from([0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    Buffer.from('{"name":"\xc3\x28"}', 'latin1'),
  ]) {
    const r = await api.call('POST', '/v2/images', { body: bytes, headers: { 'content-type': 'application/json', accept: 'application/json' } });
    assert.equal(r.status, 400);
    assert.equal(message(r), 'Malformed JSON in request body.');
  }
  const ok = await api.call('POST', '/v2/images', { body: Buffer.from('{"name":"caf\u00e9 \u65e5\u672c"}'), headers: { 'content-type': 'application/json' } });
  assert.equal(ok.status, 201);
  assert.equal(ok.json.name, 'caf\u00e9 \u65e5\u672c');
  // Beyond the Basic Multilingual Plane, Glance refuses (its no_4byte_params), with these words.
  const json = { 'content-type': 'application/json', accept: 'application/json' };
  const emoji = '\u{1F600}';
  for (const [body, text] of [
    [{ name: `x${emoji}` }, "Name can't contain 4 byte unicode characters."],
    [{ name: 'x', os_distro: emoji }, "Os_Distro can't contain 4 byte unicode characters."],
    [{ name: 'x', [`k${emoji}`]: 'v' }, "Property names can't contain 4 byte unicode."],
    [{ name: 'x', tags: [emoji] }, "Param values can't contain 4 byte unicode."],
  ] as const) {
    const refused = await api.call('POST', '/v2/images', { body: JSON.stringify(body), headers: json });
    assert.equal(refused.status, 400, JSON.stringify(body));
    assert.equal(message(refused), text);
  }
  const patched = await api.patch(`/v2/images/${ok.json.id}`, [{ op: 'add', path: '/hw_disk_bus', value: emoji }], { headers: { accept: 'application/json' } });
  assert.equal(patched.status, 400);
  assert.equal(message(patched), "Hw_Disk_Bus can't contain 4 byte unicode characters.");
  const tagged = await api.call('PUT', `/v2/images/${ok.json.id}/tags/${encodeURIComponent(emoji)}`, { headers: { accept: 'application/json' } });
  assert.equal(tagged.status, 400);
  assert.equal(message(tagged), "Param values can't contain 4 byte unicode.");
});

test('a transfer coding other than chunked is refused with a 501 and closes the connection: encoded bytes are never stored as the image', async () => {
  const created = await api.post('/v2/images', { name: 'coded', disk_format: 'raw', container_format: 'bare' });
  const id = created.json.id;
  const chunk = 'abcdef';
  const answer = await oneWrite(
    gaze.url,
    `PUT /v2/images/${id}/file HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: gzip, chunked\r\n\r\n` +
      `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
  );
  assert.match(answer, /^HTTP\/1\.1 501 /);
  assert.match(answer, /Transfer-Encoding gzip is not implemented/);
  assert.match(answer, /connection: close/i);
  const image = await api.get(`/v2/images/${id}`);
  assert.equal(image.json.status, 'queued');
  assert.equal(image.json.size, null);
  // chunked alone is read as ever (its value compared without case, as Node's parser does).
  const plain = await oneWrite(
    gaze.url,
    `PUT /v2/images/${id}/file HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n` +
      `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
  );
  assert.match(plain, /^HTTP\/1\.1 204 /);
  assert.equal((await api.get(`/v2/images/${id}`)).json.size, chunk.length);
});
