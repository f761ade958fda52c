// The import lifecycle when a client acts at the wrong moment: an import while the stage is still
// arriving, an empty list of stores, a cancel of a task still waiting for a slot, a copy that fails at
// its last store, and a deactivation during a copy. Each ends in a clear answer or a clean revert.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { revertImport } from '../../src/import/finish.ts';
import type { StagingArea } from '../../src/import/staging-area.ts';
import type { TaskRow } from '../../src/db/repos/tasks.ts';
import { held, startFileServer, type FileServer } from '../helpers/file-server.ts';
import { client, expectError, JSON_ACCEPT } from '../helpers/http.ts';
import { nowTimestamp } from '../../src/domain/time.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
let files: FileServer;

before(async () => {
  files = await startFileServer();
  gaze = await startGazeInProcess({
    DEFAULT: { enabled_backends: 'fast:file, far:file, broken:file' },
    glance_store: { default_backend: 'fast' },
    fast: { filesystem_store_datadir: '__DIR__/stores/fast' },
    far: { filesystem_store_datadir: '__DIR__/stores/far' },
    // A store whose directory can never be created: every write to it fails.
    broken: { filesystem_store_datadir: '/dev/null/gaze-broken' },
    os_glance_staging_store: { filesystem_store_datadir: '__DIR__/staging' },
    // One import at a time: a second one waits, pending, for the slot.
    wsgi: { task_pool_threads: '1' },
    import_filtering_opts: { allowed_ports: String(files.port), allowed_hosts: '127.0.0.1' },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
  await files.close();
});

const importImage = (id: string, body: unknown) => api.call('POST', `/v2/images/${id}/import`, { json: body, headers: JSON_ACCEPT });
const stagingFiles = () => readdirSync(path.join(gaze.dir, 'staging'));
const holds = (store: string, id: string) => existsSync(path.join(gaze.dir, 'stores', store, id));

async function settled(id: string): Promise<any> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const image = (await api.get(`/v2/images/${id}`)).json;
    if (!('os_glance_import_task' in image) && !['importing', 'saving'].includes(image.status)) return image;
    assert.ok(Date.now() < deadline, `image ${id} did not settle: ${JSON.stringify(image)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const lastTask = async (id: string) => (await api.get(`/v2/images/${id}/tasks`)).json.tasks[0];

/** Takes the one import slot with a web-download that trickles until released; the image importing it. */
async function takeTheSlot(route: string): Promise<{ release: () => void; busy: string }> {
  const { serve, release } = held();
  files.routes.set(route, serve);
  const busy = await api.createImage({ name: 'holds the slot' });
  assert.equal((await importImage(busy.id, { method: { name: 'web-download', uri: files.url(route) } })).status, 202);
  for (let i = 0; (await lastTask(busy.id))?.status !== 'processing'; i++) {
    assert.ok(i < 400, 'the slot was never taken');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { release, busy: busy.id };
}

test('glance-direct while the stage is still arriving: 409, the stage ends whole, and then the import runs', async () => {
  const image = await api.createImage({ name: 'staged slowly' });
  const data = randomBytes(3 * 1024 * 1024);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(data.subarray(0, 1024 * 1024));
      await held;
      controller.enqueue(data.subarray(1024 * 1024));
      controller.close();
    },
  });
  const staging = fetch(`${gaze.url}/v2/images/${image.id}/stage`, {
    method: 'PUT',
    body,
    duplex: 'half',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
  } as RequestInit);
  for (let i = 0; (await api.get(`/v2/images/${image.id}`)).json.status !== 'uploading'; i++) {
    assert.ok(i < 400, 'the stage never began');
    await new Promise((r) => setTimeout(r, 10));
  }
  expectError(
    await importImage(image.id, { method: { name: 'glance-direct' } }),
    409,
    `The data of image ${image.id} is still being staged; import it once the stage has finished`,
  );
  assert.deepEqual((await api.get(`/v2/images/${image.id}/tasks`)).json.tasks, [], 'no task was made');
  // The image did not move: a second stage is still refused, as while any stage runs.
  assert.equal((await api.put(`/v2/images/${image.id}/stage`, { body: 'other', headers: { 'content-type': 'application/octet-stream' } })).status, 409);
  release();
  assert.equal((await staging).status, 204);
  assert.equal((await importImage(image.id, { method: { name: 'glance-direct' } })).status, 202);
  const done = await settled(image.id);
  assert.equal(done.status, 'active');
  assert.equal(done.size, data.length);
});

test('"stores": [] for glance-direct: a task that fails as Glance\'s does, and the image back to queued', async () => {
  const image = await api.createImage({ name: 'no stores' });
  assert.equal(
    (await api.put(`/v2/images/${image.id}/stage`, { body: randomBytes(1000), headers: { 'content-type': 'application/octet-stream' } })).status,
    204,
  );
  assert.equal((await importImage(image.id, { method: { name: 'glance-direct' }, stores: [] })).status, 202);
  const done = await settled(image.id);
  assert.equal(done.status, 'queued');
  const task = await lastTask(image.id);
  assert.equal(task.status, 'failure');
  assert.equal(task.message, 'None of the uploads finished!');
  assert.ok(!stagingFiles().includes(image.id), 'the staged data went with the revert');
});

test('copy-image given an empty list of stores: a task that copies nothing and succeeds, as in Glance', async () => {
  const image = await api.createImage({ name: 'copied nowhere', disk_format: 'raw', container_format: 'bare' });
  assert.equal(
    (await api.put(`/v2/images/${image.id}/file`, { body: randomBytes(1000), headers: { 'content-type': 'application/octet-stream' } })).status,
    204,
  );
  assert.equal((await importImage(image.id, { method: { name: 'copy-image' }, stores: [] })).status, 202);
  const done = await settled(image.id);
  const task = await lastTask(image.id);
  assert.equal(task?.status, 'success', JSON.stringify(task));
  assert.equal(done.status, 'active');
  assert.equal(done.stores, 'fast');
  assert.equal(done.os_glance_failed_import, '');
  assert.equal(done.os_glance_importing_to_stores, '');
});

test('cancel of an import still waiting for the slot: the task fails, the image is unlocked at once and can be imported', async () => {
  const { release: finish, busy } = await takeTheSlot('/slow.raw');
  const waiting = await api.createImage({ name: 'waits' });
  assert.equal(
    (await api.put(`/v2/images/${waiting.id}/stage`, { body: randomBytes(2000), headers: { 'content-type': 'application/octet-stream' } })).status,
    204,
  );
  try {
    assert.equal((await importImage(waiting.id, { method: { name: 'glance-direct' } })).status, 202);
    assert.equal((await lastTask(waiting.id)).status, 'pending');
    assert.equal((await api.del(`/v2/images/${waiting.id}/import`)).status, 202);
    const task = await lastTask(waiting.id);
    assert.equal(task.status, 'failure');
    assert.equal(task.message, 'Import cancelled by the user.');
    const image = (await api.get(`/v2/images/${waiting.id}`)).json;
    assert.ok(!('os_glance_import_task' in image), `unlocked at once: ${JSON.stringify(image)}`);
    assert.equal(image.status, 'queued');
  } finally {
    finish();
  }
  assert.equal((await settled(busy)).status, 'active');
  // The cancelled task is not run when the slot frees: the image stays as the cancel left it.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await api.get(`/v2/images/${waiting.id}`)).json.status, 'queued');
  assert.equal((await lastTask(waiting.id)).status, 'failure');
  // And it can be staged and imported again.
  const data = randomBytes(3000);
  assert.equal((await api.put(`/v2/images/${waiting.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
  assert.equal((await importImage(waiting.id, { method: { name: 'glance-direct' } })).status, 202);
  assert.equal((await settled(waiting.id)).status, 'active');
});

test('copy-image whose last store fails (all_stores_must_succeed): the copies it made are taken back', async () => {
  const image = await api.createImage({ name: 'copied' });
  assert.equal((await api.upload(image.id, randomBytes(50_000))).status, 204);
  assert.equal((await importImage(image.id, { method: { name: 'copy-image' }, stores: ['far', 'broken'] })).status, 202);
  const done = await settled(image.id);
  assert.equal((await lastTask(image.id)).status, 'failure');
  assert.equal(done.status, 'active');
  assert.equal(done.stores, 'fast');
  assert.equal(done.os_glance_failed_import, 'broken', 'only the store that failed, as Glance lists it; far is simply not there');
  assert.ok(!holds('far', image.id), 'the copy in far is removed');
  assert.ok(holds('fast', image.id));

  // Without all_stores_must_succeed, what was copied stays.
  assert.equal((await importImage(image.id, { method: { name: 'copy-image' }, stores: ['far', 'broken'], all_stores_must_succeed: false })).status, 202);
  const kept = await settled(image.id);
  assert.equal(kept.stores, 'fast,far');
  assert.equal(kept.os_glance_failed_import, 'broken');
  assert.ok(holds('far', image.id));
});

test('deactivated before its copy ran: the task says the image is no longer active, not that it was deleted', async () => {
  const { release, busy } = await takeTheSlot('/slow-copy.raw');
  const image = await api.createImage({ name: 'deactivated while its copy waits' });
  try {
    assert.equal((await api.upload(image.id, randomBytes(100_000))).status, 204);
    assert.equal((await importImage(image.id, { method: { name: 'copy-image' }, stores: ['far'] })).status, 202);
    assert.equal((await lastTask(image.id)).status, 'pending');
    assert.equal((await api.post(`/v2/images/${image.id}/actions/deactivate`, undefined)).status, 204);
  } finally {
    release();
  }
  assert.equal((await settled(busy)).status, 'active');
  const done = await settled(image.id);
  assert.equal(done.status, 'deactivated');
  const task = await lastTask(image.id);
  assert.equal(task.status, 'failure');
  assert.equal(task.message, `Image ${image.id} is deactivated now, no longer active; its data was not kept.`);
  assert.equal(done.os_glance_failed_import, 'far');
  assert.ok(!holds('far', image.id));
});

test("a failed copy takes back only the copies it recorded making, and never the image's last data", async () => {
  const image = await api.createImage({ name: 'copied, then its source removed' });
  assert.equal((await api.upload(image.id, randomBytes(20_000))).status, 204);
  assert.equal((await importImage(image.id, { method: { name: 'copy-image' }, stores: ['far'] })).status, 202);
  assert.equal((await settled(image.id)).stores, 'fast,far');
  const { deps } = gaze.app;
  const farLocation = () => deps.images.locationsOf(image.id).then((all) => all.find((l) => deps.stores.forLocation(l)?.id === 'far')!);
  // The revert of a copy-image task that made the copy in far and then failed.
  const revertCopy = async (copies: string[]) => {
    const task = { id: crypto.randomUUID(), image_id: image.id } as TaskRow;
    assert.ok(await deps.images.takeImportLock(image.id, task.id));
    const finish = { deps, staging: { remove: async () => {} } as unknown as StagingArea, taskTimeToLiveHours: 1 };
    await revertImport(finish, task, await deps.images.get(image.id), { import_req: { method: { name: 'copy-image' } }, backend: ['far'], copies });
  };

  // Its source was removed meanwhile (DELETE /v2/stores/fast): far holds the image's only data, and stays.
  assert.equal((await api.del(`/v2/stores/fast/${image.id}`)).status, 204);
  await revertCopy([(await farLocation()).id]);
  let now = (await api.get(`/v2/images/${image.id}`)).json;
  assert.equal(now.stores, 'far');
  assert.ok(!('os_glance_import_task' in now), 'the lock is released');
  assert.ok(holds('far', image.id));

  // With the data in fast again, a copy it did not record making is not its to take back...
  assert.equal((await importImage(image.id, { method: { name: 'copy-image' }, stores: ['fast'] })).status, 202);
  assert.equal((await settled(image.id)).stores, 'far,fast');
  await revertCopy([]);
  assert.equal((await api.get(`/v2/images/${image.id}`)).json.stores, 'far,fast');
  // ...and one it recorded goes (not listed as failed: only a store whose copy failed is).
  await revertCopy([(await farLocation()).id]);
  now = (await api.get(`/v2/images/${image.id}`)).json;
  assert.equal(now.stores, 'fast');
  assert.equal(now.os_glance_failed_import ?? '', '');
  assert.ok(!holds('far', image.id));

  // A recorded copy in a store this node does not have: the revert still ends, and the lock goes; its
  // location waits, hidden, for the scrubber of a node that has the store.
  const elsewhere = await deps.images.reserveLocation(image.id, `file:///srv/another-node/${image.id}`, { store: 'remote' }, ['active']);
  await deps.images.activateLocation(image.id, elsewhere.id, ['active']);
  await revertCopy([elsewhere.id]);
  now = (await api.get(`/v2/images/${image.id}`)).json;
  assert.ok(!('os_glance_import_task' in now), `the lock is released: ${JSON.stringify(now)}`);
  assert.equal(now.stores, 'fast');
  assert.ok(!(await deps.images.locationsOf(image.id)).some((l) => l.id === elsewhere.id && l.status === 'active'));
});

test('a task waiting for a slot past its lease is not queued again by the recovery sweep (it would run twice at once)', { timeout: 60_000 }, async () => {
  const queueDepth = async () => {
    const text = await gaze.app.metrics.registry.getSingleMetricAsString('gaze_import_queue_depth');
    return Number(/^gaze_import_queue_depth (\d+)$/m.exec(text)?.[1]);
  };
  const { release, busy } = await takeTheSlot('/slow-lease.raw');
  const image = await api.createImage({ name: 'waits past its lease' });
  try {
    assert.equal((await api.upload(image.id, randomBytes(20_000))).status, 204);
    assert.equal((await importImage(image.id, { method: { name: 'copy-image' }, stores: ['far'] })).status, 202);
    assert.equal(await queueDepth(), 1);
    await new Promise((r) => setTimeout(r, 11_000)); // the lease (10 s) runs out while it waits
    await gaze.app.recoverImports();
    await gaze.app.recoverImports();
    assert.equal(await queueDepth(), 1, 'queued once');
  } finally {
    release();
  }
  assert.equal((await settled(busy)).status, 'active');
  const done = await settled(image.id);
  assert.equal(done.stores, 'fast,far');
  const task = await lastTask(image.id);
  assert.equal(task.status, 'success', JSON.stringify(task));
});

test("a stage made while a web-download waits for its turn is the user's: the task fails without touching it, and a glance-direct import of it runs", async () => {
  const { release, busy } = await takeTheSlot('/slow-stage.raw');
  const image = await api.createImage({ name: 'staged while its web-download waits' });
  const data = randomBytes(5000);
  try {
    files.routes.set('/small-stage.raw', Buffer.from('small'));
    assert.equal((await importImage(image.id, { method: { name: 'web-download', uri: files.url('/small-stage.raw') } })).status, 202);
    assert.equal((await lastTask(image.id)).status, 'pending');
    assert.equal((await api.put(`/v2/images/${image.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
  } finally {
    release();
  }
  assert.equal((await settled(busy)).status, 'active');
  const kept = await settled(image.id);
  const task = await lastTask(image.id);
  assert.equal(task.status, 'failure');
  assert.equal(task.message, `Image ${image.id} is uploading, not queued; the import cannot start.`);
  assert.equal(kept.status, 'uploading', 'the stage stays');
  assert.equal(kept.size, data.length);
  assert.ok(stagingFiles().includes(image.id), 'the staged data stays');
  assert.equal((await importImage(image.id, { method: { name: 'glance-direct' } })).status, 202);
  const done = await settled(image.id);
  assert.equal(done.status, 'active');
  assert.equal(done.checksum, createHash('md5').update(data).digest('hex'));
});

test('a copy ended through another node (DELETE /import there) is reverted by the process that runs it', async () => {
  // A second node on the same database and stores: its cancel marks the task; this node runs the copy.
  const other = await startGazeInProcess({
    database: { connection: `sqlite:///${path.join(gaze.dir, 'data', 'gaze.db')}` },
    DEFAULT: { enabled_backends: 'fast:file, far:file' },
    glance_store: { default_backend: 'fast' },
    fast: { filesystem_store_datadir: path.join(gaze.dir, 'stores', 'fast') },
    far: { filesystem_store_datadir: path.join(gaze.dir, 'stores', 'far') },
  });
  try {
    const image = await api.createImage({ name: 'copy cancelled elsewhere' });
    assert.equal((await api.upload(image.id, randomBytes(64 * 1024 * 1024))).status, 204);
    const { tasks } = gaze.app.deps;
    assert.equal((await importImage(image.id, { method: { name: 'copy-image' }, stores: ['far'] })).status, 202);
    const task = (await lastTask(image.id)).id as string;
    for (let i = 0; (await tasks.getRaw(task))!.status !== 'processing'; i++) {
      assert.ok(i < 2000, 'the copy never began');
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal((await client(other.url).del(`/v2/images/${image.id}/import`)).status, 202);
    const done = await settled(image.id);
    assert.equal(done.status, 'active');
    assert.equal(done.stores, 'fast');
    assert.equal(done.os_glance_importing_to_stores, '');
    assert.equal(done.os_glance_failed_import, 'far');
    assert.ok(!holds('far', image.id), 'the copy it made is taken back');
    const ended = (await tasks.getRaw(task))!;
    assert.equal(ended.status, 'failure');
    assert.equal(ended.message, 'Import cancelled by the user.');
    assert.ok(ended.expires_at !== null, 'it expires as every ended task does');
  } finally {
    await other.stop();
  }
});

test('the engine counts a task as worked on while its process renews the claim, however long since the task reported', async () => {
  const { release, busy } = await takeTheSlot('/slow-silent.raw');
  const { tasks } = gaze.app.deps;
  const holder = (await lastTask(busy)).id as string;
  try {
    await gaze.app.db.kysely
      .updateTable('tasks')
      .set({ updated_at: nowTimestamp(new Date(Date.now() - 3 * 3600_000)) })
      .where('id', '=', holder)
      .execute();
    const row = (await tasks.getRaw(holder))!;
    assert.equal(gaze.app.imports.isWorkedOn(row), true);
    assert.equal(gaze.app.imports.isWorkedOn({ ...row, lease_expires_at: nowTimestamp(new Date(Date.now() - 1000)) }), false, 'a claim run out');
  } finally {
    release();
  }
  assert.equal((await settled(busy)).status, 'active');
  assert.equal(gaze.app.imports.isWorkedOn((await tasks.getRaw(holder))!), false, 'ended');
});

test('an import whose image another import made active while it took the lock is refused (409), with no task left and the lock free', async () => {
  const image = await api.createImage({ name: 'overtaken', disk_format: 'raw', container_format: 'bare' });
  assert.equal(
    (await api.put(`/v2/images/${image.id}/stage`, { body: Buffer.from('staged'), headers: { 'content-type': 'application/octet-stream' } })).status,
    204,
  );
  const tasksBefore = (await api.get(`/v2/images/${image.id}/tasks`)).json.tasks.length;
  // Between this request's look at the image and its lock, another import runs to its end: the image
  // is active and the lock free again (as when a small import finishes among parallel requests).
  const { images } = gaze.app.deps;
  const take = images.takeImportLock;
  images.takeImportLock = async (id: string, taskId: string) => {
    images.takeImportLock = take;
    await gaze.app.db.kysely.updateTable('images').set({ status: 'active', size: 6 }).where('id', '=', id).execute();
    return take.call(images, id, taskId);
  };
  try {
    const answer = await api.post(`/v2/images/${image.id}/import`, { method: { name: 'glance-direct' } });
    assert.equal(answer.status, 409, answer.text);
    assert.match(answer.text, /Image with status active cannot be target for import/);
  } finally {
    images.takeImportLock = take;
  }
  assert.equal((await api.get(`/v2/images/${image.id}/tasks`)).json.tasks.length, tasksBefore, 'no task recorded');
  assert.equal((await api.get(`/v2/images/${image.id}`)).json.os_glance_import_task, undefined, 'the lock is free');
});
