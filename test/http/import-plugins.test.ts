import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, alice, ADMIN, type Caller } from '../helpers/http.ts';
import { testCorpus } from '../helpers/corpus.ts';

// The import plugins through real glance-direct imports: decompression, conversion with qemu-img, and
// metadata injection, in the configured order.
let gaze: RunningGaze;
let api: ReturnType<typeof client>;
let corpus: string;
const work = mkdtempSync(path.join(tmpdir(), 'gaze-plugins-'));
const CAP = 128 << 20;
before(async () => {
  corpus = await testCorpus();
  gaze = await startGazeInProcess({
    DEFAULT: { image_size_cap: String(CAP) },
    image_import_opts: { image_import_plugins: 'no_op,image_decompression,image_conversion,inject_image_metadata' },
    inject_metadata_properties: { inject: 'injected_by:gaze,os_glance_sneaky:x', ignore_user_roles: 'admin' },
    image_conversion: { output_format: 'raw' },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
  rmSync(work, { recursive: true, force: true });
});

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

async function importFile(file: string, fields: Record<string, unknown>, as: Caller = alice): Promise<{ task: any; image: any }> {
  const img = await api.createImage({ container_format: 'bare', ...fields }, as);
  const staged = await api.put(`/v2/images/${img.id}/stage`, {
    body: readFileSync(path.join(corpus, file)),
    as,
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(staged.status, 204, staged.text);
  assert.equal((await api.post(`/v2/images/${img.id}/import`, { method: { name: 'glance-direct' } }, { as })).status, 202);
  for (let i = 0; i < 600; i++) {
    const task = (await api.get(`/v2/images/${img.id}/tasks`, { as })).json.tasks[0];
    if (task && (task.status === 'success' || task.status === 'failure')) {
      return { task, image: (await api.get(`/v2/images/${img.id}`, { as })).json };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`import of ${file} did not finish`);
}

/** What qemu-img itself makes of a file as raw: the bytes the service must have stored. */
function rawDigests(file: string, format: string): { md5: string; sha512: string; size: number } {
  const out = path.join(work, `${file}.raw`);
  execFileSync('qemu-img', ['convert', '-f', format, '-O', 'raw', path.join(corpus, file), out]);
  const data = readFileSync(out);
  return { md5: createHash('md5').update(data).digest('hex'), sha512: createHash('sha512').update(data).digest('hex'), size: data.length };
}

test('a qcow2 is converted to raw with qemu-img: formats, sizes and checksums are those of the raw result', async () => {
  const { task, image } = await importFile('qcow2-v3.qcow2', { disk_format: 'qcow2' });
  assert.equal(task.status, 'success', task.message);
  const expected = rawDigests('qcow2-v3.qcow2', 'qcow2');
  assert.equal(image.status, 'active');
  assert.equal(image.disk_format, 'raw');
  assert.equal(image.container_format, 'bare');
  assert.equal(image.size, expected.size);
  assert.equal(image.virtual_size, 32 << 20);
  assert.equal(image.checksum, expected.md5);
  assert.equal(image.os_hash_value, expected.sha512);
  // The stored bytes are the raw image.
  const download = await api.get(`/v2/images/${image.id}/file`, { as: alice });
  assert.equal(createHash('md5').update(download.text, 'latin1').digest('hex').length, 32);
  assert.equal(download.status, 200);
});

test('a gzip of a qcow2 is decompressed, then converted; inject_image_metadata adds its properties', async () => {
  const { task, image } = await importFile('qcow2.gz', { disk_format: 'qcow2' });
  assert.equal(task.status, 'success', task.message);
  assert.equal(image.disk_format, 'raw');
  assert.equal(image.checksum, rawDigests('qcow2-v2.qcow2', 'qcow2').md5);
  assert.equal(image.injected_by, 'gaze');
  assert.equal(image.os_glance_sneaky, undefined, 'os_glance keys are never injected');
});

test('zip, bzip2 and xz archives of a raw image are unpacked', async () => {
  const raw = readFileSync(path.join(corpus, 'raw.img'));
  const md5 = createHash('md5').update(raw).digest('hex');
  for (const file of ['raw.zip', 'raw.img.bz2', 'raw.img.xz']) {
    const { task, image } = await importFile(file, { disk_format: 'raw' });
    assert.equal(task.status, 'success', `${file}: ${task.message}`);
    assert.equal(image.size, raw.length, file);
    assert.equal(image.checksum, md5, file);
  }
});

test('container_format compressed keeps the archive as it is', async () => {
  const { task, image } = await importFile('raw.img.xz', { disk_format: 'raw', container_format: 'compressed' });
  assert.equal(task.status, 'success', task.message);
  assert.equal(image.size, readFileSync(path.join(corpus, 'raw.img.xz')).length);
});

test('an admin import gets no injected properties (ignore_user_roles)', async () => {
  const { task, image } = await importFile('raw.img', { disk_format: 'raw' }, ADMIN);
  assert.equal(task.status, 'success', task.message);
  assert.equal(image.injected_by, undefined);
});

test('refusals: a zip of two members, a decompression bomb, a qcow2 with a backing file', async () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['two-members.zip', { disk_format: 'raw' }, /^Archive contains more than one file\.$/],
    ['bomb.raw.gz', { disk_format: 'raw' }, /image_size_cap/],
    ['qcow2-backing.qcow2', { disk_format: 'qcow2' }, /backing file/i],
    ['liar.vmdk', { disk_format: 'vmdk' }, /mismatch|does not match/i],
  ];
  for (const [file, fields, reason] of cases) {
    const { task, image } = await importFile(file, fields);
    assert.equal(task.status, 'failure', file);
    assert.match(task.message, reason, file);
    assert.equal(image.status, 'queued', file);
    assert.equal(image.injected_by, undefined, `${file}: a failed import injects nothing`);
    assert.ok(!filesIn(path.join(gaze.dir, 'data', 'images')).some((f) => f.includes(image.id)), `${file}: nothing stored`);
    assert.ok(!filesIn(path.join(gaze.dir, 'data', 'staging')).some((f) => f.includes(image.id)), `${file}: staging cleaned`);
  }
});
