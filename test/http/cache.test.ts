// The image cache of a node: downloads served from it and filling it, its rules (only an active image's
// exact data, LRU size bound, eviction of deactivated and deleted images), the prefetcher, and the cache
// API of image API 2.14-2.16 with Glance's statuses and messages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, alice } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
const cacheDir = () => path.join(gaze.dir, 'cache');
const storeFile = (id: string) => path.join(gaze.dir, 'data', 'images', id);

before(async () => {
  gaze = await startGazeInProcess({
    DEFAULT: { image_cache_dir: '__DIR__/cache', cache_prefetcher_interval: '1' },
    paste_deploy: { flavor: 'cachemanagement' },
  });
  api = client(gaze.url);
});
after(() => gaze.stop());

async function uploaded(data: Buffer, fields: Record<string, unknown> = {}): Promise<string> {
  const image = await api.createImage({ name: 'cached', ...fields });
  assert.equal((await api.upload(image.id, data)).status, 204);
  return image.id;
}
const download = async (id: string, headers: Record<string, string> = {}) => {
  const r = await fetch(`${gaze.url}/v2/images/${id}/file`, { headers });
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
};
const state = async () => (await api.get('/v2/cache')).json as { cached_images: any[]; queued_images: string[] };
const cachedEntry = async (id: string) => (await state()).cached_images.find((e) => e.image_id === id);
const whenCached = (id: string) => until(cachedEntry.bind(null, id), `image ${id} in the cache`);

test('the version document lists the cache API versions when the cache is on', async () => {
  const ids = (await api.get('/versions')).json.versions.map((v: any) => `${v.id} ${v.status}`);
  assert.deepEqual(ids.slice(0, 4), ['v2.17 CURRENT', 'v2.16 SUPPORTED', 'v2.15 SUPPORTED', 'v2.14 SUPPORTED']);
});

test('a first download fills the cache; the next ones (and ranges) are served from it, even with the store gone', async () => {
  const data = randomBytes(700_000);
  const id = await uploaded(data);
  assert.deepEqual((await download(id)).body, data);
  const entry = await whenCached(id);
  assert.deepEqual([entry.size, entry.hits], [data.length, 0]);
  assert.ok(entry.last_modified > 0);
  assert.equal(entry.last_accessed, entry.last_modified, 'last accessed when it was cached, as in Glance (the CLI shows it)');

  rmSync(storeFile(id));
  assert.deepEqual((await download(id)).body, data, 'served from the cache');
  const part = await download(id, { range: 'bytes=100-199' });
  assert.equal(part.status, 206);
  assert.deepEqual(part.body, data.subarray(100, 200));
  const after = await cachedEntry(id);
  assert.equal(after.hits, 2);
  assert.ok(after.last_accessed > entry.last_accessed, 'a hit moves last_accessed on');
  assert.equal(after.last_modified, entry.last_modified);
});

test('a cached copy that does not match the image is never served: it is evicted and the store serves', async () => {
  const data = randomBytes(300_000);
  const id = await uploaded(data);
  await download(id);
  await whenCached(id);
  truncateSync(path.join(cacheDir(), id), 1000);
  assert.deepEqual((await download(id)).body, data);
  await whenCached(id); // filled again by that download, this time whole
  assert.equal(readdirSync(path.join(cacheDir(), 'incomplete')).length, 0);
});

test('deactivated and deleted images leave the cache and are not served from it', async () => {
  const data = randomBytes(200_000);
  const id = await uploaded(data);
  await download(id);
  await whenCached(id);
  assert.equal((await api.post(`/v2/images/${id}/actions/deactivate`)).status, 204);
  assert.equal(await cachedEntry(id), undefined);
  assert.equal(existsSync(path.join(cacheDir(), id)), false);
  assert.deepEqual((await download(id)).body, data, 'an admin still downloads it, from the store');
  assert.equal(await cachedEntry(id), undefined, 'and it is not cached again while deactivated');

  assert.equal((await api.post(`/v2/images/${id}/actions/reactivate`)).status, 204);
  await download(id);
  await whenCached(id);
  assert.equal((await api.del(`/v2/images/${id}`)).status, 204);
  assert.equal(await cachedEntry(id), undefined);
});

