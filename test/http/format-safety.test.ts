import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import path from 'node:path';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, alice, type Caller } from '../helpers/http.ts';
import { CORPUS, testCorpus, type CorpusEntry } from '../helpers/corpus.ts';

// Every corpus file, uploaded and imported with its claimed formats: the good ones go active with the
// right virtual_size; the bad ones are refused with their reason and leave nothing stored.
let gaze: RunningGaze;
let api: ReturnType<typeof client>;
let corpus: string;
before(async () => {
  corpus = await testCorpus();
  gaze = await startGazeInProcess({});
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
const storeDir = () => path.join(gaze.dir, 'data', 'images');
const stagingDir = () => path.join(gaze.dir, 'data', 'staging');

function fileBody(file: string): ReadableStream {
  return Readable.toWeb(createReadStream(path.join(corpus, file))) as ReadableStream;
}

async function createFor(entry: CorpusEntry, as: Caller = alice) {
  return api.createImage({ name: entry.file, disk_format: entry.disk_format, container_format: entry.container_format }, as);
}

function expectAccepted(entry: CorpusEntry, image: any): void {
  const expected = entry.expected as { format: string; virtualSize: number | 'file-size' | null };
  const size = statSync(path.join(corpus, entry.file)).size;
  assert.equal(image.status, 'active', entry.file);
  assert.equal(image.disk_format, expected.format, entry.file);
  assert.equal(image.size, size, entry.file);
  assert.equal(image.virtual_size, expected.virtualSize === 'file-size' ? size : expected.virtualSize, `${entry.file} as ${entry.disk_format}`);
}

async function waitForTask(imageId: string): Promise<any> {
  for (let i = 0; i < 400; i++) {
    const task = (await api.get(`/v2/images/${imageId}/tasks`, { as: alice })).json.tasks[0];
    if (task && (task.status === 'success' || task.status === 'failure')) return task;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`import of ${imageId} did not finish`);
}

for (const entry of CORPUS) {
  const label = `${entry.file} claimed ${entry.disk_format}/${entry.container_format}`;
  test(`PUT /file: ${label}`, async () => {
    const img = await createFor(entry);
    const put = await api.put(`/v2/images/${img.id}/file`, {
      body: fileBody(entry.file),
      as: alice,
      headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
    });
    const after = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
    if ('rejected' in entry.expected) {
      assert.equal(put.status, 415, `${label}: ${put.text}`);
      assert.ok(String(put.json.message).includes(entry.expected.reasonIncludes), `${label}: ${put.json.message}`);
      assert.equal(after.status, 'queued');
      assert.equal(after.size, null);
      assert.ok(!filesIn(storeDir()).some((f) => f.includes(img.id)), 'nothing of the refused data is stored');
    } else {
      assert.equal(put.status, 204, `${label}: ${put.text}`);
      expectAccepted(entry, after);
    }
  });

  test(`glance-direct import: ${label}`, async () => {
    const img = await createFor(entry);
    const staged = await api.put(`/v2/images/${img.id}/stage`, {
      body: fileBody(entry.file),
      as: alice,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(staged.status, 204, staged.text);
    const started = await api.post(`/v2/images/${img.id}/import`, { method: { name: 'glance-direct' } }, { as: alice });
    assert.equal(started.status, 202, started.text);
    const task = await waitForTask(img.id);
    const after = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
    if ('rejected' in entry.expected) {
      assert.equal(task.status, 'failure', label);
      assert.ok(task.message.includes(entry.expected.reasonIncludes), `${label}: ${task.message}`);
      assert.equal(after.status, 'queued');
      assert.ok(!filesIn(storeDir()).some((f) => f.includes(img.id)), 'nothing of the refused data is stored');
      assert.ok(!filesIn(stagingDir()).some((f) => f.includes(img.id)), 'the staged data is gone');
    } else {
      assert.equal(task.status, 'success', `${label}: ${task.message}`);
      expectAccepted(entry, after);
    }
  });
}

test('the exact 415 of a mismatch and of a failed safety check', async () => {
  const mismatch = await api.createImage({ disk_format: 'qcow2', container_format: 'bare' }, alice);
  const r1 = await api.put(`/v2/images/${mismatch.id}/file`, {
    body: fileBody('raw.img'),
    as: alice,
    headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
  });
  assert.equal(r1.status, 415);
  assert.equal(r1.json.code, '415 Unsupported Media Type');
  assert.match(
    r1.json.message,
    /^The request media type application\/octet-stream is not supported by this server\.\n<br \/><br \/>\nImage disk_format qcow2 does not match stream data raw/,
  );
});

test('a VMDK header qemu probes (version 0) uploaded as raw is refused as the vmdk it is, not stored as raw', async () => {
  const vmdk = Buffer.alloc(64 * 1024);
  vmdk.write('KDMV', 0, 'latin1');
  vmdk.writeUInt32LE(0, 4); // version 0: oslo.utils calls it not VMDK; qemu opens it, parent and all
  vmdk.writeBigUInt64LE(128n, 12);
  vmdk.writeBigUInt64LE(1n, 28);
  vmdk.writeBigUInt64LE(20n, 36);
  vmdk.write('# Disk DescriptorFile\nversion=1\nparentFileNameHint="/etc/passwd"\ncreateType="monolithicSparse"\nRW 128 SPARSE "x.vmdk"\n', 512, 'latin1');
  const image = await api.createImage({ disk_format: 'raw', container_format: 'bare' }, alice);
  const put = await api.put(`/v2/images/${image.id}/file`, {
    body: vmdk,
    as: alice,
    headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
  });
  assert.equal(put.status, 415, put.text);
  assert.match(put.json.message, /Image disk_format raw does not match stream data vmdk/);
  assert.equal((await api.get(`/v2/images/${image.id}`, { as: alice })).json.status, 'queued');
});

test('dry-run format check: reports format, virtual size and verdict, and stores nothing', async () => {
  const before = filesIn(storeDir()).length;
  const check = async (file: string, query = '') =>
    api.call('POST', `/v2/x-gaze/format-check${query}`, {
      body: fileBody(file),
      as: alice,
      headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
    });
  const good = await check('qcow2-v2.qcow2');
  assert.equal(good.status, 200, good.text);
  assert.equal(good.json.format, 'qcow2');
  assert.equal(good.json.virtual_size, 16 << 20);
  assert.equal(good.json.disk_format, 'qcow2');
  assert.equal(good.json.verdict, 'accepted');
  assert.equal(good.json.reason, null);
  assert.deepEqual(good.json.safety_checks, []);

  const hostile = await check('qcow2-backing.qcow2');
  assert.equal(hostile.json.verdict, 'rejected');
  assert.deepEqual(hostile.json.safety_checks, [{ check: 'backing_file', message: 'Image has a backing file' }]);
  assert.match(hostile.json.reason, /backing file/);

  const claimed = await check('raw.img', '?disk_format=qcow2');
  assert.equal(claimed.json.verdict, 'rejected');
  assert.match(claimed.json.reason, /Image disk_format qcow2 does not match stream data raw/);

  const bad = await check('raw.img', '?disk_format=floppy');
  assert.equal(bad.status, 400);
  const twice = await check('raw.img', '?disk_format=qcow2&disk_format=raw');
  assert.equal(twice.status, 400);
  assert.match(twice.json.message, /disk_format may be given only once/);
  const wrongType = await api.call('POST', '/v2/x-gaze/format-check', {
    body: 'x',
    as: alice,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
  });
  assert.equal(wrongType.status, 415);
  assert.equal(filesIn(storeDir()).length, before);
  assert.deepEqual(
    filesIn(stagingDir()).filter((f) => !f.startsWith('.')),
    [],
  );
});
