import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { forEachEngine } from '../helpers/databases.ts';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { startFileServer, trickle, type FileServer } from '../helpers/file-server.ts';
import { until } from '../helpers/wait.ts';

// Faults against a real `gaze serve` on each database: kill -9 in the middle of an upload and of an
// import (the next process recovers: nothing stuck, nothing half-written, the import finished with
// the right checksum), and web-download sources that die mid-body, also while the service is busy.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A PUT /file that sends `total` bytes slowly; resolves when the first bytes are out. */
function slowUpload(base: string, id: string, total: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(`${base}/v2/images/${id}/file`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': total } });
    req.on('error', () => {
      /* the server is killed under it */
    });
    let sent = 0;
    const timer = setInterval(() => {
      if (req.destroyed || sent >= total) return clearInterval(timer);
      req.write(Buffer.alloc(256 * 1024, 5));
      sent += 256 * 1024;
      if (sent >= 1024 * 1024) resolve();
    }, 20);
  });
}

const settledImage = (api: ReturnType<typeof client>, id: string) =>
  until(async () => {
    const img = (await api.get(`/v2/images/${id}`)).json;
    return ['active', 'queued'].includes(img.status) && !('os_glance_import_task' in img) ? img : undefined;
  }, `image ${id} to settle`);

forEachEngine((engine) => {
  let files: FileServer;
  let gaze: GazeProcess | null = null;
  let dir = '';
  after(async () => {
    await gaze?.stop();
    await files?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('kill -9 mid-upload and mid-import; the next process leaves nothing stuck and finishes the imports', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gaze-chaos-kill-'));
    files = await startFileServer();
    const sections = {
      database: { connection: await engine.url() },
      import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(files.port) },
    };
    gaze = await startGazeProcess(sections, { dir });
    let api = client(gaze.url);

    const uploading = await api.createImage({ name: 'killed-upload' });
    await slowUpload(gaze.url, uploading.id, 64 << 20);
    await until(async () => ((await api.get(`/v2/images/${uploading.id}`)).json.status === 'saving' ? true : undefined), 'saving');

    // A web-download from a source that trickles is surely mid-import when the process dies.
    const fetched = randomBytes(32 << 20); // ten seconds at the trickle's pace
    files.routes.set('/slow', trickle(fetched.length, 20));
    const downloading = await api.createImage({ name: 'killed-web-download', disk_format: 'raw', container_format: 'bare' });
    assert.equal(
      (await api.call('POST', `/v2/images/${downloading.id}/import`, { json: { method: { name: 'web-download', uri: files.url('/slow') } } })).status,
      202,
    );
    await until(async () => ((await api.get(`/v2/images/${downloading.id}`)).json.status === 'importing' ? true : undefined), 'importing');

    // A glance-direct import of staged data is killed at whatever point it reached after the 202
    // (a same-filesystem import takes milliseconds): every point must end in the same result.
    const staged = randomBytes(48 << 20);
    const importing = await api.createImage({ name: 'killed-import' });
    assert.equal((await api.put(`/v2/images/${importing.id}/stage`, { body: staged, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    assert.equal((await api.call('POST', `/v2/images/${importing.id}/import`, { json: { method: { name: 'glance-direct' } } })).status, 202);
    await sleep(200); // the trickle has sent a few hundred KiB by now
    assert.equal((await api.get(`/v2/images/${downloading.id}`)).json.status, 'importing', 'the web-download is still running when the process dies');
    await gaze.kill('SIGKILL');

    files.routes.set('/slow', fetched); // the source is fast for the resumed download
    gaze = await startGazeProcess(sections, { dir, port: gaze.port });
    api = client(gaze.url);
    const upload = (await api.get(`/v2/images/${uploading.id}`)).json;
    assert.equal(upload.status, 'queued', 'the interrupted upload is queued again');
    assert.equal(upload.size, null);
    for (const [image, data] of [
      [importing, staged],
      [downloading, fetched],
    ] as const) {
      const done = await settledImage(api, image.id);
      assert.equal(done.status, 'active', `${done.name}: the interrupted import was resumed and finished`);
      assert.equal(done.checksum, md5(data));
      const [task] = (await api.get(`/v2/images/${image.id}/tasks`)).json.tasks;
      assert.equal(task.status, 'success');
    }
    assert.deepEqual(readdirSync(path.join(dir, 'data', 'staging')), []);
    assert.deepEqual(
      readdirSync(path.join(dir, 'data', 'images')).sort(),
      [importing.id, downloading.id].sort(),
      'no partial file, nothing of the killed upload',
    );

    // The image of the killed upload takes a new upload.
    assert.equal((await api.upload(uploading.id, Buffer.alloc(1000, 1))).status, 204);
  });

  test('web-download sources that die mid-body (also with the reader paused, and beside a busy upload): clean failures, the service keeps serving', async () => {
    await files?.close();
    files = await startFileServer();
    const half = (total: number, sendBytes: number) => (res: import('node:http').ServerResponse) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      res.write(Buffer.alloc(sendBytes, 3), () => setTimeout(() => res.socket?.destroy(), 50));
    };
    files.routes.set('/dies', half(32 << 20, 8 << 20));
    files.routes.set('/dies-early', half(1 << 20, 64 * 1024));
    const whole = randomBytes(24 << 20);
    files.routes.set('/whole', (res) => {
      res.writeHead(200, { 'content-length': whole.length });
      res.socket?.setNoDelay(true);
      res.end(whole, () => res.socket?.end());
    });
    await gaze?.stop();
    gaze = await startGazeProcess({
      database: { connection: await engine.url() },
      import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(files.port) },
    });
    const api = client(gaze.url);

    // a large upload keeps the process busy meanwhile
    const busy = await api.createImage({ name: 'busy' });
    const uploaded = api.upload(busy.id, randomBytes(96 << 20));
    const ids: Record<string, string> = {};
    for (const route of ['/dies', '/dies-early', '/whole', '/dies', '/whole']) {
      const img = await api.createImage({ name: route });
      ids[img.id] = route;
      assert.equal((await api.call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'web-download', uri: files.url(route) } } })).status, 202);
    }
    assert.equal((await uploaded).status, 204);
    for (const [id, route] of Object.entries(ids)) {
      const img = await settledImage(api, id);
      const [task] = (await api.get(`/v2/images/${id}/tasks`)).json.tasks;
      if (route === '/whole') {
        assert.equal(img.status, 'active');
        assert.equal(img.checksum, md5(whole));
      } else {
        assert.equal(img.status, 'queued');
        assert.equal(task.status, 'failure');
        assert.match(task.message, /^Downloading the image failed: downloaded data size \d+ is different from expected \d+$/);
      }
    }
    assert.equal(gaze.child.exitCode, null, 'the service is still running');
    assert.deepEqual(readdirSync(path.join(gaze.dir, 'data', 'staging')), []);
  });
});
