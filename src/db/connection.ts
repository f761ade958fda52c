import path from 'node:path';
import { mkdirSync } from 'node:fs';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import type { Database } from './schema.ts';
import { migrationProvider } from './migrations/index.ts';

export type Engine = 'sqlite' | 'postgresql';

export interface Db {
  kysely: Kysely<Database>;
  engine: Engine;
  close(): Promise<void>;
  /** Connections by state, for metrics. */
  poolUsage(): Record<'total' | 'idle' | 'waiting' | 'max', number>;
}

// PostgreSQL returns BIGINT (sizes) as strings; image sizes fit in a double up to 8 PiB.
pg.types.setTypeParser(20, (value: string) => Number(value));

/**
 * `sqlite:////abs/path.db` (SQLAlchemy's form: four slashes for an absolute path), `sqlite://` for memory,
 * or `postgresql://user:pw@host:port/db` (`postgresql+psycopg2://` is accepted too).
 */
export function openDatabase(connection: string): Db {
  if (connection.startsWith('sqlite:')) {
    const rest = connection.replace(/^sqlite:\/\//, '');
    const file = rest === '' || rest === '/:memory:' ? ':memory:' : rest.replace(/^\//, '');
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const sqlite = new SQLite(file);
    // WAL lets readers go on while an upload's final write commits; a busy timeout instead of SQLITE_BUSY.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    return { kysely, engine: 'sqlite', close: () => kysely.destroy(), poolUsage: () => ({ total: 1, idle: 0, waiting: 0, max: 1 }) };
  }
  if (/^postgres(ql)?(\+\w+)?:\/\//.test(connection)) {
    const url = connection.replace(/^postgres(ql)?(\+\w+)?:/, 'postgresql:');
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const poolUsage = () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max ?? 10 });
    return { kysely, engine: 'postgresql', close: () => kysely.destroy(), poolUsage };
  }
  throw new Error(`unsupported [database] connection '${connection}': use sqlite:////path.db or postgresql://...`);
}

/** Applies pending migrations; returns the names applied. */
export async function syncSchema(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db: db.kysely, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Whether a write failed on a unique constraint (a concurrent or duplicate insert), on either engine. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
