// A file store's options through the API: on two filesystems of one priority (filesystem_store_datadirs)
// data goes to the one with more free space, which need not be the first listed, and the image's
// location names where it went, so it downloads and its delete removes it; with thin provisioning,
// zeros take no space and the digests are those of the whole data.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statfsSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
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

test('filesystem_thin_provisioning: the zeros of an upload are holes in the file; the size, digests and download are the whole data', async () => {
  const gaze = await startGazeInProcess({ glance_store: { filesystem_thin_provisioning: 'True' } });
  try {
    const api = client(gaze.url);
    const image = await api.createImage({ name: 'mostly zeros' });
    const data = Buffer.concat([randomBytes(100_000), Buffer.alloc(8 << 20), randomBytes(100_000), Buffer.alloc(2 << 20)]);
    assert.equal((await api.upload(image.id, data)).status, 204);
    const shown = (await api.get(`/v2/images/${image.id}`)).json;
    assert.equal(shown.size, data.length);
    assert.equal(shown.checksum, createHash('md5').update(data).digest('hex'));
    assert.equal(shown.os_hash_value, createHash('sha512').update(data).digest('hex'));
    const file = statSync(path.join(gaze.dir, 'data', 'images', image.id));
    assert.equal(file.size, data.length);
    assert.ok(file.blocks * 512 < 2 << 20, `${file.blocks * 512} bytes allocated for ${data.length}`);
    const download = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(data));

    // glance-direct: the staged file (not sparse) is written into the store, not linked, so its zeros go too.
    const staged = await api.createImage({ name: 'staged zeros' });
    assert.equal((await api.put(`/v2/images/${staged.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    assert.equal((await api.post(`/v2/images/${staged.id}/import`, { method: { name: 'glance-direct' } })).status, 202);
    for (let i = 0; i < 200 && (await api.get(`/v2/images/${staged.id}`)).json.status !== 'active'; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await api.get(`/v2/images/${staged.id}`)).json.checksum, createHash('md5').update(data).digest('hex'));
    const imported = statSync(path.join(gaze.dir, 'data', 'images', staged.id));
    assert.equal(imported.size, data.length);
    assert.ok(imported.blocks * 512 < 2 << 20, `${imported.blocks * 512} bytes allocated for ${data.length}`);
  } finally {
    await gaze.stop();
  }
});
