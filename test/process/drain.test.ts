// A node leaving a load balancer: /healthcheck answers 503 while the disable file exists (oslo.middleware's
// disable_by_file_path) and, after SIGTERM, for drain_seconds while every other request is still served;
// then the process stops accepting and exits cleanly. A request that does not end (a stalled upload) holds
// the stop for graceful_shutdown_timeout at most; its image is queued again at the next start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess } from '../helpers/gaze.ts';
import { until } from '../helpers/wait.ts';
import { client, stalledUpload } from '../helpers/http.ts';

test('healthcheck: 503 with the disable file, 503 DRAINING after SIGTERM while the API still answers, then a clean exit', async () => {
  const gaze = await startGazeProcess({ DEFAULT: { drain_seconds: '3' }, healthcheck: { disable_by_file_path: '__DIR__/healthcheck_disable' } });
  try {
    const health = async () => {
      const r = await fetch(`${gaze.url}/healthcheck`);
      return `${r.status} ${await r.text()}`;
    };
    assert.equal(await health(), '200 OK');
    const disable = path.join(gaze.dir, 'healthcheck_disable');
    writeFileSync(disable, '');
    assert.equal(await health(), '503 DISABLED BY FILE');
    rmSync(disable);
    assert.equal(await health(), '200 OK');

    const exited = new Promise<number | null>((resolve) => gaze.child.once('exit', (code) => resolve(code)));
    const signalled = Date.now();
    gaze.child.kill('SIGTERM');
    await until(async () => ((await health()) === '503 DRAINING' ? true : undefined), 'the node to drain', 2000);
    assert.equal((await fetch(`${gaze.url}/v2/images`)).status, 200, 'requests are still served while draining');
    assert.equal(await exited, 0);
    assert.ok(Date.now() - signalled >= 2500, 'it waited out drain_seconds');
    await assert.rejects(fetch(`${gaze.url}/healthcheck`), 'and then stopped accepting');
  } finally {
    await gaze.stop();
  }
});

test('a stalled upload holds the stop for graceful_shutdown_timeout at most; its image is queued at the next start', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-stop-'));
  try {
    const gaze = await startGazeProcess({ DEFAULT: { graceful_shutdown_timeout: '2' } }, { dir });
    const api = client(gaze.url);
    const image = await api.createImage({ name: 'stalled' });
    const upload = await stalledUpload(gaze.url, image.id, 1_000_000); // and then nothing more: the client stalls
    const exited = new Promise<number | null>((resolve) => gaze.child.once('exit', (code) => resolve(code)));
    gaze.child.kill('SIGTERM');
    assert.equal(await exited, 1, 'it gave up on the stalled request and said so by its exit code');
    assert.match(gaze.output(), /requests still running 2 s after the stop began \(graceful_shutdown_timeout\); exiting/);
    upload.destroy();

    const again = await startGazeProcess({}, { dir, port: gaze.port });
    try {
      const shown = (await client(again.url).get(`/v2/images/${image.id}`)).json;
      assert.equal(shown.status, 'queued');
      assert.equal((await client(again.url).upload(image.id, 'whole this time')).status, 204);
    } finally {
      await again.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a second SIGTERM (or SIGINT) while a stalled upload holds the stop ends the process at once', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-stop-twice-'));
  try {
    const gaze = await startGazeProcess({ DEFAULT: { graceful_shutdown_timeout: '60' } }, { dir });
    const image = await client(gaze.url).createImage({ name: 'stalled-twice' });
    const upload = await stalledUpload(gaze.url, image.id, 1_000_000);
    const exited = new Promise<number | null>((resolve) => gaze.child.once('exit', (code) => resolve(code)));
    gaze.child.kill('SIGTERM');
    await until(() => (/SIGTERM: stopping/.test(gaze.output()) ? true : undefined), 'the stop to begin', 10_000);
    const second = Date.now();
    gaze.child.kill('SIGINT');
    assert.equal(await exited, 1);
    assert.ok(Date.now() - second < 10_000, 'not after graceful_shutdown_timeout');
    assert.match(gaze.output(), /SIGINT again while stopping: exiting now/);
    upload.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