test('an image deleted or deactivated while a download fills the cache is not cached when that download ends', async () => {
  for (const end of ['delete', 'deactivate'] as const) {
    const data = randomBytes(8_000_000);
    const id = await uploaded(data);
    const res = await fetch(`${gaze.url}/v2/images/${id}/file`);
    const reader = res.body!.getReader();
    const first = await reader.read(); // the client holds the rest back: the fill is under way
    const ended = end === 'delete' ? await api.del(`/v2/images/${id}`) : await api.post(`/v2/images/${id}/actions/deactivate`);
    assert.equal(ended.status, 204);
    const rest: Uint8Array[] = [first.value!];
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest.push(chunk.value);
    assert.deepEqual(Buffer.concat(rest), data, 'the download under way still gets its bytes');
    await until(async () => (readdirSync(path.join(cacheDir(), 'incomplete')).length === 0 ? true : undefined), 'the fill to end');
    assert.equal(await cachedEntry(id), undefined, `${end}: no entry`);
    assert.equal(existsSync(path.join(cacheDir(), id)), false, `${end}: no file`);
  }
});

test('a download that fills the cache from store data that is not the image (same size) is cut off before its end', async () => {
  const data = randomBytes(600_000);
  const id = await uploaded(data);
  const changed = Buffer.from(data);
  changed.write('XXXX', 300_000);
  writeFileSync(storeFile(id), changed);
  const res = await fetch(`${gaze.url}/v2/images/${id}/file`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), String(data.length));
  await assert.rejects(res.arrayBuffer(), 'the client sees a broken transfer, not a whole 200');
  assert.equal(await cachedEntry(id), undefined);
  const refused = path.join(cacheDir(), 'invalid', id);
  assert.ok(existsSync(refused), 'the copy was refused');
  rmSync(refused); // the periodic sweep's job; the next tests expect invalid/ empty
  // A good copy of the image downloads whole again and fills the cache.
  writeFileSync(storeFile(id), data);
  assert.deepEqual((await download(id)).body, data);
  await whenCached(id);
});

test('concurrent misses of one image fill the cache once, and every reader gets the whole image', async () => {
  const data = randomBytes(2_000_000);
  const id = await uploaded(data);
  const bodies = await Promise.all([download(id), download(id), download(id), download(id)]);
  for (const { body } of bodies) assert.deepEqual(body, data);
  await whenCached(id);
  assert.deepEqual(readdirSync(path.join(cacheDir(), 'invalid')), []);
  assert.deepEqual(readdirSync(path.join(cacheDir(), 'incomplete')), []);
});

test('PUT /v2/cache/{id} queues an active image and the prefetcher caches it; DELETE removes it', async () => {
  const data = randomBytes(150_000);
  const id = await uploaded(data);
  const queued = await api.put(`/v2/cache/${id}`);
  assert.equal(queued.status, 202);
  await whenCached(id);
  assert.ok(!(await state()).queued_images.includes(id));

  assert.equal((await api.del(`/v2/cache/${id}`)).status, 204);
  assert.equal(await cachedEntry(id), undefined);
  assert.equal(existsSync(path.join(cacheDir(), id)), false);

  const waiting = await api.createImage({ name: 'no data' });
  expectError(await api.put(`/v2/cache/${waiting.id}`, { headers: JSON_ACCEPT }), 400, 'Only images with status active can be targeted for queueing');
  const unknown = crypto.randomUUID();
  expectError(await api.put(`/v2/cache/${unknown}`, { headers: JSON_ACCEPT }), 404, `Image ${unknown} not found.`);
  // Glance's cache controller reads a body first (and has no use for it).
  for (const [method, path] of [
    ['PUT', `/v2/cache/${unknown}`],
    ['DELETE', `/v2/cache/${unknown}`],
    ['DELETE', '/v2/cache'],
  ]) {
    expectError(
      await api.call(method!, path!, { body: '{', headers: { 'content-type': 'application/json', ...JSON_ACCEPT } }),
      400,
      'Malformed JSON in request body.',
    );
  }
  expectError(await api.del(`/v2/cache/${unknown}`, { headers: JSON_ACCEPT }), 404, `Image ${unknown} not found.`);
});

