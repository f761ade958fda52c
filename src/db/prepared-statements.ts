import { createHash } from 'node:crypto';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import { isStalePlan } from './deadlock.ts';
import type { PgPoolLike } from './tls-if-offered.ts';

/** A statement run this often is prepared on each connection that runs it again. */
const HOT_AFTER = 3;
/** At most this many statements are prepared (per connection, the same ones): the rest are parsed each time. */
const MAX_PREPARED = 200;
/** Counts of statements not (yet) hot, forgotten all at once past this many. */
const MAX_COUNTED = 5_000;

/**
 * The statements worth preparing. PostgreSQL parses and plans an unnamed statement on every run; for an
 * image show that is most of the server's work (the image with its relations as JSON arrays). The
 * queries Gaze runs most repeat the same text with other parameters, so the hot ones get a name, and
 * node-postgres prepares a named statement once per connection.
 */
export class HotStatements {
  private readonly names = new Map<string, string>();
  private readonly counts = new Map<string, number>();
  /** Statements whose prepared form went stale (a column added under a `select *`): run unnamed from now on. */
  private readonly unnamed = new Set<string>();

  /** The name to prepare `sql` under, or undefined to run it unnamed. */
  nameFor(sql: string): string | undefined {
    const known = this.names.get(sql);
    if (known) return known;
    if (this.names.size >= MAX_PREPARED || this.unnamed.has(sql)) return undefined;
    const seen = (this.counts.get(sql) ?? 0) + 1;
    if (seen < HOT_AFTER) {
      if (this.counts.size >= MAX_COUNTED) this.counts.clear();
      this.counts.set(sql, seen);
      return undefined;
    }
    this.counts.delete(sql);
    const name = `gaze_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
    this.names.set(sql, name);
    return name;
  }

  /** `sql` is not to be run prepared any more. */
  retire(sql: string): void {
    this.names.delete(sql);
    this.unnamed.add(sql);
  }
}

/** A pg pool as Kysely's PostgreSQL dialect takes it, running hot statements as prepared ones. */
export function preparingPool(pool: PgPoolLike, hot = new HotStatements()): PostgresPool {
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      return {
        query: ((sql: unknown, parameters?: ReadonlyArray<unknown>) => {
          // A cursor (Kysely's streaming) goes through as it is.
          if (typeof sql !== 'string') return client.query(sql as never);
          const values = parameters as unknown[];
          const name = hot.nameFor(sql);
          const run = (as?: string) => client.query({ text: sql, values, name: as }) as unknown as Promise<PostgresQueryResult<unknown>>;
          if (!name) return run();
          // A stale statement runs unnamed from now on. Within a transaction the refusal has ended the
          // transaction: the run again fails on that, and the refusal goes to the caller, who runs the
          // whole transaction again (retryOnDeadlock).
          return run(name).catch((err: unknown) => {
            if (!isStalePlan(err)) throw err;
            hot.retire(sql);
            return run().catch((again: unknown) => {
              throw (again as { code?: unknown } | null)?.code === '25P02' ? err : again;
            });
          });
        }) as PostgresPoolClient['query'],
        release: () => client.release(),
      };
    },
    end: () => pool.end(),
  };
}
