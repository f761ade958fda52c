import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess } from '../helpers/gaze.ts';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { alice, client } from '../helpers/http.ts';
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

/** Until `count` notifications of `event` were written (five seconds at most). */
async function untilNoted(lines: string[], event: string, count = 1): Promise<void> {
  for (let i = 0; i < 200 && lines.filter((l) => l.includes(`"${event}"`)).length < count; i++) await new Promise((r) => setTimeout(r, 25));
}

/** Each notification as its event and the status its payload names. */
const sequence = (notes: any[]) => notes.map((n) => [n.notification, n.payload.status ?? null]);

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
    // Glance's: the upload saves the image as saving and then as active, each with an image.update.
    ['image.create', 'image.update', 'image.prepare', 'image.upload', 'image.activate', 'image.update', 'image.update', 'image.delete'],
  );
  assert.deepEqual(
    events.filter((n) => n.notification === 'image.update').map((n) => n.payload.status),
    ['saving', 'active', 'active'],
  );
  assert.equal(events.at(-1).payload.status, 'deleted', 'the image as Glance has removed it');
  const upload = events.find((n) => n.notification === 'image.upload');
  assert.equal(upload.payload.status, 'active');
  assert.equal(upload.payload.size, 5);
  assert.equal(events.at(-1).payload.deleted, true);
  assert.match(events.at(-1).payload.deleted_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "whole seconds, as Glance's isotime()");
  assert.ok(!('locations' in upload.payload));
  const prepare = events.find((n) => n.notification === 'image.prepare');
  assert.equal(prepare.payload.status, 'saving');
  assert.deepEqual(prepare.payload.properties, {}, 'which node writes the data is not told');
  // Glance adds the import's store lists to both, and names a store only where there are several.
  for (const payload of [prepare.payload, upload.payload]) {
    assert.deepEqual(payload.os_glance_importing_to_stores, []);
    assert.deepEqual(payload.os_glance_failed_import, []);
    assert.ok(!('backend' in payload));
  }
});

test("with delayed_delete, image.delete names the status the image is left in, as Glance's domain sets it", async () => {
  const lines: string[] = [];
  const gaze = await startGazeInProcess(
    { DEFAULT: { delayed_delete: 'True' }, oslo_messaging_notifications: { driver: 'log' } },
    { log: notificationLog(lines) },
  );
  try {
    const api = client(gaze.url);
    const withData = await api.createImage({ name: 'kept' });
    await api.upload(withData.id, 'bytes');
    await api.del(`/v2/images/${withData.id}`);
    const empty = await api.createImage({ name: 'empty' });
    await api.del(`/v2/images/${empty.id}`);
    await untilNoted(lines, 'image.delete', 2);
  } finally {
    await gaze.stop();
  }
  const deletes = lines.map((l) => JSON.parse(l)).filter((n) => n.notification === 'image.delete');
  assert.deepEqual(
    deletes.map((n) => [n.payload.name, n.payload.status, n.payload.deleted]),
    [
      ['kept', 'pending_delete', true],
      ['empty', 'deleted', true],
    ],
  );
});

