import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess } from '../helpers/gaze.ts';
import { freePort } from '../helpers/keystone.ts';
import { client } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';
import { gzipSync } from 'node:zlib';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Two workers share the database and the image store but each stages locally: a glance-direct import
// (and a delete) sent to the worker without the staged data is replayed to the one that has it.

/** Node `name`'s sections: its own URL and staging directory; the database and the store in `shared`. */
const nodeSections = (shared: string, name: string, port: number) => ({
  DEFAULT: { worker_self_reference_url: `http://127.0.0.1:${port}`, node_staging_uri: `file://${path.join(shared, `staging-${name}`)}` },
  database: { connection: `sqlite:///${path.join(shared, 'gaze.db')}` },
  glance_store: { filesystem_store_datadir: path.join(shared, 'images') },
});

test('stage on one worker, import and delete through the other', async () => {
  const shared = mkdtempSync(path.join(tmpdir(), 'gaze-distributed-'));
  const [portA, portB] = [await freePort(), await freePort()];
  const sections = (name: string, port: number) => nodeSections(shared, name, port);
  const a = await startGazeProcess(sections('a', portA), { port: portA });
  const b = await startGazeProcess(sections('b', portB), { port: portB });
  try {
    const data = randomBytes(300_000);
    const img = await client(a.url).createImage({ name: 'staged-on-a' });
    const staged = await client(a.url).put(`/v2/images/${img.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(staged.status, 204);
    assert.deepEqual(readdirSync(path.join(shared, 'staging-a')), [img.id]);
    assert.ok(!('os_glance_stage_host' in (await client(b.url).get(`/v2/images/${img.id}`)).json), 'the stage host is never shown');

    const r = await client(b.url).call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'glance-direct' } } });
    assert.equal(r.status, 202, r.text);
    let shown: any;
    for (let i = 0; i < 200; i++) {
      shown = (await client(b.url).get(`/v2/images/${img.id}`)).json;
      if (shown.status === 'active') break;
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(shown.status, 'active');
    assert.equal(shown.checksum, createHash('md5').update(data).digest('hex'));
    const bytes = Buffer.from(await (await fetch(`${b.url}/v2/images/${img.id}/file`)).arrayBuffer());
    assert.ok(bytes.equals(data), 'either worker serves the stored data');

    const other = await client(a.url).createImage({ name: 'deleted-through-b' });
    await client(a.url).put(`/v2/images/${other.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal((await client(b.url).del(`/v2/images/${other.id}`)).status, 204);
    assert.equal((await client(a.url).get(`/v2/images/${other.id}`)).status, 404);
    assert.deepEqual(readdirSync(path.join(shared, 'staging-a')), [], 'the worker holding the staged data removed it');
  } finally {
    await a.stop();
    await b.stop();
    rmSync(shared, { recursive: true, force: true });
  }
});

test('a node named under another address (worker_self_reference_url changed) forwards once, never in a loop', async () => {
  const shared = mkdtempSync(path.join(tmpdir(), 'gaze-distributed-'));
  const port = await freePort();
  try {
    const sections = (selfUrl: string) => ({
      DEFAULT: { worker_self_reference_url: selfUrl, node_staging_uri: `file://${path.join(shared, 'staging')}` },
      database: { connection: `sqlite:///${path.join(shared, 'gaze.db')}` },
      glance_store: { filesystem_store_datadir: path.join(shared, 'images') },
    });
    const before = await startGazeProcess(sections(`http://localhost:${port}`), { port });
    const img = await client(before.url).createImage();
    await client(before.url).put(`/v2/images/${img.id}/stage`, { body: Buffer.from('x'), headers: { 'content-type': 'application/octet-stream' } });
    await before.stop();
    // The same node, now calling itself 127.0.0.1: the image's stage host (localhost) is itself by another name.
    const after = await startGazeProcess(sections(`http://127.0.0.1:${port}`), { port });
    try {
      const importing = { json: { method: { name: 'glance-direct' } }, headers: { accept: 'application/json' } };
      const hop = await client(after.url).call('POST', `/v2/images/${img.id}/import`, {
        ...importing,
        headers: { ...importing.headers, 'x-gaze-forwarded': '1' },
      });
      assert.equal(hop.status, 502);
      assert.match(
        hop.json.message,
        /this request was forwarded here by another node, and this node would forward it again, to http:\/\/localhost:\d+ \(does worker_self_reference_url/,
      );
      const r = await client(after.url).call('POST', `/v2/images/${img.id}/import`, importing);
      assert.equal(r.status, 502, 'the first hop passes the refusal of the second on');
      assert.equal((await client(after.url).get(`/v2/images/${img.id}`)).json.status, 'uploading', 'nothing was imported or lost');
    } finally {
      await after.stop();
    }
  } finally {
    rmSync(shared, { recursive: true, force: true });
  }
});

test('a stage host that cannot be reached: import answers 504, delete still deletes', async () => {
  const shared = mkdtempSync(path.join(tmpdir(), 'gaze-distributed-'));
  const deadPort = await freePort();
  try {
    const staging = (name: string) => ({ node_staging_uri: `file://${path.join(shared, `staging-${name}`)}` });
    const common = {
      database: { connection: `sqlite:///${path.join(shared, 'gaze.db')}` },
      glance_store: { filesystem_store_datadir: path.join(shared, 'images') },
    };
    const a = await startGazeProcess({ DEFAULT: { worker_self_reference_url: `http://127.0.0.1:${deadPort}`, ...staging('a') }, ...common });
    const img = await client(a.url).createImage();
    await client(a.url).put(`/v2/images/${img.id}/stage`, { body: Buffer.from('x'), headers: { 'content-type': 'application/octet-stream' } });
    await a.stop();
    const b = await startGazeProcess({ DEFAULT: { worker_self_reference_url: 'http://127.0.0.1:1', ...staging('b') }, ...common });
    try {
      const r = await client(b.url).call('POST', `/v2/images/${img.id}/import`, {
        json: { method: { name: 'glance-direct' } },
        headers: { accept: 'application/json' },
      });
      assert.equal(r.status, 504);
      assert.equal(r.json.message, 'The gateway has timed out.<br /><br />\nStage host is unavailable\n\n', "WebOb's detail shape, as Glance raises it");
      assert.equal(r.json.title, 'Gateway Timeout');
      assert.equal((await client(b.url).del(`/v2/images/${img.id}`)).status, 204);
      assert.equal((await client(b.url).get(`/v2/images/${img.id}`)).status, 404);
    } finally {
      await b.stop();
    }
  } finally {
    rmSync(shared, { recursive: true, force: true });
  }
});

test('a glance-direct whose node is killed mid-import waits for that node, which resumes it; the other node never fails it or loses the staged data', async () => {
  const shared = mkdtempSync(path.join(tmpdir(), 'gaze-distributed-'));
  const [portA, portB] = [await freePort(), await freePort()];
  const sections = (name: string, port: number) => ({
    ...nodeSections(shared, name, port),
    // Decompressing, then storing and hashing, 256 MiB: an import that lasts long enough to be killed in.
    image_import_opts: { image_import_plugins: 'image_decompression' },
  });
  const size = 256 << 20;
  const zeros = Buffer.alloc(size);
  const gzipped = gzipSync(zeros, { level: 1 });
  const md5 = createHash('md5').update(zeros).digest('hex');
  let a = await startGazeProcess(sections('a', portA), { port: portA });
  const b = await startGazeProcess(sections('b', portB), { port: portB });
  const apiB = client(b.url);
  try {
    const img = await client(a.url).createImage({ name: 'staged-on-a', disk_format: 'raw', container_format: 'bare' });
    assert.equal(
      (await client(a.url).put(`/v2/images/${img.id}/stage`, { body: gzipped, headers: { 'content-type': 'application/octet-stream' } })).status,
      204,
    );
    // Sent to B, run by A, where the data is.
    assert.equal((await apiB.call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'glance-direct' } } })).status, 202);
    const seen = await until(async () => {
      const now = (await apiB.get(`/v2/images/${img.id}`)).json;
      return now.status === 'importing' || now.status === 'active' ? now.status : undefined;
    }, 'the import to start');
    a.child.kill('SIGKILL');
    assert.equal(seen, 'importing', 'killed while it imported');
    await a.stop();

    // B sees A's process gone at once (same host) and the lease expire (10 s); its sweeps run every 5 s.
    await sleep(16_000);
    const waiting = (await apiB.get(`/v2/images/${img.id}`)).json;
    assert.equal(waiting.status, 'importing', 'B left the import to A');
    const [task] = (await apiB.get(`/v2/images/${img.id}/tasks`)).json.tasks;
    assert.equal(task.status, 'processing', task.message);
    assert.equal(task.input.staged_on, undefined, 'where the data is staged is not shown');
    assert.ok(
      readdirSync(path.join(shared, 'staging-a')).some((name) => name.startsWith(img.id)),
      'the staged data is still on A',
    );

    a = await startGazeProcess(sections('a', portA), { port: portA });
    const done = await until(
      async () => {
        const now = (await apiB.get(`/v2/images/${img.id}`)).json;
        return now.status === 'active' || now.status === 'queued' ? now : undefined;
      },
      'A to resume the import',
      90_000,
    );
    assert.equal(done.status, 'active');
    assert.equal(done.size, size);
    assert.equal(done.checksum, md5);
    const finished = await until(async () => {
      const [latest] = (await apiB.get(`/v2/images/${img.id}/tasks`)).json.tasks;
      return latest.status === 'processing' ? undefined : latest;
    }, 'the task to end');
    assert.equal(finished.status, 'success', finished.message);
    await until(() => (readdirSync(path.join(shared, 'staging-a')).length === 0 ? true : undefined), "A's staging to be emptied");
  } finally {
    await a.stop();
    await b.stop();
    rmSync(shared, { recursive: true, force: true });
  }
});
