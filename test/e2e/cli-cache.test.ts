// The image cache with the real glance CLI (python3-glanceclient 4.x: cache-list, cache-queue,
// cache-delete, cache-clear) against a `gaze serve` process with a cache, and the operator's
// `gaze cache` command on the same node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { ok, parsePropertyTable, parseTable, tokenGlance, type Glance } from '../helpers/cli.ts';
import { until } from '../helpers/wait.ts';

const run = promisify(execFile);
const gazeBin = fileURLToPath(new URL('../../bin/gaze.js', import.meta.url));

let gaze: GazeProcess;
let glance: Glance;
let work: string;
const data = randomBytes(1024 * 1024 + 5);

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gaze-cli-cache-'));
  gaze = await startGazeProcess({
    DEFAULT: { image_cache_dir: '__DIR__/cache', cache_prefetcher_interval: '1' },
    paste_deploy: { flavor: 'cachemanagement' },
  });
  glance = tokenGlance(gaze.url);
});
after(async () => {
  await gaze?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const cacheRows = async () => parseTable(ok(await glance(['cache-list'])));
const stateOf = async (id: string) => (await cacheRows()).find((r) => r.ID === id)?.State;
/** An active image of `data`, made with glance image-create --file. */
async function uploadedImage(name: string): Promise<string> {
  const file = path.join(work, `${name}.raw`);
  writeFileSync(file, data);
  return parsePropertyTable(ok(await glance(['image-create', '--name', name, '--disk-format', 'raw', '--container-format', 'bare', '--file', file]))).id!;
}
const gazeCache = async (...args: string[]) => (await run(process.execPath, [gazeBin, 'cache', ...args, '--config', path.join(gaze.dir, 'gaze.conf')])).stdout;

test('glance cache-queue has the prefetcher cache an image; cache-list shows it; cache-delete and cache-clear remove it', async () => {
  const id = await uploadedImage('cached');

  ok(await glance(['cache-queue', id]));
  await until(async () => ((await stateOf(id)) === 'cached' ? true : undefined), 'the prefetcher to cache the image');
  const row = (await cacheRows()).find((r) => r.ID === id)!;
  assert.equal(row.Size, String(data.length));
  assert.equal(row.Hits, '0');
  ok(await glance(['cache-delete', id]));
  assert.equal(await stateOf(id), undefined);

  const out = path.join(work, 'out.raw');
  ok(await glance(['image-download', '--file', out, id]));
  assert.deepEqual(readFileSync(out), data);
  await until(async () => ((await stateOf(id)) === 'cached' ? true : undefined), 'the download to fill the cache');
  ok(await glance(['image-download', '--file', out, id]));
  assert.deepEqual(readFileSync(out), data);
  assert.equal((await cacheRows()).find((r) => r.ID === id)?.Hits, '1', 'the second download was a hit');

  ok(await glance(['cache-clear', '--target', 'cache']));
  assert.deepEqual(await cacheRows(), []);
});

test("gaze cache lists, queues, prunes and clears the node's cache, as the running service sees it", async () => {
  const id = await uploadedImage('second');
  assert.match(await gazeCache('queue', id), new RegExp(`image ${id} queued for caching`));
  await until(async () => ((await stateOf(id)) === 'cached' ? true : undefined), 'the service to fetch what gaze cache queued');
  assert.match(await gazeCache('list'), new RegExp(`^${id}\tcached\t`, 'm'));
  assert.match(await gazeCache('prune'), /^gaze: 0 images pruned/);
  assert.match(await gazeCache('clear'), /^gaze: 1 cached and 0 queued images removed/);
  assert.deepEqual(await cacheRows(), []);
  await assert.rejects(gazeCache('queue', crypto.randomUUID()), /not found/);
});
