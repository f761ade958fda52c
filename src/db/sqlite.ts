// SQLite as Gaze opens it: WAL, a busy timeout, foreign keys, transactions that take the write lock as
// they begin and may change the schema, and errors that say which file and what happened.

import path from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteAdapter, SqliteDialect, SqliteDriver } from 'kysely';
import type { DatabaseConnection, SqliteDialectConfig } from 'kysely';
import { RefuseNulPlugin } from './refuse-nul.ts';
import type { Database } from './schema.ts';

/** The database in `file` (or `:memory:`). */
export function openSqlite(file: string): Kysely<Database> {
  const sqlite = namingTheFile(file, () => {
    const opened = new SQLite(file);
    // WAL lets readers go on while an upload's final write commits; a busy timeout instead of SQLITE_BUSY.
    opened.pragma('journal_mode = WAL');
    opened.pragma('busy_timeout = 5000');
    opened.pragma('foreign_keys = ON');
    return opened;
  });
  return new Kysely<Database>({ dialect: new GazeSqliteDialect({ database: sqlite }), plugins: [new RefuseNulPlugin()] });
}

/** SQLite's errors at opening ("unable to open database file", "file is not a database") say which file. */
function namingTheFile<T>(file: string, open: () => T): T {
  try {
    return open();
  } catch (err) {
    throw new Error(`the SQLite database ${file === ':memory:' ? file : path.resolve(file)}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * SQLite changes its schema inside transactions too (Kysely assumes it cannot): each migration then
 * applies whole or not at all, so a `db sync` killed half-way leaves a schema the next one completes.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}
/**
 * Every transaction takes SQLite's write lock as it begins (waiting up to busy_timeout for another
 * process's): one that read first and wrote afterwards would otherwise fail at its first write, at once
 * and without the wait, whenever another process wrote meanwhile (WAL's SQLITE_BUSY_SNAPSHOT). So the
 * transactions of all processes on one file run one after the other, as checks that count rows need.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  /**
   * SQLite ends a transaction itself on some errors (a full disk, an I/O error): the rollback after
   * them has nothing to undo, and its own error ("cannot rollback - no transaction is active") would
   * take the place of the one that says what happened.
   */
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await super.rollbackTransaction(connection);
    } catch (err) {
      if (!/no transaction is active/.test((err as Error).message)) throw err;
    }
  }
}
class GazeSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createAdapter(): SqliteAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
  override createDriver(): SqliteDriver {
    return new ImmediateSqliteDriver(this.#config);
  }
}
