import type pg from 'pg';

/** What a pool gives Kysely's dialect and the pool's health figures: a pg pool, or one chosen at first contact. */
export interface PgPoolLike {
  connect(): Promise<pg.PoolClient>;
  end(): Promise<void>;
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
}

/** pg's answer when the server declines TLS (its 'N' to the SSL request). */
const isTlsDeclined = (err: unknown): boolean => err instanceof Error && err.message === 'The server does not support SSL connections';

/**
 * libpq's sslmode=prefer, its default: TLS when the server offers it, plain when it declines. pg has no
 * such mode, so the first connection that reaches the server decides, for the pool's life: a TLS pool
 * is kept, or replaced by a plain one. A server that cannot be reached decides nothing.
 */
export class TlsIfOffered implements PgPoolLike {
  private current: pg.Pool;
  private decided = false;
  /** The TLS pool, once declined: ended with the pool, as requests queued there still fail over to plain. */
  private declined: pg.Pool | null = null;

  constructor(private readonly make: (tls: boolean) => pg.Pool) {
    this.current = make(true);
  }

  async connect(): Promise<pg.PoolClient> {
    if (this.decided) return this.current.connect();
    const tried = this.current;
    try {
      const client = await tried.connect();
      this.decided = true;
      return client;
    } catch (err) {
      if (!isTlsDeclined(err)) throw err;
      // Connections that tried at the same time see the plain pool another one made.
      if (this.current === tried) {
        this.declined = tried;
        this.current = this.make(false);
        this.decided = true;
      }
      return this.current.connect();
    }
  }

  async end(): Promise<void> {
    await Promise.all([this.current.end(), this.declined?.end()]);
  }

  get totalCount(): number {
    return this.current.totalCount;
  }
  get idleCount(): number {
    return this.current.idleCount;
  }
  get waitingCount(): number {
    return this.current.waitingCount;
  }
}
