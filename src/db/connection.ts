import path from 'node:path';
import { databaseUrlShown, parseDatabaseUrl } from './connection-url.ts';
import { mysqlOptions, postgresConnectTimeoutMs, postgresOptions, postgresPrefersTls } from './client-options.ts';
import { TlsIfOffered, type PgPoolLike } from './tls-if-offered.ts';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CompiledQuery, Kysely, Migrator, MysqlDialect, PostgresDialect, sql } from 'kysely';
import { RefuseNulPlugin } from './refuse-nul.ts';
import type { Database } from './schema.ts';
import { migrationProvider, MYSQL_COLLATION } from './migrations/index.ts';
import { preparingPool } from './prepared-statements.ts';
import { openSqlite } from './sqlite.ts';

export type Engine = 'sqlite' | 'postgresql' | 'mysql';

export interface Db {
  kysely: Kysely<Database>;
  engine: Engine;
  close(): Promise<void>;
  /** Connections by state, for metrics. */
  poolUsage(): Record<'total' | 'idle' | 'waiting' | 'max', number>;
}

// The client of the engine configured is loaded when it is opened: pg and mysql2 together hold about
// 8 MiB of every process that uses neither (SQLite, the embedded default). Synchronous require (both
// are CommonJS) keeps openDatabase synchronous.
const require = createRequire(import.meta.url);

/** pg's Client, each connection of it opened within `ms`. */
function clientWithConnectTimeout(Base: typeof import('pg').Client, ms: number): typeof import('pg').Client {
  return class extends Base {
    constructor(config?: string | import('pg').ClientConfig) {
      super({ ...(typeof config === 'string' ? { connectionString: config } : config), connectionTimeoutMillis: ms });
    }
  };
}

function loadPg(): typeof import('pg') {
  const pg = require('pg') as typeof import('pg');
  // PostgreSQL returns BIGINT (sizes) as strings; image sizes fit in a double up to 8 PiB.
  pg.types.setTypeParser(20, (value: string) => Number(value));
  return pg;
}

/**
 * The engine a `[database] connection` names by its scheme; null for none Gaze has:
 * `sqlite:////abs/path.db` (SQLAlchemy's form: four slashes for an absolute path), `sqlite://` for memory,
 * `postgresql://user:pw@host:port/db` (`postgresql+psycopg2://` is accepted too), or MySQL/MariaDB as
 * Glance writes it: `mysql+pymysql://user:pw@host:port/db` (or `mysql://`, `mariadb+pymysql://`).
 */
