// A transaction the database chose as a deadlock's victim (MariaDB/MySQL ER_LOCK_DEADLOCK, PostgreSQL
// deadlock_detected) did nothing and may simply run again, as Glance's database layer retries its
// image updates and deletes: the request it serves should not answer 500 for it.

const DEADLOCK_CODES = new Set(['ER_LOCK_DEADLOCK', '40P01']);

export function isDeadlock(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && DEADLOCK_CODES.has(code);
}

/** Runs `transaction` again (up to `attempts` times in all, after a short growing pause) while it loses a deadlock. */
export async function retryOnDeadlock<T>(transaction: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (err) {
      if (!isDeadlock(err) || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, attempt * (10 + Math.random() * 40)));
    }
  }
}
