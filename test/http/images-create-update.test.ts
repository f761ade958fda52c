import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, alice, bob, carol, rawRequest } from '../helpers/http.ts';
import { setClockOffset } from '../../src/domain/time.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess({ DEFAULT: { image_property_quota: '3', image_tag_quota: '2' } });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

test('create answers 201 with the full image, Location and import-method headers', async () => {
  const r = await api.post(
    '/v2/images',
    { name: 'Ubuntu', disk_format: 'qcow2', container_format: 'bare', visibility: 'private', tags: ['a', 'b'], os_distro: 'ubuntu' },
    { as: alice },
  );
  assert.equal(r.status, 201);
  const img = r.json;
  assert.equal(r.headers.get('location'), `${gaze.url}/v2/images/${img.id}`);
  assert.equal(r.headers.get('openstack-image-import-methods'), 'glance-direct,web-download,copy-image');
  assert.equal(r.headers.get('openstack-image-store-ids'), null);
  assert.equal(img.status, 'queued');
  assert.equal(img.owner, 'alice-project');
  assert.equal(img.visibility, 'private');
  assert.equal(img.os_distro, 'ubuntu');
  assert.deepEqual([...img.tags].sort(), ['a', 'b']);
  for (const key of ['size', 'virtual_size', 'checksum', 'os_hash_algo', 'os_hash_value']) assert.equal(img[key], null, key);
  assert.equal(img.min_ram, 0);
  assert.equal(img.protected, false);
  assert.equal(img.os_hidden, false);
  assert.equal(img.created_at, img.updated_at);
  assert.match(img.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(img.self, `/v2/images/${img.id}`);
  assert.equal(img.file, `/v2/images/${img.id}/file`);
  assert.equal(img.schema, '/v2/schemas/image');
  assert.ok(!('locations' in img) && !('direct_url' in img) && !('stores' in img));
  const shown = await api.get(`/v2/images/${img.id}`, { as: alice });
  assert.deepEqual(shown.json, img);
  assert.equal((await api.createImage({})).visibility, 'shared', 'shared is the default visibility');
});

test('create refuses read-only, reserved and os_glance attributes with 403', async () => {
  const valid: Record<string, unknown> = { status: 'active', size: 1, virtual_size: 1, locations: [] };
  for (const key of ['status', 'checksum', 'size', 'virtual_size', 'created_at', 'updated_at', 'self', 'file', 'schema', 'direct_url', 'stores']) {
    expectError(await api.post('/v2/images', { [key]: valid[key] ?? 'x' }, { headers: JSON_ACCEPT }), 403, `Attribute '${key}' is read-only.`);
  }
  for (const key of ['location', 'locations', 'deleted', 'deleted_at', 'os_glance_import_task']) {
    expectError(await api.post('/v2/images', { [key]: valid[key] ?? 'x' }, { headers: JSON_ACCEPT }), 403, `Attribute '${key}' is reserved.`);
  }
  // Glance's order, checked against Glance 25: what no request may set, then the schema, then the
  // read-only attributes and `locations` (its image factory's checks).
  expectError(
    await api.post('/v2/images', { status: 'x' }, { headers: JSON_ACCEPT }),
    400,
    /^Provided object does not match schema 'image': 'x' is not one of/,
  );
  expectError(
    await api.post('/v2/images', { locations: 'x' }, { headers: JSON_ACCEPT }),
    400,
    /^Provided object does not match schema 'image': 'x' is not of type 'array'/,
  );
  expectError(await api.post('/v2/images', { file: 5 }, { headers: JSON_ACCEPT }), 403, "Attribute 'file' is read-only.");
  expectError(
    await api.post('/v2/images', { locations: [], updated_at: 'x', status: 'active' }, { headers: JSON_ACCEPT }),
    403,
    "Attribute 'updated_at' is read-only.",
  );
});

test('create validates against the image schema (400) and Glance rules', async () => {
  // The whole message as Glance 25 words it (captured from one): jsonschema's error, then the schema and
  // the instance as Python's pprint shows them.
  const wrongType = await api.post('/v2/images', { disk_format: true }, { headers: JSON_ACCEPT });
  assert.equal(
    wrongType.json.message,
    "Provided object does not match schema 'image': True is not of type 'null', 'string'\n\nFailed validating 'type' in schema['properties']['disk_format']:\n    {'description': 'Format of the disk',\n     'enum': [None,\n              'ami',\n              'ari',\n              'aki',\n              'vhd',\n              'vhdx',\n              'vmdk',\n              'raw',\n              'qcow2',\n              'vdi',\n              'iso',\n              'ploop'],\n     'type': ['null', 'string']}\n\nOn instance['disk_format']:\n    True<br /><br />\n\n\n",
  );
  // Nesting Glance cannot print (it answers 500 from some hundreds deep) is shown to a depth, never a 500
  // (beyond 1000 levels the body is refused before any schema: hostile-requests.test.ts).
  const deep = await api.call('POST', '/v2/images', { body: `{"name": ${'['.repeat(900)}${']'.repeat(900)}}`, headers: JSON_ACCEPT });
  expectError(deep, 400, /^Provided object does not match schema 'image': \[{101}\.\.\.\]{101} is not of type 'null', 'string'/);
  // A long string is cut at its spaces into adjacent literals, as pprint cuts it.
  const longName = await api.post('/v2/images', { name: `it's ${'word '.repeat(60)}` }, { headers: JSON_ACCEPT });
  assert.ok(longName.json.message.includes(`On instance['name']:\n    ("it's ${'word '.repeat(12)}"\n     '${'word '.repeat(13)}'\n`), longName.json.message);
  expectError(
    await api.post('/v2/images', { disk_format: 'floppy' }, { headers: JSON_ACCEPT }),
    400,
    /^Provided object does not match schema 'image': 'floppy' is not one of \[None, 'ami'/,
  );
  expectError(await api.post('/v2/images', { min_ram: 'lots' }, { headers: JSON_ACCEPT }), 400, /'lots' is not of type 'integer'/);
  expectError(await api.post('/v2/images', { os_distro: 5 }, { headers: JSON_ACCEPT }), 400, /5 is not of type 'string'/);
  expectError(await api.post('/v2/images', { custom: true }, { headers: JSON_ACCEPT }), 400, /True is not of type 'string'/);
  expectError(await api.post('/v2/images', { id: 'not-a-uuid' }, { headers: JSON_ACCEPT }), 400, /does not match/);
  expectError(await api.post('/v2/images', { name: 'n'.repeat(256) }, { headers: JSON_ACCEPT }), 400, /is too long/);
  expectError(await api.post('/v2/images', { kernel_id: 'abc' }, { headers: JSON_ACCEPT }), 400, /does not match/);
  expectError(
    await api.post('/v2/images', { min_ram: -1 }, { headers: JSON_ACCEPT }),
    400,
    "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value",
  );
  expectError(
    await api.call('POST', '/v2/images', { body: '{"min_ram": 1e400}', headers: JSON_ACCEPT }),
    400,
    /^Provided object does not match schema 'image': inf is not of type 'integer'/,
  );
  expectError(
    await api.post('/v2/images', { min_disk: 2 ** 31, min_ram: 2 ** 31 }, { headers: JSON_ACCEPT }),
    400,
    "'min_disk' value out of range, must not exceed 2147483647.",
  );
  expectError(await api.call('POST', '/v2/images', { body: '{"__proto__": "x"}', headers: JSON_ACCEPT }), 400, "Property name '__proto__' is not allowed.");
  // Python reads no integer of more than 4,300 digits: Glance's JSON parser fails there (checked against
  // Glance 25). A float, or a string, of any length is read.
  const body = (text: string) => api.call('POST', '/v2/images', { body: text, headers: JSON_ACCEPT });
  expectError(await body(`{"min_ram": ${'1'.repeat(4301)}}`), 400, 'Malformed JSON in request body.');
  expectError(await body(`[-${'2'.repeat(4400)}]`), 400, 'Malformed JSON in request body.');
  // A UTF-8 byte order mark is no JSON whitespace: Python's json.loads refuses it (checked against Glance 25).
  expectError(await body('\ufeff{"name": "bom"}'), 400, 'Malformed JSON in request body.');
  expectError(await body('\ufeff'), 400, 'Malformed JSON in request body.');
  expectError(await body(' '), 400, 'Malformed JSON in request body.');
  const before = (await api.get('/v2/images')).json.images.length;
  expectError(await api.post('/v2/images', { name: 'x\ud800', tags: ['ok'] }, { headers: JSON_ACCEPT }), 400, /half of a UTF-16 surrogate pair/);
  expectError(await api.post('/v2/images', { tags: ['\udbff'] }, { headers: JSON_ACCEPT }), 400, /half of a UTF-16 surrogate pair/);
  expectError(await api.post('/v2/images', { ['k\udfff']: 'v' }, { headers: JSON_ACCEPT }), 400, /half of a UTF-16 surrogate pair/);
  assert.equal((await api.get('/v2/images')).json.images.length, before);
  // Up to 4,300 digits Python reads the integer, and Glance says it is out of range; JavaScript reads
  // Infinity there, which fails the schema (both 400).
  expectError(await body(`{"min_ram": ${'1'.repeat(4300)}}`), 400, /^Provided object does not match schema 'image': inf is not of type 'integer'/);
  expectError(await body(`{"x": 0.${'1'.repeat(5000)}}`), 400, /^Provided object does not match schema 'image': 0\.1111111111111111 is not of type 'string'/);
  // An escaped quote does not end a string: the digits after it are still inside it.
  assert.equal((await body(`{"x": "${'1'.repeat(5000)}", "y": "a\\\\", "z": "\\"${'1'.repeat(5000)}"}`)).status, 201);
  expectError(
    await api.call('POST', '/v2/images', { body: '{"name": "a\\u0000b"}', headers: JSON_ACCEPT }),
    400,
    'Null characters are not allowed in requests.',
  );
  expectError(await api.call('POST', '/v2/images', { body: '{"k\\u0000": "v"}', headers: JSON_ACCEPT }), 400, 'Null characters are not allowed in requests.');
  // Refused where it would reach the database: the request's other checks come first, in Glance's order.
  expectError(
    await api.call('POST', '/v2/images', { body: '{"k\\u0000": 1}', headers: JSON_ACCEPT }),
    400,
    /^Provided object does not match schema 'image': 1 is not of type 'string'/,
  );
  expectError(
    await api.post('/v2/images', { ['k'.repeat(256)]: 'v' }, { headers: JSON_ACCEPT }),
    400,
    'Custom property should not be greater than 255 characters.',
  );
  expectError(await api.post('/v2/images', [], { headers: JSON_ACCEPT }), 400, /does not match schema 'image'/);
});

test('create enforces ownership, publicize policy, id uniqueness and quotas', async () => {
  const othersOwner = await api.post('/v2/images', { owner: 'bob-project' }, { as: alice, headers: JSON_ACCEPT });
  expectError(othersOwner, 403, "You are not permitted to create images owned by 'bob-project'"); // the add_image rule's words, as current Glance words them
  // Glance raises it as WebOb's detail, after the status's own sentence.
  assert.match(othersOwner.json.message, /^Access was denied to this resource\.<br \/><br \/>\nYou are not permitted/);
  // The policy comes before the checks of the image Glance's factory builds (compared with Glance 25):
  // a reader hears add_image, a member the reserved locations before the negative minimum.
  expectError(await api.post('/v2/images', { min_ram: -1 }, { as: carol, headers: JSON_ACCEPT }), 403, 'You are not authorized to complete add_image action.');
  expectError(await api.post('/v2/images', { min_ram: -1, locations: [] }, { as: alice, headers: JSON_ACCEPT }), 403, "Attribute 'locations' is reserved.");
  expectError(
    await api.post('/v2/images', { min_ram: 2 ** 31, min_disk: -1 }, { as: alice, headers: JSON_ACCEPT }),
    400,
    "Invalid value '-1' for parameter 'min_disk': Cannot be a negative value",
  );
  expectError(
    await api.post('/v2/images', { visibility: 'public' }, { as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete publicize_image action.',
  );
  assert.equal((await api.post('/v2/images', { visibility: 'community' }, { as: alice })).status, 201);
  assert.equal((await api.post('/v2/images', { owner: 'bob-project' })).json.owner, 'bob-project', 'an admin may create for another project');
  expectError(
    await api.post('/v2/images', {}, { as: { project: 'p', roles: 'reader' }, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete add_image action.',
  );

  const id = '7a1e7e1c-6c8f-4bd0-9a43-2c1f2f0d2a11';
  assert.equal((await api.post('/v2/images', { id })).status, 201);
  expectError(await api.post('/v2/images', { id }, { headers: JSON_ACCEPT }), 409, `Image ID ${id} already exists!`);
  assert.equal((await api.del(`/v2/images/${id}`)).status, 204);
  expectError(await api.post('/v2/images', { id }, { headers: JSON_ACCEPT }), 409, `Image ID ${id} already exists!`);
  // A given id keeps its case, as in Glance: the client finds the image by the id it chose.
  const upper = 'B0000000-0000-4000-8000-0000000000AB';
  const made = await api.post('/v2/images', { id: upper });
  assert.equal(made.json.id, upper);
  assert.equal((await api.get(`/v2/images/${upper}`)).json.id, upper);

  expectError(
    await api.post('/v2/images', { a: '1', b: '2', c: '3', d: '4' }, { headers: JSON_ACCEPT }),
    413,
    'The limit has been exceeded on the number of allowed image properties. Attempted: 4, Maximum: 3',
  );
  expectError(
    await api.post('/v2/images', { tags: ['1', '2', '3'] }, { headers: JSON_ACCEPT }),
    413,
    'The limit has been exceeded on the number of allowed image tags. Attempted: 3, Maximum: 2',
  );
  // Glance's order: the tag quota (its image factory), the read-only attributes, then the property quota
  // (as its repository adds the image).
  const tooMuch = { a: '1', b: '2', c: '3', d: '4' };
  expectError(await api.post('/v2/images', { ...tooMuch, tags: ['1', '2', '3'] }, { headers: JSON_ACCEPT }), 413, /allowed image tags/);
  expectError(await api.post('/v2/images', { ...tooMuch, status: 'active' }, { headers: JSON_ACCEPT }), 403, "Attribute 'status' is read-only.");
  // Glance counts the list as given, before duplicates collapse (compared with Glance 25).
  expectError(
    await api.post('/v2/images', { tags: ['a', 'a', 'b', 'b'] }, { headers: JSON_ACCEPT }),
    413,
    'The limit has been exceeded on the number of allowed image tags. Attempted: 4, Maximum: 2',
  );
  const tagged = await api.post('/v2/images', { tags: ['a', 'a'] });
  assert.deepEqual([tagged.status, tagged.json.tags], [201, ['a']]);
  expectError(
    await api.patch(`/v2/images/${tagged.json.id}`, [{ op: 'replace', path: '/tags', value: ['x', 'x', 'y'] }], { headers: JSON_ACCEPT }),
    413,
    'The limit has been exceeded on the number of allowed image tags. Attempted: 3, Maximum: 2',
  );
  assert.deepEqual((await api.get(`/v2/images/${tagged.json.id}`)).json.tags, ['a']);
});

test('PATCH needs one of the two json-patch media types (415 with Accept-Patch)', async () => {
  const img = await api.createImage();
  const r = await api.patch(`/v2/images/${img.id}`, [], { mediaType: 'application/json', headers: JSON_ACCEPT });
  assert.equal(r.status, 415);
  assert.equal(r.headers.get('accept-patch'), 'application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch');
  // WebOb's 415 sentence names the request's type; Glance's detail names the two it takes.
  assert.equal(
    r.json.message,
    'The request media type application/json is not supported by this server.\n<br /><br />\n' +
      'Image PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch',
  );
  // Compared as written, as WebOb's content_type (Glance 25 answers these 415 too); no inherited name passes.
  for (const mediaType of ['Application/openstack-images-v2.1-json-patch', 'application/OPENSTACK-images-v2.0-json-patch', '__proto__', 'constructor']) {
    const refused = await api.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/x', value: 'y' }], { mediaType, headers: JSON_ACCEPT });
    assert.equal(refused.status, 415, mediaType);
  }
  const withParameters = await api.patch(`/v2/images/${img.id}`, [], { mediaType: 'application/openstack-images-v2.1-json-patch; charset=UTF-8' });
  assert.equal(withParameters.status, 200);
  const empty = await api.patch(`/v2/images/${img.id}`, []);
  assert.equal(empty.status, 200);
  assert.equal(empty.json.updated_at, img.updated_at);
});

test('PATCH v2.1 add/replace/remove of base and extra properties', async () => {
  const img = await api.createImage({ name: 'before', os_distro: 'debian' }, alice);
  const r = await api.patch(
    `/v2/images/${img.id}`,
    [
      { op: 'replace', path: '/name', value: 'after' },
      { op: 'add', path: '/hw_disk_bus', value: 'scsi' },
      { op: 'replace', path: '/os_distro', value: 'ubuntu' },
      { op: 'add', path: '/min_ram', value: 512 },
      { op: 'replace', path: '/tags', value: ['x', 'y'] },
      { op: 'add', path: '/protected', value: true },
      { op: 'replace', path: '/visibility', value: 'private' },
    ],
    { as: alice },
  );
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.name, 'after');
  assert.equal(r.json.hw_disk_bus, 'scsi');
  assert.equal(r.json.os_distro, 'ubuntu');
  assert.equal(r.json.min_ram, 512);
  assert.deepEqual([...r.json.tags].sort(), ['x', 'y']);
  assert.equal(r.json.protected, true);
  assert.equal(r.json.visibility, 'private');
  const removed = await api.patch(`/v2/images/${img.id}`, [{ op: 'remove', path: '/hw_disk_bus' }], { as: alice });
  assert.ok(!('hw_disk_bus' in removed.json));
  const escaped = await api.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/a~1b~0c', value: 'v' }], { as: alice });
  assert.equal(escaped.json['a/b~c'], 'v');
  // Glance drops every leading slash once the pointer passed its checks (which look from the second).
  const doubled = await api.patch(`/v2/images/${img.id}`, [{ op: 'replace', path: '//name', value: 'two slashes' }], { as: alice });
  assert.equal(doubled.status, 200, doubled.text);
  assert.equal(doubled.json.name, 'two slashes');
});

test('kernel_id and ramdisk_id may be null, and stay so, as in Glance; another property may not be null', async () => {
  const img = await api.createImage({ name: 'ami', kernel_id: null, ramdisk_id: null }, alice);
  assert.equal(img.kernel_id, null);
  assert.equal(img.ramdisk_id, null);
  const shown = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
  assert.ok('kernel_id' in shown && 'ramdisk_id' in shown, 'a null property is shown');
  assert.equal(shown.kernel_id, null);
  const listed = (await api.get('/v2/images?name=ami', { as: alice })).json.images;
  assert.equal(listed.find((i: { id: string }) => i.id === img.id)?.ramdisk_id, null);

  const removed = await api.patch(`/v2/images/${img.id}`, [{ op: 'remove', path: '/kernel_id' }], { as: alice });
  assert.equal(removed.status, 200, removed.text);
  assert.ok(!('kernel_id' in removed.json));
  const added = await api.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/kernel_id', value: null }], { as: alice });
  assert.equal(added.status, 200, added.text);
  assert.ok('kernel_id' in added.json && added.json.kernel_id === null);
  const kernel = '0b4cf1a4-95e0-4a04-9b4f-0e3b8a0f6e9a';
  const replaced = await api.patch(`/v2/images/${img.id}`, [{ op: 'replace', path: '/ramdisk_id', value: kernel }], { as: alice });
  assert.equal(replaced.json.ramdisk_id, kernel);
  const back = await api.patch(`/v2/images/${img.id}`, [{ op: 'replace', path: '/ramdisk_id', value: null }], { as: alice });
  assert.equal(back.json.ramdisk_id, null);

  // A null property counts against image_property_quota (3 here) as any other.
  await api.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/os_distro', value: 'debian' }], { as: alice });
  expectError(
    await api.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/architecture', value: 'x86_64' }], { as: alice, headers: JSON_ACCEPT }),
    413,
    'The limit has been exceeded on the number of allowed image properties. Attempted: 4, Maximum: 3',
  );

  expectError(await api.post('/v2/images', { name: 'x', hw_disk_bus: null }, { headers: JSON_ACCEPT }), 400, /None is not of type 'string'/);
  expectError(
    await api.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/hw_disk_bus', value: null }], { as: alice, headers: JSON_ACCEPT }),
    400,
    /None is not of type/,
  );
});

test('PATCH v2.0 media type uses draft-04 operations and refuses add of existing properties', async () => {
  const img = await api.createImage({ foo: 'bar' });
  const v20 = { mediaType: 'application/openstack-images-v2.0-json-patch', headers: JSON_ACCEPT };
  const ok = await api.patch(`/v2/images/${img.id}`, [{ replace: '/name', value: 'n' }, { add: '/new', value: 'v' }, { remove: '/foo' }], v20);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.name, 'n');
  assert.equal(ok.json.new, 'v');
  expectError(await api.patch(`/v2/images/${img.id}`, [{ add: '/new', value: 'w' }], v20), 409, 'Property new already present.');
  expectError(await api.patch(`/v2/images/${img.id}`, [{ add: '/name', value: 'w' }], v20), 409, 'Property name already present.');
  expectError(
    await api.patch(`/v2/images/${img.id}`, [{ value: 'w' }], v20),
    400,
    'Operation objects must contain exactly one member named "add", "remove", or "replace".',
  );
  expectError(
    await api.patch(`/v2/images/${img.id}`, [{ add: '/a', replace: '/b', value: 'w' }], v20),
    400,
    'Operation objects must contain only one member named "add", "remove", or "replace".',
  );
});

test('PATCH rejects malformed operations with Glance messages', async () => {
  const img = await api.createImage({ extra: 'e' });
  const p = (ops: unknown) => api.patch(`/v2/images/${img.id}`, ops, { headers: JSON_ACCEPT });
  expectError(await p({ op: 'add' }), 400, 'Request body must be a JSON array of operation objects.');
  // No body, a body of whitespace, an empty chunked body: Glance's deserializer's answers.
  const raw = (body: string | undefined, headers: Record<string, string> = {}) =>
    rawRequest(gaze.url, 'PATCH', `/v2/images/${img.id}`, { ...JSON_ACCEPT, 'content-type': 'application/openstack-images-v2.1-json-patch', ...headers }, body);
  expectError(await raw(undefined), 400, 'Body expected in request.');
  expectError(await raw(' \n'), 400, 'Malformed JSON in request body.');
  expectError(await raw('', { 'transfer-encoding': 'chunked' }), 400, 'Malformed JSON in request body.');
  // Half of a surrogate pair is valid JSON that no database keeps as written: refused, nothing stored.
  expectError(await p([{ op: 'add', path: '/k\ud800', value: 'a' }]), 400, 'Malformed JSON in request body: a string holds half of a UTF-16 surrogate pair.');
  expectError(await p([{ op: 'add', path: '/k', value: 'x\udc00y' }]), 400, /half of a UTF-16 surrogate pair/);
  assert.equal((await p([{ op: 'replace', path: '/name', value: 'caf\u00e9' }])).json.name, 'café');
  expectError(await p(['x']), 400, 'Operations must be JSON objects.');
  expectError(
    await p([{ path: '/name', value: 'x' }]),
    400,
    'Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.',
  );
  expectError(await p([{ op: 'move', path: '/name', value: 'x' }]), 400, 'Invalid operation: `move`. It must be one of the following: add, remove, replace.');
  expectError(await p([{ op: 'add', value: 'x' }]), 400, "Unable to find 'path' in JSON Schema change");
  expectError(await p([{ op: 'add', path: '/name' }]), 400, 'Operation "add" requires a member named "value".');
  expectError(await p([{ op: 'add', path: 'name', value: 'x' }]), 400, 'Pointer `name` does not start with "/".');
  expectError(await p([{ op: 'add', path: '/a//b', value: 'x' }]), 400, 'Pointer `/a//b` contains adjacent "/".');
  expectError(await p([{ op: 'add', path: '/a/ /b', value: 'x' }]), 400, 'Pointer `/a/ /b` contains adjacent "/".');
  expectError(await p([{ op: 'add', path: '///name', value: 'x' }]), 400, 'Pointer `///name` contains adjacent "/".');
  expectError(await p([{ op: 'add', path: '// ', value: 'x' }]), 400, 'Pointer `// ` does not contains valid token.');
  expectError(await p([{ op: 'add', path: '/name/', value: 'x' }]), 400, 'Pointer `/name/` end with "/".');
  expectError(await p([{ op: 'add', path: '/a~2', value: 'x' }]), 400, /not part of a recognized escape sequence/);
  expectError(await p([{ op: 'add', path: '/tags/-', value: 'x' }]), 400, "Invalid JSON pointer for this resource: '/tags/-'");
  expectError(await p([{ op: 'replace', path: '/status', value: 'active' }]), 403, "Attribute 'status' is read-only.");
  expectError(await p([{ op: 'remove', path: '/checksum' }]), 403, "Attribute 'checksum' is read-only.");
  expectError(await p([{ op: 'add', path: '/deleted', value: 'x' }]), 403, "Attribute 'deleted' is reserved.");
  expectError(await p([{ op: 'add', path: '/os_glance_foo', value: 'x' }]), 403, "Attribute 'os_glance_foo' is reserved.");
  expectError(await p([{ op: 'replace', path: '/missing', value: 'x' }]), 409, 'Property missing does not exist.');
  expectError(await p([{ op: 'remove', path: '/missing' }]), 409, 'Property missing does not exist.');
  // Names an object inherits are no properties of the image (Glance 25 answers these 409 too).
  for (const name of ['constructor', 'toString', 'hasOwnProperty']) {
    expectError(await p([{ op: 'remove', path: `/${name}` }]), 409, `Property ${name} does not exist.`);
    expectError(await p([{ op: 'replace', path: `/${name}`, value: 'x' }]), 409, `Property ${name} does not exist.`);
  }
  expectError(await p([{ op: 'remove', path: '/name' }]), 403, 'Property name may not be removed.');
  expectError(await p([{ op: 'add', path: '/min_disk', value: 'x' }]), 400, /'x' is not of type 'integer'/);
  expectError(await p([{ op: 'add', path: '/min_disk', value: -5 }]), 400, "Invalid value '-5' for parameter 'min_disk': Cannot be a negative value");
  expectError(await p([{ op: 'add', path: '/extra2', value: 1 }]), 400, /1 is not of type 'string'/);
  expectError(await p([{ op: 'add', path: '/__proto__', value: 'x' }]), 400, "Property name '__proto__' is not allowed.");
  expectError(await p([{ op: 'replace', path: '/min_ram', value: 2 ** 31 }]), 400, "'min_ram' value out of range, must not exceed 2147483647.");
  expectError(await p([{ op: 'add', path: '/visibility', value: 'everyone' }]), 400, /'everyone' is not one of/);
  expectError(
    await p([{ op: 'add', path: '/locations/-', value: { url: 'http://x', metadata: {} } }]),
    403,
    "It's not allowed to add locations if locations are invisible.",
  );
  // Glance checks for the empty list before it checks whether locations are visible.
  expectError(await p([{ op: 'replace', path: '/locations', value: [] }]), 403, 'Cannot set locations to empty list.');
  expectError(
    await p([
      { op: 'add', path: '/a', value: '1' },
      { op: 'add', path: '/b', value: '2' },
      { op: 'add', path: '/c', value: '3' },
    ]),
    413,
    'The limit has been exceeded on the number of allowed image properties. Attempted: 4, Maximum: 3',
  );
});

test('a PATCH whose later operation fails changes nothing', async () => {
  const img = await api.createImage({ name: 'keep', keep: 'me' });
  const r = await api.patch(
    `/v2/images/${img.id}`,
    [
      { op: 'replace', path: '/name', value: 'changed' },
      { op: 'remove', path: '/keep' },
      { op: 'replace', path: '/not-there', value: 'x' },
    ],
    { headers: JSON_ACCEPT },
  );
  assert.equal(r.status, 409);
  const after = (await api.get(`/v2/images/${img.id}`)).json;
  assert.equal(after.name, 'keep');
  assert.equal(after.keep, 'me');
  assert.equal(after.updated_at, img.updated_at);
});

test('PATCH policy: owner-only changes, admin-only owner, formats only while queued', async () => {
  const img = await api.createImage({ visibility: 'public' }, { project: 'admin', roles: 'admin,member,reader' });
  expectError(
    await api.patch(`/v2/images/${img.id}`, [{ op: 'replace', path: '/name', value: 'x' }], { as: bob, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete modify_image action.',
  );
  const bobs = await api.createImage({ visibility: 'private' }, bob);
  expectError(
    await api.patch(`/v2/images/${bobs.id}`, [{ op: 'replace', path: '/name', value: 'x' }], { as: alice, headers: JSON_ACCEPT }),
    404,
    `No image found with ID ${bobs.id}`,
  );
  expectError(
    await api.patch(`/v2/images/${bobs.id}`, [{ op: 'replace', path: '/owner', value: 'alice-project' }], { as: bob, headers: JSON_ACCEPT }),
    403,
    "Owner can't be updated by non admin.",
  );
  expectError(
    await api.patch(`/v2/images/${bobs.id}`, [{ op: 'replace', path: '/visibility', value: 'public' }], { as: bob, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete publicize_image action.',
  );
  const moved = await api.patch(`/v2/images/${bobs.id}`, [{ op: 'replace', path: '/owner', value: 'alice-project' }]);
  assert.equal(moved.json.owner, 'alice-project');

  // Glance's order for each change, checked against Glance 25 (new defaults and Zed's): the owner by a
  // non-admin, then the rule of the visibility asked for (even the one the image has), then
  // modify_image, then the property; for locations the policy before show_multiple_locations.
  const patchAs = async (who: typeof bob, id: string, ops: unknown[]) => api.patch(`/v2/images/${id}`, ops, { as: who, headers: JSON_ACCEPT });
  expectError(await patchAs(bob, img.id, [{ op: 'replace', path: '/owner', value: 'bob-project' }]), 403, "Owner can't be updated by non admin.");
  expectError(
    await patchAs(bob, img.id, [{ op: 'replace', path: '/visibility', value: 'public' }]),
    403,
    'You are not authorized to complete publicize_image action.',
  );
  expectError(
    await patchAs(bob, img.id, [{ op: 'replace', path: '/visibility', value: 'community' }]),
    403,
    'You are not authorized to complete communitize_image action.',
  );
  const bobsPublic = await api.createImage({ visibility: 'public', owner: 'bob-project' });
  expectError(
    await patchAs(bob, bobsPublic.id, [{ op: 'add', path: '/visibility', value: 'public' }]),
    403,
    'You are not authorized to complete publicize_image action.',
  );
  assert.equal((await patchAs(bob, bobsPublic.id, [{ op: 'replace', path: '/visibility', value: 'shared' }])).json.visibility, 'shared');
  const carols = await api.createImage({ visibility: 'private', owner: 'carol-project' });
  expectError(
    await patchAs(carol, carols.id, [{ op: 'replace', path: '/visibility', value: 'public' }]),
    403,
    'You are not authorized to complete publicize_image action.',
  );
  expectError(await patchAs(carol, carols.id, [{ op: 'remove', path: '/nothing' }]), 403, 'You are not authorized to complete modify_image action.');
  expectError(
    await patchAs(carol, carols.id, [{ op: 'add', path: '/locations/-', value: { url: 'http://127.0.0.1:9/x', metadata: {} } }]),
    403,
    'You are not authorized to complete set_image_location action.',
  );
  expectError(
    await patchAs(carol, carols.id, [{ op: 'remove', path: '/locations/0' }]),
    403,
    'You are not authorized to complete delete_image_location action.',
  );
  assert.equal((await patchAs(carol, carols.id, [])).status, 200);

  const active = await api.createImage();
  assert.equal((await api.upload(active.id, 'data')).status, 204);
  expectError(
    await api.patch(`/v2/images/${active.id}`, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }], { headers: JSON_ACCEPT }),
    403,
    'Attribute disk_format can be only replaced for a queued image.',
  );
  const queued = await api.createImage();
  assert.equal((await api.patch(`/v2/images/${queued.id}`, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }])).json.disk_format, 'qcow2');
});

test('an image over its property quota (lowered since) may still lose properties and change its name; adding one is 413', async () => {
  const img = await api.createImage({ name: 'over' }, alice);
  // Five properties where the quota is now 3, as after an operator lowered it.
  assert.equal(await gaze.app.deps.images.updateFields(img.id, 'queued', {}, { p1: '1', p2: '2', p3: '3', p4: '4', p5: '5' }), true);
  const patched = await api.patch(`/v2/images/${img.id}`, [{ op: 'remove', path: '/p1' }], { as: alice });
  assert.equal(patched.status, 200, patched.text);
  assert.equal((await api.patch(`/v2/images/${img.id}`, [{ op: 'replace', path: '/name', value: 'renamed' }], { as: alice })).status, 200);
  assert.equal((await api.patch(`/v2/images/${img.id}`, [{ op: 'replace', path: '/p2', value: 'two' }], { as: alice })).status, 200);
  expectError(
    await api.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/p6', value: '6' }], { as: alice, headers: JSON_ACCEPT }),
    413,
    'The limit has been exceeded on the number of allowed image properties. Attempted: 5, Maximum: 3',
  );
  const shown = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
  assert.deepEqual([shown.name, shown.p1, shown.p2, shown.p6], ['renamed', undefined, 'two', undefined]);
});

test('tags: add is idempotent, remove of an absent tag is 404, quota and length checked', async () => {
  const img = await api.createImage({}, alice);
  assert.equal((await api.put(`/v2/images/${img.id}/tags/one`, { as: alice })).status, 204);
  assert.equal((await api.put(`/v2/images/${img.id}/tags/one`, { as: alice })).status, 204);
  assert.deepEqual((await api.get(`/v2/images/${img.id}`, { as: alice })).json.tags, ['one']);
  // Glance saves the image all the same: its updated_at moves on.
  const before = (await api.get(`/v2/images/${img.id}`, { as: alice })).json.updated_at;
  setClockOffset(5_000);
  try {
    assert.equal((await api.put(`/v2/images/${img.id}/tags/one`, { as: alice })).status, 204);
    assert.notEqual((await api.get(`/v2/images/${img.id}`, { as: alice })).json.updated_at, before);
  } finally {
    setClockOffset(0);
  }
  assert.equal((await api.put(`/v2/images/${img.id}/tags/two`, { as: alice })).status, 204);
  expectError(
    await api.put(`/v2/images/${img.id}/tags/three`, { as: alice, headers: JSON_ACCEPT }),
    413,
    `Image tag limit exceeded for image ${img.id}: The limit has been exceeded on the number of allowed image tags. Attempted: 3, Maximum: 2:`,
  );
  expectError(await api.put(`/v2/images/${img.id}/tags/${'t'.repeat(256)}`, { as: alice, headers: JSON_ACCEPT }), 400, /is too long/);
  expectError(await api.put(`/v2/images/${img.id}/tags/x`, { as: bob, headers: JSON_ACCEPT }), 404, `Image ${img.id} not found.`);
  assert.equal((await api.del(`/v2/images/${img.id}/tags/one`, { as: alice })).status, 204);
  assert.equal((await api.del(`/v2/images/${img.id}/tags/one`, { as: alice })).status, 404);
  assert.deepEqual((await api.get(`/v2/images/${img.id}`, { as: alice })).json.tags, ['two']);
  const pub = await api.createImage({ visibility: 'public' });
  // The rule's own sentence, as Glance 25 under its new defaults (its "Not allowed to update tags" is
  // for the deprecated rules' owner check, test/http/legacy-policy.test.ts).
  expectError(
    await api.put(`/v2/images/${pub.id}/tags/x`, { as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete modify_image action.',
  );
  expectError(
    await api.del(`/v2/images/${pub.id}/tags/x`, { as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete modify_image action.',
  );
});

test('delete: protected images refuse, deleted images are gone, others may not delete', async () => {
  const img = await api.createImage({ protected: true }, alice);
  expectError(await api.del(`/v2/images/${img.id}`, { as: alice, headers: JSON_ACCEPT }), 403, `Image ${img.id} is protected and cannot be deleted.`);
  await api.patch(`/v2/images/${img.id}`, [{ op: 'replace', path: '/protected', value: false }], { as: alice });
  const pub = await api.createImage({ visibility: 'public' });
  expectError(await api.del(`/v2/images/${pub.id}`, { as: alice, headers: JSON_ACCEPT }), 403, 'You are not authorized to complete delete_image action.');
  assert.equal((await api.del(`/v2/images/${img.id}`, { as: alice })).status, 204);
  expectError(await api.del(`/v2/images/${img.id}`, { as: alice, headers: JSON_ACCEPT }), 404, `Failed to find image ${img.id} to delete`);
  expectError(await api.get(`/v2/images/${img.id}`, { as: alice, headers: JSON_ACCEPT }), 404, `No image found with ID ${img.id}`);
});

test('deactivate and reactivate follow the status rules', async () => {
  const img = await api.createImage({}, alice);
  expectError(
    await api.post(`/v2/images/${img.id}/actions/deactivate`, undefined, { as: alice, headers: JSON_ACCEPT }),
    403,
    "Not allowed to deactivate image in status 'queued'",
  );
  expectError(
    await api.post(`/v2/images/${img.id}/actions/reactivate`, undefined, { as: alice, headers: JSON_ACCEPT }),
    403,
    "Not allowed to reactivate image in status 'queued'",
  );
  await api.upload(img.id, 'bytes', alice);
  assert.equal((await api.post(`/v2/images/${img.id}/actions/reactivate`, undefined, { as: alice })).status, 204, 'active → reactivate is a no-op');
  assert.equal((await api.post(`/v2/images/${img.id}/actions/deactivate`, undefined, { as: alice })).status, 204);
  assert.equal((await api.post(`/v2/images/${img.id}/actions/deactivate`, undefined, { as: alice })).status, 204, 'idempotent');
  assert.equal((await api.get(`/v2/images/${img.id}`, { as: alice })).json.status, 'deactivated');
  expectError(
    await api.get(`/v2/images/${img.id}/file`, { as: alice, headers: JSON_ACCEPT }),
    403,
    'The requested image has been deactivated. Image data download is forbidden.',
  );
  assert.equal((await api.get(`/v2/images/${img.id}/file`)).status, 200, 'admins still download');
  expectError(await api.post(`/v2/images/${img.id}/actions/deactivate`, undefined, { as: bob, headers: JSON_ACCEPT }), 404, `No image found with ID ${img.id}`);
  assert.equal((await api.post(`/v2/images/${img.id}/actions/reactivate`, undefined, { as: alice })).status, 204);
  assert.equal((await api.get(`/v2/images/${img.id}`, { as: alice })).json.status, 'active');
});

test('PATCH removals of read-only and computed attributes answer as Glance (Horizon sends them when it cannot read the metadefs)', async () => {
  const img = await api.createImage({ name: 'ro' });
  const remove = (path: string, accept = 'application/json') => api.patch(`/v2/images/${img.id}`, [{ op: 'remove', path }], { headers: { accept } });
  // the exact bodies Glance 25 sends (WebOb's detail shape for these two)
  const stores = await remove('/stores');
  assert.equal(stores.status, 409);
  assert.equal(
    stores.text,
    '{"message": "There was a conflict when trying to complete your request.<br /><br />\\nProperty stores does not exist.\\n\\n", "code": "409 Conflict", "title": "Conflict"}',
  );
  const name = await remove('/name');
  assert.equal(name.status, 403);
  assert.equal(
    name.text,
    '{"message": "Access was denied to this resource.<br /><br />\\nProperty name may not be removed.\\n\\n", "code": "403 Forbidden", "title": "Forbidden"}',
  );
  assert.equal((await remove('/name', '')).text, '403 Forbidden\n\nAccess was denied to this resource.\n\n Property name may not be removed.  ');
  for (const attr of [
    'direct_url',
    'os_hash_value',
    'os_hash_algo',
    'checksum',
    'size',
    'virtual_size',
    'status',
    'id',
    'created_at',
    'updated_at',
    'self',
    'file',
    'schema',
  ]) {
    const r = await remove(`/${attr}`);
    assert.equal(r.status, 403, attr);
    assert.equal(r.text, `{"message": "Attribute '${attr}' is read-only.<br /><br />\\n\\n\\n", "code": "403 Forbidden", "title": "Forbidden"}`);
  }
  // Horizon's whole request: a removal of what it could not show, together with the edit
  const horizon = await api.patch(
    `/v2/images/${img.id}`,
    [
      { op: 'replace', path: '/name', value: 'edited' },
      { op: 'remove', path: '/os_hash_value' },
    ],
    { headers: { accept: 'application/json' } },
  );
  assert.equal(horizon.status, 403);
  assert.equal((await api.get(`/v2/images/${img.id}`)).json.name, 'ro', 'nothing of a refused PATCH is applied');
});
