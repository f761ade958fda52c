import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Db } from './connection.ts';
import type { Database } from './schema.ts';

/** How long a MySQL transaction waits for another's hold on the same key before it gives up. */
const MYSQL_LOCK_WAIT_SECONDS = 30;

/**
 * Runs `work` in a transaction that no other holder of `key` runs beside, in this process or another
 * on the same database: a check that counts rows and then writes (a quota) sees everything the previous
 * holder committed. PostgreSQL: a transaction-scoped advisory lock. MySQL: a named lock of the
 * connection, released once the transaction has ended (unserialized where a Galera cluster refuses
 * named locks). SQLite: every transaction holds the write lock (see connection.ts), so all of them
 * run one after the other anyway.
 */
export async function serializedBy<T>(db: Db, key: string, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  if (db.engine === 'postgresql') {
    return db.kysely.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx);
      return work(trx);
    });
  }
  if (db.engine === 'mysql') {
    // Names are at most 64 characters: the key's digest stands for it.
    const name = `gaze:${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
    return db.kysely.connection().execute(async (conn) => {
      let held: boolean;
      try {
        const { rows } = await sql<{ held: number | null }>`select get_lock(${name}, ${MYSQL_LOCK_WAIT_SECONDS}) as held`.execute(conn);
        if (Number(rows[0]?.held) !== 1) throw new Error(`waited ${MYSQL_LOCK_WAIT_SECONDS} s for database lock ${name}`);
        held = true;
      } catch (err) {
        // Some MariaDB Galera releases refuse GET_LOCK (ER_NOT_SUPPORTED_YET): the work then runs
        // unserialized, as Glance's own checks do, rather than fail.
        if ((err as { code?: unknown }).code !== 'ER_NOT_SUPPORTED_YET') throw err;
        held = false;
      }
      try {
        return await conn.transaction().execute(work);
      } finally {
        // A connection that failed meanwhile lost its lock with its session: the work's error stands.
        if (held) await sql`select release_lock(${name})`.execute(conn).catch(() => {});
      }
    });
  }
  return db.kysely.transaction().execute(work);
}
