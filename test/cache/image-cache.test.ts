// The cache's files and index on a real directory: fills that become entries only when whole and right,
// one fill per image, fills given up by an evict, the queue, LRU pruning, the sweep of stalled fills,
// invalid copies and unindexed files, and `gaze cache delete`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ImageCache } from '../../src/cache/image-cache.ts';
import { CacheIndex } from '../../src/cache/cache-index.ts';
import { runCacheCommand } from '../../src/cache/command.ts';
import type { ImagesRepo } from '../../src/db/repos/images.ts';
import { closeHashWorkers } from '../../src/ingest/hashing.ts';

let dir: string;
let cache: ImageCache;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const id = () => crypto.randomUUID();
const bytes = async (stream: Readable) => Buffer.concat(await stream.toArray());

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gaze-cache-'));
  cache = new ImageCache(dir);
});
after(async () => {
  cache.close();
  rmSync(dir, { recursive: true, force: true });
  await closeHashWorkers();
});

async function fill(imageId: string, data: Buffer, checksum: string | null = md5(data), size = data.length): Promise<boolean> {
  const f = cache.beginFill({ id: imageId, size, checksum });
  assert.ok(f);
  return (await f.consume(Readable.from([data]), new AbortController().signal)) === 'kept';
}

test('a fill becomes an entry only with the right size and md5; a wrong one lands in invalid/, not in the cache', async () => {
  const data = randomBytes(100_000);
  const good = id();
  assert.equal(await fill(good, data), true);
  assert.equal(await cache.holds({ id: good, size: data.length, checksum: md5(data) }), true);
  assert.deepEqual(await bytes((await cache.read(good, { start: 10, end: 19 }))!), data.subarray(10, 20));
  assert.equal(cache.list().find((e) => e.image_id === good)?.hits, 1);

  const wrong = id();
  assert.equal(await fill(wrong, data, md5(Buffer.from('other'))), false);
  assert.equal(cache.isCached(wrong), false);
  assert.ok(existsSync(path.join(dir, 'invalid', wrong)));
  const short = id();
  assert.equal(await fill(short, data, null, data.length + 1), false);
  assert.equal(cache.isCached(short), false);

  // An entry whose image now says something else is evicted, not served.
  assert.equal(await cache.holds({ id: good, size: data.length, checksum: md5(Buffer.from('changed')) }), false);
  assert.equal(cache.isCached(good), false);
  assert.equal(existsSync(path.join(dir, good)), false);
});

test('one fill per image at a time: a second begins only once the first is over', async () => {
  const image = id();
  const first = cache.beginFill({ id: image, size: 10, checksum: null });
  assert.ok(first);
  assert.equal(cache.beginFill({ id: image, size: 10, checksum: null }), null);
  first.abandon();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(readdirSync(path.join(dir, 'incomplete')), []);
  const again = cache.beginFill({ id: image, size: 10, checksum: null });
  assert.ok(again);
  again.abandon();
});

test('prune evicts the least recently used entries first, down to the size asked', async () => {
  await cache.clearCached();
  const [a, b, c] = [id(), id(), id()];
  for (const image of [a, b, c]) assert.equal(await fill(image, randomBytes(1000)), true);
  (await cache.read(a))!.destroy(); // a hit: a is now the most recently used
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await cache.prune(2000), [b]);
  assert.equal(cache.totalSize(), 2000);
  assert.deepEqual(
    cache
      .list()
      .map((e) => e.image_id)
      .sort(),
    [a, c].sort(),
  );
});

