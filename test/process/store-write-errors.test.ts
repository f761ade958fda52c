// A store write the system refuses: a file size limit (EFBIG, here the process's ulimit -f) is a full
// store, as glance_store says it: 413 "Image storage media is full" for an upload and for a stage (the
// stage answered 500), and the image goes back to queued with nothing partial kept.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchGaze, startGazeInProcess, writeConfig } from '../helpers/gaze.ts';
import { freePort } from '../helpers/keystone.ts';
import { client } from '../helpers/http.ts';

test('a write beyond the file size limit: 413 for an upload and a stage, the images queued, no partial file', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-efbig-'));
  try {
    const port = await freePort();
    const gaze = await launchGaze({ args: ['--config', writeConfig(dir, port, {})], cwd: dir, port, fileSizeLimitKiB: 1024 });
    try {
      const api = client(gaze.url);
      const data = Buffer.alloc(3 << 20, 9);
      for (const route of ['file', 'stage']) {
        const image = await api.createImage({ name: `too-big-${route}`, disk_format: 'raw', container_format: 'bare' });
        const res = await api.call('PUT', `/v2/images/${image.id}/${route}`, {
          body: data,
          headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
        });
        assert.equal(res.status, 413, `${route}: ${res.text}`);
        assert.match(res.json.message, /^Image storage media is full: /, route);
        assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued', route);
      }
      assert.deepEqual(readdirSync(path.join(dir, 'data', 'images')), []);
      assert.deepEqual(
        readdirSync(path.join(dir, 'data', 'staging')).filter((f) => !f.startsWith('.')),
        [],
      );
    } finally {
      await gaze.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a staging directory that can never be made (under a file): a stage is 410, as an upload to such a store, not a 500', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-stage-refused-'));
  writeFileSync(path.join(dir, 'a-file'), 'x');
  const gaze = await startGazeInProcess({ DEFAULT: { node_staging_uri: `file://${dir}/a-file/staging` } });
  try {
    const api = client(gaze.url);
    const image = await api.createImage({ name: 'stage-refused' });
    const res = await api.call('PUT', `/v2/images/${image.id}/stage`, {
      body: Buffer.alloc(1000),
      headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
    });
    assert.equal(res.status, 410, res.text);
    assert.match(res.json.message, /^Error in store configuration\. Adding images to store is disabled\./);
    assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued');
  } finally {
    await gaze.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
