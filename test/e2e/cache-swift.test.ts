// The image cache in front of a real Swift store: once an image is cached, its downloads no longer
// touch the object store, which is shown by stopping Swift and downloading again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { startSwift, swiftStoreOptions, type RunningSwift } from '../helpers/swift.ts';
import { client } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';

let swift: RunningSwift;
let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;

before(
  async () => {
    swift = await startSwift();
    gaze = await startGazeInProcess({
      DEFAULT: { image_cache_dir: '__DIR__/cache' },
      paste_deploy: { flavor: 'caching' },
      glance_store: { default_store: 'swift', ...swiftStoreOptions(swift, 'cached') },
    });
    api = client(gaze.url);
  },
  { timeout: 180_000 },
);
after(async () => {
  await gaze?.stop();
  await swift?.stop();
});

test('a cached image downloads with Swift stopped; an uncached one cannot', async () => {
  const cachedData = randomBytes(3 * 1024 * 1024 + 1);
  const cached = await api.createImage({ name: 'cached' });
  assert.equal((await api.upload(cached.id, cachedData)).status, 204);
  const other = await api.createImage({ name: 'not cached' });
  assert.equal((await api.upload(other.id, randomBytes(1000))).status, 204);
  assert.deepEqual(await swift.listContainer('cached'), [cached.id, other.id].sort());

  const first = await fetch(`${gaze.url}/v2/images/${cached.id}/file`);
  assert.deepEqual(Buffer.from(await first.arrayBuffer()), cachedData);
  await until(
    async () => (((await api.get('/v2/cache')).json.cached_images as any[]).some((e) => e.image_id === cached.id) ? true : undefined),
    'the cache fill',
  );

  await swift.stop();
  const second = await fetch(`${gaze.url}/v2/images/${cached.id}/file`);
  assert.equal(second.status, 200);
  assert.deepEqual(Buffer.from(await second.arrayBuffer()), cachedData);
  const part = await fetch(`${gaze.url}/v2/images/${cached.id}/file`, { headers: { range: 'bytes=1048576-1048675' } });
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), cachedData.subarray(1048576, 1048676));
  const uncached = await fetch(`${gaze.url}/v2/images/${other.id}/file`);
  await uncached.arrayBuffer();
  assert.ok(uncached.status >= 500, `the store is really down: ${uncached.status}`);
});