test('sweep removes stalled fills, invalid copies and old files the index does not know; fresh ones stay', async () => {
  const old = (file: string) => utimesSync(file, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
  const stalled = path.join(dir, 'incomplete', id());
  const fresh = path.join(dir, 'incomplete', id());
  const invalid = path.join(dir, 'invalid', id());
  const unknown = path.join(dir, id());
  const justPlaced = path.join(dir, id());
  for (const file of [stalled, fresh, invalid, unknown, justPlaced]) writeFileSync(file, 'x');
  old(stalled);
  old(unknown);
  const swept = await cache.sweep(60_000);
  assert.ok(swept.stalled >= 1 && swept.invalid >= 1 && swept.unknown >= 1, JSON.stringify(swept));
  assert.deepEqual(
    [stalled, fresh, invalid, unknown, justPlaced].map((f) => existsSync(f)),
    [false, true, false, false, true],
  );
  rmSync(fresh);
  rmSync(justPlaced);
});

test('evicting an image gives up its fill under way: the copy never lands, and its image may be filled again', async () => {
  const data = randomBytes(50_000);
  const image = id();
  const filling = cache.beginFill({ id: image, size: data.length, checksum: md5(data) });
  assert.ok(filling);
  filling.offer(data.subarray(0, 20_000));
  assert.equal(await cache.evict(image), false, 'nothing was cached yet');
  filling.offer(data.subarray(20_000));
  assert.equal(await filling.finish(), 'dropped');
  assert.equal(cache.isCached(image), false);
  assert.equal(existsSync(path.join(dir, image)), false);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(readdirSync(path.join(dir, 'incomplete')), []);
  assert.equal(await fill(image, data), true, 'a later fill is not given up by the evict before it');
  assert.equal(cache.isCached(image), true);
});

test('a fill that lands takes its image off the queue, and a cached image is not queued again', async () => {
  const data = randomBytes(5000);
  const image = id();
  cache.queue(image);
  assert.equal(await fill(image, data), true);
  assert.equal(cache.queued().includes(image), false);
  cache.queue(image);
  assert.equal(cache.queued().includes(image), false);
});

test('gaze cache delete of an image both cached and queued (queued by another process as it landed) removes both', async () => {
  const data = randomBytes(5000);
  const image = id();
  assert.equal(await fill(image, data), true);
  const other = new CacheIndex(path.join(dir, 'cache.db'));
  other.queue(image);
  other.close();
  const lines: string[] = [];
  const opts = { dir, database: 'cache.db', maxBytes: 1e9, stallSeconds: 60, images: {} as ImagesRepo, print: (l: string) => lines.push(l) };
  await runCacheCommand('delete', [image], undefined, opts);
  assert.deepEqual(lines, [`gaze: image ${image} removed from the cache`]);
  assert.equal(cache.isCached(image), false);
  assert.equal(cache.queued().includes(image), false, 'not fetched again by the prefetcher');
});

test("sweep leaves the index's own files alone, even under a name an image id could have", async () => {
  const hexDir = mkdtempSync(path.join(tmpdir(), 'gaze-cache-'));
  const named = new ImageCache(hexDir, 'db');
  try {
    named.queue(id());
    const old = new Date(Date.now() - 3_600_000);
    for (const name of readdirSync(hexDir)) if (name.startsWith('db')) utimesSync(path.join(hexDir, name), old, old);
    const swept = await named.sweep(60_000);
    assert.equal(swept.unknown, 0);
    assert.ok(existsSync(path.join(hexDir, 'db')));
    assert.equal(named.queued().length, 1);
  } finally {
    named.close();
    rmSync(hexDir, { recursive: true, force: true });
  }
});

test('the queue keeps its order and each id once', () => {
  const [a, b] = [id(), id()];
  cache.queue(a);
  cache.queue(b);
  cache.queue(a);
  assert.deepEqual(cache.queued(), [a, b]);
  assert.equal(cache.dequeue(a), true);
  assert.equal(cache.clearQueued(), 1);
  assert.deepEqual(cache.queued(), []);
});

test('a copy evicted after holds() looked is no stream (the download goes to the store), and no hit', async () => {
  const data = randomBytes(5000);
  const gone = id();
  assert.equal(await fill(gone, data), true);
  assert.equal(await cache.holds({ id: gone, size: data.length, checksum: md5(data) }), true);
  await cache.evict(gone);
  assert.equal(await cache.read(gone), null);
  // Opened before anything is answered: a copy removed while it is read is still read whole.
  const kept = id();
  assert.equal(await fill(kept, data), true);
  const reading = (await cache.read(kept))!;
  await cache.evict(kept);
  assert.deepEqual(await bytes(reading), data);
});
