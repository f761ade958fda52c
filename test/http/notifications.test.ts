import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { pino } from 'pino';

/** A logger that keeps the notification lines (the log driver's) in `lines`. */
function notificationLog(lines: string[]) {
  return pino(
    { level: 'info' },
    {
      write: (line: string) => {
        if (JSON.parse(line).notification) lines.push(line);
      },
    },
  );
}

test('with the log driver, image events are written as JSON lines with Glance event types', async () => {
  const lines: string[] = [];
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'log' } }, { log: notificationLog(lines) });
  try {
    const api = client(gaze.url);
    const img = await api.createImage({ name: 'noticed' });
    await api.upload(img.id, 'bytes');
    await api.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/k', value: 'v' }]);
    await api.del(`/v2/images/${img.id}`);
  } finally {
    await gaze.stop();
  }
  const events = lines.map((l) => JSON.parse(l)).filter((n) => n.payload?.id);
  assert.deepEqual(
    events.map((n) => n.notification),
    ['image.create', 'image.prepare', 'image.upload', 'image.activate', 'image.update', 'image.delete'],
  );
  const upload = events.find((n) => n.notification === 'image.upload');
  assert.equal(upload.payload.status, 'active');
  assert.equal(upload.payload.size, 5);
  assert.equal(events.at(-1).payload.deleted, true);
  assert.ok(!('locations' in upload.payload));
  const prepare = events.find((n) => n.notification === 'image.prepare');
  assert.equal(prepare.payload.status, 'saving');
  assert.deepEqual(prepare.payload.properties, {}, 'which node writes the data is not told');
});

test('an import emits task.create, task.processing and task.success, and the image events of its data', async () => {
  const lines: string[] = [];
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'log' } }, { log: notificationLog(lines) });
  try {
    const api = client(gaze.url);
    const img = await api.createImage({ name: 'imported' });
    await api.put(`/v2/images/${img.id}/stage`, { body: Buffer.from('staged bytes'), headers: { 'content-type': 'application/octet-stream' } });
    await api.call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'glance-direct' } } });
    for (let i = 0; i < 200 && !lines.some((l) => l.includes('"task.success"')); i++) await new Promise((r) => setTimeout(r, 25));
  } finally {
    await gaze.stop();
  }
  const names = lines.map((l) => JSON.parse(l).notification);
  const order = ['task.create', 'task.processing', 'image.prepare', 'image.upload', 'image.activate', 'task.success'];
  const positions = order.map((n) => names.indexOf(n));
  assert.ok(
    positions.every((p) => p >= 0),
    `all of ${order.join(', ')} in ${names.join(', ')}`,
  );
  assert.deepEqual(
    [...positions].sort((a, b) => a - b),
    positions,
    'in this order',
  );
});

test("metadefs emit Glance's metadef_* events with its payloads", async () => {
  const lines: string[] = [];
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'log' } }, { log: notificationLog(lines) });
  try {
    const api = client(gaze.url);
    await api.post('/v2/metadefs/namespaces', {
      namespace: 'Noticed',
      resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'n_' }],
      objects: [{ name: 'o' }],
      tags: [{ name: 't' }],
      properties: { p: { type: 'integer', title: 'P', minimum: 0, confidential: false, readonly: true } },
    });
    await api.call('PUT', '/v2/metadefs/namespaces/Noticed', { json: { namespace: 'Renamed' } });
    await api.call('POST', '/v2/metadefs/namespaces/Renamed/tags', { json: { tags: [{ name: 'a' }, { name: 'b' }] } });
    await api.call('PUT', '/v2/metadefs/namespaces/Renamed/tags/a', { json: { name: 'c' } });
    await api.del('/v2/metadefs/namespaces/Renamed');
  } finally {
    await gaze.stop();
  }
  const events = lines.map((l) => JSON.parse(l)).filter((n) => n.notification.startsWith('metadef_'));
  assert.deepEqual(
    events.map((n) => n.notification),
    [
      'metadef_namespace.create',
      'metadef_resource_type.create',
      'metadef_object.create',
      'metadef_tag.create',
      'metadef_property.create',
      'metadef_namespace.update',
      'metadef_tag.create',
      'metadef_tag.create',
      'metadef_tag.update',
      'metadef_namespace.delete',
    ],
  );
  const update = events.find((n) => n.notification === 'metadef_namespace.update');
  assert.equal(update.payload.namespace, 'Renamed');
  assert.equal(update.payload.namespace_old, 'Noticed');
  assert.equal(events.find((n) => n.notification === 'metadef_tag.update').payload.name_old, 'a');
  assert.equal(events.find((n) => n.notification === 'metadef_resource_type.create').payload.prefix, 'n_');
  // Glance's format_metadef_property_notification: every schema field, a falsy value kept as given.
  assert.deepEqual(events.find((n) => n.notification === 'metadef_property.create').payload, {
    namespace: 'Noticed',
    name: 'p',
    name_old: 'p',
    type: 'integer',
    title: 'P',
    description: null,
    default: null,
    minimum: 0,
    maximum: null,
    enum: null,
    pattern: null,
    minLength: null,
    maxLength: null,
    confidential: false,
    items: null,
    uniqueItems: null,
    minItems: null,
    maxItems: null,
    additionalItems: null,
    deleted: false,
    deleted_at: null,
  });
  const deleted = events.at(-1);
  assert.equal(deleted.payload.deleted, true);
  assert.match(deleted.payload.deleted_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});