export function engineOf(connection: string): Engine | null {
  if (connection.startsWith('sqlite:')) return 'sqlite';
  if (/^postgres(ql)?(\+\w+)?:\/\//.test(connection)) return 'postgresql';
  if (/^(mysql|mariadb)(\+\w+)?:\/\//.test(connection)) return 'mysql';
  return null;
}

/**
 * Throws an Error saying why a connection of an engine Gaze has cannot be used, before anything opens
 * it: what openDatabase would refuse (a SQLite URL with a host, an unknown sslmode, a certificate file
 * that cannot be read).
 */
export function checkConnection(connection: string): void {
  const url = parseDatabaseUrl(connection);
  const engine = engineOf(connection);
  if (engine === 'sqlite') sqliteFile(connection, url);
  if (engine === 'postgresql') postgresOptions(url, 1);
  if (engine === 'mysql') mysqlOptions(url, 1);
}

/**
 * SQLAlchemy's database part of a SQLite URL: a relative path, an absolute one (`////abs`), or none for
 * memory; the query's options (pysqlite's) are not part of the file's name. A host, user or port: refused.
 */
function sqliteFile(connection: string, url = parseDatabaseUrl(connection)): string {
  if (url.host !== null || url.username !== null || url.port !== null) {
    throw new Error(`invalid SQLite URL '${databaseUrlShown(connection)}': write sqlite:///relative/path.db or sqlite:////absolute/path.db`);
  }
  return url.database ?? ':memory:';
}

/** The file a SQLite connection keeps its database in; null for another engine, or memory. */
export function sqliteDatabaseFile(connection: string): string | null {
  if (engineOf(connection) !== 'sqlite') return null;
  const file = sqliteFile(connection);
  return file === ':memory:' ? null : file;
}

/** What an operator should hear at start about a connection Gaze uses otherwise than its Python driver would. */
export function connectionNotes(connection: string): string[] {
  if (engineOf(connection) !== 'postgresql') return [];
  return parseDatabaseUrl(connection).query.get('sslmode') === 'allow'
    ? ['[database] connection: sslmode=allow connects without TLS here (libpq would try TLS when the server refuses plain); write sslmode=require to encrypt']
    : [];
}

/** `mustExist`: a SQLite file is opened, never created (commands other than `db sync` and `serve`). */
export function openDatabase(
  connection: string,
  opts: {
    maxConnections?: number;
    mustExist?: boolean;
    /** oslo.db's; null sets none. */
    mysqlSqlMode?: string | null;
    /** Told of an idle connection the server ended (the pool opens another when next needed). */
    onConnectionLost?: (err: Error) => void;
  } = {},
): Db {
  const maxConnections = opts.maxConnections ?? 10;
  const engine = engineOf(connection);
  if (engine === 'sqlite') {
    const file = sqliteFile(connection);
    if (opts.mustExist && file !== ':memory:' && !existsSync(file)) {
      throw new Error(`the database file ${path.resolve(file)} does not exist: run \`gaze db sync\` first`);
    }
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const kysely = openSqlite(file);
    return { kysely, engine: 'sqlite', close: () => kysely.destroy(), poolUsage: () => ({ total: 1, idle: 0, waiting: 0, max: 1 }) };
  }
  if (engine === 'postgresql') {
    const url = parseDatabaseUrl(connection);
    const pg = loadPg();
    const connectTimeoutMs = postgresConnectTimeoutMs(url);
    // The timeout goes to each connection: the pool's own option would also bound a query's wait for a
    // free connection, which libpq's does not.
    const Client = connectTimeoutMs === undefined ? pg.Client : clientWithConnectTimeout(pg.Client, connectTimeoutMs);
    const config = { ...postgresOptions(url, maxConnections), Client };
    const makePool = (tls: boolean) => {
      const made = new pg.Pool(tls ? config : { ...config, ssl: false });
      // An idle connection the server ended (a restart, an administrator, an idle timeout) is reported
      // here; the pool has dropped it and opens another when next needed. Unheard, it would end the process.
      made.on('error', (err) => opts.onConnectionLost?.(err));
      return made;
    };
    const pool: PgPoolLike = postgresPrefersTls(url) ? new TlsIfOffered(makePool) : makePool(true);
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool: preparingPool(pool) }), plugins: [new RefuseNulPlugin()] });
    const poolUsage = () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: maxConnections });
    return { kysely, engine: 'postgresql', close: () => kysely.destroy(), poolUsage };
  }
  if (engine === 'mysql')
    return openMysql(connection, maxConnections, opts.mysqlSqlMode === undefined ? 'TRADITIONAL' : opts.mysqlSqlMode, opts.onConnectionLost);
  throw new Error(`unsupported [database] connection '${databaseUrlShown(connection)}': use sqlite:////path.db, postgresql://... or mysql+pymysql://...`);
}

