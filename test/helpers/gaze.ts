// Starts Gaze for a test: in this process (fast, for API tests) or as a real `gaze serve` child process
// (for end-to-end tests with the OpenStack clients). Each gets its own temp dir, database and store.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type RawSections } from '../../src/config/index.ts';
import { createApp, type App } from '../../src/app.ts';
import { freePort } from './keystone.ts';
import { silentLogger, type Logger } from '../../src/util/logger.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));

export interface RunningGaze {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/** Writes the INI file; `__DIR__` in a value stands for the test's temp dir. */
export function writeConfig(dir: string, port: number, sections: RawSections): string {
  const merged: RawSections = {
    ...sections,
    DEFAULT: { bind_host: '127.0.0.1', bind_port: String(port), data_dir: path.join(dir, 'data'), ...sections.DEFAULT },
  };
  const text = Object.entries(merged)
    .map(
      ([name, opts]) =>
        `[${name}]\n${Object.entries(opts)
          // A value of several lines is a multi-valued option's: the option once per value.
          .map(([k, v]) =>
            v
              .replaceAll('__DIR__', dir)
              .split('\n')
              .map((line) => `${k} = ${line}`)
              .join('\n'),
          )
          .join('\n')}\n`,
    )
    .join('\n');
  const file = path.join(dir, 'gaze.conf');
  writeFileSync(file, text);
  return file;
}

/** Gaze inside the test process, listening on a free loopback port; `log` takes its log lines (silent unless a test reads them). */
export async function startGazeInProcess(
  sections: RawSections = {},
  opts: { log?: Logger; /** Files written beside the config file first (policy.yaml, schema-image.json). */ besideConfig?: Record<string, string> } = {},
): Promise<RunningGaze & { app: App }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-test-'));
  const port = await freePort();
  let app: App;
  try {
    for (const [name, text] of Object.entries(opts.besideConfig ?? {})) writeFileSync(path.join(dir, name), text);
    app = await createApp(loadConfig(writeConfig(dir, port, sections), {}), { log: opts.log ?? silentLogger() });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  await app.server.listen({ host: '127.0.0.1', port });
  return {
    app,
    dir,
    port,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What startGazeProcess returns. */
export type GazeProcess = Awaited<ReturnType<typeof startGazeProcess>>;

/** A real `gaze serve` process with a config file written from `sections`. */
export async function startGazeProcess(
  sections: RawSections = {},
  opts: { dir?: string; port?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningGaze & { child: ChildProcess; output(): string; kill(signal?: NodeJS.Signals): Promise<void> }> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'gaze-e2e-'));
  const port = opts.port ?? (await freePort());
  const configFile = writeConfig(dir, port, sections);
  let gaze: Awaited<ReturnType<typeof launchGaze>>;
  try {
    gaze = await launchGaze({ args: ['--config', configFile], cwd: dir, port, env: opts.env });
  } catch (err) {
    // A start that failed (as some tests want) leaves no directory behind.
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...gaze,
    dir,
    async stop() {
      await gaze.kill('SIGTERM');
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `gaze serve` with the given arguments and environment, listening on `port` (which its configuration
 * must name); resolves once it answers. Its output is kept in `output()`.
 */
export async function launchGaze(opts: {
  args: string[];
  cwd: string;
  port: number;
  env?: NodeJS.ProcessEnv;
  /** A descriptor for its stdout instead of a pipe. */
  stdout?: number;
  /** The largest file it may write, in KiB (the shell's ulimit -f): a write beyond fails with EFBIG. */
  fileSizeLimitKiB?: number;
}) {
  // Through the launcher an operator uses (bin/gaze, which execs node: the child's pid is the service's).
  const launcher = path.join(repo, 'bin/gaze');
  const [command, args] =
    opts.fileSizeLimitKiB === undefined
      ? [launcher, ['serve', ...opts.args]]
      : ['/bin/sh', ['-c', `ulimit -f ${opts.fileSizeLimitKiB} && exec "$@"`, 'sh', launcher, 'serve', ...opts.args]];
  const child = spawn(command, args, {
    cwd: opts.cwd,
    stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'],
    env: { ...process.env, GAZE_NODE: process.execPath, ...opts.env },
  });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gaze serve exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/versions`);
      if (res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gaze serve did not start within 30 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { child, port: opts.port, url, kill, output: () => output, stop: () => kill('SIGTERM') };
}

/** Runs a gaze command that exits (config check, db sync): its exit code and output. */
export function runGaze(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin/gaze.js'), ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
