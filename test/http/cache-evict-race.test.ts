// A cached copy evicted between the check that the cache holds it and the open (a prune after another
// image's fill, DELETE /v2/cache/{id}, another process's `gaze cache clear`): the download is served
// from the store, never a 500. The eviction is made to land right after the check's stat.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';

const require = createRequire(import.meta.url);
const fsp = require('node:fs/promises');

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess({
    DEFAULT: { image_cache_dir: '__DIR__/cache', cache_prefetcher_interval: '1' },
    paste_deploy: { flavor: 'cachemanagement' },
  });
  api = client(gaze.url);
});
after(() => gaze.stop());

test('a cached copy evicted between the check and the open: the download is served from the store', async () => {
  const data = randomBytes(300_000);
  const { id } = await api.createImage({ name: 'cached' });
  assert.equal((await api.upload(id, data)).status, 204);
  await (await fetch(`${gaze.url}/v2/images/${id}/file`)).arrayBuffer();
  await until(async () => ((await api.get('/v2/cache')).json.cached_images.some((e: any) => e.image_id === id) ? true : undefined), 'cached');

  const origStat = fsp.stat;
  let armed = true;
  fsp.stat = async function (this: unknown, p: unknown, ...rest: unknown[]) {
    const result = await origStat.call(this, p, ...rest);
    if (armed && String(p).endsWith(path.join('cache', id))) {
      armed = false;
      rmSync(String(p)); // an eviction right after holds() looked
    }
    return result;
  };
  syncBuiltinESMExports();
  let status: number;
  let body: Buffer;
  try {
    const r = await fetch(`${gaze.url}/v2/images/${id}/file`);
    status = r.status;
    body = Buffer.from(await r.arrayBuffer());
  } finally {
    fsp.stat = origStat;
    syncBuiltinESMExports();
  }
  assert.equal(armed, false, 'the simulated eviction ran');
  assert.equal(status, 200, `got ${status}: ${body.subarray(0, 200).toString()}`);
  assert.deepEqual(body, data);
});
