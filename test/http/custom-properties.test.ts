// schema-image.json beside the configuration files: Glance merges its properties into the image
// schema (marked is_base: false) and validates images against them. Without one, the set Debian ships.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT } from '../helpers/http.ts';

const CUSTOM = JSON.stringify({
  hw_disk_bus: { type: 'string', enum: ['virtio', 'scsi'], description: 'The bus to attach disks with.' },
  os_type: { type: 'string', enum: ['linux', 'windows'] },
});

test("an operator's schema-image.json: its properties are served and enforced, and the shipped ones are gone", async () => {
  const gaze = await startGazeInProcess({}, { besideConfig: { 'schema-image.json': CUSTOM } });
  try {
    const api = client(gaze.url);
    const schema = (await api.get('/v2/schemas/image')).json as { properties: Record<string, Record<string, unknown>> };
    assert.deepEqual(schema.properties.hw_disk_bus, { type: 'string', enum: ['virtio', 'scsi'], description: 'The bus to attach disks with.', is_base: false });
    assert.deepEqual(Object.keys(schema.properties).slice(-2), ['hw_disk_bus', 'os_type'], 'after the base properties, in the file order');
    assert.equal(schema.properties.os_distro, undefined);
    assert.equal(schema.properties.kernel_id, undefined);
    const images = (await api.get('/v2/schemas/images')).json as { properties: { images: { items: { properties: Record<string, unknown> } } } };
    assert.ok(images.properties.images.items.properties.os_type);

    const refused = await api.call('POST', '/v2/images', { json: { name: 'x', hw_disk_bus: 'ide' }, headers: JSON_ACCEPT });
    assert.equal(refused.status, 400);
    // Glance 25's body for the same file and request, byte for byte.
    assert.equal(
      refused.text,
      `{"message": "Provided object does not match schema 'image': 'ide' is not one of ['virtio', 'scsi']\\n\\nFailed validating 'enum' in schema['properties']['hw_disk_bus']:\\n    {'description': 'The bus to attach disks with.',\\n     'enum': ['virtio', 'scsi'],\\n     'is_base': False,\\n     'type': 'string'}\\n\\nOn instance['hw_disk_bus']:\\n    'ide'<br /><br />\\n\\n\\n", "code": "400 Bad Request", "title": "Bad Request"}`,
    );
    const created = await api.createImage({ name: 'ok', hw_disk_bus: 'virtio', kernel_id: 'not-a-uuid' });
    assert.equal(created.hw_disk_bus, 'virtio');
    assert.equal(created.kernel_id, 'not-a-uuid', 'no longer a declared property: any string');
    expectError(
      await api.patch(`/v2/images/${created.id}`, [{ op: 'replace', path: '/os_type', value: 'plan9' }], { headers: JSON_ACCEPT }),
      400,
      /'plan9' is not one of \['linux', 'windows'\]/,
    );
  } finally {
    await gaze.stop();
  }
});

test('typed custom properties (integer, boolean) are stored as text, as Glance stores them on PostgreSQL', async () => {
  const typed = JSON.stringify({ cores: { type: 'integer' }, fast: { type: 'boolean' } });
  const gaze = await startGazeInProcess({}, { besideConfig: { 'schema-image.json': typed } });
  try {
    const api = client(gaze.url);
    // Glance 25 answers the create with the values as given, and shows them as the column's text after.
    const created = await api.createImage({ name: 'typed', cores: 4, fast: true });
    assert.equal(created.cores, 4);
    assert.equal(created.fast, true);
    const shown = (await api.get(`/v2/images/${created.id}`)).json as Record<string, unknown>;
    assert.equal(shown.cores, '4');
    assert.equal(shown.fast, 'true');
    const patched = await api.patch(`/v2/images/${created.id}`, [{ op: 'replace', path: '/cores', value: 8 }]);
    assert.equal(patched.status, 200, patched.text);
    assert.equal(((await api.get(`/v2/images/${created.id}`)).json as Record<string, unknown>).cores, '8');
  } finally {
    await gaze.stop();
  }
});

test('without a schema-image.json the shipped custom properties are served', async () => {
  const gaze = await startGazeInProcess();
  try {
    const schema = (await client(gaze.url).get('/v2/schemas/image')).json as { properties: Record<string, Record<string, unknown>> };
    assert.equal(schema.properties.kernel_id?.is_base, false);
    assert.equal(schema.properties.os_distro?.is_base, false);
  } finally {
    await gaze.stop();
  }
});

test('a schema-image.json that redefines a base property, or is not a map of schemas, stops start-up', async () => {
  for (const [text, message] of [
    [JSON.stringify({ name: { type: 'string' }, os_type: { type: 'string' } }), /schema-image\.json: custom properties \(name\) conflict with base properties/],
    // A base property of Glance's schema even where Gaze leaves it out of its own (one store).
    [JSON.stringify({ stores: { type: 'string' } }), /schema-image\.json: custom properties \(stores\) conflict with base properties/],
    ['{"os_type": "string"}', /schema-image\.json: must map property names to JSON schemas/],
    ['{ not json', /schema-image\.json: cannot read the custom image properties/],
    [JSON.stringify({ os_type: { type: 'str' } }), /schema-image\.json: not a usable JSON schema/],
  ] as const) {
    await assert.rejects(startGazeInProcess({}, { besideConfig: { 'schema-image.json': text } }), message);
  }
});

test('allow_additional_image_properties = false: the strict image schema of Glance 25 (no other properties, no links), enforced on create and patch', async () => {
  const gaze = await startGazeInProcess({ DEFAULT: { allow_additional_image_properties: 'false' } }, { besideConfig: { 'schema-image.json': CUSTOM } });
  try {
    const api = client(gaze.url);
    const schema = (await api.get('/v2/schemas/image')).json as Record<string, unknown>;
    assert.deepEqual(Object.keys(schema), ['name', 'properties', 'additionalProperties']);
    assert.equal(schema.additionalProperties, false);
    const items = ((await api.get('/v2/schemas/images')).json as { properties: { images: { items: Record<string, unknown> } } }).properties.images.items;
    assert.deepEqual(Object.keys(items), ['name', 'properties', 'additionalProperties']);

    const extra = await api.call('POST', '/v2/images', { json: { name: 'x', foo: 'bar' }, headers: JSON_ACCEPT });
    assert.equal(extra.status, 400);
    assert.ok(
      extra.json.message.startsWith(
        "Provided object does not match schema 'image': Additional properties are not allowed ('foo' was unexpected)\n\nFailed validating 'additionalProperties' in schema:\n    {'additionalProperties': False,\n     'name': 'image',",
      ),
      extra.json.message.slice(0, 300),
    );
    const image = await api.createImage({ name: 'named properties only', hw_disk_bus: 'scsi' });
    assert.equal(image.hw_disk_bus, 'scsi');
    const patched = await api.call('PATCH', `/v2/images/${image.id}`, {
      json: [{ op: 'add', path: '/foo', value: 'bar' }],
      headers: { 'content-type': 'application/openstack-images-v2.1-json-patch', ...JSON_ACCEPT },
    });
    assert.equal(patched.status, 400);
    assert.match(patched.json.message, /^Provided object does not match schema 'image': Additional properties are not allowed \('foo' was unexpected\)/);
    const typed = await api.call('PATCH', `/v2/images/${image.id}`, {
      json: [{ op: 'add', path: '/os_type', value: 'linux' }],
      headers: { 'content-type': 'application/openstack-images-v2.1-json-patch', ...JSON_ACCEPT },
    });
    assert.equal(typed.status, 200, typed.text);
  } finally {
    await gaze.stop();
  }
});
