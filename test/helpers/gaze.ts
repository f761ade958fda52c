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

const repo = fileURLToPath(new URL('../../', import.meta.url));

export interface RunningGaze {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/** Writes the INI file; `__DIR__` in a value stands for the test's temp dir. */
function writeConfig(dir: string, port: number, sections: RawSections): string {
  const merged: RawSections = { ...sections, DEFAULT: { bind_host: '127.0.0.1', bind_port: String(port), data_dir: path.join(dir, 'data'), ...sections.DEFAULT } };
  const text = Object.entries(merged)
    .map(([name, opts]) => `[${name}]\n${Object.entries(opts).map(([k, v]) => `${k} = ${v.replaceAll('__DIR__', dir)}`).join('\n')}\n`)
    .join('\n');
  const file = path.join(dir, 'gaze.conf');
  writeFileSync(file, text);
  return file;
}

/** Gaze inside the test process, listening on a free loopback port. */
export async function startGazeInProcess(sections: RawSections = {}): Promise<RunningGaze & { app: App }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-test-'));
  const port = await freePort();
  const config = loadConfig(writeConfig(dir, port, sections), {});
  const app = await createApp(config);
  await app.server.listen({ host: '127.0.0.1', port });
  return {
    app, dir, port, url: `http://127.0.0.1:${port}`,
    async stop() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What startGazeProcess returns. */
export type GazeProcess = Awaited<ReturnType<typeof startGazeProcess>>;

/** A real `gaze serve` process with a config file written from `sections`. */
export async function startGazeProcess(sections: RawSections = {}, opts: { dir?: string; port?: number } = {}): Promise<RunningGaze & { child: ChildProcess; kill(signal?: NodeJS.Signals): Promise<void> }> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'gaze-e2e-'));
  const port = opts.port ?? (await freePort());
  const configFile = writeConfig(dir, port, sections);
  const child = spawn(process.execPath, [path.join(repo, 'bin/gaze.js'), 'serve', '--config', configFile], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env },
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gaze serve exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/versions`);
      if (res.status === 200) break;
    } catch { /* not listening yet */ }
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
  return {
    child, dir, port, url, kill,
    async stop() {
      await kill('SIGTERM');
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
