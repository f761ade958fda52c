// A file store on two filesystems of one priority (filesystem_store_datadirs): data goes to the one
// with more free space, which need not be the first listed, and the image's location names where it
// went, so it downloads and its delete removes it.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

const dirs = ['/dev/shm', tmpdir()].map((base) => mkdtempSync(path.join(base, 'gaze-datadirs-')));
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

test('an upload lands in the directory with more free space, listed second; it downloads and its delete removes it', async (t) => {
  const free = dirs.map((d) => ((s) => s.bavail * s.bsize)(statfsSync(d)));
  if (Math.abs(free[0]! - free[1]!) < 64 * 1024 * 1024) return t.skip(`/dev/shm and ${tmpdir()} have the same free space here`);
  // The fuller filesystem first: the choice, not the order, must decide.
  const [fuller, emptier] = free[0]! < free[1]! ? [dirs[0]!, dirs[1]!] : [dirs[1]!, dirs[0]!];
  const gaze = await startGazeInProcess({ glance_store: { filesystem_store_datadirs: `${fuller}:5\n${emptier}:5` } });
  try {
    const api = client(gaze.url);
    const image = await api.createImage({ name: 'on the emptier disk' });
    const data = randomBytes(300_000);
    assert.equal((await api.upload(image.id, data)).status, 204);
    assert.deepEqual(readdirSync(emptier), [image.id]);
    assert.deepEqual(readdirSync(fuller), []);
    const download = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
    assert.equal(download.status, 200);
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(data));

    // glance-direct: the staged file is taken into the store the same way.
    const staged = await api.createImage({ name: 'staged' });
    const stagedData = randomBytes(200_000);
    assert.equal((await api.put(`/v2/images/${staged.id}/stage`, { body: stagedData, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    assert.equal((await api.post(`/v2/images/${staged.id}/import`, { method: { name: 'glance-direct' } })).status, 202);
    for (let i = 0; i < 200 && (await api.get(`/v2/images/${staged.id}`)).json.status !== 'active'; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await api.get(`/v2/images/${staged.id}`)).json.status, 'active');
    assert.ok(existsSync(path.join(emptier, staged.id)));
    const stagedDownload = await fetch(`${gaze.url}/v2/images/${staged.id}/file`);
    assert.ok(Buffer.from(await stagedDownload.arrayBuffer()).equals(stagedData));

    assert.equal((await api.del(`/v2/images/${image.id}`)).status, 204);
    assert.ok(!existsSync(path.join(emptier, image.id)), 'the delete removed the data where it was');
  } finally {
    await gaze.stop();
  }
});
