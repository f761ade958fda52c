// End to end with multiple stores (spec import.md §1.3, §5.4, §6; images-api.md §14): a real OpenStack
// Swift whose s3api is one of the stores, a `gaze serve` process in no-auth mode with
// `enabled_backends = fast:file, cheap:file, s3:s3`, and Debian's `glance` CLI (python3-glanceclient
// 4.x): stores-info, image-create --store, image-import --import-method copy-image --stores,
// stores-delete. What the S3 store holds is checked through the S3 API itself (@aws-sdk/client-s3,
// the credentials start-swift.sh set up), not through Gaze.
// The clients run with standard input closed: glanceclient takes any other non-TTY stdin as image data.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import type { ApiImage, RawTask } from '../helpers/api-shapes.ts';
import { s3StoreOptions, startSwift, type RunningSwift } from '../helpers/swift.ts';
import { failed, md5, ok, parsePropertyTable, sha512, tokenGlance, type CliOptions, type CliResult } from '../helpers/cli.ts';

const IMPORT_LOCK = 'os_glance_import_task';
const BUCKET = 'gaze-e2e';

let swift: RunningSwift;
let gaze: GazeProcess;
let s3: S3Client;
let work: string;
let glance: (args: string[], opts?: CliOptions) => Promise<CliResult>;
let imageFile: string;
let imageData: Buffer;
/** The image made in fast and copied around by the tests below. */
let imageId = '';