test('a download that went out whole emits image.send with who read how many bytes; one cut short does not', async () => {
  const lines: string[] = [];
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'log' } }, { log: notificationLog(lines) });
  try {
    const api = client(gaze.url);
    const small = await api.createImage({ name: 'read' }, alice);
    await api.upload(small.id, 'ten bytes!', alice);
    assert.equal((await api.get(`/v2/images/${small.id}/file`, { as: alice })).status, 200);
    assert.equal((await api.get(`/v2/images/${small.id}/file`, { as: alice, headers: { range: 'bytes=2-5' } })).status, 206);
    // A client that hangs up after its first chunk of a large image.
    const large = await api.createImage({ name: 'large' }, alice);
    await api.upload(large.id, Buffer.alloc(64 << 20, 7), alice);
    await new Promise<void>((resolve, reject) => {
      const req = http.get(
        `${gaze.url}/v2/images/${large.id}/file`,
        { headers: { 'x-project-id': alice.project, 'x-roles': alice.roles, 'x-user-id': alice.user } },
        (res) => {
          assert.equal(res.statusCode, 200);
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (err) => (req.destroyed ? resolve() : reject(err)));
    });
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await gaze.stop();
  }
  const sends = lines.map((l) => JSON.parse(l)).filter((n) => n.notification === 'image.send');
  assert.equal(sends.length, 2, 'the whole image and the range; not the download cut short');
  const [whole, range] = sends.map((n) => n.payload);
  assert.deepEqual(Object.keys(whole), ['bytes_sent', 'image_id', 'owner_id', 'receiver_tenant_id', 'receiver_user_id']);
  assert.equal(whole.bytes_sent, 10);
  assert.equal(range.bytes_sent, 4);
  assert.equal(whole.receiver_tenant_id, alice.project);
  assert.equal(whole.receiver_user_id, alice.user);
  assert.equal(whole.owner_id, alice.project);
});

test('with several stores, image.prepare names the store written to, and the store lists follow the import; copy-image notifies as Glance', async () => {
  const lines: string[] = [];
  const copied: any[] = [];
  const gaze = await startGazeInProcess(
    {
      oslo_messaging_notifications: { driver: 'log' },
      DEFAULT: { enabled_backends: 'one:file, two:file' },
      glance_store: { default_backend: 'one' },
      one: { filesystem_store_datadir: '__DIR__/stores/one' },
      two: { filesystem_store_datadir: '__DIR__/stores/two' },
    },
    { log: notificationLog(lines) },
  );
  try {
    const api = client(gaze.url);
    const img = await api.createImage({ name: 'everywhere' });
    await api.put(`/v2/images/${img.id}/stage`, { body: Buffer.from('staged bytes'), headers: { 'content-type': 'application/octet-stream' } });
    await api.call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'glance-direct' }, stores: ['one', 'two'] } });
    await untilNoted(lines, 'task.run');
    // copy-image of an image uploaded into one store, into the other.
    const uploaded = await api.createImage({ name: 'copied' });
    await api.upload(uploaded.id, 'ten bytes!');
    const before = lines.length;
    const copy = await api.call('POST', `/v2/images/${uploaded.id}/import`, { json: { method: { name: 'copy-image' }, stores: ['two'] } });
    assert.equal(copy.status, 202, copy.text);
    await untilNoted(lines, 'task.run', 2);
    copied.push(...lines.slice(before).map((l) => JSON.parse(l)));
  } finally {
    await gaze.stop();
  }
  // Glance 25's sequence for the same copy (scripts/notifications-against-glance.ts multistore): the
  // import's start, its staging step, then the store's data and outcome, and the final check.
  assert.deepEqual(sequence(copied), [
    ['task.create', 'pending'],
    ['task.processing', 'processing'],
    ['image.update', 'active'],
    ['image.update', 'active'],
    ['image.prepare', 'active'],
    ['image.upload', 'active'],
    ['image.update', 'active'],
    ['image.update', 'active'],
    ['task.success', 'success'],
    ['task.run', 'pending'],
  ]);
  const events = lines
    .slice(0, -copied.length)
    .map((l) => JSON.parse(l))
    .filter((n) => ['image.prepare', 'image.upload'].includes(n.notification) && n.payload.name === 'everywhere');
  assert.deepEqual(
    events.map((n) => [n.notification, n.payload.backend, n.payload.os_glance_importing_to_stores]),
    // As Glance: image.upload comes while its store is still listed as importing.
    [
      ['image.prepare', 'one', ['one', 'two']],
      ['image.upload', undefined, ['one', 'two']],
      ['image.prepare', 'two', ['two']],
      ['image.upload', undefined, ['two']],
    ],
  );
});

