import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, alice, bob } from '../helpers/http.ts';
import { held, startFileServer, trickle, type FileServer } from '../helpers/file-server.ts';
import { nowTimestamp } from '../../src/domain/time.ts';
import { taskRow } from '../helpers/tasks.ts';
import { takeOverStaleLock } from '../../src/services/import-lock.ts';
import { GazeError } from '../../src/domain/errors.ts';
import type { TaskRow } from '../../src/db/repos/tasks.ts';
import { moveTo, UPLOAD_NODE } from '../../src/domain/image.ts';
import { IMPORTING_TO_STORES } from '../../src/domain/import-progress.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
let files: FileServer;
const CAP = 2_000_000;

before(async () => {
  files = await startFileServer();
  gaze = await startGazeInProcess({
    DEFAULT: { image_size_cap: String(CAP) },
    // The test's file server is on loopback, which Gaze refuses unless it is listed.
    import_filtering_opts: { allowed_ports: `80,443,${files.port}`, allowed_hosts: '127.0.0.1', read_timeout: '1', connect_timeout: '2' },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
  await files.close();
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const stagingFiles = () => readdirSync(path.join(gaze.dir, 'data', 'staging'));
const storeFiles = () => readdirSync(path.join(gaze.dir, 'data', 'images'));

async function until(id: string, done: (img: any) => boolean, what: string): Promise<any> {
  for (let i = 0; i < 400; i++) {
    const img = (await api.get(`/v2/images/${id}`)).json;
    if (done(img)) return img;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
const settled = (img: any) => img && !('os_glance_import_task' in img) && ['active', 'queued'].includes(img.status);
async function tasksOf(id: string, as = {}): Promise<any[]> {
  return (await api.get(`/v2/images/${id}/tasks`, { as })).json.tasks;
}
const stage = (id: string, data: Buffer, as = {}) =>
  api.put(`/v2/images/${id}/stage`, { body: data, as, headers: { 'content-type': 'application/octet-stream', ...JSON_ACCEPT } });
const importImage = (id: string, body: unknown, as = {}) => api.call('POST', `/v2/images/${id}/import`, { json: body, as, headers: JSON_ACCEPT });

test('discovery: import methods, stores (single store: 404), usage', async () => {
  const info = await api.get('/v2/info/import');
  assert.deepEqual(info.json, {
    'import-methods': { description: 'Import methods available.', type: 'array', value: ['glance-direct', 'web-download', 'copy-image'] },
  });
  expectError(await api.get('/v2/info/stores', { headers: JSON_ACCEPT }), 404, 'Multi backend is not supported at this site.');
  assert.deepEqual((await api.get('/v2/info/usage')).json, { usage: {} });
});

test('glance-direct: stage then import; the image becomes active with the staged bytes and the task succeeds', async () => {
  const data = randomBytes(700_000);
  const img = await api.createImage({}, alice);
  assert.equal((await stage(img.id, data, alice)).status, 204);
  const staged = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
  assert.equal(staged.status, 'uploading');
  assert.equal(staged.size, data.length);
  assert.equal(staged.checksum, null);
  const r = await importImage(img.id, { method: { name: 'glance-direct' } }, alice);
  assert.equal(r.status, 202);
  assert.equal(r.text, '');
  const done = await until(img.id, settled, 'import');
  assert.equal(done.status, 'active');
  assert.equal(done.checksum, md5(data));
  assert.equal(done.os_glance_importing_to_stores, '');
  assert.equal(done.os_glance_failed_import, '');
  const [task] = await tasksOf(img.id, alice);
  assert.equal(task.type, 'api_image_import');
  assert.equal(task.status, 'success', 'the task ends before the lock goes, as in Glance: a client that sees no lock finds it finished');
  assert.equal(task.message, 'Copied 0 MiB', 'a finished task keeps its last progress message, as in Glance');
  assert.deepEqual(task.result, { image_id: img.id });
  assert.equal(task.owner, 'alice-project');
  assert.match(task.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000$/);
  assert.equal(task.input.import_req.method.name, 'glance-direct');
  assert.ok(!stagingFiles().includes(img.id), 'staged data removed');
  const res = await fetch(`${gaze.url}/v2/images/${img.id}/file`);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
  assert.equal((await api.get(`/v2/images/${img.id}/tasks`, { as: bob })).status, 404, 'another project sees neither the image nor its tasks');
});

test('stage refuses wrong content types, wrong states, and data over image_size_cap', async () => {
  const img = await api.createImage();
  expectError(
    await api.put(`/v2/images/${img.id}/stage`, { body: 'x', headers: { 'content-type': 'text/plain', ...JSON_ACCEPT } }),
    415,
    'Invalid content type text/plain',
  );
  expectError(await stage(img.id, Buffer.alloc(CAP + 1)), 413, 'The incoming image is too large: The provided image is too large.');
  const after = (await api.get(`/v2/images/${img.id}`)).json;
  assert.equal(after.status, 'queued');
  assert.equal(after.size, null);
  assert.ok(!stagingFiles().includes(img.id));
  assert.equal((await stage(img.id, Buffer.from('ok'))).status, 204);
  expectError(await stage(img.id, Buffer.from('again')), 409, 'Image status transition from uploading to uploading is not allowed');
  const noFormats = await api.post('/v2/images', {});
  assert.equal((await stage(noFormats.json.id, Buffer.from('formats not needed to stage'))).status, 204);
  expectError(await stage(img.id, Buffer.from('x'), bob), 404, `No image found with ID ${img.id}`);
});

test('import: every synchronous check of the spec, with its status and message', async () => {
  const queued = await api.createImage({}, alice);
  const bare = (await api.post('/v2/images', { disk_format: 'raw' }, { as: alice })).json;
  const active = await api.createImage({}, alice);
  await api.upload(active.id, 'data', alice);

  expectError(await api.call('POST', `/v2/images/${queued.id}/import`, { as: alice, headers: JSON_ACCEPT }), 400, 'Body expected in request.');
  expectError(await importImage(queued.id, {}, alice), 400, "Import request requires a 'method' field.");
  expectError(await importImage(queued.id, { method: {} }, alice), 400, "Import request requires a 'name' field.");
  expectError(await importImage(queued.id, { method: { name: 'magic' } }, alice), 400, "Unknown import method name 'magic'.");
  // Glance's str() of the name: None, or a list that holds an enabled method's name.
  expectError(await importImage(queued.id, { method: { name: null } }, alice), 400, "Unknown import method name 'None'.");
  expectError(await importImage(queued.id, { method: { name: ['glance-direct'] } }, alice), 400, "Unknown import method name '['glance-direct']'.");
  expectError(await importImage(queued.id, { method: { name: 'glance-direct' }, all_stores: 'yes' }, alice), 400, "'all_stores' must be boolean value only");
  expectError(
    await importImage('00000000-0000-4000-8000-000000000000', { method: { name: 'glance-direct' } }, alice),
    404,
    'No image found with ID 00000000-0000-4000-8000-000000000000',
  );
  expectError(await importImage(active.id, { method: { name: 'glance-direct' } }, alice), 409, 'Image with status active cannot be target for import');
  expectError(await importImage(queued.id, { method: { name: 'copy-image' } }, alice), 409, 'Only images with status active can be targeted for copying');
  expectError(
    await importImage(queued.id, { method: { name: 'glance-direct' } }, alice),
    409,
    "Image needs to be staged before 'glance-direct' method can be used",
  );
  expectError(
    await importImage(bare.id, { method: { name: 'web-download', uri: files.url('/x') } }, alice),
    409,
    "'container_format' needs to be set before import",
  );
  expectError(await importImage(queued.id, { method: { name: 'web-download', uri: files.url('/x') } }, bob), 404, `No image found with ID ${queued.id}`);
  const pub = await api.createImage({ visibility: 'public' });
  expectError(
    await importImage(pub.id, { method: { name: 'web-download', uri: files.url('/x') } }, alice),
    403,
    'You are not authorized to complete modify_image action.',
  );
  expectError(await importImage(active.id, { method: { name: 'copy-image' } }, alice), 403, 'You are not authorized to complete copy_image action.');
  // A caller the policy does not even let read an image (a service's own project with only the service
  // role) hears that it does not exist, as from Glance 25 with the new defaults: the bare 404.
  const serviceOnly = { project: 'service-project', roles: 'service', user: 'nova' };
  const pubActive = await api.createImage({ visibility: 'public', disk_format: 'raw', container_format: 'bare' });
  assert.equal((await api.upload(pubActive.id, 'public bytes')).status, 204);
  for (const [image, method] of [
    [pub, { name: 'web-download', uri: files.url('/x') }],
    [pubActive, { name: 'copy-image' }],
  ] as const) {
    expectError(await importImage(image.id, { method }, serviceOnly), 404, 'The resource could not be found.');
  }
  const serviceCall = (method: string, path: string, body?: unknown) =>
    api.call(method, path, { as: serviceOnly, headers: JSON_ACCEPT, ...(body === undefined ? {} : { json: body }) });
  expectError(await serviceCall('DELETE', `/v2/images/${pub.id}`), 404, 'The resource could not be found.');
  expectError(await serviceCall('PUT', `/v2/images/${pub.id}/tags/t`), 404, 'The resource could not be found.');
  expectError(await serviceCall('POST', `/v2/images/${pub.id}/actions/deactivate`), 404, 'The resource could not be found.');
  // Glance's member calls look at the image's visibility before the member policy (and its get_image):
  // a public image has no members, which Glance 25 says even to this caller.
  expectError(
    await serviceCall('GET', `/v2/images/${pub.id}/members`),
    403,
    `Not allowed to list members for image ${pub.id}: Only shared images have members.`,
  );
  expectError(await serviceCall('POST', `/v2/images/${pub.id}/members`, { member: 'x' }), 403, `Not allowed to create members for image ${pub.id}.`);
  expectError(
    await importImage(queued.id, { method: { name: 'web-download', uri: files.url('/x') }, all_stores_must_succeed: false }, alice),
    400,
    `All_stores_must_succeed can only be set with enabled_backends ${files.url('/x')}`,
  );

  for (const uri of ['file:///etc/passwd', 'ftp://127.0.0.1/x', `http://127.0.0.1:1/x`, 'http:///nohost', undefined]) {
    expectError(
      await importImage(queued.id, { method: { name: 'web-download', uri } }, alice),
      400,
      `URI for web-download does not pass filtering: ${uri ?? 'None'}`,
    );
  }
  // A uri that is no string (Glance: 500) is refused, even one that would read as an allowed URL.
  expectError(
    await importImage(queued.id, { method: { name: 'web-download', uri: [files.url('/x')] } }, alice),
    400,
    `URI for web-download does not pass filtering: ['${files.url('/x')}']`,
  );
  expectError(await importImage(queued.id, { method: { name: 'web-download', uri: 123 } }, alice), 400, 'URI for web-download does not pass filtering: 123');
  assert.equal((await tasksOf(queued.id, alice)).length, 0, 'no check that failed created a task');
  assert.equal((await api.get(`/v2/images/${queued.id}`, { as: alice })).json.status, 'queued');
});

test('the import lock: a second import while one runs gets 409; a stale lock is taken over', async () => {
  files.routes.set('/slow-lock', trickle(400_000, 20));
  const img = await api.createImage();
  assert.equal((await importImage(img.id, { method: { name: 'web-download', uri: files.url('/slow-lock') } })).status, 202);
  const running = (await api.get(`/v2/images/${img.id}`)).json;
  assert.match(running.os_glance_import_task, /^[0-9a-f-]{36}$/);
  // Glance checks the status before the lock: an importing image answers with its state.
  await until(img.id, (i) => i.status === 'importing', 'importing');
  expectError(
    await importImage(img.id, { method: { name: 'web-download', uri: files.url('/slow-lock') } }),
    409,
    "Image needs to be in 'queued' state to use 'web-download' method",
  );
  assert.equal((await until(img.id, settled, 'first import')).status, 'active');

  // A queued image whose lock a live task holds (touched just now): the lock answers.
  const locked = await api.createImage();
  const { images, tasks } = gaze.app.deps;
  const liveTask = crypto.randomUUID();
  await tasks.insert(
    taskRow({
      id: liveTask,
      status: 'processing',
      owner: 'admin',
      image_id: locked.id,
      lease_owner: 'somebody-else',
      lease_expires_at: nowTimestamp(new Date(Date.now() + 3600_000)),
      attempts: 1,
    }),
  );
  assert.ok(await images.takeImportLock(locked.id, liveTask));
  expectError(await importImage(locked.id, { method: { name: 'web-download', uri: files.url('/slow-lock') } }), 409, 'Image has active task');
  assert.equal((await tasks.getRaw(liveTask))!.status, 'processing', 'a live lock is not preempted');

  // A lock whose task was last touched three hours ago is stale: the new import takes over. (Pending: a
  // processing task whose claim is renewed is worked on, however old; see import-lock's own test below.)
  const stale = await api.createImage();
  const oldTask = crypto.randomUUID();
  const old = nowTimestamp(new Date(Date.now() - 3 * 3600_000));
  await tasks.insert(
    taskRow({
      id: oldTask,
      status: 'pending',
      owner: 'admin',
      image_id: stale.id,
      created_at: old,
      updated_at: old,
      lease_owner: 'somebody-else',
      lease_expires_at: nowTimestamp(new Date(Date.now() + 3600_000)),
      attempts: 1,
    }),
  );
  assert.ok(await images.takeImportLock(stale.id, oldTask));
  files.routes.set('/small', Buffer.from('small image'));
  assert.equal((await importImage(stale.id, { method: { name: 'web-download', uri: files.url('/small') } })).status, 202);
  assert.equal((await until(stale.id, settled, 'takeover import')).status, 'active');
  const preempted = await tasks.getRaw(oldTask);
  assert.equal(preempted!.status, 'failure');
  assert.equal(preempted!.message, 'Expired lock preempted');
});

test('a lock whose processing task is over an hour old is taken over only when no process works on the task', async () => {
  const { images, tasks } = gaze.app.deps;
  const image = await api.createImage();
  const holder = crypto.randomUUID();
  const old = nowTimestamp(new Date(Date.now() - 2 * 3600_000));
  await tasks.insert(
    taskRow({
      id: holder,
      status: 'processing',
      owner: 'admin',
      image_id: image.id,
      created_at: old,
      updated_at: old,
      lease_owner: 'somebody-else',
      lease_expires_at: nowTimestamp(new Date(Date.now() + 3600_000)),
      attempts: 1,
    }),
  );
  assert.ok(await images.takeImportLock(image.id, holder));
  const locked = (await images.get(image.id))!;
  const failUnfinished = (task: TaskRow, reason: string) => gaze.app.imports.failUnfinished(task, reason);
  // The engine's answer decides (a claim still renewed, in the real one).
  await assert.rejects(
    takeOverStaleLock(gaze.app.deps, { isWorkedOn: () => true, failUnfinished }, locked),
    (err: unknown) => err instanceof GazeError && err.code === 'IMPORT_ACTIVE_TASK' && err.status === 409,
  );
  assert.equal((await tasks.getRaw(holder))!.status, 'processing');
  assert.equal((await images.get(image.id))!.properties.os_glance_import_task, holder);
  await takeOverStaleLock(gaze.app.deps, { isWorkedOn: () => false, failUnfinished }, locked);
  const preempted = (await tasks.getRaw(holder))!;
  assert.equal(preempted.status, 'failure');
  assert.equal(preempted.message, 'Expired lock preempted');
  assert.ok(preempted.expires_at !== null, 'it expires as every ended task does');
  assert.ok(!('os_glance_import_task' in (await images.get(image.id))!.properties), 'the lock is released');
});

test('a lock left by a task that had already ended (its process stopped before the release) is released by the recovery sweep', async () => {
  const { images, tasks } = gaze.app.deps;
  const image = await api.createImage();
  const endedTask = crypto.randomUUID();
  const twoMinutesAgo = nowTimestamp(new Date(Date.now() - 120_000));
  await tasks.insert(taskRow({ id: endedTask, status: 'success', owner: 'admin', image_id: image.id, created_at: twoMinutesAgo, updated_at: twoMinutesAgo }));
  assert.ok(await images.takeImportLock(image.id, endedTask));
  // Glance would answer 409 to imports for an hour; the sweep (every 5 s) drops the lock.
  await until(image.id, (img) => !('os_glance_import_task' in img), 'the lock of the ended task to go');
  assert.equal((await tasks.getRaw(endedTask))!.status, 'success', 'the ended task is left as it ended');
  files.routes.set('/after-lock', Buffer.from('imported after the lock went'));
  assert.equal((await importImage(image.id, { method: { name: 'web-download', uri: files.url('/after-lock') } })).status, 202);
  assert.equal((await until(image.id, settled, 'the next import')).status, 'active');
});

test('images left importing by an ended, vanished or unknown task are put back to queued by the recovery sweep, their unfinished stores failed', async () => {
  const { images, tasks } = gaze.app.deps;
  const twoMinutesAgo = nowTimestamp(new Date(Date.now() - 120_000));
  const leftImporting = async (task: Partial<TaskRow> | null) => {
    const image = await api.createImage();
    const taskId = crypto.randomUUID();
    if (task) await tasks.insert(taskRow({ id: taskId, owner: 'admin', image_id: image.id, created_at: twoMinutesAgo, updated_at: twoMinutesAgo, ...task }));
    assert.ok(await images.updateFields(image.id, 'queued', moveTo('importing'), { [IMPORTING_TO_STORES]: 'fast,slow' }));
    assert.ok(await images.takeImportLock(image.id, taskId));
    return { image, taskId };
  };
  // Failed by a cancel through another process, which died before its revert ran; its input says
  // it wrote to `slow` only (`fast` belongs to no import of this task).
  const input = JSON.stringify({ image_id: 'x', import_req: { method: { name: 'web-download', uri: 'http://127.0.0.1/' } }, backend: ['slow'] });
  const failed = await leftImporting({ status: 'failure', message: 'Cancelled by the user', input });
  const vanished = await leftImporting(null);
  const unknownKind = await leftImporting({ status: 'success', type: 'a_later_kind', input: 'not json' });

  const back = async (id: string) => until(id, (img) => img.status === 'queued' && !('os_glance_import_task' in img), `image ${id} back to queued`);
  const [afterFailed, afterVanished, afterUnknown] = await Promise.all([back(failed.image.id), back(vanished.image.id), back(unknownKind.image.id)]);
  assert.equal(afterFailed.os_glance_failed_import, 'slow');
  assert.equal(afterFailed.os_glance_importing_to_stores, 'fast');
  assert.equal(afterVanished.os_glance_importing_to_stores, '');
  assert.equal(afterUnknown.os_glance_failed_import, 'fast,slow', 'an input that cannot be read: every store it was writing to failed');
  assert.equal(afterUnknown.os_glance_importing_to_stores, '');
  const ended = await tasks.getRaw(failed.taskId);
  assert.equal(ended!.status, 'failure');
  assert.equal(ended!.message, 'Cancelled by the user', 'the ended task is left as it ended');
  assert.equal((await tasks.getRaw(unknownKind.taskId))!.status, 'success');
});

test('web-download: success; an expected digest that does not match fails the import and keeps nothing', async () => {
  const data = randomBytes(300_000);
  files.routes.set('/good.raw', data);
  const img = await api.createImage({}, alice);
  assert.equal((await importImage(img.id, { method: { name: 'web-download', uri: files.url('/good.raw') } }, alice)).status, 202);
  const done = await until(img.id, settled, 'web-download');
  assert.equal(done.status, 'active');
  assert.equal(done.checksum, md5(data));
  assert.equal(done.size, data.length);

  const expecting = await api.createImage({ os_hash_algo: 'sha512', os_hash_value: '0'.repeat(128) });
  await importImage(expecting.id, { method: { name: 'web-download', uri: files.url('/good.raw') } });
  const failed = await until(expecting.id, settled, 'mismatch');
  assert.equal(failed.status, 'queued');
  assert.equal(failed.os_hash_value, '0'.repeat(128));
  const [task] = await tasksOf(expecting.id);
  assert.equal(task.status, 'failure');
  assert.match(task.message, /^sha512 of the data is [0-9a-f]{128}, not the expected 0{128}; the data was not kept\.$/);
  assert.ok(!storeFiles().includes(expecting.id) && !stagingFiles().includes(expecting.id));
});

test('web-download from hostile sources ends with the image queued and the reason on the task', async () => {
  files.routes.set('/redirect-out', (res) => {
    res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' }).end();
  });
  files.routes.set('/too-big', (res) => {
    res.writeHead(200);
    res.end(Buffer.alloc(CAP + 10));
  });
  files.routes.set('/cut', (res) => {
    res.writeHead(200, { 'content-length': 500_000 });
    res.write(Buffer.alloc(100_000));
    setTimeout(() => res.destroy(), 50);
  });
  files.routes.set('/silent', () => {
    /* never answers */
  });
  // No length and no chunks: the body ends with the connection, and a reset is no end of it.
  files.routes.set('/reset-unframed', (res) => {
    const socket = res.socket!;
    socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
    socket.write(Buffer.alloc(100_000));
    setTimeout(() => socket.resetAndDestroy(), 50);
  });
  const cases: Array<[string, RegExp]> = [
    ['/missing', /HTTP status 404/],
    ['/redirect-out', /Redirect to disallowed URL: http:\/\/127\.0\.0\.1:1\/elsewhere/],
    ['/too-big', /too large|larger than|exceeds/i],
    ['/cut', /different from expected|closed|ended/i],
    ['/silent', /no response from 127\.0\.0\.1:\d+ within 1000 ms/],
    ['/reset-unframed', /connection closed after 100000 bytes before the body was complete/],
  ];
  const ids = await Promise.all(
    cases.map(async ([route]) => {
      const img = await api.createImage({ name: route });
      assert.equal((await importImage(img.id, { method: { name: 'web-download', uri: files.url(route) } })).status, 202, route);
      return img.id;
    }),
  );
  for (const [i, [route, reason]] of cases.entries()) {
    const img = await until(ids[i], settled, route);
    assert.equal(img.status, 'queued', route);
    assert.equal(img.size, null, route);
    const [task] = await tasksOf(ids[i]);
    assert.equal(task.status, 'failure', route);
    assert.match(task.message, reason, `${route}: ${task.message}`);
    assert.ok(!stagingFiles().includes(ids[i]) && !storeFiles().includes(ids[i]), `${route}: nothing kept`);
  }
});

test('cancel: DELETE /v2/images/{id}/import stops a running import and reverts the image', async () => {
  files.routes.set('/slow-cancel', trickle(1_500_000, 30));
  const img = await api.createImage({}, alice);
  await importImage(img.id, { method: { name: 'web-download', uri: files.url('/slow-cancel') } }, alice);
  await until(img.id, (i) => i.status === 'importing', 'importing');
  expectError(await api.del(`/v2/images/${img.id}/import`, { as: bob, headers: JSON_ACCEPT }), 404, `No image found with ID ${img.id}`);
  assert.equal((await api.del(`/v2/images/${img.id}/import`, { as: alice })).status, 202);
  const after = await until(img.id, settled, 'cancelled');
  assert.equal(after.status, 'queued');
  const [task] = await tasksOf(img.id, alice);
  assert.equal(task.status, 'failure');
  assert.equal(task.message, 'Import cancelled by the user.');
  assert.ok(!stagingFiles().includes(img.id));
  expectError(await api.del(`/v2/images/${img.id}/import`, { as: alice, headers: JSON_ACCEPT }), 409, `Image ${img.id} has no import in progress.`);
});

test('deleting an image during its import stops the work and removes the partial data', async () => {
  files.routes.set('/slow-delete', trickle(1_500_000, 30));
  const img = await api.createImage();
  await importImage(img.id, { method: { name: 'web-download', uri: files.url('/slow-delete') } });
  await until(img.id, (i) => i.status === 'importing', 'importing');
  assert.equal((await api.del(`/v2/images/${img.id}`)).status, 204);
  const { tasks } = gaze.app.deps;
  for (let i = 0; i < 200; i++) {
    const [row] = await tasks.listForImage(img.id);
    if (row?.status === 'failure') break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const [row] = await tasks.listForImage(img.id);
  assert.equal(row.status, 'failure');
  assert.equal(row.message, 'Image has been deleted, aborting import.');
  assert.ok(!stagingFiles().some((f) => f.includes(img.id)) && !storeFiles().some((f) => f.includes(img.id)));
});

test('legacy tasks API: admin only, validated, runs an import that creates an active image', async () => {
  const data = randomBytes(120_000);
  files.routes.set('/legacy.raw', data);
  expectError(
    await api.post('/v2/tasks', { type: 'import', input: {} }, { as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete tasks_api_access action.',
  );
  // Glance checks the caller may use the tasks API before it reads the body.
  const malformed = await fetch(`${gaze.url}/v2/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-project-id': alice.project!, 'x-roles': alice.roles!, 'x-user-id': alice.user! },
    body: '{',
  });
  assert.equal(malformed.status, 403);
  expectError(await api.post('/v2/tasks', { input: {} }, { headers: JSON_ACCEPT }), 400, "Task 'type' is required");
  expectError(await api.post('/v2/tasks', [], { headers: JSON_ACCEPT }), 400, "Task 'type' is required");
  expectError(await api.post('/v2/tasks', { type: 'import' }, { headers: JSON_ACCEPT }), 400, "Task 'input' is required");
  expectError(
    await api.post('/v2/tasks', { type: 'export', input: {} }, { headers: JSON_ACCEPT }),
    400,
    /does not match schema 'task': 'export' is not one of \['import', 'api_image_import'\]/,
  );
  // The whole task schema, closed to other properties, as Glance validates it; before the URI is looked at.
  expectError(
    await api.post('/v2/tasks', { type: 'import', input: { import_from: 'http://127.0.0.1:1/x' }, zzz: 1 }, { headers: JSON_ACCEPT }),
    400,
    /does not match schema 'task': Additional properties are not allowed \('zzz' was unexpected\)/,
  );
  expectError(
    await api.post('/v2/tasks', { type: 'import', input: 5 }, { headers: JSON_ACCEPT }),
    400,
    /does not match schema 'task': 5 is not of type 'null', 'object'/,
  );
  const created = await api.post('/v2/tasks', {
    type: 'import',
    input: {
      import_from: files.url('/legacy.raw'),
      import_from_format: 'raw',
      image_properties: { name: 'from-task', disk_format: 'raw', container_format: 'bare' },
    },
  });
  assert.equal(created.status, 201);
  assert.equal(created.headers.get('location'), `${gaze.url}/v2/tasks/${created.json.id}`);
  assert.equal(created.json.status, 'pending');
  assert.equal(created.json.self, `/v2/tasks/${created.json.id}`);
  let task: any;
  for (let i = 0; i < 200; i++) {
    task = (await api.get(`/v2/tasks/${created.json.id}`)).json;
    if (task.status === 'success' || task.status === 'failure') break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(task.status, 'success', task.message);
  const image = (await api.get(`/v2/images/${task.result.image_id}`)).json;
  assert.equal(image.name, 'from-task');
  assert.equal(image.status, 'active');
  assert.equal(image.checksum, md5(data));
  assert.match(task.expires_at, /Z$/);
  // In the order of Glance's task view (its JSON text has them so); user_id and request_id only where known.
  const glanceOrder = [
    'id',
    'input',
    'type',
    'status',
    'owner',
    'message',
    'result',
    'created_at',
    'updated_at',
    'self',
    'schema',
    'image_id',
    'request_id',
    'user_id',
    'expires_at',
  ];
  assert.deepEqual(
    Object.keys(task),
    glanceOrder.filter((key) => key in task),
  );
  assert.ok(
    ['id', 'input', 'message', 'result', 'self', 'schema', 'expires_at'].every((key) => key in task),
    Object.keys(task).join(),
  );

  // Refused before any task exists, as Glance does.
  const before = (await api.get('/v2/tasks?limit=1000')).json.tasks.length;
  const legacy = (input: Record<string, unknown>) => api.post('/v2/tasks', { type: 'import', input }, { headers: JSON_ACCEPT });
  const fields = { import_from_format: 'raw', image_properties: {} };
  expectError(
    await legacy({ import_from: 'file:///etc/passwd', ...fields }),
    400,
    'File based imports are not allowed. Please use a non-local source of image data.',
  );
  expectError(
    await legacy({ import_from: 'ftp://images.example.com/x', ...fields }),
    400,
    "The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']",
  );
  for (const uri of ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/x', `http://127.0.0.1:1/x`, 'http://[::1]/x']) {
    expectError(await legacy({ import_from: uri, ...fields }), 400, `URI for legacy import task does not pass filtering: ${uri}`);
  }
  // The source is checked first, as in Glance: a missing or empty one is an invalid location.
  expectError(await legacy({ import_from_format: 'raw', image_properties: {} }), 400, 'Invalid location: None');
  expectError(await legacy({}), 400, 'Invalid location: None');
  expectError(await legacy({ import_from: [], ...fields }), 400, 'Invalid location: []');
  expectError(await legacy({ import_from: '', import_from_format: 'raw', image_properties: {} }), 400, 'Invalid location: ');
  expectError(await legacy({ import_from: files.url('/legacy.raw'), image_properties: {} }), 400, "Input does not contain 'import_from_format' field");
  expectError(await legacy({ import_from: files.url('/legacy.raw'), import_from_format: 'raw' }), 400, "Input does not contain 'image_properties' field");
  assert.equal((await api.get('/v2/tasks?limit=1000')).json.tasks.length, before, 'no task was created');

  // A legacy task that fails deletes the image it created, and says so.
  const failing = await legacy({
    import_from: files.url('/missing.raw'),
    import_from_format: 'raw',
    image_properties: { name: 'doomed', disk_format: 'raw', container_format: 'bare' },
  });
  assert.equal(failing.status, 201);
  let failed: any;
  for (let i = 0; i < 200; i++) {
    failed = (await api.get(`/v2/tasks/${failing.json.id}`)).json;
    if (failed.status === 'failure') break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(failed.status, 'failure');
  const [, createdId] = /The image (\S+) created by this task was deleted\.$/.exec(failed.message) ?? [];
  assert.ok(createdId, failed.message);
  assert.match(failed.message, /^Downloading the image failed: HTTP status 404/);
  assert.equal((await api.get(`/v2/images/${createdId}`)).status, 404);
  assert.ok(!(await api.get('/v2/images?limit=1000')).json.images.some((i: any) => i.name === 'doomed'));

  const list = await api.get('/v2/tasks?type=import&sort_dir=asc');
  assert.equal(list.json.schema, '/v2/schemas/tasks');
  assert.ok(list.json.tasks.some((t: any) => t.id === created.json.id));
  assert.ok(!('input' in list.json.tasks[0]) && !('message' in list.json.tasks[0]));
  expectError(await api.get('/v2/tasks?status=done', { headers: JSON_ACCEPT }), 400, 'Invalid status value: done');
  expectError(await api.get('/v2/tasks?type=api_image_import', { headers: JSON_ACCEPT }), 400, 'Invalid type value: api_image_import');
  expectError(await api.get('/v2/tasks?marker=zzz', { headers: JSON_ACCEPT }), 400, 'Invalid marker format');
  const unknown = '00000000-0000-4000-8000-000000000000';
  expectError(await api.get(`/v2/tasks?marker=${unknown}`, { headers: JSON_ACCEPT }), 400, `Task with the given id ${unknown} was not found`);
  // Glance's order and words: the sort key is looked at by its database layer, after the limit.
  expectError(await api.get('/v2/tasks?sort_key=input', { headers: JSON_ACCEPT }), 400, 'Sort key supplied was not valid.');
  // and after the marker is looked up.
  expectError(await api.get(`/v2/tasks?sort_key=input&marker=${unknown}`, { headers: JSON_ACCEPT }), 400, `Task with the given id ${unknown} was not found`);
  // Any column of Glance's task model sorts, the nullable ones too, and pages on after a marker.
  // Both directions, from a marker in the middle (null and non-null values meet: legacy tasks have no image).
  for (const key of ['expires_at', 'image_id', 'request_id', 'user_id', 'deleted_at', 'deleted']) {
    for (const dir of ['asc', 'desc']) {
      const all = (await api.get(`/v2/tasks?sort_key=${key}&sort_dir=${dir}&limit=1000`)).json.tasks.map((t: any) => t.id);
      assert.ok(all.length >= 3, key);
      const middle = Math.floor(all.length / 2);
      const rest = (await api.get(`/v2/tasks?sort_key=${key}&sort_dir=${dir}&limit=1000&marker=${all[middle]}`)).json.tasks.map((t: any) => t.id);
      assert.deepEqual(rest, all.slice(middle + 1), `${key} ${dir}`);
    }
  }
  // sort_key=id is created_at, then id, as Glance's task paginator orders it.
  const byId = (await api.get('/v2/tasks?sort_key=id&limit=1000')).json.tasks.map((t: any) => t.id);
  assert.deepEqual(
    byId,
    (await api.get('/v2/tasks?limit=1000')).json.tasks.map((t: any) => t.id),
  );
  expectError(await api.get('/v2/tasks?marker=', { headers: JSON_ACCEPT }), 400, 'Task with the given id  was not found');
  assert.equal((await api.get('/v2/tasks?limit=1_0')).status, 200);
  expectError(await api.get('/v2/tasks?sort_key=input&limit=-1', { headers: JSON_ACCEPT }), 400, 'limit param must be positive');
  // Any other parameter naming a task column filters on it, as in Glance's database layer: an empty
  // status matches nothing, a repeat adds a condition, a name that is no column is ignored.
  const listed = async (query: string) => {
    const r = await api.get(`/v2/tasks?${query}`);
    assert.equal(r.status, 200, r.text);
    return r.json.tasks.map((t: any) => t.id);
  };
  assert.deepEqual(await listed('status=&type=&sort_key=status'), [], 'an empty filter matches no task');
  assert.deepEqual(await listed(`id=${created.json.id}&foo=bar`), [created.json.id]);
  assert.deepEqual(await listed(`id=${created.json.id}&id=${failing.json.id}`), []);
  assert.deepEqual(await listed(`owner=${created.json.owner}&type=import&status=${failed.status}&id=${failing.json.id}`), [failing.json.id]);
  assert.deepEqual(await listed('owner=nobody'), []);
  // The first limit counts (Glance pops it); the second is left as a filter that names no column.
  assert.equal((await listed('limit=1&limit=3')).length, 1);
  // Glance's default deserializer reads a body first, even here.
  const scalarDelete = await api.call('DELETE', `/v2/tasks/${created.json.id}`, {
    body: 'false',
    as: alice,
    headers: { 'content-type': 'application/json', ...JSON_ACCEPT },
  });
  expectError(scalarDelete, 400, 'Unexpected body type. Expected list/dict.');
  const del = await api.del(`/v2/tasks/${created.json.id}`, { headers: JSON_ACCEPT });
  expectError(del, 405, /^This operation is currently not permitted on Glance Tasks/);
  assert.match(del.json.message, /expires_at property\.$/, 'the sentence is the whole body, as Glance words it');
  assert.equal(del.headers.get('allow'), 'GET');
  // Who may not use the tasks API hears that first, as from Glance.
  expectError(
    await api.del(`/v2/tasks/${created.json.id}`, { as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete tasks_api_access action.',
  );
  expectError(
    await api.get('/v2/tasks/00000000-0000-4000-8000-000000000000', { headers: JSON_ACCEPT }),
    404,
    'Could not find task 00000000-0000-4000-8000-000000000000',
  );
});

test("a legacy import task names its writer on the image while it saves, as an upload does (a node's start leaves it alone)", async () => {
  const { serve, release } = held();
  files.routes.set('/legacy-held.raw', serve);
  const created = await api.post('/v2/tasks', {
    type: 'import',
    input: {
      import_from: files.url('/legacy-held.raw'),
      import_from_format: 'raw',
      image_properties: { name: 'held', disk_format: 'raw', container_format: 'bare' },
    },
  });
  assert.equal(created.status, 201);
  const { images, tasks } = gaze.app.deps;
  let imageId: string | null = null;
  try {
    for (let i = 0; ; i++) {
      imageId = (await tasks.getRaw(created.json.id))!.image_id;
      if (imageId && (await images.get(imageId))?.status === 'saving') break;
      assert.ok(i < 400, 'the task never began saving');
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal((await images.get(imageId))!.properties[UPLOAD_NODE], gaze.app.deps.nodeId);
  } finally {
    release();
  }
  for (let i = 0; (await tasks.getRaw(created.json.id))!.status !== 'success'; i++) {
    assert.ok(i < 400, 'the task did not succeed');
    await new Promise((r) => setTimeout(r, 10));
  }
  const done = (await images.get(imageId))!;
  assert.equal(done.status, 'active');
  assert.equal(done.size, 2);
  assert.ok(!(UPLOAD_NODE in done.properties), 'the writer is forgotten once the data is in');
});

test('an expired task: gone from the lists, still read by an admin by its id and usable as its marker (Glance ignores the expiry there)', async () => {
  const { tasks } = gaze.app.deps;
  const hour = 3600_000;
  const expired = taskRow({
    id: crypto.randomUUID(),
    status: 'success',
    owner: 'elsewhere',
    expires_at: nowTimestamp(new Date(Date.now() - hour)),
    created_at: nowTimestamp(new Date(Date.now() - 2 * hour)),
  });
  const later = taskRow({
    id: crypto.randomUUID(),
    status: 'success',
    owner: 'elsewhere',
    expires_at: nowTimestamp(new Date(Date.now() + hour)),
    created_at: nowTimestamp(new Date(Date.now() - hour)),
  });
  await tasks.insert(expired);
  await tasks.insert(later);
  const shown = await api.get(`/v2/tasks/${expired.id}`);
  assert.equal(shown.status, 200, shown.text);
  assert.equal(shown.json.id, expired.id);
  const listed = (await api.get('/v2/tasks?limit=1000')).json.tasks.map((t: any) => t.id);
  assert.ok(listed.includes(later.id) && !listed.includes(expired.id));
  const after = await api.get(`/v2/tasks?sort_dir=asc&limit=1000&marker=${expired.id}`);
  assert.equal(after.status, 200, after.text);
  assert.ok(after.json.tasks.some((t: any) => t.id === later.id));
});
