// A copy-image stages the data of an image that stays active. The engine's recovery sweep, which runs
// every few seconds on every node, removes staged data nobody waits for; it must not take the staged
// copy of a running copy-image from under it (the stores after the first would find nothing to read).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, JSON_ACCEPT } from '../helpers/http.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
// The copies go to another filesystem than the staging area's: each is a real write, not a hard link,
// so the copy takes long enough for a sweep to run in the middle.
const elsewhere = mkdtempSync('/dev/shm/gaze-copy-');

before(async () => {
  gaze = await startGazeInProcess({
    DEFAULT: { enabled_backends: 'fast:file, far1:file, far2:file' },
    glance_store: { default_backend: 'fast' },
    fast: { filesystem_store_datadir: '__DIR__/stores/fast' },
    far1: { filesystem_store_datadir: path.join(elsewhere, 'far1') },
    far2: { filesystem_store_datadir: path.join(elsewhere, 'far2') },
    os_glance_staging_store: { filesystem_store_datadir: '__DIR__/staging' },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
  rmSync(elsewhere, { recursive: true, force: true });
});

test('the recovery sweep leaves the staged data of a running copy-image alone', { timeout: 60_000 }, async () => {
  const data = randomBytes(48 * 1024 * 1024);
  const image = await api.createImage();
  assert.equal((await api.upload(image.id, data)).status, 204);
  const res = await api.call('POST', `/v2/images/${image.id}/import`, {
    json: { method: { name: 'copy-image' }, stores: ['far1', 'far2'] },
    headers: JSON_ACCEPT,
  });
  assert.equal(res.status, 202, res.text);

  // The moment the staged copy is whole (it is written under a dot-name first), sweep.
  const staged = path.join(gaze.dir, 'staging', image.id);
  const deadline = Date.now() + 30_000;
  while (!existsSync(staged)) {
    assert.ok(Date.now() < deadline, 'the copy never staged its data');
    await new Promise((r) => setTimeout(r, 2));
  }
  await gaze.app.recoverImports();
  // The sweep ran while the copy did: this test proves nothing otherwise.
  const during = (await api.get(`/v2/images/${image.id}`)).json;
  assert.ok('os_glance_import_task' in during, `the copy had already ended: ${JSON.stringify(during)}`);

  let now: any;
  for (;;) {
    now = (await api.get(`/v2/images/${image.id}`)).json;
    if (!('os_glance_import_task' in now)) break;
    assert.ok(Date.now() < deadline, `the copy did not end: ${JSON.stringify(now)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const tasks = (await api.get(`/v2/images/${image.id}/tasks`)).json.tasks;
  assert.equal(tasks[0].status, 'success', JSON.stringify(tasks[0]));
  assert.equal(now.stores, 'fast,far1,far2');
  assert.equal(now.os_glance_failed_import, '');
  assert.equal(now.status, 'active');
  // Once the copy is over, its staged data is gone.
  assert.ok(!existsSync(staged));
});
