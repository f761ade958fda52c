import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { startGazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { startFileServer, trickle } from '../helpers/file-server.ts';
import { until } from '../helpers/wait.ts';

// Kill -9 in the middle of an import, start again: the import completes or fails cleanly, and nothing
// is left behind (no image stuck importing, no lock held, no staged file).

async function killMidImportAndRestart(start: (api: ReturnType<typeof client>, sections: any) => Promise<string>, sections: any, waitForImporting = true) {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-import-restart-'));
  try {
    const first = await startGazeProcess(sections, { dir });
    const id = await start(client(first.url), sections);
    if (waitForImporting)
      await until(async () => ((await client(first.url).get(`/v2/images/${id}`)).json.status === 'importing' ? true : undefined), 'importing');
    await first.kill('SIGKILL');

    const second = await startGazeProcess(sections, { dir, port: first.port });
    try {
      const api = client(second.url);
      const image = await until(async () => {
        const img = (await api.get(`/v2/images/${id}`)).json;
        return ['active', 'queued'].includes(img.status) && !('os_glance_import_task' in img) ? img : undefined;
      }, 'the import to settle after the restart');
      const [task] = (await api.get(`/v2/images/${id}/tasks`)).json.tasks;
      assert.ok(['success', 'failure'].includes(task.status), `task ended (${task.status}: ${task.message})`);
      assert.equal(task.status === 'success', image.status === 'active', 'task and image agree');
      assert.deepEqual(readdirSync(path.join(dir, 'data', 'staging')), [], 'no staged data left');
      return { image, task };
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('kill -9 during a web-download: after the restart the import is resumed and completes', async () => {
  const files = await startFileServer();
  files.routes.set('/slow', trickle(3_000_000, 40, 128 * 1024));
  try {
    const { image, task } = await killMidImportAndRestart(
      async (api) => {
        const img = await api.createImage({ name: 'restart-web' });
        assert.equal(
          (await api.call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'web-download', uri: files.url('/slow') } } })).status,
          202,
        );
        return img.id;
      },
      { import_filtering_opts: { allowed_ports: `80,443,${files.port}`, allowed_hosts: '127.0.0.1' } },
    );
    assert.equal(task.status, 'success');
    assert.equal(image.status, 'active');
    assert.equal(image.size, 3_000_000);
  } finally {
    await files.close();
  }
});

test('kill -9 right after a glance-direct import starts: after the restart the image is active or cleanly queued', async () => {
  const data = randomBytes(48 * 1024 * 1024);
  const { image } = await killMidImportAndRestart(
    async (api) => {
      const img = await api.createImage({ name: 'restart-direct' });
      const staged = await api.put(`/v2/images/${img.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(staged.status, 204);
      assert.equal((await api.call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'glance-direct' } } })).status, 202);
      return img.id;
      // An import of staged data on the store's filesystem takes milliseconds: the kill lands right
      // after the 202, at whatever point the import reached.
    },
    {},
    false,
  );
  // The staged data survives the kill, so whatever point the import reached, it is finished.
  assert.equal(image.status, 'active');
  assert.equal(image.size, data.length);
  assert.equal(image.checksum, createHash('md5').update(data).digest('hex'));
});

test(
  'three stops of the service (SIGTERM) in the middle of a web-download use up none of its attempts: the fourth start completes it',
  { timeout: 180_000 },
  async () => {
    const files = await startFileServer();
    // Slow until the fourth download: each stop comes while one is under way.
    let downloads = 0;
    const slow = trickle(3_000_000, 100, 16 * 1024);
    files.routes.set('/disk', (res) => {
      downloads++;
      if (downloads <= 3) slow(res);
      else res.writeHead(200, { 'content-length': 3_000_000 }).end(Buffer.alloc(3_000_000, 7));
    });
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-import-stops-'));
    const sections = { import_filtering_opts: { allowed_ports: `80,443,${files.port}`, allowed_hosts: '127.0.0.1' } };
    try {
      let gaze = await startGazeProcess(sections, { dir });
      const port = gaze.port;
      const image = await client(gaze.url).createImage({ name: 'stopped-thrice' });
      assert.equal(
        (await client(gaze.url).call('POST', `/v2/images/${image.id}/import`, { json: { method: { name: 'web-download', uri: files.url('/disk') } } })).status,
        202,
      );
      for (let stop = 1; stop <= 3; stop++) {
        await until(() => (downloads === stop ? true : undefined), `download ${stop} under way`);
        await gaze.stop();
        assert.equal(gaze.child.exitCode, 0, gaze.output());
        gaze = await startGazeProcess(sections, { dir, port });
      }
      try {
        const api = client(gaze.url);
        const done = await until(async () => {
          const img = (await api.get(`/v2/images/${image.id}`)).json;
          return ['active', 'queued'].includes(img.status) ? img : undefined;
        }, 'the import to end');
        const [task] = (await api.get(`/v2/images/${image.id}/tasks`)).json.tasks;
        assert.deepEqual([done.status, done.size, task.status], ['active', 3_000_000, 'success'], task.message);
        assert.equal(downloads, 4);
      } finally {
        await gaze.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await files.close();
    }
  },
);
