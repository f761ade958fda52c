// Nodes sharing an object store (a real Swift's S3 API). Staging in it: every node sees the same staged
// data, so data staged through one node is imported by another, even after the first was killed, without
// forwarding. The import plugins work on a local copy of object-staged data; deletes and imports leave
// nothing staged. Uploads into it: a node's start never ends another node's upload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { startGazeInProcess, startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { s3StoreOptions, startSwift, type RunningSwift } from '../helpers/swift.ts';
import { freePort } from '../helpers/keystone.ts';
import { client } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';

const STAGED_PREFIX = 'os_glance_staging-';
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

let swift: RunningSwift;
let shared: string;
let nodeA: GazeProcess;
let nodeB: GazeProcess;

const s3Store = (bucket: string) => s3StoreOptions(swift, bucket);

async function startNode(): Promise<GazeProcess> {
  const port = await freePort();
  return startGazeProcess(
    {
      DEFAULT: { worker_self_reference_url: `http://127.0.0.1:${port}`, enabled_backends: 'hot:s3', staging_store: 'hot' },
      database: { connection: `sqlite:///${path.join(shared, 'gaze.db')}` },
      glance_store: { default_backend: 'hot' },
      hot: s3Store('shared-hot'),
      image_import_opts: { image_import_plugins: 'image_decompression' },
    },
    { port },
  );
}

/** A request body sent in two halves: the second only when `sendRest()` is called. */
function twoHalves(): { body: ReadableStream<Uint8Array>; data: Buffer; sendRest(): void } {
  const first = randomBytes(1024 * 1024);
  const rest = randomBytes(1024 * 1024);
  let sendRest!: () => void;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(first);
      sendRest = () => {
        controller.enqueue(rest);
        controller.close();
      };
    },
  });
  return { body, data: Buffer.concat([first, rest]), sendRest: () => sendRest() };
}

/**
 * Sends half of an image's data to `url` (a stage or an upload), starts a fresh node while the write
 * waits for the rest, checks that the new node still sees the write in progress, then sends the rest;
 * the write must succeed. Returns the data written.
 */
async function writeWhileANodeStarts(url: string, id: string, kind: 'stage' | 'file'): Promise<Buffer> {
  const during = kind === 'stage' ? 'uploading' : 'saving';
  const halves = twoHalves();
  const write = client(url).put(`/v2/images/${id}/${kind}`, { body: halves.body as never, headers: { 'content-type': 'application/octet-stream' } });
  await until(async () => ((await statusOn(url, id)) === during ? true : undefined), `the ${kind === 'stage' ? 'stage' : 'upload'} to begin`);
  const starting = await startNode();
  try {
    assert.equal(await statusOn(starting.url, id), during);
  } finally {
    await starting.stop();
    halves.sendRest(); // even after a failed assertion: a body left open would hold the writer's stop
  }
  assert.equal((await write).status, 204);
  return halves.data;
}

async function statusOn(url: string, id: string): Promise<string> {
  return (await client(url).get(`/v2/images/${id}`)).json.status;
}

/** Staged data is removed just after the image turns active: wait for the bucket to have none. */
async function noneStaged(container = 'shared-hot', prefix = STAGED_PREFIX): Promise<void> {
  await until(
    async () => (((await swift.listContainer(container)) ?? []).some((n) => n.startsWith(prefix)) ? undefined : true),
    `nothing staged in ${container}`,
    10_000,
  );
}

/** The staged objects in the image bucket (Swift sees S3 buckets as containers). */
async function stagedObjects(): Promise<string[]> {
  return ((await swift.listContainer('shared-hot')) ?? []).filter((name) => name.startsWith(STAGED_PREFIX));
}

