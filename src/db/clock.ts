import { sql } from 'kysely';
import { setClockOffset } from '../domain/time.ts';
import type { Logger } from '../util/logger.ts';
import type { Db } from './connection.ts';

const RESYNC_MS = 60_000;
/** An offset beyond this is worth an operator's attention (their hosts' NTP). */
const WARN_OFFSET_MS = 1000;

/** A sample whose round trip took longer than this (a pool wait, a stalled loop) says too little. */
const MAX_ROUND_TRIP_MS = 1000;
const SAMPLES = 3;

/**
 * How far the database server's clock is ahead of this process's, in ms: of a few queries, the one with
 * the shortest round trip (its midpoint is the best guess of when the server read its clock). Null when
 * every round trip took too long to say.
 */
export async function databaseClockOffset(db: Db): Promise<number | null> {
  // SQLite has no server: its clock is this host's.
  if (db.engine === 'sqlite') return 0;
  // Both in UTC: MySQL's unix_timestamp(now()) goes through the session's time zone, which repeats an
  // hour when daylight saving ends.
  const query =
    db.engine === 'postgresql'
      ? sql<{ ms: string | number }>`select extract(epoch from clock_timestamp()) * 1000 as ms`
      : sql<{ ms: string | number }>`select timestampdiff(microsecond, '1970-01-01 00:00:00', utc_timestamp(6)) / 1000 as ms`;
  let best: { offset: number; roundTrip: number } | null = null;
  for (let i = 0; i < SAMPLES; i++) {
    const sent = Date.now();
    const { rows } = await query.execute(db.kysely);
    const received = Date.now();
    const roundTrip = received - sent;
    if (roundTrip <= MAX_ROUND_TRIP_MS && (!best || roundTrip < best.roundTrip)) best = { offset: Number(rows[0]!.ms) - (sent + received) / 2, roundTrip };
  }
  return best && best.offset;
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
    if (offset === null) return; // keeps the last offset
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
