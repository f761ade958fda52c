// Starts a real, throw-away MariaDB for a test file (scripts/start-mariadb.sh) in a temp dir on a free
// loopback port, like test/helpers/postgres.ts: one server per test file, and freshDatabase() makes a new,
// empty database for each test that asks.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createConnection, type Connection } from 'mysql2/promise';
import { freePort } from './keystone.ts';
import { runScript } from './scripts.ts';

export interface RunningMariadb {
  /** mysql+pymysql://gaze:gaze@127.0.0.1:PORT/gaze, the database the start script made. */
  url: string;
  port: number;
  dir: string;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** Creates a new empty database and returns its connection URL. */
  freshDatabase(): Promise<string>;
}

let counter = 0;

export async function startMariadb(): Promise<RunningMariadb> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-mariadb-'));

  // If the test process dies without calling stop(), do not leave a server behind: only the server whose
  // PID this very datadir's pid file names is killed (its data is thrown away).
  const onExit = () => {
    try {
      const pid = Number(readFileSync(path.join(dir, 'run', 'mariadbd.pid'), 'utf8').trim());
      if (pid > 0) process.kill(pid, 'SIGKILL');
    } catch {
      /* not running */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  // A port free a moment ago may be taken before the server binds it: retry on another one.
  let port = 0;
  let url = '';
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      const out = await runScript('start-mariadb.sh', [dir, String(port)], 120_000);
      const ready = /^READY (\S+)$/m.exec(out);
      if (!ready) throw new Error(`start-mariadb.sh did not print READY:\n${out}`);
      url = ready[1];
      break;
    } catch (err) {
      if (attempt < 3 && /already in use|Can't start server/.test(String(err))) {
        await runScript('stop-mariadb.sh', [dir], 60_000).catch(() => {});
        continue;
      }
      await runScript('stop-mariadb.sh', [dir, '--remove'], 60_000).catch(() => {});
      process.removeListener('exit', onExit);
      throw err;
    }
  }

  let admin: Promise<Connection> | null = null;
  let stopped: Promise<void> | null = null;
  return {
    url,
    port,
    dir,
    async freshDatabase() {
      if (stopped) throw new Error('freshDatabase() after stop()');
      admin ??= createConnection({ host: '127.0.0.1', port, user: 'gaze', password: 'gaze' });
      const name = `gaze_t${process.pid}_${++counter}`;
      await (await admin).query(`CREATE DATABASE \`${name}\``);
      return `mysql+pymysql://gaze:gaze@127.0.0.1:${port}/${name}`;
    },
    stop() {
      stopped ??= (async () => {
        if (admin) await admin.then((c) => c.end()).catch(() => {});
        await runScript('stop-mariadb.sh', [dir, '--remove'], 60_000);
        process.removeListener('exit', onExit);
      })();
      return stopped;
    },
  };
}