test("an import emits task.create, task.processing, task.success and task.run with Glance's task payload, and the image events of its data", async () => {
  const lines: string[] = [];
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'log' } }, { log: notificationLog(lines) });
  try {
    const api = client(gaze.url);
    const img = await api.createImage({ name: 'imported' });
    await api.put(`/v2/images/${img.id}/stage`, { body: Buffer.from('staged bytes'), headers: { 'content-type': 'application/octet-stream' } });
    await api.call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'glance-direct' } } });
    await untilNoted(lines, 'task.run');
  } finally {
    await gaze.stop();
  }
  const notes = lines.map((l) => JSON.parse(l));
  // Glance 25's sequence, read from its log driver for the same calls (scripts/notifications-against-glance.ts):
  // the store's outcome and the final check each save the image; task.run comes once the executor's run,
  // which does the whole import, returned.
  assert.deepEqual(sequence(notes), [
    ['image.create', 'queued'],
    ['image.update', 'uploading'],
    ['image.update', 'uploading'],
    ['task.create', 'pending'],
    ['task.processing', 'processing'],
    ['image.update', 'importing'],
    ['image.prepare', 'importing'],
    ['image.upload', 'active'],
    ['image.activate', 'active'],
    ['image.update', 'active'],
    ['image.update', 'active'],
    ['task.success', 'success'],
    ['task.run', 'pending'],
  ]);
  assert.equal(notes[2].payload.size, 12, 'the stage saved with its size');
  // Glance's format_task_notification: the task's fields, never its input, result or message.
  const payloadOf = (event: string) => notes.find((n) => n.notification === event).payload;
  const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
  const success = payloadOf('task.success');
  assert.deepEqual(Object.keys(success), [
    'id',
    'type',
    'status',
    'result',
    'owner',
    'message',
    'expires_at',
    'created_at',
    'updated_at',
    'deleted',
    'deleted_at',
  ]);
  assert.equal(success.type, 'api_image_import');
  assert.equal(success.status, 'success');
  assert.equal(success.result, null);
  assert.equal(success.message, null);
  for (const key of ['expires_at', 'created_at', 'updated_at']) assert.match(success[key], stamp, key);
  assert.ok(success.expires_at > success.created_at, 'a finished task expires later');
  assert.equal(payloadOf('task.create').status, 'pending');
  assert.equal(payloadOf('task.processing').status, 'processing');
  assert.equal(payloadOf('task.run').status, 'pending', 'the task as the API saw it');
  assert.equal(new Set(['task.create', 'task.processing', 'task.run', 'task.success'].map((e) => payloadOf(e).id)).size, 1);
});

