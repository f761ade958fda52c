import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, alice, bob, carol, type Caller } from '../helpers/http.ts';

// The metadata definitions API against an in-process Gaze, with Glance 25's answers (compared against
// a real Glance with Keystone while it was built): namespaces, objects, properties, tags, resource
// types and their associations, the visibility and protection rules, and the policies.

let gaze: RunningGaze;
let api: ReturnType<typeof client>;
const NS = '/v2/metadefs/namespaces';
const ADMIN: Caller = { project: 'admin-project', roles: 'admin,member,reader' };
const json = { headers: JSON_ACCEPT };

before(async () => {
  gaze = await startGazeInProcess({});
  api = client(gaze.url);
});
after(() => gaze.stop());

const create = (body: Record<string, unknown>, as = ADMIN) => api.post(NS, body, { as, ...json });
const stripTimes = (x: unknown): unknown => {
  if (Array.isArray(x)) return x.map(stripTimes);
  if (x && typeof x === 'object')
    return Object.fromEntries(
      Object.entries(x)
        .filter(([k]) => k !== 'created_at' && k !== 'updated_at')
        .map(([k, v]) => [k, stripTimes(v)]),
    );
  return x;
};

test('create with contents: 201 with Location, the sections echoed as Glance normalises them, then shown with the resource type prefix', async () => {
  const body = {
    namespace: 'Test::CPU',
    display_name: 'CPU',
    description: 'cpu things',
    visibility: 'public',
    protected: true,
    resource_type_associations: [
      { name: 'OS::Glance::Image', prefix: 'hw_', properties_target: 'image' },
      { name: 'OS::Nova::Flavor', prefix: 'hw:' },
    ],
    properties: { cpu_policy: { type: 'string', title: 'CPU policy', default: true, enum: ['shared', 'dedicated'], operators: ['<or>'] } },
    objects: [
      { name: 'Topology', required: ['sockets'], description: 'topology', properties: { sockets: { type: 'integer', title: 'Sockets', minimum: 1.9 } } },
    ],
    tags: [{ name: 'cpu' }, { name: 'perf' }],
  };
  const created = await create(body);
  assert.equal(created.status, 201, created.text);
  assert.equal(created.headers.get('location'), `${gaze.url}${NS}/Test::CPU`);
  assert.deepEqual(stripTimes(created.json), {
    namespace: 'Test::CPU',
    display_name: 'CPU',
    description: 'cpu things',
    visibility: 'public',
    protected: true,
    owner: 'admin-project',
    resource_type_associations: [
      { name: 'OS::Glance::Image', prefix: 'hw_', properties_target: 'image' },
      { name: 'OS::Nova::Flavor', prefix: 'hw:' },
    ],
    properties: { cpu_policy: { type: 'string', title: 'CPU policy', operators: ['<or>'], default: 'True', enum: ['shared', 'dedicated'] } },
    objects: [{ name: 'Topology', required: ['sockets'], description: 'topology', properties: { sockets: { type: 'integer', title: 'Sockets', minimum: 1 } } }],
    tags: [{ name: 'cpu' }, { name: 'perf' }],
    self: `${NS}/Test::CPU`,
    schema: '/v2/schemas/metadefs/namespace',
  });
  assert.match(created.json.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(created.json.created_at, created.json.updated_at);

  // What Horizon asks for: the namespaces of images, then each as images see it (prefixed)
  const listed = await api.get(`${NS}?resource_types=OS%3A%3AGlance%3A%3AImage&limit=1000&sort_key=namespace&sort_dir=asc`, { as: alice });
  assert.equal(listed.status, 200);
  assert.deepEqual(
    listed.json.namespaces.map((n: any) => n.namespace),
    ['Test::CPU'],
  );
  assert.equal(listed.json.first, `${NS}?resource_types=OS%3A%3AGlance%3A%3AImage&limit=1000&sort_key=namespace&sort_dir=asc`);
  assert.equal(listed.json.schema, '/v2/schemas/metadefs/namespaces');
  // An empty name is a resource type no namespace has, as in Glance (not "no filter").
  assert.deepEqual((await api.get(`${NS}?resource_types=`, { as: alice })).json.namespaces, []);
  assert.ok((await api.get(NS, { as: alice })).json.namespaces.some((n: any) => n.namespace === 'Test::CPU'));
  assert.ok(!('properties' in listed.json.namespaces[0]), 'a list shows associations only');
  const shown = (await api.get(`${NS}/Test::CPU?resource_type=OS::Glance::Image`, { as: alice })).json;
  assert.deepEqual(Object.keys(shown.properties), ['hw_cpu_policy']);
  assert.deepEqual(shown.objects[0].required, ['hw_sockets']);
  assert.deepEqual(Object.keys(shown.objects[0].properties), ['hw_sockets']);
  assert.deepEqual(shown.tags.map((t: any) => t.name).sort(), ['cpu', 'perf']);
  assert.equal(shown.objects[0].self, `${NS}/Test::CPU/objects/Topology`);
  const flavor = (await api.get(`${NS}/Test::CPU?resource_type=OS::Nova::Flavor`, { as: alice })).json;
  assert.deepEqual(Object.keys(flavor.properties), ['hw:cpu_policy']);
  // and a property by its prefixed name
  const prop = await api.get(`${NS}/Test::CPU/properties/hw_cpu_policy?resource_type=OS::Glance::Image`, { as: alice });
  assert.equal(prop.status, 200);
  assert.equal(prop.json.name, 'cpu_policy');
  expectError(
    await api.get(`${NS}/Test::CPU/properties/cpu_policy?resource_type=OS::Glance::Image`, json),
    404,
    "Property cpu_policy does not start with the expected resource type association prefix of 'hw_'.",
  );
  expectError(
    await api.get(`${NS}/Test::CPU/properties/x?resource_type=OS::Nope`, json),
    404,
    'The metadata definition resource-type with name=OS::Nope, was not found.',
  );
  // auto-created resource types
  const types = (await api.get('/v2/metadefs/resource_types')).json.resource_types.map((t: any) => t.name);
  assert.ok(types.includes('OS::Glance::Image') && types.includes('OS::Nova::Flavor'));
});

test("a namespace's properties and objects are listed by name, as Glance's (unique name) index gives them; the create echoes the body's order", async () => {
  const created = await create({
    namespace: 'Test::Order',
    properties: { zz: { type: 'string', title: 'z' }, aa: { type: 'string', title: 'a' }, mm: { type: 'string', title: 'm' } },
    objects: [{ name: 'zo', properties: { z2: { type: 'string', title: 'z2' }, a2: { type: 'string', title: 'a2' } } }, { name: 'ao' }],
  });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(Object.keys(created.json.properties), ['zz', 'aa', 'mm']);
  assert.equal((await api.post(`${NS}/Test::Order/properties`, { name: 'bb', type: 'string', title: 'b' })).status, 201);
  const shown = (await api.get(`${NS}/Test::Order`)).json;
  assert.deepEqual(Object.keys(shown.properties), ['aa', 'bb', 'mm', 'zz']);
  assert.deepEqual(
    shown.objects.map((o: any) => [o.name, Object.keys(o.properties ?? {})]),
    [
      ['ao', []],
      ['zo', ['z2', 'a2']],
    ],
    "an object's own properties keep its order",
  );
  assert.deepEqual(Object.keys((await api.get(`${NS}/Test::Order/properties`)).json.properties), ['aa', 'bb', 'mm', 'zz']);
  assert.deepEqual(
    (await api.get(`${NS}/Test::Order/objects`)).json.objects.map((o: any) => o.name),
    ['ao', 'zo'],
  );
});

test("create is all or nothing; duplicates, read-only keys, schema and 4-byte refusals use Glance's words", async () => {
  expectError(
    await create({ namespace: 'Dup', tags: [{ name: 'a' }, { name: 'A' }] }),
    409,
    'A metadata tag with name=a already exists in namespace=Dup. (Please note that metadata tag names are case insensitive).',
  );
  expectError(
    await create({ namespace: 'Dup', objects: [{ name: 'o' }, { name: 'o' }] }),
    409,
    'A metadata definition object with name=o already exists in namespace=Dup.',
  );
  assert.equal((await api.get(`${NS}/Dup`, json)).status, 404, 'nothing of a refused create remains');
  assert.equal((await create({ namespace: 'Dup' })).status, 201);
  expectError(await create({ namespace: 'Dup' }), 409, 'The metadata definition namespace=Dup already exists.');
  expectError(await create({ namespace: 'X', created_at: 'now' }), 403, "Attribute 'created_at' is read-only.");
  expectError(
    await create({ namespace: 'X', visibility: 'shared' }),
    400,
    /^Provided object does not match schema 'namespace': 'shared' is not one of \['public', 'private'\]/,
  );
  expectError(await create({ namespace: 'X'.repeat(81) }), 400, /is too long/);
  expectError(await create({ namespace: 'X', properties: { p: { type: 'string' } } }), 400, /'title' is a required property/);
  expectError(await create({ namespace: 'X', nope: 1 }), 400, /Additional properties are not allowed \('nope' was unexpected\)/);
  // The violation named is the one Glance's jsonschema names (its best match): one nearer the top of the
  // body first, unexpected properties (all of them, sorted) before missing ones. Checked against Glance 25.
  expectError(
    await create({ os_glance_import_task: 'x', validation_data: null, os_hash_algo: false, hw_disk_bus: 'y' }),
    400,
    /^Provided object does not match schema 'namespace': Additional properties are not allowed \('hw_disk_bus', 'os_glance_import_task', 'os_hash_algo', 'validation_data' were unexpected\)\n/,
  );
  expectError(
    await api.post(`${NS}/Dup/properties`, { type: 'integer', title: 'p', minimum: 'private', maximum: 9 }, { headers: JSON_ACCEPT }),
    400,
    /^Provided object does not match schema 'property': 'name' is a required property\n/,
  );
  // A $ref is followed and not named in the path, as jsonschema does (captured from Glance 25).
  const refd = await api.post(`${NS}/Dup/objects`, { name: 'o', required: 'x' }, { headers: JSON_ACCEPT });
  assert.equal(
    refd.json.message,
    "Provided object does not match schema 'object': 'x' is not of type 'array'\n\nFailed validating 'type' in schema['properties']['required']:\n    {'items': {'type': 'string'}, 'type': 'array', 'uniqueItems': True}\n\nOn instance['required']:\n    'x'<br /><br />\n\n\n",
  );
  expectError(
    await api.post(`${NS}/Dup/objects`, { required: ['p'], glance_service_interface: 'x' }, { headers: JSON_ACCEPT }),
    400,
    /^Provided object does not match schema 'object': Additional properties are not allowed \('glance_service_interface' was unexpected\)\n/,
  );
  expectError(await create({ namespace: 'X\u{1F600}' }), 400, "Couldn't create metadata namespace: Namespace can't contain 4 byte unicode characters.");
  expectError(await create({ namespace: 'X', objects: [{ description: 'no name' }] }), 400, /'name' is a required property/);
  expectError(
    await api.call('POST', NS, { body: '[1]', as: ADMIN, headers: { 'content-type': 'application/json', ...JSON_ACCEPT } }),
    400,
    /is not of type 'object'/,
  );
});

test("properties, objects and tags: create, show, rename, replace, delete, with Glance's conflicts", async () => {
  assert.equal((await create({ namespace: 'Edit', visibility: 'public' })).status, 201);
  const P = `${NS}/Edit`;
  const post = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
    api.call('POST', `${P}${path}`, { json: body, as: ADMIN, headers: { ...JSON_ACCEPT, ...headers } });
  const put = (path: string, body: unknown) => api.call('PUT', `${P}${path}`, { json: body, as: ADMIN, headers: JSON_ACCEPT });
  const del = (path: string) => api.call('DELETE', `${P}${path}`, { as: ADMIN, headers: JSON_ACCEPT });

  // properties
  assert.deepEqual((await post('/properties', { name: 'p1', type: 'boolean', title: 'P1', default: false })).json, {
    name: 'p1',
    type: 'boolean',
    title: 'P1',
    default: 'False',
  });
  expectError(
    await post('/properties', { name: 'p1', type: 'boolean', title: 'P1' }),
    409,
    'A metadata definition property with name=p1 already exists in namespace=Edit.',
  );
  assert.equal((await post('/properties', { name: 'p2', type: 'string', title: 'P2', confidential: true })).status, 400, 'confidential is not in the schema');
  assert.equal((await post('/properties', { name: 'p2', type: 'string', title: 'P2' })).status, 201);
  expectError(
    await put('/properties/p2', { name: 'p1', type: 'string', title: 'X' }),
    409,
    'Invalid update. It would result in a duplicate metadata definition property with the same name=p2 in namespace=Edit.',
  );
  assert.deepEqual((await put('/properties/p2', { name: 'p3', type: 'string', title: 'X' })).json, { name: 'p3', type: 'string', title: 'X' });
  expectError(await api.get(`${P}/properties/p2`, json), 404, 'Could not find property p2');
  assert.deepEqual(Object.keys((await api.get(`${P}/properties`)).json.properties).sort(), ['p1', 'p3']);
  assert.equal((await del('/properties/p3')).status, 204);

  // objects: created answers show what was sent; PUT replaces the whole object
  const o = await post('/objects', { name: 'O2' });
  assert.equal(o.status, 201);
  assert.deepEqual(stripTimes(o.json), { name: 'O2', self: `${P}/objects/O2`, schema: '/v2/schemas/metadefs/object' });
  expectError(await post('/objects', { name: 'O2' }), 409, 'A metadata definition object with name=O2 already exists in namespace=Edit.');
  assert.equal((await post('/objects', { name: 'O1', description: 'd', required: ['x'] })).status, 201);
  expectError(
    await put('/objects/O2', { name: 'O1' }),
    409,
    'Invalid update. It would result in a duplicate metadata definition object with the same name=O2 in namespace=Edit.',
  );
  assert.equal((await put('/objects/O1', { name: 'O1b' })).status, 200);
  const replaced = (await api.get(`${P}/objects/O1b`)).json;
  assert.deepEqual([replaced.required, replaced.properties, replaced.description], [[], {}, undefined], 'what PUT left out is gone');
  const objects = await api.get(`${P}/objects?limit=1&sort_dir=asc&sort_key=nonsense`);
  assert.equal(objects.json.schema, 'v2/schemas/metadefs/objects', 'Glance names it without the leading slash');
  assert.deepEqual(
    objects.json.objects.map((x: any) => x.name),
    ['O1b', 'O2'],
    'objects ignore paging and come by name (Glance 25 answers this so)',
  );
  expectError(await api.get(`${P}/objects?limit=0`, json), 400, 'limit param must be positive');
  expectError(await api.get(`${P}/objects?visibility=x`, json), 400, 'Invalid visibility value: x');
  assert.equal((await del('/objects/O2')).status, 204);
  expectError(await del('/objects/O2'), 404, 'Could not find metadata object O2');

  // tags: single (no body), batch replace, append, empty list, paging, case-insensitive names
  assert.deepEqual(stripTimes((await post('/tags/t1')).json), { name: 't1' });
  expectError(
    await post('/tags/T1'),
    409,
    'A metadata tag with name=T1 already exists in namespace=Edit. (Please note that metadata tag names are case insensitive).',
  );
  expectError(
    await api.call('POST', `${P}/tags/t9`, { body: 'x', as: ADMIN, headers: { 'content-type': 'text/plain', ...JSON_ACCEPT } }),
    400,
    'A body is not expected with this request.',
  );
  assert.deepEqual((await post('/tags', { tags: [{ name: 'x1' }, { name: 'x2' }] })).json, { tags: [{ name: 'x1' }, { name: 'x2' }] });
  assert.deepEqual((await api.get(`${P}/tags?sort_key=name&sort_dir=asc`)).json.tags, [{ name: 'x1' }, { name: 'x2' }], 'a batch without append replaced t1');
  assert.equal((await post('/tags', { tags: [{ name: 'x3' }] }, { 'X-Openstack-Append': 'yes' })).status, 201);
  expectError(await post('/tags', { tags: [{ name: 'X3' }, { name: 'x4' }] }, { 'X-Openstack-Append': 'true' }), 409, /name=X3 already exists/);
  assert.deepEqual((await post('/tags', { tags: [] })).json, { tags: [] });
  assert.deepEqual(
    (await api.get(`${P}/tags?sort_key=name&sort_dir=asc`)).json.tags.map((t: any) => t.name),
    ['x1', 'x2', 'x3'],
    'the refused batch and the empty one changed nothing',
  );
  assert.deepEqual((await api.get(`${P}/tags?limit=1&sort_key=name&sort_dir=asc&marker=x1`)).json.tags, [{ name: 'x2' }]);
  expectError(await api.get(`${P}/tags?marker=nope`, json), 404, 'Could not find metadata tag nope');
  // As Glance's deserializer pops them: the first limit, marker, direction and key count; an empty marker is none.
  const tagNames = async (query: string) => (await api.get(`${P}/tags?${query}`)).json.tags.map((t: any) => t.name);
  assert.deepEqual(await tagNames('sort_key=name&sort_key=created_at&sort_dir=asc&sort_dir=desc&limit=2&limit=3'), ['x1', 'x2']);
  assert.deepEqual(await tagNames('sort_key=name&sort_dir=asc&marker=x1&marker=x2'), ['x2', 'x3']);
  assert.deepEqual(await tagNames('sort_key=name&sort_dir=asc&marker='), ['x1', 'x2', 'x3']);
  for (const kind of ['tags', 'objects']) expectError(await api.get(`${P}/${kind}?sort_dir=x&sort_dir=asc`, json), 400, 'Invalid sort direction: x');
  expectError(await api.get(`${P}/objects?limit=`, json), 400, 'limit param must be an integer');
  expectError(await api.get(`${P}/tags?limit=x`, json), 400, 'limit param must be an integer');
  assert.deepEqual((await api.get(`${P}/tags?limit=%EF%BC%91&sort_key=name&sort_dir=asc`)).json.tags, [{ name: 'x1' }], 'a fullwidth 1, as int() reads it');
  expectError(await api.get(`${NS}/Nowhere/tags?sort_key=colour`, json), 404, 'Namespace Nowhere not found');
  expectError(await api.get(`${NS}?sort_key=colour&visibility=shared`, json), 400, 'Invalid visibility value: shared');
  expectError(await put('/tags/x1', { name: 'X2' }), 409, /name=X2 already exists/);
  assert.deepEqual(stripTimes((await put('/tags/x1', { name: 'y1' })).json), { name: 'y1' });
  assert.equal((await del('/tags/y1')).status, 204);
  assert.equal((await del('/tags')).status, 204);
  assert.deepEqual((await api.get(`${P}/tags`)).json.tags, []);
  // A body without the list: the namespace is looked for first, as Glance's controller does.
  expectError(await api.post(`${NS}/Nowhere/tags`, {}, json), 404, 'Namespace Nowhere not found');
  // One property's deletion too (Glance's properties deserializer has no method for it).
  for (const contents of ['objects', 'properties', 'tags', 'properties/p']) {
    const scalar = await api.call('DELETE', `${NS}/Nowhere/${contents}`, { body: '"x"', headers: { 'content-type': 'application/json', ...JSON_ACCEPT } });
    expectError(scalar, 400, 'Unexpected body type. Expected list/dict.');
  }
  expectError(await api.post(`${P}/tags`, {}, json), 400, /'tags' is a required property/);

  // namespace PUT resets what it leaves out; renames; a rename onto another namespace is refused
  const updated = await api.call('PUT', P, { json: { namespace: 'Edit2', description: 'changed' }, as: ADMIN, headers: JSON_ACCEPT });
  assert.equal(updated.status, 200);
  assert.deepEqual(stripTimes(updated.json), {
    namespace: 'Edit2',
    description: 'changed',
    visibility: 'private',
    protected: false,
    owner: 'admin-project',
    self: `${NS}/Edit2`,
    schema: '/v2/schemas/metadefs/namespace',
  });
  expectError(
    await api.call('PUT', `${NS}/Edit2`, { json: { namespace: 'Dup' }, as: ADMIN, headers: JSON_ACCEPT }),
    409,
    'Invalid update. It would result in a duplicate metadata definition namespace with the same name of Dup',
  );
  assert.equal((await api.call('DELETE', `${NS}/Edit2`, { as: ADMIN })).status, 204);
});

test("protected namespaces: contents may be added, nothing deleted, with Glance's messages", async () => {
  assert.equal(
    (
      await create({
        namespace: 'Locked',
        protected: true,
        objects: [{ name: 'o' }],
        tags: [{ name: 't' }],
        properties: { p: { type: 'string', title: 'P' } },
        resource_type_associations: [{ name: 'OS::Glance::Image' }],
      })
    ).status,
    201,
  );
  const L = `${NS}/Locked`;
  const del = (path: string) => api.call('DELETE', `${L}${path}`, { as: ADMIN, headers: JSON_ACCEPT });
  expectError(await del(''), 403, 'Metadata definition namespace Locked is protected and cannot be deleted.');
  for (const kind of ['/objects', '/properties', '/tags'])
    expectError(await del(kind), 403, 'Metadata definition namespace Locked is protected and cannot be deleted.');
  expectError(await del('/objects/o'), 403, 'Metadata definition object o is protected and cannot be deleted.');
  expectError(await del('/properties/p'), 403, 'Metadata definition property p is protected and cannot be deleted.');
  expectError(await del('/tags/t'), 403, 'Metadata definition tag t is protected and cannot be deleted.');
  expectError(
    await del('/resource_types/OS::Glance::Image'),
    403,
    'Metadata definition resource-type-association OS::Glance::Image is protected and cannot be deleted.',
  );
  assert.equal((await api.call('POST', `${L}/tags/t2`, { as: ADMIN })).status, 201, 'adding is allowed');
  // unprotect, then it all goes
  assert.equal((await api.call('PUT', L, { json: { namespace: 'Locked', protected: false }, as: ADMIN })).status, 200);
  assert.equal((await del('/resource_types/OS::Glance::Image')).status, 204);
  expectError(await del('/resource_types/OS::Glance::Image'), 404, 'Failed to find resource type OS::Glance::Image to delete');
  assert.equal((await del('')).status, 204);
  assert.ok(
    (await api.get('/v2/metadefs/resource_types')).json.resource_types.some((t: any) => t.name === 'OS::Glance::Image'),
    'resource types stay',
  );
});

test('visibility and policy: readers see public and own namespaces, only admins write; hidden is 404', async () => {
  assert.equal((await create({ namespace: 'Alice::Private', owner: 'alice-project', visibility: 'private' })).status, 201);
  assert.equal((await create({ namespace: 'Everyone', visibility: 'public' })).status, 201);
  const names = async (as: typeof alice) => ((await api.get(`${NS}?limit=1000`, { as })).json.namespaces as any[]).map((n) => n.namespace);
  assert.ok((await names(alice)).includes('Alice::Private'));
  assert.ok(!(await names(bob)).includes('Alice::Private'));
  assert.ok((await names(bob)).includes('Everyone'));
  expectError(await api.get(`${NS}/Alice::Private`, { as: bob, ...json }), 404, 'The resource could not be found.');
  expectError(await api.get(`${NS}/Alice::Private/properties`, { as: bob, ...json }), 404, 'Namespace Alice::Private not found');
  expectError(await api.get(`${NS}/Alice::Private/objects`, { as: bob, ...json }), 404, 'Namespace Alice::Private not found');
  expectError(await api.get(`${NS}/Nope::At::All/objects`, { as: bob, ...json }), 404, 'Metadata definition namespace=Nope::At::All was not found.');
  expectError(
    await api.get(`${NS}?marker=Alice::Private`, { as: bob, ...json }),
    403,
    'Forbidding request, metadata definition namespace=Alice::Private is not visible.',
  );
  // writes need admin: 403 on what the caller sees, 404 on what it does not
  expectError(await create({ namespace: 'Mine' }, alice), 403, 'You are not authorized to complete add_metadef_namespace action.');
  expectError(
    await api.call('POST', `${NS}/Everyone/tags/t`, { as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete add_metadef_tag action.',
  );
  expectError(await api.call('DELETE', `${NS}/Alice::Private`, { as: bob, headers: JSON_ACCEPT }), 404, 'Namespace Alice::Private not found');
  // a project reader without roles beyond reader still reads
  assert.equal((await api.get(`${NS}/Everyone`, { as: carol })).status, 200);
  // paging: limit, marker, next, first
  const page = await api.get(`${NS}?limit=1&sort_key=namespace&sort_dir=asc`, { as: ADMIN });
  assert.equal(page.json.namespaces.length, 1);
  assert.equal(page.json.next, `${NS}?limit=1&sort_key=namespace&sort_dir=asc&marker=${encodeURIComponent(page.json.namespaces[0].namespace)}`);
  const second = await api.get(page.json.next, { as: ADMIN });
  assert.ok(second.json.namespaces[0].namespace > page.json.namespaces[0].namespace);
  expectError(await api.get(`${NS}?sort_dir=up`, json), 400, 'Invalid sort direction: up');
  expectError(await api.get(`${NS}?visibility=shared`, json), 400, 'Invalid visibility value: shared');
  expectError(await api.get(`${NS}?limit=-1`, json), 400, 'limit param must be positive');
  expectError(await api.get(`${NS}?marker=nobody`, json), 404, 'Metadata definition namespace=nobody was not found.');
  assert.deepEqual((await api.get(`${NS}?visibility=private&limit=1000`, { as: bob })).json.namespaces, []);
  // As Glance hands its query on: the first limit, marker, direction and sort key count; the visibility
  // is checked by its last value and applied by its first; an empty one passes the check, matches nothing.
  const listed = async (query: string) => {
    const r = await api.get(`${NS}?${query}`, { as: ADMIN });
    assert.equal(r.status, 200, r.text);
    return r.json.namespaces.map((n: any) => [n.namespace, n.visibility]);
  };
  assert.deepEqual(await listed('visibility=&limit=1000'), []);
  const privateFirst = await listed('visibility=private&visibility=public&limit=1000');
  assert.ok(privateFirst.some(([name]: string[]) => name === 'Alice::Private'));
  assert.deepEqual(new Set(privateFirst.map(([, visibility]: string[]) => visibility)), new Set(['private']));
  expectError(await api.get(`${NS}?visibility=private&visibility=shared`, json), 400, 'Invalid visibility value: shared');
  const firstTwo = await listed('sort_key=namespace&sort_dir=asc&limit=2');
  assert.equal(firstTwo.length, 2);
  assert.deepEqual(await listed('sort_key=namespace&sort_key=created_at&sort_dir=asc&sort_dir=desc&limit=2&limit=5'), firstTwo);
  expectError(await api.get(`${NS}?marker=&limit=2`, json), 404, 'Metadata definition namespace not found for id=');
  // The other lists check an empty visibility as Glance does: not at all.
  assert.equal((await api.get(`${NS}/Everyone/tags?visibility=`, json)).status, 200);
});

test("a new object's properties meet the property schema, as in Glance; a namespace PUT with an empty owner gives it to the caller's project", async () => {
  assert.equal((await create({ namespace: 'Strict', owner: 'admin-project' })).status, 201);
  const objects = `${NS}/Strict/objects`;
  const extra = await api.call('POST', objects, {
    json: { name: 'c2', properties: { x: { type: 'string', title: 'X', confidential: false } } },
    as: ADMIN,
    headers: JSON_ACCEPT,
  });
  expectError(extra, 400, /Additional properties are not allowed \('confidential' was unexpected\)/);
  const untitled = await api.call('POST', objects, { json: { name: 'c3', properties: { x: { type: 'string' } } }, as: ADMIN, headers: JSON_ACCEPT });
  expectError(untitled, 400, /'title' is a required property/);
  const fine = await api.call('POST', objects, { json: { name: 'c4', properties: { x: { type: 'string', title: 'X' } } }, as: ADMIN, headers: JSON_ACCEPT });
  assert.equal(fine.status, 201, fine.text);
  assert.deepEqual(
    (await api.get(objects, { as: ADMIN })).json.objects.map((o: { name: string }) => o.name),
    ['c4'],
    'the refused ones were not made',
  );

  // 4-byte characters, where Glance's database layer looks for them: an object's text and its
  // properties' text fields, not its properties' names; never a resource type association.
  const smile = '\u{1F600}';
  const post = (path: string, body: unknown) => api.call('POST', `${NS}/Strict${path}`, { json: body, as: ADMIN, headers: JSON_ACCEPT });
  expectError(
    await post('/objects', { name: 'e1', properties: { x: { type: 'string', title: smile } } }),
    400,
    /Title can't contain 4 byte unicode characters\.$/,
  );
  expectError(await post('/objects', { name: 'e2', required: [smile] }), 400, /Required can't contain 4 byte unicode characters\.$/);
  expectError(await post('/properties', { name: 'e3', type: 'string', title: 'T', pattern: smile }), 400, /Pattern can't contain 4 byte unicode characters\.$/);
  assert.equal((await post('/objects', { name: 'e4', properties: { [smile]: { type: 'string', title: 'T' } } })).status, 201);
  assert.equal((await post('/resource_types', { name: `OS::Smile${smile}`, prefix: `p${smile}_` })).status, 201);
  // jsonschema's words for bounds and uniqueness, as Glance shows them.
  expectError(await post('/properties', { name: 'b1', type: 'string', title: 'B', minLength: -1 }), 400, /: -1 is less than the minimum of 0\n/);
  expectError(await post('/objects', { name: 'b2', required: ['a', 'a'] }), 400, /: \['a', 'a'\] has non-unique elements\n/);
  // An enum may hold JSON's null beside strings (Glance keeps it); an items enum holds strings too.
  const nullable = await post('/properties', { name: 'n1', type: 'string', title: 'N', enum: ['a', null] });
  assert.equal(nullable.status, 201, nullable.text);
  assert.deepEqual(nullable.json.enum, ['a', null]);
  expectError(
    await post('/properties', { name: 'n2', type: 'array', title: 'N', items: { type: 'string', enum: [1] } }),
    400,
    /items enum values must be strings/,
  );

  const renamed = await api.call('PUT', `${NS}/Strict`, { json: { namespace: 'Strict', owner: '' }, as: ADMIN, headers: JSON_ACCEPT });
  assert.equal(renamed.status, 200, renamed.text);
  assert.equal(renamed.json.owner, 'admin-project');
  assert.equal((await api.get(`${NS}/Strict`, { as: ADMIN })).json.owner, 'admin-project');
  // On create Glance takes the caller's project only when no owner is given: an empty one is kept.
  const unowned = await create({ namespace: 'Unowned', owner: '' });
  assert.equal(unowned.status, 201, unowned.text);
  assert.equal(unowned.json.owner, '');
});

test('resource type associations: list, associate (types made on the way), duplicates; every metadefs schema is served', async () => {
  assert.equal((await create({ namespace: 'Assoc', visibility: 'public' })).status, 201);
  const A = `${NS}/Assoc/resource_types`;
  const made = await api.call('POST', A, { json: { name: 'OS::Brand::New', prefix: 'x_' }, as: ADMIN });
  assert.equal(made.status, 201);
  assert.deepEqual(stripTimes(made.json), { name: 'OS::Brand::New', prefix: 'x_' });
  expectError(
    await api.call('POST', A, { json: { name: 'OS::Brand::New' }, as: ADMIN, headers: JSON_ACCEPT }),
    409,
    'The metadata definition resource-type association of resource-type=OS::Brand::New to namespace=Assoc already exists.',
  );
  expectError(
    await api.call('POST', A, { json: { name: 'x', created_at: 'y' }, as: ADMIN, headers: JSON_ACCEPT }),
    403,
    "Attribute 'created_at' is read-only.",
  );
  assert.deepEqual(stripTimes((await api.get(A, { as: bob })).json), { resource_type_associations: [{ name: 'OS::Brand::New', prefix: 'x_' }] });
  for (const name of ['namespace', 'namespaces', 'object', 'objects', 'property', 'properties', 'tag', 'tags', 'resource_type', 'resource_types']) {
    const schema = await api.get(`/v2/schemas/metadefs/${name}`);
    assert.equal(schema.status, 200, name);
  }
  assert.deepEqual((await api.get('/v2/schemas/metadefs/property')).json.required, ['type', 'title', 'name']);
  assert.equal((await api.get('/v2/schemas/metadefs/resource_types')).json.name, 'resource_type_associations');
  const wrong = await api.call('PATCH', `${NS}/Assoc`, { as: ADMIN, headers: JSON_ACCEPT });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'GET, PUT, DELETE');
});

// Last in this file: a namespace named "" cannot be addressed to delete it, and admins list it.
test('a namespace named "": a page ending with it has an empty `next`, and an empty marker is no lookup of it; an empty ?resource_type= is no filter', async () => {
  assert.equal((await create({ namespace: '', owner: 'empty-name-project' })).status, 201);
  const page = await api.get(`${NS}?sort_key=namespace&sort_dir=asc&limit=1`, { as: ADMIN });
  assert.deepEqual(
    page.json.namespaces.map((n: any) => n.namespace),
    [''],
  );
  assert.equal(page.json.next, '');
  expectError(await api.get(`${NS}?marker=&limit=2`, { as: ADMIN, ...json }), 404, 'Metadata definition namespace not found for id=');

  assert.equal(
    (
      await create({
        namespace: 'Prefixed',
        resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'p_' }],
        properties: { speed: { title: 'Speed', type: 'string' } },
      })
    ).status,
    201,
  );
  const plain = await api.get(`${NS}/Prefixed/properties/speed?resource_type=`, { as: ADMIN });
  assert.equal(plain.status, 200, plain.text);
  assert.equal(plain.json.name, 'speed');
});
