// glance-direct without a second copy: data staged on the same filesystem as a file store is digested
// and inspected while it is staged, and the import gives the store that very file (a hard link). What
// an import checks must hold all the same (the claimed format, an expected digest); and
// where the file cannot be linked (staging on another filesystem) or was rewritten, the bytes are copied.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

const started: Array<{ stop(): Promise<void> }> = [];
after(async () => {
  for (const g of started) await g.stop();
});

async function gazeWith(sections: Record<string, Record<string, string>> = {}) {
  const gaze = await startGazeInProcess(sections);
  started.push(gaze);
  const api = client(gaze.url);
  const stage = (id: string, data: Buffer) => api.put(`/v2/images/${id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } });
  const importDirect = (id: string) => api.post(`/v2/images/${id}/import`, { method: { name: 'glance-direct' } });
  const settled = async (id: string) => {
    for (let i = 0; i < 400; i++) {
      const img = (await api.get(`/v2/images/${id}`)).json;
      if (!('os_glance_import_task' in img) && ['active', 'queued'].includes(img.status)) return img;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`import of ${id} did not settle`);
  };
  const lastTask = async (id: string) => (await api.get(`/v2/images/${id}/tasks`)).json.tasks[0];
  return { gaze, api, stage, importDirect, settled, lastTask };
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');

test('same filesystem: the stored file is the staged file (no copy), with the digests and the inspected virtual size', async () => {
  const { gaze, api, stage, importDirect, settled } = await gazeWith();
  const data = randomBytes(3 * 1024 * 1024 + 7);
  const img = await api.createImage({ name: 'no-copy' });
  assert.equal((await stage(img.id, data)).status, 204);
  const stagedInode = statSync(path.join(gaze.dir, 'data', 'staging', img.id)).ino;
  assert.equal((await importDirect(img.id)).status, 202);
  const done = await settled(img.id);
  assert.equal(done.status, 'active');
  assert.equal(done.size, data.length);
  assert.equal(done.virtual_size, data.length);
  assert.equal(done.checksum, md5(data));
  assert.equal(done.os_hash_value, sha512(data));
  const stored = path.join(gaze.dir, 'data', 'images', img.id);
  assert.equal(statSync(stored).ino, stagedInode, 'the store holds the staged file itself');
  assert.equal(statSync(stored).nlink, 1, 'and the staging name is gone');
  assert.ok(!existsSync(path.join(gaze.dir, 'data', 'staging', img.id)));
  assert.ok(Buffer.from(await (await fetch(`${gaze.url}/v2/images/${img.id}/file`)).arrayBuffer()).equals(data));
});

test('the checks of an import hold on that path: the claimed format, an expected digest', async () => {
  const { gaze, api, stage, importDirect, settled, lastTask } = await gazeWith();
  // A qcow2 header staged under a claim of raw: refused, as a copied import would be.
  const qcow2 = Buffer.alloc(1024 * 1024);
  Buffer.from('QFI\xfb', 'latin1').copy(qcow2, 0);
  qcow2.writeUInt32BE(3, 4); // version
  qcow2.writeUInt32BE(16, 20); // cluster bits
  qcow2.writeBigUInt64BE(1n << 30n, 24); // virtual size
  qcow2.writeUInt32BE(104, 100); // header length (v3)
  const claimedRaw = await api.createImage({ name: 'claimed-raw', disk_format: 'raw' });
  assert.equal((await stage(claimedRaw.id, qcow2)).status, 204);
  await importDirect(claimedRaw.id);
  const refused = await settled(claimedRaw.id);
  assert.equal(refused.status, 'queued');
  // One store is no store by name: a failure lists none, as Glance's None is dropped from the list.
  assert.equal(refused.os_glance_failed_import, '');
  assert.match((await lastTask(claimedRaw.id)).message, /does not match|qcow2/);
  assert.ok(!existsSync(path.join(gaze.dir, 'data', 'images', claimedRaw.id)), 'nothing stored');
  const good = randomBytes(64 * 1024);
  assert.equal((await stage(claimedRaw.id, good)).status, 204);
  await importDirect(claimedRaw.id);
  const imported = await settled(claimedRaw.id);
  assert.deepEqual([imported.status, imported.os_glance_failed_import], ['active', '']);

  // An os_hash_value given at create that the data does not have.
  const data = randomBytes(64 * 1024);
  const wrongHash = await api.createImage({ name: 'wrong-hash', os_hash_algo: 'sha512', os_hash_value: sha512(Buffer.from('other')) });
  assert.ok(wrongHash.os_hash_value, 'the expected digest is kept at create');
  assert.equal((await stage(wrongHash.id, data)).status, 204);
  await importDirect(wrongHash.id);
  assert.equal((await settled(wrongHash.id)).status, 'queued');
  assert.match((await lastTask(wrongHash.id)).message, /sha512|hash|checksum/i);
  assert.ok(!existsSync(path.join(gaze.dir, 'data', 'images', wrongHash.id)), 'nothing stored');
});

test('staging on another filesystem than the store: the bytes are copied, and the result is the same', async (t) => {
  if (!existsSync('/dev/shm')) return t.skip('no /dev/shm here');
  const stagingDir = mkdtempSync('/dev/shm/gaze-staging-');
  try {
    if (statSync(stagingDir).dev === statSync(path.dirname(import.meta.dirname)).dev) return t.skip('/dev/shm is not another filesystem here');
    const { gaze, api, stage, importDirect, settled } = await gazeWith({ DEFAULT: { node_staging_uri: `file://${stagingDir}` } });
    const data = randomBytes(2 * 1024 * 1024 + 3);
    const img = await api.createImage({ name: 'copied' });
    assert.equal((await stage(img.id, data)).status, 204);
    const stagedInode = statSync(path.join(stagingDir, img.id)).ino;
    await importDirect(img.id);
    const done = await settled(img.id);
    assert.equal(done.status, 'active');
    assert.equal(done.checksum, md5(data));
    assert.equal(done.os_hash_value, sha512(data));
    const stored = statSync(path.join(gaze.dir, 'data', 'images', img.id));
    assert.equal(stored.size, data.length);
    assert.notEqual(stored.ino, stagedInode);
    assert.ok(!existsSync(path.join(stagingDir, img.id)), 'staged data removed');
  } finally {
    rmSync(stagingDir, { recursive: true, force: true });
  }
});