test('a failed import, a web-download and a tasks API import notify as Glance does: a revert saves the image as queued, still locked, then task.failure', async () => {
  const source = http.createServer((req, res) => {
    if (req.url === '/missing') res.writeHead(404);
    res.end('web bytes!');
  });
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  const port = (source.address() as AddressInfo).port;
  const lines: string[] = [];
  const legacy: any[] = [];
  const gaze = await startGazeInProcess(
    {
      oslo_messaging_notifications: { driver: 'log' },
      DEFAULT: { enabled_import_methods: 'glance-direct,web-download' },
      import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(port) },
    },
    { log: notificationLog(lines) },
  );
  try {
    const api = client(gaze.url);
    const img = await api.createImage({ name: 'not fetched' });
    const r = await api.call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/missing` } } });
    assert.equal(r.status, 202, r.text);
    await untilNoted(lines, 'task.failure');
    await new Promise((r) => setTimeout(r, 200)); // nothing may follow
    // A web-download that works: the image has no size until its data is activated, as in Glance.
    const fetched = await api.createImage({ name: 'fetched' });
    await api.call('POST', `/v2/images/${fetched.id}/import`, { json: { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/image` } } });
    await untilNoted(lines, 'task.run');
    // The tasks API's import (an admin's), which makes its own image.
    const before = lines.length;
    const task = await api.post('/v2/tasks', {
      type: 'import',
      input: {
        import_from: `http://127.0.0.1:${port}/image`,
        import_from_format: 'raw',
        image_properties: { name: 'by task', disk_format: 'raw', container_format: 'bare' },
      },
    });
    assert.equal(task.status, 201, task.text);
    await untilNoted(lines, 'task.run', 2);
    legacy.push(...lines.slice(before).map((l) => JSON.parse(l)));
  } finally {
    await gaze.stop();
    source.close();
  }
  // Glance 25's sequence for the same task (scripts/notifications-against-glance.ts).
  assert.deepEqual(sequence(legacy), [
    ['task.create', 'pending'],
    ['task.processing', 'processing'],
    ['image.create', 'queued'],
    ['image.update', 'saving'],
    ['image.prepare', 'saving'],
    ['image.upload', 'active'],
    ['image.activate', 'active'],
    ['image.update', 'active'],
    ['image.update', 'active'],
    ['task.success', 'success'],
    ['task.run', 'pending'],
  ]);
  const prepare = lines.map((l) => JSON.parse(l)).find((n) => n.notification === 'image.prepare');
  assert.equal(prepare.payload.size, null);
  assert.equal(prepare.payload.status, 'importing');
  // The failed import's six, all sent before the second import began.
  const notes = lines.map((l) => JSON.parse(l)).slice(0, 6);
  assert.deepEqual(sequence(notes), [
    ['image.create', 'queued'],
    ['task.create', 'pending'],
    ['task.processing', 'processing'],
    ['image.update', 'importing'],
    ['image.update', 'queued'],
    ['task.failure', 'failure'],
  ]);
  assert.equal(notes[4].payload.properties.os_glance_import_task, notes[1].payload.id, 'saved while the task still holds the lock');
  assert.equal(notes[5].payload.message, null, 'never the message, as Glance');
});

test("image member events carry Glance's payload, with API times and a deletion time", async () => {
  const lines: string[] = [];
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'log' } }, { log: notificationLog(lines) });
  try {
    const api = client(gaze.url);
    const img = await api.createImage({ name: 'shared', visibility: 'shared' });
    assert.equal((await api.post(`/v2/images/${img.id}/members`, { member: 'other-project' })).status, 200);
    assert.equal((await api.del(`/v2/images/${img.id}/members/other-project`)).status, 204);
    const events = lines.map((l) => JSON.parse(l)).filter((n) => n.notification.startsWith('image.member.'));
    assert.deepEqual(
      events.map((n) => n.notification),
      ['image.member.create', 'image.member.delete'],
    );
    const [created, deleted] = events.map((n) => n.payload);
    const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
    assert.deepEqual(Object.keys(created), ['image_id', 'member_id', 'status', 'created_at', 'updated_at', 'deleted', 'deleted_at']);
    assert.equal(created.image_id, img.id);
    assert.equal(created.member_id, 'other-project');
    assert.equal(created.status, 'pending');
    assert.match(created.created_at, stamp);
    assert.match(created.updated_at, stamp);
    assert.equal(created.deleted, false);
    assert.equal(created.deleted_at, null);
    assert.equal(deleted.deleted, true);
    assert.match(deleted.deleted_at, stamp);
  } finally {
    await gaze.stop();
  }
});

