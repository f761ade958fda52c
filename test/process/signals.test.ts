// The signals an operator (or logrotate, or systemd) sends a running `gaze serve`, besides TERM and INT:
// none of them may stop the service, and each does what it says in the log. And a supervisor whose
// workers cannot listen stops, instead of starting workers for ever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess } from '../helpers/gaze.ts';
import { freePort } from '../helpers/keystone.ts';
import { until } from '../helpers/wait.ts';

const repo = path.resolve(import.meta.dirname, '../..');

for (const workers of [1, 2]) {
  test(`workers = ${workers}: SIGHUP reopens the log file (logrotate's move, then the signal), SIGUSR2 logs a report, SIGUSR1 opens no inspector; the service goes on`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-signals-'));
    const logFile = path.join(dir, 'gaze.log');
    const gaze = await startGazeProcess({ DEFAULT: { log_file: logFile, workers: String(workers) } }, { dir });
    try {
      const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');
      await until(() => (/serving the Image API/.test(lines(logFile)) ? true : undefined), 'the start line');
      // The supervisor passes signals on to the workers that serve (one still loading would die of them).
      if (workers > 1) await until(() => (lines(logFile).split('worker serving').length - 1 === workers ? true : undefined), 'every worker serving');
      renameSync(logFile, `${logFile}.1`);
      gaze.child.kill('SIGHUP');
      // Every process reopens its own (the supervisor and each worker): one line from each pid.
      const reopenedBy = () =>
        new Set(
          lines(logFile)
            .split('\n')
            .filter((l) => l.includes('SIGHUP: the log file was reopened'))
            .map((l) => JSON.parse(l).pid),
        );
      await until(() => (reopenedBy().size === (workers === 1 ? 1 : workers + 1) ? true : undefined), 'every process to reopen the log file');
      for (let i = 0; i < 4; i++) assert.equal((await fetch(`${gaze.url}/v2/images`)).status, 200);
      await until(() => (/"url":"\/v2\/images"/.test(lines(logFile)) ? true : undefined), 'a request line in the new file');
      assert.doesNotMatch(lines(logFile), /serving the Image API/, 'the old lines stayed in the moved file');
      gaze.child.kill('SIGUSR2');
      await until(() => (/SIGUSR2: status report/.test(lines(logFile)) ? true : undefined), 'the report');
      gaze.child.kill('SIGUSR1');
      await until(() => (/SIGUSR1 ignored/.test(lines(logFile)) ? true : undefined), 'SIGUSR1 refused');
      assert.equal((await fetch(`${gaze.url}/v2/images`)).status, 200);
      assert.equal(gaze.child.exitCode, null);
      assert.doesNotMatch(gaze.output(), /Debugger listening/);
      // A log file that cannot be opened again (its place taken by a directory): said, and the service goes on.
      renameSync(logFile, `${logFile}.2`);
      mkdirSync(logFile);
      gaze.child.kill('SIGHUP');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal((await fetch(`${gaze.url}/v2/images`)).status, 200);
      assert.equal(gaze.child.exitCode, null);
      // Said in the file still open, where lines go on.
      await until(() => (/SIGHUP: the log file could not be reopened/.test(lines(`${logFile}.2`)) ? true : undefined), 'the failed reopen said');
      // And the next SIGHUP, once the place is free again, reopens it: nothing of the failed one is left behind.
      rmSync(logFile, { recursive: true });
      gaze.child.kill('SIGHUP');
      await until(() => (/SIGHUP: the log file was reopened/.test(lines(logFile)) ? true : undefined), 'the log file reopened after all');
      assert.equal((await fetch(`${gaze.url}/v2/images`)).status, 200);
      assert.doesNotMatch(gaze.output(), /EBADF/);
    } finally {
      await gaze.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('workers = 2 on a port already taken: the supervisor stops with an error instead of starting workers for ever', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-taken-'));
  const port = await freePort();
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
  try {
    const config = path.join(dir, 'gaze.conf');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(config, `[DEFAULT]\nbind_port = ${port}\nworkers = 2\ndata_dir = ${dir}\n`);
    const child = spawn(path.join(repo, 'bin/gaze'), ['serve', '--config-file', config], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GAZE_NODE: process.execPath },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(-1);
      }, 30_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 1, output);
    assert.match(output, /EADDRINUSE/);
    assert.match(output, /a worker stopped before it could serve \(above\); stopping/);
    assert.doesNotMatch(output, /serving the Image API/);
  } finally {
    taken.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGHUP with the log on stdout says there is no log file to reopen, and the service goes on', async () => {
  const gaze = await startGazeProcess();
  try {
    gaze.child.kill('SIGHUP');
    await until(() => (/SIGHUP: no log file to reopen/.test(gaze.output()) ? true : undefined), 'the SIGHUP line');
    assert.equal((await fetch(`${gaze.url}/v2/images`)).status, 200);
  } finally {
    await gaze.stop();
  }
});
