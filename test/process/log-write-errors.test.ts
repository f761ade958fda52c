// A log destination that cannot be written (a full disk: /dev/full answers every write with ENOSPC)
// neither stops the service nor keeps it from stopping: it serves, says so on stderr, and a SIGTERM
// ends it at once with exit code 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchGaze, writeConfig } from '../helpers/gaze.ts';
import { freePort } from '../helpers/keystone.ts';

async function servesThenStops(sections: Record<string, Record<string, string>>, stdout?: number): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-log-full-'));
  try {
    const port = await freePort();
    const gaze = await launchGaze({ args: ['--config', writeConfig(dir, port, sections)], cwd: dir, port, stdout });
    try {
      // Every answer is a line the log cannot take.
      for (let i = 0; i < 60; i++) {
        const res = await fetch(`${gaze.url}/v2/images?limit=1`, { signal: AbortSignal.timeout(5_000) });
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
      const started = Date.now();
      await gaze.kill('SIGTERM');
      assert.equal(gaze.child.exitCode, 0, gaze.output());
      assert.ok(Date.now() - started < 10_000, `stopped after ${Date.now() - started} ms`);
      return gaze.output();
    } finally {
      await gaze.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('stdout on a full disk: the service answers, says so once on stderr, and stops on SIGTERM', { timeout: 60_000 }, async () => {
  const full = openSync('/dev/full', 'w');
  try {
    const said = await servesThenStops({}, full);
    assert.equal(said.match(/^gaze: stdout: ENOSPC/gm)?.length, 1, said);
  } finally {
    closeSync(full);
  }
});

test('log_file on a full disk: the same', { timeout: 60_000 }, async () => {
  const said = await servesThenStops({ DEFAULT: { log_file: '/dev/full' } });
  assert.equal(said.match(/^gaze: the log file \/dev\/full: ENOSPC/gm)?.length, 1, said);
});