async function stage(url: string, id: string, data: Buffer): Promise<void> {
  const r = await client(url).put(`/v2/images/${id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(r.status, 204, r.text);
}

async function importAndWait(url: string, id: string): Promise<any> {
  const r = await client(url).post(`/v2/images/${id}/import`, { method: { name: 'glance-direct' } });
  assert.equal(r.status, 202, r.text);
  return until(async () => {
    const image = (await client(url).get(`/v2/images/${id}`)).json;
    assert.notEqual(image.status, 'queued', 'the import failed');
    return image.status === 'active' ? image : undefined;
  }, `image ${id} active`);
}

before(
  async () => {
    shared = mkdtempSync(path.join(tmpdir(), 'gaze-shared-staging-'));
    swift = await startSwift();
    nodeA = await startNode();
    nodeB = await startNode();
  },
  { timeout: 180_000 },
);

/** kill -9 of node A; its own directory goes with it (stop() would have removed it; a new node A gets another). */
async function killNodeA(): Promise<void> {
  await nodeA.kill('SIGKILL');
  rmSync(nodeA.dir, { recursive: true, force: true });
}

after(async () => {
  await nodeA?.stop().catch(() => {});
  await nodeB?.stop().catch(() => {});
  await swift?.stop();
  if (shared) rmSync(shared, { recursive: true, force: true });
});

test('data staged through one node is imported by another after the first was killed: nothing forwarded, nothing left staged', async () => {
  const data = randomBytes(5 * 1024 * 1024 + 3);
  const image = await client(nodeA.url).createImage({ name: 'staged-on-a' });
  await stage(nodeA.url, image.id, data);
  assert.deepEqual(await stagedObjects(), [`${STAGED_PREFIX}${image.id}`]);

  await killNodeA();
  const active = await importAndWait(nodeB.url, image.id);
  assert.equal(active.checksum, md5(data));
  assert.equal(active.size, data.length);
  const back = await fetch(`${nodeB.url}/v2/images/${image.id}/file`);
  assert.equal(md5(Buffer.from(await back.arrayBuffer())), md5(data));
  await noneStaged();

  nodeA = await startNode();
  // A node that starts while another node is still staging leaves that stage alone (it cannot see an
  // object store's upload in progress; the image says which node stages it).
  const other = await client(nodeB.url).createImage({ name: 'staged-on-b' });
  const staged = await writeWhileANodeStarts(nodeB.url, other.id, 'stage');
  assert.equal((await importAndWait(nodeA.url, other.id)).checksum, md5(staged));
  await noneStaged();
});

test('an import through one node while another still stages: 409, no task, and the import once the stage ended', async () => {
  const image = await client(nodeB.url).createImage({ name: 'staged-slowly-on-b' });
  const halves = twoHalves();
  const staging = client(nodeB.url).put(`/v2/images/${image.id}/stage`, {
    body: halves.body as never,
    headers: { 'content-type': 'application/octet-stream' },
  });
  try {
    await until(async () => ((await statusOn(nodeA.url, image.id)) === 'uploading' ? true : undefined), 'the stage to begin');
    const early = await client(nodeA.url).call('POST', `/v2/images/${image.id}/import`, {
      json: { method: { name: 'glance-direct' } },
      headers: { accept: 'application/json' },
    });
    assert.equal(early.status, 409, early.text);
    assert.match(early.json.message, /is still being staged/);
    assert.deepEqual((await client(nodeA.url).get(`/v2/images/${image.id}/tasks`)).json.tasks, []);
  } finally {
    halves.sendRest();
  }
  assert.equal((await staging).status, 204);
  assert.equal((await importAndWait(nodeA.url, image.id)).checksum, md5(halves.data));
  await noneStaged();
});

test('an import plugin rewrites object-staged data on a local copy: a gzip staged on one node is stored decompressed', async () => {
  const raw = randomBytes(2 * 1024 * 1024 + 9);
  const image = await client(nodeA.url).createImage({ name: 'gzipped', disk_format: 'raw', container_format: 'bare' });
  await stage(nodeA.url, image.id, gzipSync(raw));
  const active = await importAndWait(nodeB.url, image.id);
  assert.equal(active.size, raw.length);
  assert.equal(active.checksum, md5(raw));
  await noneStaged();
  // The local copy the plugin worked on is gone too.
  const work = path.join(nodeB.dir, 'data', 'staging-work');
  assert.deepEqual(
    readdirSync(work, { recursive: true }).filter((name) => statSync(path.join(work, String(name))).isFile()),
    [],
  );
});

test('deleting a staged image through another node removes its staged object', async () => {
  const image = await client(nodeA.url).createImage({ name: 'deleted-staged' });
  await stage(nodeA.url, image.id, randomBytes(100_000));
  assert.deepEqual(await stagedObjects(), [`${STAGED_PREFIX}${image.id}`]);
  assert.equal((await client(nodeB.url).del(`/v2/images/${image.id}`)).status, 204);
  assert.deepEqual(await stagedObjects(), []);
});

test('[os_glance_staging_store] with S3 options: a bucket for staged data only', async () => {
  const gaze = await startGazeInProcess({
    DEFAULT: { enabled_backends: 'images:s3' },
    glance_store: { default_backend: 'images' },
    images: s3Store('dedicated-images'),
    os_glance_staging_store: s3Store('dedicated-staging'),
  });
  try {
    const data = randomBytes(1024 * 1024 + 1);
    const image = await client(gaze.url).createImage({ name: 'dedicated' });
    await stage(gaze.url, image.id, data);
    assert.deepEqual(await swift.listContainer('dedicated-staging'), [image.id]);
    assert.equal((await importAndWait(gaze.url, image.id)).checksum, md5(data));
    await noneStaged('dedicated-staging', '');
    assert.deepEqual(await swift.listContainer('dedicated-images'), [image.id]);
  } finally {
    await gaze.stop();
  }
});

test("a node's start leaves another node's upload into the shared store alone; a killed uploader's image is queued again", async () => {
  // The object store shows no sign of an upload in progress: the image names its writer.
  const image = await client(nodeA.url).createImage({ name: 'uploading-on-a', disk_format: 'raw', container_format: 'bare' });
  const uploaded = await writeWhileANodeStarts(nodeA.url, image.id, 'file');
  const active = (await client(nodeB.url).get(`/v2/images/${image.id}`)).json;
  assert.equal(active.status, 'active');
  assert.equal(active.checksum, md5(uploaded));
  assert.equal(active.os_glance_upload_node, undefined, 'the writer is never shown');
  const back = await fetch(`${nodeB.url}/v2/images/${image.id}/file`);
  assert.equal(md5(Buffer.from(await back.arrayBuffer())), md5(uploaded));

  const cut = await client(nodeA.url).createImage({ name: 'cut-off', disk_format: 'raw', container_format: 'bare' });
  const unfinished = twoHalves();
  const dying = client(nodeA.url)
    .put(`/v2/images/${cut.id}/file`, { body: unfinished.body as never, headers: { 'content-type': 'application/octet-stream' } })
    .catch((err: unknown) => err);
  await until(async () => ((await statusOn(nodeA.url, cut.id)) === 'saving' ? true : undefined), 'the second upload to begin');
  await killNodeA();
  await dying;
  assert.equal(await statusOn(nodeB.url, cut.id), 'saving', 'a running node does not recover uploads by itself');
  nodeA = await startNode(); // same host: the dead writer is recognised at start
  const queued = (await client(nodeA.url).get(`/v2/images/${cut.id}`)).json;
  assert.equal(queued.status, 'queued');
  assert.equal(queued.size, null);
  assert.equal((await client(nodeA.url).upload(cut.id, 'complete')).status, 204);
  assert.equal(await statusOn(nodeB.url, cut.id), 'active');
});
