import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, message, JSON_ACCEPT } from '../helpers/http.ts';

// Real storage faults: a store on a 2 MiB tmpfs (ENOSPC) and one on a read-only tmpfs (EROFS). The
// client gets Glance's status with a message that names the store and never a server path; the image
// goes back to queued and nothing is left on either filesystem. Mounting needs root (CI runs as root).

const root = mkdtempSync(path.join(tmpdir(), 'gaze-faults-'));
const full = path.join(root, 'small');
const frozen = path.join(root, 'frozen');
const mounted: string[] = [];

function mount(dir: string, options: string): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
    mounted.push(dir);
    return true;
  } catch {
    return false;
  }
}

const canMount = mount(full, 'size=2m') && mount(frozen, 'size=1m,ro');
let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;

before(async () => {
  if (!canMount) return;
  gaze = await startGazeInProcess({
    DEFAULT: { enabled_backends: 'roomy:file,small:file,frozen:file' },
    glance_store: { default_backend: 'roomy' },
    small: { filesystem_store_datadir: full },
    frozen: { filesystem_store_datadir: frozen },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze?.stop();
  for (const dir of mounted.reverse()) execFileSync('umount', [dir]);
  rmSync(root, { recursive: true, force: true });
});

const noPath = (text: string) => assert.ok(!text.includes(root) && !/\.partial-|\/tmp\//.test(text), `a server path leaked: ${text}`);

test(
  'a full store: 413 naming the store, the image is queued again, no partial file is left',
  { skip: !canMount && 'mounting a tmpfs is not permitted here' },
  async () => {
    const image = await api.createImage({ name: 'too-big' });
    const reply = await api.put(`/v2/images/${image.id}/file`, {
      body: randomBytes(4 * 1024 * 1024),
      headers: { 'content-type': 'application/octet-stream', 'x-image-meta-store': 'small', ...JSON_ACCEPT },
    });
    assert.equal(reply.status, 413, reply.text);
    assert.equal(message(reply), 'Image storage media is full: store small: no space is left');
    noPath(reply.text);
    assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued');
    assert.deepEqual(readdirSync(full), []);
  },
);

test(
  'a read-only store: 503 naming the store; an import into it fails with a message without paths',
  { skip: !canMount && 'mounting a tmpfs is not permitted here' },
  async () => {
    const image = await api.createImage({ name: 'frozen' });
    const reply = await api.put(`/v2/images/${image.id}/file`, {
      body: randomBytes(64 * 1024),
      headers: { 'content-type': 'application/octet-stream', 'x-image-meta-store': 'frozen', ...JSON_ACCEPT },
    });
    assert.equal(reply.status, 503, reply.text);
    assert.equal(message(reply), 'Insufficient permissions on image storage media: store frozen: the storage refused access (read-only or not writable)');
    noPath(reply.text);
    assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued');

    const staged = await api.put(`/v2/images/${image.id}/stage`, { body: randomBytes(64 * 1024), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(staged.status, 204);
    const imported = await api.call('POST', `/v2/images/${image.id}/import`, { json: { method: { name: 'glance-direct' }, stores: ['frozen'] } });
    assert.equal(imported.status, 202);
    let task: any;
    for (let i = 0; i < 200; i++) {
      [task] = (await api.get(`/v2/images/${image.id}/tasks`)).json.tasks;
      if (task?.status === 'failure' || task?.status === 'success') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(task.status, 'failure');
    assert.equal(task.message, 'Insufficient permissions on image storage media: store frozen: the storage refused access (read-only or not writable)');
    noPath(task.message);
    assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued');
  },
);
