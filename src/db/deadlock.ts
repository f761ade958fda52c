// A transaction the database chose as a deadlock's victim (MariaDB/MySQL ER_LOCK_DEADLOCK, PostgreSQL
// deadlock_detected) did nothing and may simply run again, as Glance's database layer retries its
// image updates and deletes: the request it serves should not answer 500 for it.

const DEADLOCK_CODES = new Set(['ER_LOCK_DEADLOCK', '40P01']);

export function isDeadlock(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && DEADLOCK_CODES.has(code);
}

/**
 * PostgreSQL's refusal of a prepared statement whose result columns changed since it was prepared (a
 * column another node's `db sync` added under a `select *`). Inside a transaction the refusal ends the
 * transaction; the statement is retired (prepared-statements.ts), and runs unnamed when it runs again.
 */
export function isStalePlan(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '0A000' && /cached plan must not change result type/.test(String((err as Error).message));
}

/**
 * Runs `transaction` again (up to `attempts` times in all, after a short growing pause) while it loses a
 * deadlock, or meets a prepared statement a schema upgrade made stale.
 */
export async function retryOnDeadlock<T>(transaction: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (err) {
      if (!(isDeadlock(err) || isStalePlan(err)) || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, attempt * (10 + Math.random() * 40)));
    }
  }
}