function openMysql(connection: string, maxConnections: number, sqlMode: string | null, onConnectionLost?: (err: Error) => void): Db {
  const { createPool } = require('mysql2') as typeof import('mysql2');
  const pool = createPool({
    // mysql2's 0 is no limit. The query's `charset` is always utf8mb4 here.
    ...mysqlOptions(parseDatabaseUrl(connection), Number.isFinite(maxConnections) ? maxConnections : 0),
    charset: 'utf8mb4',
    // affectedRows counts the rows a WHERE matched, as on the other engines (not only the changed ones):
    // a guarded update that rewrites a row with equal values still reports that it found it.
    flags: ['FOUND_ROWS'],
  });
  // A connection the server ended (a restart, KILL, wait_timeout): the pool drops it and opens another.
  pool.on('connection', (conn) => conn.on('error', (err: Error) => onConnectionLost?.(err)));
  const kysely = new Kysely<Database>({
    plugins: [new RefuseNulPlugin()],
    dialect: new MysqlDialect({
      pool,
      // READ COMMITTED as PostgreSQL: a transaction sees rows other transactions committed after it
      // started, which the row-lock patterns (select ... for update, then read) rely on. Strings compare
      // byte for byte, as on the other engines (the tables are made with the same collation).
      onCreateConnection: async (conn) => {
        await conn.executeQuery(CompiledQuery.raw('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED'));
        await conn.executeQuery(CompiledQuery.raw(`SET NAMES utf8mb4 COLLATE ${MYSQL_COLLATION}`));
        // JSON_ARRAYAGG (an image's properties in one column) is cut at this length, 1 MiB by default.
        await conn.executeQuery(CompiledQuery.raw('SET SESSION group_concat_max_len = 67108864'));
        // oslo.db's mysql_sql_mode (TRADITIONAL): a value too long for its column is an error, not cut.
        if (sqlMode !== null) await conn.executeQuery(CompiledQuery.raw('SET SESSION sql_mode = ?', [sqlMode]));
      },
    }),
  });
  const poolUsage = () => {
    const internals = pool as unknown as { _allConnections?: { length: number }; _freeConnections?: { length: number }; _connectionQueue?: { length: number } };
    return {
      total: internals._allConnections?.length ?? 0,
      idle: internals._freeConnections?.length ?? 0,
      waiting: internals._connectionQueue?.length ?? 0,
      max: maxConnections,
    };
  };
  return { kysely, engine: 'mysql', close: () => kysely.destroy(), poolUsage };
}

/**
 * Applies pending migrations; returns the names applied. Two processes that sync one SQLite file at
 * once (Kysely takes no lock there): the one whose transaction lost answers SQLITE_BUSY, reads the
 * schema again and finds it done.
 */
export async function syncSchema(db: Db): Promise<string[]> {
  await refuseForeignSchema(db);
  const migrator = new Migrator({ db: db.kysely, provider: migrationProvider });
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    const busy = db.engine === 'sqlite' && String((error as { code?: unknown } | undefined)?.code ?? '').startsWith('SQLITE_BUSY');
    if (busy && attempt < 10) {
      // WAL answers a write that lost the race at once, without busy_timeout's wait: pause, a little
      // longer each time and apart from the others, so that three syncs at once do not use their tries up together.
      await new Promise((resolve) => setTimeout(resolve, attempt * (20 + Math.random() * 80)));
      continue;
    }
    // Kysely calls a migration it does not have "corrupted": it is one a newer Gaze applied.
    const unknown = /previously executed migration (\S+) is missing/.exec(String((error as Error | undefined)?.message ?? ''));
    if (unknown) {
      throw new Error(`the database has ${newerSchema(unknown[1]!)}`, { cause: error });
    }
    if (error) throw error;
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  }
}

/**
 * A database that already holds tables of the same names without Gaze's migrations (Glance's own, made by
 * glance-manage db_sync) is refused before anything is written to it: Gaze keeps its images in a
 * database of its own. Only the schema Gaze writes into counts (PostgreSQL's current one).
 */
async function refuseForeignSchema(db: Db): Promise<void> {
  const tables = await tableNames(db);
  if (tables.has('kysely_migration') || !tables.has('images')) return;
  const whose = tables.has('alembic_version') ? "Glance's schema (glance-manage db_sync made it)" : 'an `images` table of another application';
  throw new Error(`the database holds ${whose}: Gaze needs a database of its own (create an empty one and name it in [database] connection)`);
}

/** A database a newer Gaze upgraded, as every command that refuses it says it. */
export function newerSchema(migration: string): string {
  return `schema migration ${migration}, which this Gaze does not know: a newer Gaze upgraded it; run that version or a newer one`;
}

/**
 * The database as the commands other than `db sync` and `serve` use it: it must exist and have Gaze's
 * whole schema (as glance-manage's commands need db_sync first), and no newer Gaze's (they could act on
 * what they do not know); nothing is created or upgraded here.
 */
