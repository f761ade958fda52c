// Runs the same tests against every database engine Gaze supports:
//
//   forEachEngine((engine) => {
//     let db: Db;
//     before(async () => { db = await engine.open(); });   // fresh database, schema synced
//     test('...', async () => { ... });
//   });
//
// registers one `describe('sqlite')`, one `describe('postgresql')` and one `describe('mysql')` around the
// body. SQLite databases are files in a temp dir (`sqlite:////abs/path.db`); PostgreSQL and MariaDB are one
// real server each per test file (test/helpers/postgres.ts, mariadb.ts), started when first needed, with a
// new database for every open()/url().
// Everything opened is closed, and the server stopped, after the engine's describe.
// GAZE_TEST_ENGINES=sqlite (or postgresql, mysql; comma-separated) limits the engines, e.g. where no
// database server is installed.

import { describe, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase, syncSchema, type Db, type Engine } from '../../src/db/connection.ts';
import { startPostgres } from './postgres.ts';
import { startMariadb } from './mariadb.ts';

export const ALL_ENGINES: readonly Engine[] = ['sqlite', 'postgresql', 'mysql'];

interface RunningServer {
  freshDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** The engines to test: all of them, or the ones GAZE_TEST_ENGINES names. */
export function testEngines(): Engine[] {
  const wanted = (process.env.GAZE_TEST_ENGINES ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (wanted.length === 0) return [...ALL_ENGINES];
  const unknown = wanted.filter((w) => !(ALL_ENGINES as readonly string[]).includes(w));
  if (unknown.length) throw new Error(`GAZE_TEST_ENGINES: unknown engine(s) ${unknown.join(', ')} (use ${ALL_ENGINES.join(', ')})`);
  return ALL_ENGINES.filter((e) => wanted.includes(e));
}

export interface TestEngine {
  name: Engine;
  /** The connection string of a new, empty database (what `[database] connection` takes). */
  url(): Promise<string>;
  /** Opens a new, empty database; with the schema synced unless `sync: false`. Closed after the suite. */
  open(opts?: { sync?: boolean }): Promise<Db>;
  /** Closes what open() returned, removes SQLite files and stops the server (after() does it too). */
  cleanup(): Promise<void>;
}

/** Databases of one engine for one suite; nothing is started before the first url()/open(). */
export function createTestEngine(name: Engine): TestEngine {
  const opened: Db[] = [];
  let sqliteDir: string | null = null;
  let server: Promise<RunningServer> | null = null;
  let files = 0;

  async function url(): Promise<string> {
    if (name === 'sqlite') {
      sqliteDir ??= mkdtempSync(path.join(tmpdir(), 'gaze-sqlite-'));
      // SQLAlchemy's form: `sqlite:///` + an absolute path, hence four slashes.
      return `sqlite:///${path.join(sqliteDir, `test-${++files}.db`)}`;
    }
    server ??= name === 'mysql' ? startMariadb() : startPostgres();
    return (await server).freshDatabase();
  }

  return {
    name,
    url,
    async open(opts = {}) {
      const db = openDatabase(await url());
      opened.push(db);
      if (opts.sync !== false) await syncSchema(db);
      return db;
    },
    async cleanup() {
      const dbs = opened.splice(0);
      await Promise.all(dbs.map((db) => db.close().catch(() => {})));
      if (sqliteDir) {
        rmSync(sqliteDir, { recursive: true, force: true });
        sqliteDir = null;
      }
      if (server) {
        const running = server;
        server = null;
        await (await running.catch(() => null))?.stop();
      }
    },
  };
}

/** Registers `describe(engine)` for every test engine, with the body's tests and hooks inside. */
export function forEachEngine(body: (engine: TestEngine) => void): void {
  for (const name of testEngines()) {
    describe(name, () => {
      const engine = createTestEngine(name);
      body(engine);
      // Registered after the body's own hooks, so those still find their databases open.
      after(() => engine.cleanup());
    });
  }
}
