// A real, throw-away MariaDB for a test file (scripts/start-mariadb.sh): see db-server.ts.

import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { pidFrom, startDatabaseServer, type RunningDatabaseServer } from './db-server.ts';

export type RunningMariadb = RunningDatabaseServer;

export function startMariadb(): Promise<RunningMariadb> {
  return startDatabaseServer({
    name: 'mariadb',
    runningPid: (dir) => pidFrom(path.join(dir, 'run', 'mariadbd.pid')),
    killSignal: 'SIGKILL',
    lostPort: /already in use|Can't start server/,
    async creator(_url, port) {
      const admin = await createConnection({ host: '127.0.0.1', port, user: 'gaze', password: 'gaze' });
      return {
        async create(name) {
          await admin.query(`CREATE DATABASE \`${name}\``);
          return `mysql+pymysql://gaze:gaze@127.0.0.1:${port}/${name}`;
        },
        close: () => admin.end(),
      };
    },
  });
}
