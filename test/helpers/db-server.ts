// A real, throw-away database server for a test file (PostgreSQL or MariaDB, started by its script in
// scripts/) in a temp dir on a free loopback port. Starting takes a second or more, so a test file shares
// one server and isolates its tests with freshDatabase(): each call creates a new, empty database.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './keystone.ts';
import { runScript } from './scripts.ts';

export interface RunningDatabaseServer {
  /** The connection URL of the database the start script made (user and password `gaze`). */
  url: string;
  port: number;
  dir: string;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** Creates a new empty database (owned by `gaze`) and returns its connection URL. */
  freshDatabase(): Promise<string>;
}

/** One connection that creates databases (CREATE DATABASE cannot run in a transaction). */
export interface DatabaseCreator {
  create(name: string): Promise<string>;
  close(): Promise<void>;
}

/** What differs between the servers. */
export interface ServerKind {
  /** `scripts/start-<name>.sh DIR PORT` prints `READY <url>`; `stop-<name>.sh DIR [--remove]` stops it. */
  name: 'postgres' | 'mariadb';
  /** The server's PID and the signal that ends it at once, should the test process die without stop(). */
  runningPid(dir: string): number;
  killSignal: NodeJS.Signals;
  /** A start that lost the race for its port (freePort() only finds a port that was free a moment ago). */
  lostPort: RegExp;
  creator(url: string, port: number): Promise<DatabaseCreator>;
}

let counter = 0;

export async function startDatabaseServer(kind: ServerKind): Promise<RunningDatabaseServer> {
  const dir = mkdtempSync(path.join(tmpdir(), `gaze-${kind.name}-`));
  const script = (verb: 'start' | 'stop') => `${verb}-${kind.name}.sh`;

  // If the test process dies without calling stop(), do not leave a server behind: only the server whose
  // PID this very directory's pid file names is signalled (its data is thrown away).
  const onExit = () => {
    try {
      const pid = kind.runningPid(dir);
      if (pid > 0) process.kill(pid, kind.killSignal);
    } catch {
      /* not running */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  let port = 0;
  let url = '';
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      const out = await runScript(script('start'), [dir, String(port)], 120_000);
      const ready = /^READY (\S+)$/m.exec(out);
      if (!ready) throw new Error(`${script('start')} did not print READY:\n${out}`);
      url = ready[1]!;
      break;
    } catch (err) {
      if (attempt < 3 && kind.lostPort.test(String(err))) {
        await runScript(script('stop'), [dir], 60_000).catch(() => {}); // the data directory is reused
        continue;
      }
      await runScript(script('stop'), [dir, '--remove'], 60_000).catch(() => {});
      process.removeListener('exit', onExit);
      throw err;
    }
  }

  let creator: Promise<DatabaseCreator> | null = null;
  let stopped: Promise<void> | null = null;
  return {
    url,
    port,
    dir,
    async freshDatabase() {
      if (stopped) throw new Error('freshDatabase() after stop()');
      creator ??= kind.creator(url, port);
      return (await creator).create(`gaze_t${process.pid}_${++counter}`);
    },
    stop() {
      stopped ??= (async () => {
        if (creator) await creator.then((c) => c.close()).catch(() => {});
        await runScript(script('stop'), [dir, '--remove'], 60_000);
        process.removeListener('exit', onExit);
      })();
      return stopped;
    },
  };
}

/** The first line of a pid file, as a number (0 when absent). */
export function pidFrom(file: string): number {
  return Number(readFileSync(file, 'utf8').split('\n')[0]!.trim());
}