before(
  async () => {
    work = mkdtempSync(path.join(tmpdir(), 'gaze-copy-image-e2e-'));
    imageData = randomBytes(3 * 1024 * 1024 + 789);
    imageFile = path.join(work, 'image.raw');
    writeFileSync(imageFile, imageData);

    swift = await startSwift();
    gaze = await startGazeProcess({
      DEFAULT: { enabled_backends: 'fast:file, cheap:file, s3:s3' },
      glance_store: { default_backend: 'fast' },
      s3: s3StoreOptions(swift, BUCKET),
    });
    s3 = new S3Client({
      endpoint: swift.s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: swift.s3.accessKey, secretAccessKey: swift.s3.secretKey },
      // Swift's s3api refuses the SDK's default aws-chunked CRC32 uploads; only checksum when required.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const g = tokenGlance(gaze.url);
    glance = (args, opts = {}) => g(args, { stdin: 'closed', ...opts });
  },
  { timeout: 180_000 },
);

after(async () => {
  s3?.destroy();
  await gaze?.stop();
  await swift?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Raw HTTP to Gaze; without headers, the no-auth default (project admin, admin role). */
function api(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const h: Record<string, string> = { ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  return fetch(`${gaze.url}${url}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function getJson<T>(url: string): Promise<T> {
  const res = await api('GET', url);
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url}: ${text}`);
  return JSON.parse(text) as T;
}

const getImage = (id: string) => getJson<ApiImage>(`/v2/images/${id}`);
const imageTasks = async (id: string) => (await getJson<{ tasks: RawTask[] }>(`/v2/images/${id}/tasks`)).tasks;

/** Polls the image until no import holds it and none of its stores is still being written. */
async function settled(id: string, timeoutMs = 60_000): Promise<ApiImage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const image = await getImage(id);
    const busy = IMPORT_LOCK in image || ['importing', 'saving'].includes(image.status) || (image.os_glance_importing_to_stores ?? '') !== '';
    if (!busy) return image;
    if (Date.now() > deadline) throw new Error(`image ${id} did not settle: ${JSON.stringify(image)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `glance image-download` into a file; returns the bytes. */
async function download(id: string, name: string): Promise<Buffer> {
  const out = path.join(work, name);
  ok(await glance(['image-download', '--file', out, id]));
  return readFileSync(out);
}

/** The keys in the S3 bucket, read through the S3 API (empty if the bucket does not exist yet). */
async function bucketKeys(): Promise<string[]> {
  try {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    return (res.Contents ?? []).map((o) => o.Key!);
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchBucket') return [];
    throw err;
  }
}

/** The one object of an image in the bucket, read through the S3 API. */
async function objectOf(id: string): Promise<Buffer> {
  const keys = (await bucketKeys()).filter((k) => k.includes(id));
  assert.equal(keys.length, 1, `one object for ${id} in ${BUCKET}: ${JSON.stringify(keys)}`);
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: keys[0] }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

function assertData(image: ApiImage, data: Buffer): void {
  assert.equal(image.status, 'active', JSON.stringify(image));
  assert.equal(image.size, data.length);
  assert.equal(image.checksum, md5(data));
  assert.equal(image.os_hash_value, sha512(data));
}

test('glance stores-info lists the three stores, fast the default; --detail gives their types', { timeout: 60_000 }, async () => {
  const table = parsePropertyTable(ok(await glance(['stores-info'])));
  const stores = JSON.parse(table.stores.replaceAll("'", '"')) as Array<Record<string, string>>;
  assert.deepEqual(stores, [{ id: 'fast', default: 'true' }, { id: 'cheap' }, { id: 's3' }]);

  // POST /v2/images names every store in OpenStack-image-store-ids (spec import.md §1.2).
  const res = await api('POST', '/v2/images', { name: 'cp-headers' });
  const created = (await res.json()) as { id: string };
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('openstack-image-store-ids'), 'fast,cheap,s3'); // enabled_backends order, as Glance
  assert.equal((await api('DELETE', `/v2/images/${created.id}`)).status, 204);

  const detail = await getJson<{ stores: Array<{ id: string; type: string; properties: Record<string, unknown> }> }>('/v2/info/stores/detail');
  assert.deepEqual(
    detail.stores.map((s) => [s.id, s.type]),
    [
      ['fast', 'file'],
      ['cheap', 'file'],
      ['s3', 's3'],
    ],
  );
  assert.deepEqual(Object.keys(detail.stores[2].properties).sort(), [
    's3_store_large_object_chunk_size',
    's3_store_large_object_size',
    's3_store_thread_pools',
  ]);
});

test('glance image-create --file --store fast: the data is in fast only', { timeout: 60_000 }, async () => {
  const created = parsePropertyTable(
    ok(await glance(['image-create', '--file', imageFile, '--store', 'fast', '--disk-format', 'raw', '--container-format', 'bare', '--name', 'cp-image'])),
  );
  imageId = created.id;
  assert.match(imageId, /^[0-9a-f-]{36}$/);
  const image = await getImage(imageId);
  assertData(image, imageData);
  assert.equal(image.stores, 'fast');
  assert.ok(!(await bucketKeys()).some((k) => k.includes(imageId)), 'nothing in S3 yet');
});

test('glance image-import --import-method copy-image --stores cheap,s3: stores fast,cheap,s3', { timeout: 120_000 }, async () => {
  assert.ok(imageId, 'needs the image of the previous test');
  ok(await glance(['image-import', '--import-method', 'copy-image', '--stores', 'cheap,s3', imageId]));
  const image = await settled(imageId);
  // The task first: when the copy went wrong, its message says how.
  const tasks = await imageTasks(imageId);
  assert.equal(tasks.length, 1, JSON.stringify(tasks));
  assert.equal(tasks[0].status, 'success', JSON.stringify(tasks[0]));
  assertData(image, imageData);
  assert.equal(image.stores, 'fast,cheap,s3', JSON.stringify({ image, task: tasks[0] }));
  assert.equal(image.os_glance_failed_import, '');

  assert.equal(tasks[0].input?.import_req?.method.name, 'copy-image');
  assert.deepEqual(tasks[0].input?.backend, ['cheap', 's3']);

  // The S3 copy is a real object in the bucket, holding exactly the image's bytes.
  assert.ok((await objectOf(imageId)).equals(imageData), 'the S3 object holds the image');
  assert.ok((await download(imageId, 'copied.raw')).equals(imageData));
});

test('copy-image again into a store that has the image: 400, nothing changes', { timeout: 60_000 }, async () => {
  assert.ok(imageId, 'needs the image of the previous tests');
  const text = failed(await glance(['image-import', '--import-method', 'copy-image', '--stores', 's3', imageId]));
  // The CLI prints the HTML body's text as it comes, quotes escaped by WebOb: what it prints with Glance.
  assert.match(text, /Image is already present at store &#x27;s3&#x27;/);
  // all_stores when every store has it already: 202 at once, no task, no lock (spec import.md §3.2 step 8).
  const res = await api('POST', `/v2/images/${imageId}/import`, { method: { name: 'copy-image' }, all_stores: true });
  assert.equal(res.status, 202, await res.text());
  const image = await getImage(imageId);
  assert.equal(image.stores, 'fast,cheap,s3');
  assert.ok(!(IMPORT_LOCK in image));
  assert.equal((await imageTasks(imageId)).length, 1);
});

test('copy-image as a non-admin (member of the owning project): 403, no task', { timeout: 60_000 }, async () => {
  assert.ok(imageId, 'needs the image of the previous tests');
  const image = await getImage(imageId);
  const member = { 'X-Project-Id': String(image.owner), 'X-Roles': 'member,reader', Accept: 'application/json' };
  // Every store has the image, so for an admin all_stores would be a 202 that does nothing: the policy
  // comes first (spec import.md §3.2 step 6 before step 8).
  for (const body of [
    { method: { name: 'copy-image' }, all_stores: true },
    { method: { name: 'copy-image' }, stores: ['s3'] },
  ]) {
    const res = await api('POST', `/v2/images/${imageId}/import`, body, member);
    const text = await res.text();
    assert.equal(res.status, 403, text);
    assert.match(text, /You are not authorized to complete copy_image action\./);
  }
  assert.equal((await imageTasks(imageId)).length, 1);
  assert.equal((await getImage(imageId)).stores, 'fast,cheap,s3');
  // The member may still read the image: the 403 is the copy_image policy, not visibility.
  const seen = await api('GET', `/v2/images/${imageId}`, undefined, member);
  await seen.arrayBuffer();
  assert.equal(seen.status, 200);
});

test('glance stores-delete --store s3: stores fast,cheap, the S3 object is gone, data still served', { timeout: 60_000 }, async () => {
  assert.ok(imageId, 'needs the image of the previous tests');
  ok(await glance(['stores-delete', '--store', 's3', imageId]));
  const image = await getImage(imageId);
  assertData(image, imageData);
  assert.equal(image.stores, 'fast,cheap');
  assert.ok(!(await bucketKeys()).some((k) => k.includes(imageId)), 'the S3 object was deleted');
  assert.ok((await download(imageId, 'after-s3-delete.raw')).equals(imageData));

  // Not there any more: 404 from the API; a store that is not configured: 409.
  const again = failed(await glance(['stores-delete', '--store', 's3', imageId]));
  assert.match(again, /not found/i);
  let res = await api('DELETE', `/v2/stores/s3/${imageId}`, undefined, { Accept: 'application/json' });
  let body = await res.text();
  assert.equal(res.status, 404, body);
  assert.match(body, new RegExp(`Image ${imageId} is not stored in store s3\\.`));
  res = await api('DELETE', `/v2/stores/nowhere/${imageId}`, undefined, { Accept: 'application/json' });
  body = await res.text();
  assert.equal(res.status, 409, body);
  assert.match(body, /The selected store nowhere is not available on this node\./);
});

test('stores-delete down to one store, then the last copy: 403, the image keeps it', { timeout: 60_000 }, async () => {
  assert.ok(imageId, 'needs the image of the previous tests');
  // The file stores keep <data_dir>/stores/<store id>/<image id> (the default data dir of each file store).
  const fileIn = (store: string) => path.join(gaze.dir, 'data', 'stores', store, imageId);
  assert.ok(readFileSync(fileIn('fast')).equals(imageData));
  ok(await glance(['stores-delete', '--store', 'fast', imageId]));
  assert.equal((await getImage(imageId)).stores, 'cheap');
  assert.ok(!existsSync(fileIn('fast')), 'the data left the fast store');
  assert.ok(readFileSync(fileIn('cheap')).equals(imageData));
  // The default store no longer has it: downloads come from cheap.
  assert.ok((await download(imageId, 'from-cheap.raw')).equals(imageData));

  const r = await glance(['stores-delete', '--store', 'cheap', imageId]);
  const text = failed(r);
  assert.match(text, /403/);
  assert.match(text, /Cannot delete image data from the only store containing it/);
  const res = await api('DELETE', `/v2/stores/cheap/${imageId}`, undefined, { Accept: 'application/json' });
  const body = await res.text();
  assert.equal(res.status, 403, body);
  assert.match(body, /Cannot delete image data from the only store containing it\. Consider deleting the image instead\./);

  const image = await getImage(imageId);
  assertData(image, imageData);
  assert.equal(image.stores, 'cheap');
  assert.ok((await download(imageId, 'last-copy.raw')).equals(imageData));

  // copy-image back to the default store works from the non-default one.
  ok(await glance(['image-import', '--import-method', 'copy-image', '--stores', 'fast', imageId]));
  const copied = await settled(imageId);
  assertData(copied, imageData);
  assert.equal(copied.stores, 'cheap,fast');
});

test('glance image-create --file --store s3: the data goes straight into S3 and comes back', { timeout: 60_000 }, async () => {
  const data = randomBytes(1024 * 1024 + 17);
  const file = path.join(work, 's3-only.raw');
  writeFileSync(file, data);
  const id = parsePropertyTable(
    ok(await glance(['image-create', '--file', file, '--store', 's3', '--disk-format', 'raw', '--container-format', 'bare', '--name', 'cp-s3'])),
  ).id;
  const image = await getImage(id);
  assertData(image, data);
  assert.equal(image.stores, 's3');
  assert.ok((await objectOf(id)).equals(data), 'the S3 object holds the image');
  assert.ok((await download(id, 's3-only-out.raw')).equals(data));

  // Deleting the image removes its object from the bucket.
  ok(await glance(['image-delete', id]));
  assert.ok(!(await bucketKeys()).some((k) => k.includes(id)), 'the S3 object went with the image');
});

test(
  'glance image-create-via-import --file --stores cheap,s3: imported into both (the CLI needs `stores` in the image schema)',
  { timeout: 120_000 },
  async () => {
    const data = randomBytes(2 * 1024 * 1024 + 5);
    const file = path.join(work, 'via-import.raw');
    writeFileSync(file, data);
    const created = ok(
      await glance([
        'image-create-via-import',
        '--import-method',
        'glance-direct',
        '--file',
        file,
        '--stores',
        'cheap,s3',
        '--disk-format',
        'raw',
        '--container-format',
        'bare',
        '--name',
        'via-import-stores',
      ]),
    );
    const id = parsePropertyTable(created).id;
    const image = await settled(id);
    assertData(image, data);
    assert.equal(image.stores, 'cheap,s3');
    assert.deepEqual((await imageTasks(id))[0]?.input?.backend, ['cheap', 's3']);
    assert.ok((await objectOf(id)).equals(data), 'the S3 object holds the image');
    ok(await glance(['image-delete', id]));
  },
);
