import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, alice } from '../helpers/http.ts';
import { testCorpus } from '../helpers/corpus.ts';

// [image_format] options: require_image_format_match = false lets mismatches through (safety failures
// still refuse), vmdk_allowed_types narrows vmdk, gpt_safety_checks_nonfatal downgrades mbr checks.
let gaze: RunningGaze;
let api: ReturnType<typeof client>;
let corpus: string;
before(async () => {
  corpus = await testCorpus();
  gaze = await startGazeInProcess({
    image_format: { require_image_format_match: 'false', vmdk_allowed_types: 'streamOptimized', gpt_safety_checks_nonfatal: 'mbr' },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

async function upload(file: string, disk_format: string) {
  const img = await api.createImage({ disk_format, container_format: 'bare' }, alice);
  const put = await api.put(`/v2/images/${img.id}/file`, {
    body: readFileSync(path.join(corpus, file)),
    as: alice,
    headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
  });
  return { put, image: (await api.get(`/v2/images/${img.id}`, { as: alice })).json };
}

test('a mismatch is accepted when require_image_format_match is off, with no virtual size', async () => {
  const { put, image } = await upload('raw.img', 'qcow2');
  assert.equal(put.status, 204, put.text);
  assert.equal(image.status, 'active');
  assert.equal(image.virtual_size, null);
});

test('with require_image_format_match off, a qcow2 claimed raw is accepted as Glance does (virtual size = byte count)', async () => {
  const { put, image } = await upload('qcow2-v3.qcow2', 'raw');
  assert.equal(put.status, 204, put.text);
  assert.equal(image.status, 'active');
  assert.equal(image.virtual_size, readFileSync(path.join(corpus, 'qcow2-v3.qcow2')).length);
  // but not one with a backing file, nor a banned format, nor a virtual size beyond the cap
  for (const [file, disk, reason] of [
    ['qcow2-backing.qcow2', 'raw', /backing file/],
    ['qed.qed', 'raw', /not allowed/],
    ['qcow2-exabyte.qcow2', 'qcow2', /virtual size exceeds the limit/],
  ] as const) {
    const refused = await upload(file, disk);
    assert.equal(refused.put.status, 415, file);
    assert.match(refused.put.json.message, reason);
    assert.equal(refused.image.status, 'queued');
  }
});

test('safety failures still refuse when require_image_format_match is off', async () => {
  const { put, image } = await upload('qcow2-backing.qcow2', 'qcow2');
  assert.equal(put.status, 415);
  assert.match(put.json.message, /backing file/);
  assert.equal(image.status, 'queued');
});

test('vmdk_allowed_types: a monolithicSparse vmdk is refused when only streamOptimized is allowed', async () => {
  const sparse = await upload('vmdk-sparse.vmdk', 'vmdk');
  assert.equal(sparse.put.status, 415);
  assert.match(sparse.put.json.message, /monolithicSparse/);
  const stream = await upload('vmdk-stream.vmdk', 'vmdk');
  assert.equal(stream.put.status, 204, stream.put.text);
});

test('gpt_safety_checks_nonfatal = mbr: a bad boot flag only warns', async () => {
  const { put, image } = await upload('gpt-bad-bootflag.img', 'raw');
  assert.equal(put.status, 204, put.text);
  assert.equal(image.virtual_size, 4 << 20);
});
