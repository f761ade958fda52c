// A real, throw-away PostgreSQL for a test file (scripts/start-postgres.sh): see db-server.ts.

import path from 'node:path';
import pg from 'pg';
import { pidFrom, startDatabaseServer, type RunningDatabaseServer } from './db-server.ts';

export type RunningPostgres = RunningDatabaseServer;

export function startPostgres(): Promise<RunningPostgres> {
  return startDatabaseServer({
    name: 'postgres',
    // SIGQUIT: the postmaster's immediate shutdown.
    runningPid: (dir) => pidFrom(path.join(dir, 'data', 'postmaster.pid')),
    killSignal: 'SIGQUIT',
    lostPort: /Address already in use/,
    async creator(url, port) {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {
        /* the server went away; the next query reports it */
      });
      await client.connect();
      // Copying template1's files is a little faster than WAL-logging them (PostgreSQL 15+).
      const { rows } = await client.query<{ v: string }>('SHOW server_version_num');
      const strategy = Number(rows[0]!.v) >= 150000 ? ' STRATEGY = FILE_COPY' : '';
      return {
        async create(name) {
          await client.query(`CREATE DATABASE "${name}" OWNER gaze${strategy}`);
          return `postgresql://gaze:gaze@127.0.0.1:${port}/${name}`;
        },
        close: () => client.end(),
      };
    },
  });
}
