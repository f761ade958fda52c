// delayed_delete end to end: a `gaze serve` process configured as an operator would configure Glance
// (delayed_delete = True, scrub_time of an hour), the real openstack CLI deleting an image, and the
// operator's `gaze scrub --restore ID` (glance-scrubber --restore) bringing it back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { failed, json, md5, noAuthOpenStack, ok, value, type OpenStack } from '../helpers/cli.ts';

const run = promisify(execFile);
const gazeBin = fileURLToPath(new URL('../../bin/gaze.js', import.meta.url));

let gaze: GazeProcess;
let openstack: OpenStack;
let work: string;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gaze-cli-delayed-'));
  gaze = await startGazeProcess({ DEFAULT: { delayed_delete: 'True', scrub_time: '3600' } });
  openstack = noAuthOpenStack(gaze.url);
});
after(async () => {
  await gaze?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** `gaze scrub ...` against the running service's configuration: its exit code and output. */
async function gazeScrub(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [gazeBin, 'scrub', ...args, '--config', path.join(gaze.dir, 'gaze.conf')]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

test('openstack image delete keeps the data; gaze scrub --restore makes the image active again, whole', { timeout: 120_000 }, async () => {
  const data = randomBytes(2 * 1024 * 1024 + 3);
  const file = path.join(work, 'disk.raw');
  writeFileSync(file, data);
  const created = json<{ id: string }>(
    await openstack([
      'image',
      'create',
      '--file',
      file,
      '--disk-format',
      'raw',
      '--container-format',
      'bare',
      '--property',
      'os_distro=demo',
      '--tag',
      'kept',
      'delayed',
      '-f',
      'json',
    ]),
  );
  ok(await openstack(['image', 'delete', created.id]));
  assert.match(failed(await openstack(['image', 'show', created.id])), /No Image found|Could not find|not found/i);
  assert.ok(!value(await openstack(['image', 'list', '-f', 'value', '-c', 'ID'])).includes(created.id));

  const restored = await gazeScrub('--restore', created.id);
  assert.equal(restored.code, 0, restored.out);
  assert.match(restored.out, /is active again, with its data at file:\/\//);

  const shown = json<{ status: string; checksum: string; tags: string[]; properties: Record<string, string> }>(
    await openstack(['image', 'show', created.id, '-f', 'json']),
  );
  assert.equal(shown.status, 'active');
  assert.equal(shown.checksum, md5(data));
  assert.deepEqual(shown.tags, ['kept']);
  assert.equal(shown.properties.os_distro, 'demo');
  const saved = path.join(work, 'saved.raw');
  ok(await openstack(['image', 'save', '--file', saved, created.id]));
  assert.ok(readFileSync(saved).equals(data));

  // Glance's words for an image that is not pending_delete, and for an id never used; exit 1.
  const again = await gazeScrub('--restore', created.id);
  assert.equal(again.code, 1);
  assert.match(again.out, /gaze: cannot restore the image from active to active \(wanted from_state=pending_delete\)/);
  const unknown = await gazeScrub('--restore', '00000000-0000-4000-8000-000000000000');
  assert.equal(unknown.code, 1);
  assert.match(unknown.out, /No image found with ID 00000000-0000-4000-8000-000000000000/);
  // Without --restore, one scrub pass (glance-scrubber without --daemon): nothing is due yet here.
  const bare = await gazeScrub();
  assert.equal(bare.code, 0, bare.out);
  assert.match(bare.out, /gaze: 0 deleted images ended, 0 locations' data removed, 0 kept for a later pass/);
});

test('an image without data is deleted at once: there is nothing to restore', { timeout: 60_000 }, async () => {
  // Through the API: the CLI would upload its standard input as the data.
  const res = await fetch(`${gaze.url}/v2/images`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'empty', disk_format: 'raw', container_format: 'bare' }),
  });
  const created = (await res.json()) as { id: string; status: string };
  assert.equal(created.status, 'queued');
  ok(await openstack(['image', 'delete', created.id]));
  const restored = await gazeScrub('--restore', created.id);
  assert.equal(restored.code, 1, restored.out);
  assert.match(restored.out, /cannot restore the image from deleted to active/);
});
