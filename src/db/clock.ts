import { sql } from 'kysely';
import { setClockOffset } from '../domain/time.ts';
import type { Logger } from '../util/logger.ts';
import type { Db } from './connection.ts';

const RESYNC_MS = 60_000;
/** An offset beyond this is worth an operator's attention (their hosts' NTP). */
const WARN_OFFSET_MS = 1000;

/** How far the database server's clock is ahead of this process's, in ms, measured across one query. */
export async function databaseClockOffset(db: Db): Promise<number> {
  // SQLite has no server: its clock is this host's.
  if (db.engine === 'sqlite') return 0;
  const query =
    db.engine === 'postgresql'
      ? sql<{ ms: string | number }>`select extract(epoch from clock_timestamp()) * 1000 as ms`
      : sql<{ ms: string | number }>`select unix_timestamp(now(6)) * 1000 as ms`;
  const sent = Date.now();
  const { rows } = await query.execute(db.kysely);
  const received = Date.now();
  return Number(rows[0]!.ms) - (sent + received) / 2;
}

/**
 * Keeps every timestamp this process writes (leases, node liveness, created_at and the rest) on the
 * database server's clock, re-measured every minute. Processes on several hosts compare each other's
 * timestamps: a host whose clock ran ahead would see live leases expired and take their tasks over.
 */
export class DatabaseClock {
  private timer: NodeJS.Timeout | null = null;
  private warned = false;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  async sync(): Promise<void> {
    const offset = await databaseClockOffset(this.db);
    setClockOffset(offset);
    const far = Math.abs(offset) > WARN_OFFSET_MS;
    if (far && !this.warned)
      this.log.warn(
        { offsetMs: Math.round(offset) },
        `this host's clock is ${(Math.abs(offset) / 1000).toFixed(1)} s ${offset > 0 ? 'behind' : 'ahead of'} the database server's; timestamps follow the database's`,
      );
    this.warned = far;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.sync().catch((err: unknown) => this.log.warn({ err }, 'could not read the database server clock; keeping the last offset'));
    }, RESYNC_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