test("metadefs emit Glance's metadef_* events with its payloads", async () => {
  const lines: string[] = [];
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'log' } }, { log: notificationLog(lines) });
  try {
    const api = client(gaze.url);
    await api.post('/v2/metadefs/namespaces', {
      namespace: 'Noticed',
      resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'n_' }],
      objects: [{ name: 'o', properties: { size: { type: 'integer', title: 'Size', minimum: 0 } } }],
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
  const association = events.find((n) => n.notification === 'metadef_resource_type.create').payload;
  assert.equal(association.prefix, 'n_');
  assert.equal(association.name_old, 'OS::Glance::Image', "Glance's payload names it twice");
  assert.equal(events.find((n) => n.notification === 'metadef_object.create').payload.required, null, 'no list given: null, as Glance stores none');
  // An object's properties are written `value or None` by Glance: its 0 turns null there.
  const objectProperty = events.find((n) => n.notification === 'metadef_object.create').payload.properties;
  assert.equal(objectProperty.length, 1);
  assert.deepEqual(
    {
      name: objectProperty[0].name,
      type: objectProperty[0].type,
      title: objectProperty[0].title,
      minimum: objectProperty[0].minimum,
      enum: objectProperty[0].enum,
    },
    { name: 'size', type: 'integer', title: 'Size', minimum: null, enum: null },
  );
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

test("a failed upload or stage notifies the image back to queued, as Glance's restore; (de)activate and delete carry the time of their own write; the log driver masks secrets", async () => {
  const lines: string[] = [];
  const gaze = await startGazeInProcess({ oslo_messaging_notifications: { driver: 'log' } }, { log: notificationLog(lines) });
  const cutOff = (id: string, target: 'file' | 'stage') =>
    new Promise<void>((resolve) => {
      const req = http.request(`${gaze.url}/v2/images/${id}/${target}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': 100_000 },
      });
      req.on('error', () => resolve());
      req.on('response', () => resolve());
      req.write(Buffer.alloc(5_000));
      setTimeout(() => req.destroy(), 200);
    });
  try {
    const api = client(gaze.url);
    const img = await api.createImage({ name: 'cut', password: 's3cret', nested_token: 'tok' });
    await cutOff(img.id, 'file');
    await untilNoted(lines, 'image.upload');
    for (let i = 0; i < 200 && (await api.get(`/v2/images/${img.id}`)).json.status !== 'queued'; i++) await new Promise((r) => setTimeout(r, 25));
    await untilNoted(lines, 'image.update', 2);
    const staged = await api.createImage({ name: 'cut stage' });
    await cutOff(staged.id, 'stage');
    for (let i = 0; i < 200 && (await api.get(`/v2/images/${staged.id}`)).json.status !== 'queued'; i++) await new Promise((r) => setTimeout(r, 25));
    await untilNoted(lines, 'image.update', 4);
    const of = (id: string) =>
      lines.map((l) => JSON.parse(l)).filter((n) => n.payload?.id === id || (n.notification === 'image.upload' && n.priority === 'ERROR'));
    assert.deepEqual(sequence(of(img.id)), [
      ['image.create', 'queued'],
      ['image.update', 'saving'],
      ['image.prepare', 'saving'],
      ['image.upload', null],
      ['image.update', 'queued'],
    ]);
    assert.deepEqual(sequence(of(staged.id).filter((n) => n.payload?.id === staged.id)), [
      ['image.create', 'queued'],
      ['image.update', 'uploading'],
      ['image.update', 'queued'],
    ]);
    const created = lines.map((l) => JSON.parse(l)).find((n) => n.notification === 'image.create' && n.payload.id === img.id);
    assert.deepEqual([created.payload.properties.password, created.payload.properties.nested_token], ['***', '***']);

    const active = await api.createImage({ name: 'times', disk_format: 'raw', container_format: 'bare' });
    await api.upload(active.id, 'bytes');
    await new Promise((r) => setTimeout(r, 1100)); // the API's times are whole seconds
    assert.equal((await api.post(`/v2/images/${active.id}/actions/deactivate`)).status, 204);
    assert.equal((await api.del(`/v2/images/${active.id}`)).status, 204);
    await untilNoted(lines, 'image.delete');
    const notes = lines.map((l) => JSON.parse(l)).filter((n) => n.payload?.id === active.id);
    const deactivated = notes.filter((n) => n.notification === 'image.update').at(-1);
    const activated = notes.find((n) => n.notification === 'image.activate');
    assert.equal(deactivated.payload.status, 'deactivated');
    assert.ok(deactivated.payload.updated_at > activated.payload.updated_at, `${deactivated.payload.updated_at} after ${activated.payload.updated_at}`);
    const deleted = notes.find((n) => n.notification === 'image.delete');
    assert.equal(deleted.payload.updated_at, deleted.payload.deleted_at);
  } finally {
    await gaze.stop();
  }
});