test('the cache API is for admins; DELETE /v2/cache clears the cache, the queue or both', async () => {
  const id = await uploaded(randomBytes(10_000), { visibility: 'public' });
  // Glance's policy layer words it (its cache controller's bare HTTPForbidden is never reached).
  expectError(await api.get('/v2/cache', { as: alice, headers: JSON_ACCEPT }), 403, 'You are not authorized to complete cache_list action.');
  expectError(await api.put(`/v2/cache/${id}`, { as: alice, headers: JSON_ACCEPT }), 403, 'You are not authorized to complete cache_image action.');
  expectError(await api.del('/v2/cache', { as: alice, headers: JSON_ACCEPT }), 403, 'You are not authorized to complete cache_delete action.');
  expectError(
    await api.del('/v2/cache', { headers: { 'x-image-cache-clear-target': 'everything', ...JSON_ACCEPT } }),
    400,
    "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.",
  );

  await download(id);
  await whenCached(id);
  assert.equal((await api.del('/v2/cache', { headers: { 'x-image-cache-clear-target': 'queue' } })).status, 204);
  assert.ok(await cachedEntry(id), 'clearing the queue leaves the cache');
  assert.equal((await api.del('/v2/cache')).status, 204);
  assert.deepEqual(await state(), { cached_images: [], queued_images: [] });
});

test('image_cache_max_size: the least recently used images are pruned after a fill', async () => {
  const small = await startGazeInProcess({
    DEFAULT: { image_cache_dir: '__DIR__/cache', image_cache_max_size: '250000' },
    paste_deploy: { flavor: 'caching' },
  });
  try {
    const c = client(small.url);
    const ids: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      const image = await c.createImage({ name });
      assert.equal((await c.upload(image.id, randomBytes(100_000))).status, 204);
      ids.push(image.id);
    }
    const [a, b, cId] = ids as [string, string, string];
    const cachedIds = async () => ((await c.get('/v2/cache')).json.cached_images as any[]).map((e) => e.image_id).sort();
    for (const id of [a, b]) {
      await fetch(`${small.url}/v2/images/${id}/file`).then((r) => r.arrayBuffer());
      await until(async () => ((await cachedIds()).includes(id) ? true : undefined), `${id} cached`);
    }
    await fetch(`${small.url}/v2/images/${a}/file`).then((r) => r.arrayBuffer()); // a is now the more recently used
    await fetch(`${small.url}/v2/images/${cId}/file`).then((r) => r.arrayBuffer());
    await until(async () => ((await cachedIds()).includes(cId) ? true : undefined), 'c cached');
    assert.deepEqual(await cachedIds(), [a, cId].sort());
  } finally {
    await small.stop();
  }
});

test('without image_cache_dir the cache API answers as Glance: 403 for non-admins, then 404', async () => {
  const plain = await startGazeInProcess({});
  try {
    const c = client(plain.url);
    expectError(await c.get('/v2/cache', { headers: JSON_ACCEPT }), 404, 'Caching via API is not supported at this site.');
    expectError(await c.get('/v2/cache', { as: alice, headers: JSON_ACCEPT }), 403, 'You are not authorized to complete cache_list action.');
    assert.ok(!(await c.get('/versions')).json.versions.some((v: any) => v.id === 'v2.16'));
  } finally {
    await plain.stop();
  }
  await assert.rejects(startGazeInProcess({ paste_deploy: { flavor: 'caching' } }), /image_cache_dir/);
});

test('a client that goes away mid-download leaves no partial copy; the next download fills the cache', async () => {
  const data = randomBytes(8_000_000);
  const id = await uploaded(data);
  const controller = new AbortController();
  const res = await fetch(`${gaze.url}/v2/images/${id}/file`, { signal: controller.signal });
  const reader = res.body!.getReader();
  await reader.read();
  controller.abort();
  await until(async () => (readdirSync(path.join(cacheDir(), 'incomplete')).length === 0 ? true : undefined), 'the partial copy to go');
  assert.equal(await cachedEntry(id), undefined);
  assert.deepEqual((await download(id)).body, data);
  await whenCached(id);
});