export async function openWithSchema(url: string, opts: { mysqlSqlMode?: string | null } = {}): Promise<Db> {
  const db = openDatabase(url, { mustExist: true, ...opts });
  const refuse = async (why: string, cause?: unknown) => {
    await db.close();
    return new Error(why, cause === undefined ? undefined : { cause });
  };
  let state: Awaited<ReturnType<typeof migrationState>>;
  try {
    state = await migrationState(db);
  } catch (err) {
    throw await refuse(`cannot read the database ${databaseUrlShown(url)}: ${(err as Error).message}`, err);
  }
  if (state.pending.length) {
    throw await refuse(
      `the database ${databaseUrlShown(url)} does not have Gaze's schema (${state.pending.length} migrations to apply): run \`gaze db sync\` first`,
    );
  }
  if (state.unknown.length) throw await refuse(`the database ${databaseUrlShown(url)} has ${newerSchema(state.unknown.at(-1)!)}`);
  return db;
}

/** The tables of the database (its current schema). */
async function tableNames(db: Db): Promise<Set<string>> {
  const names =
    db.engine === 'sqlite'
      ? sql<{ name: string }>`select name from sqlite_master where type = 'table'`
      : sql<{
          name: string;
        }>`select table_name as name from information_schema.tables where table_schema = ${db.engine === 'postgresql' ? sql`current_schema()` : sql`database()`}`;
  return new Set((await names.execute(db.kysely)).rows.map((row) => row.name));
}

/** The names of the migrations applied, in order, of those still to apply, and of those a newer Gaze applied. */
export async function migrationState(db: Db): Promise<{ applied: string[]; pending: string[]; unknown: string[] }> {
  // Kysely's record of what was applied, read once; in Kysely's order (by name).
  const byName = (a: string, b: string) => a.localeCompare(b);
  const known = Object.keys(await migrationProvider.getMigrations()).sort(byName);
  const recorded = (await tableNames(db)).has('kysely_migration')
    ? new Set((await sql<{ name: string }>`select name from kysely_migration`.execute(db.kysely)).rows.map((row) => row.name))
    : new Set<string>();
  return {
    applied: known.filter((name) => recorded.has(name)),
    pending: known.filter((name) => !recorded.has(name)),
    // Applied by a newer Gaze: this one does not have them.
    unknown: [...recorded].filter((name) => !known.includes(name)).sort(byName),
  };
}

// Failures to reach the server at all (oslo.db's DBConnectionError): refused, unresolvable, cut, timed
// out, or a PostgreSQL still starting up or shutting down. Not a refused password or a missing database.
// ENOENT: the unix socket of a server not started yet (pg's ?host=/run/postgresql, mysql's unix_socket).
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  '57P03',
  '57P01',
  'PROTOCOL_CONNECTION_LOST',
]);

function unreachable(err: unknown): boolean {
  const e = err as { code?: unknown; errors?: unknown[]; message?: unknown } | null;
  const codes = [e?.code, ...(Array.isArray(e?.errors) ? e.errors.map((x) => (x as { code?: unknown }).code) : [])];
  return codes.some((c) => typeof c === 'string' && UNREACHABLE.has(c)) || /Connection terminated unexpectedly/.test(String(e?.message));
}

/**
 * `first` (the first use of the database at start), tried again while the server cannot be reached:
 * up to `maxRetries` attempts `intervalMs` apart (-1: no end), as oslo.db waits for its server at start
 * ([database] max_retries, retry_interval), so a service started before its database comes up waits.
 */
export async function whenReachable<T>(
  first: () => Promise<T>,
  opts: { maxRetries: number; intervalMs: number; onRetry: (err: unknown, attemptsLeft: number | null) => void },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await first();
    } catch (err) {
      const left = opts.maxRetries === -1 ? null : opts.maxRetries - attempt;
      if (!unreachable(err) || (left !== null && left <= 0)) throw err;
      opts.onRetry(err, left);
      await new Promise((resolve) => setTimeout(resolve, opts.intervalMs));
    }
  }
}

/**
 * Whether a write failed on a value longer than its column holds (PostgreSQL's varchar, MariaDB's
 * varchar and 64 KiB TEXT, which reports a long multi-byte text cut mid-character as a bad string;
 * SQLite keeps any length).
 */
export function isValueTooLong(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '22001' || code === 'ER_DATA_TOO_LONG' || code === 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD';
}

/** Whether a write failed on a unique constraint (a concurrent or duplicate insert), on either engine. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'ER_DUP_ENTRY';
}
