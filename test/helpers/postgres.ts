// Starts a real, throw-away PostgreSQL for a test file (scripts/start-postgres.sh) in a temp dir on a
// free loopback port. Starting takes about a second (initdb plus start), so share one per test file and
// isolate tests with freshDatabase(): each call creates a new, empty database owned by `gaze`.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './keystone.ts';
import { runScript } from './scripts.ts';

export interface RunningPostgres {
  /** postgresql://gaze:gaze@127.0.0.1:PORT/gaze, the database the start script made. */
  url: string;
  port: number;
  dir: string;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** Creates a new empty database (owned by gaze) and returns its connection URL. */
  freshDatabase(): Promise<string>;
}

let counter = 0;

export async function startPostgres(): Promise<RunningPostgres> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-postgres-'));

  // If the test process dies without calling stop(), do not leave a server behind: only the postmaster
  // whose PID this very cluster wrote is signalled (SIGQUIT: immediate shutdown, the data is thrown away).
  const onExit = () => {
    try {
      const pid = Number(
        readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8')
          .split('\n')[0]
          .trim(),
      );
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      /* not running */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  // freePort() only finds a port that was free a moment ago; another process may take it before the
  // server binds it, so a start that lost that race is retried on another port (the cluster is reused).
  let port = 0;
  let url = '';
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      const out = await runScript('start-postgres.sh', [dir, String(port)], 120_000);
      const ready = /^READY (\S+)$/m.exec(out);
      if (!ready) throw new Error(`start-postgres.sh did not print READY:\n${out}`);
      url = ready[1];
      break;
    } catch (err) {
      if (attempt < 3 && /Address already in use/.test(String(err))) continue;
      await runScript('stop-postgres.sh', [dir, '--remove'], 60_000).catch(() => {});
      process.removeListener('exit', onExit);
      throw err;
    }
  }

  // One connection for CREATE DATABASE (it cannot run inside a transaction; pg's simple query is fine).
  let admin: Promise<{ client: pg.Client; strategy: string }> | null = null;
  let stopped: Promise<void> | null = null;
  return {
    url,
    port,
    dir,
    async freshDatabase() {
      if (stopped) throw new Error('freshDatabase() after stop()');
      admin ??= (async () => {
        const client = new pg.Client({ connectionString: url });
        client.on('error', () => {
          /* the server went away; the next query reports it */
        });
        await client.connect();
        // Copying template1's files is a little faster than WAL-logging them (PostgreSQL 15+).
        const { rows } = await client.query<{ v: string }>('SHOW server_version_num');
        return { client, strategy: Number(rows[0].v) >= 150000 ? ' STRATEGY = FILE_COPY' : '' };
      })();
      const { client, strategy } = await admin;
      const name = `gaze_t${process.pid}_${++counter}`;
      await client.query(`CREATE DATABASE "${name}" OWNER gaze${strategy}`);
      return `postgresql://gaze:gaze@127.0.0.1:${port}/${name}`;
    },
    stop() {
      stopped ??= (async () => {
        if (admin) await admin.then(({ client }) => client.end()).catch(() => {});
        await runScript('stop-postgres.sh', [dir, '--remove'], 60_000);
        process.removeListener('exit', onExit);
      })();
      return stopped;
    },
  };
}
