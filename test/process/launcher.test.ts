import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startGazeProcess } from '../helpers/gaze.ts';

const run = promisify(execFile);
const launcher = fileURLToPath(new URL('../../bin/gaze', import.meta.url));

/** GLIBC_TUNABLES and the arguments bin/gaze hands to node, given the caller's environment. */
async function passedOn(callers: NodeJS.ProcessEnv): Promise<{ tunables: string; args: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-launcher-'));
  try {
    // Stands in for node: prints what it was given.
    const fakeNode = path.join(dir, 'node');
    writeFileSync(fakeNode, '#!/bin/sh\necho "$GLIBC_TUNABLES|$*"\n');
    chmodSync(fakeNode, 0o755);
    const env: NodeJS.ProcessEnv = { ...process.env, GAZE_NODE: fakeNode };
    delete env.GLIBC_TUNABLES;
    delete env.GAZE_NODE_FLAGS;
    const { stdout } = await run(launcher, ['serve', '--config-file', 'my gaze.conf'], { env: { ...env, ...callers } });
    const [tunables, args] = stdout.trim().split('|');
    return { tunables: tunables!, args: args! };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('bin/gaze keeps freed memory for reuse (glibc tunables, V8 heap sizes) and leaves an operator’s own settings alone', async () => {
  const script = fileURLToPath(new URL('../../bin/gaze.js', import.meta.url));
  assert.deepEqual(await passedOn({}), {
    tunables: 'glibc.malloc.trim_threshold=33554432',
    args: `--initial-old-space-size=128 ${script} serve --config-file my gaze.conf`,
  });
  assert.equal((await passedOn({ GLIBC_TUNABLES: '' })).tunables, 'glibc.malloc.trim_threshold=33554432');
  assert.equal(
    (await passedOn({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).tunables,
    'glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=33554432',
    'added to the operator’s own tunables',
  );
  assert.equal(
    (await passedOn({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=0' })).tunables,
    'glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=0',
    'the operator’s trim threshold wins',
  );
  assert.equal(
    (await passedOn({ GAZE_NODE_FLAGS: '--cpu-prof --cpu-prof-dir=/tmp/p' })).args,
    `--initial-old-space-size=128 --cpu-prof --cpu-prof-dir=/tmp/p ${script} serve --config-file my gaze.conf`,
    'GAZE_NODE_FLAGS go to node, before the script',
  );
});

test('gaze serve through bin/gaze is one node process (exec, not a child) with the heap flags and the tunables', async () => {
  const gaze = await startGazeProcess();
  try {
    const pid = gaze.child.pid!;
    assert.equal(readlinkSync(`/proc/${pid}/exe`), readlinkSync('/proc/self/exe'), 'the launched pid is node itself');
    assert.deepEqual(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1, 4), [
      '--initial-old-space-size=128',
      fileURLToPath(new URL('../../bin/gaze.js', import.meta.url)),
      'serve',
    ]);
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    assert.match(environ, /(^|\0)GLIBC_TUNABLES=glibc\.malloc\.trim_threshold=33554432\0/);
    assert.equal((await fetch(`${gaze.url}/versions`)).status, 200);
  } finally {
    await gaze.stop();
  }
});
