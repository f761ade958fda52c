import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { request, type HttpResponse, type keepAliveAgents } from '../net/http-client.ts';
import { StoreError } from './driver.ts';
import { statusCode } from './swift-errors.ts';
import { logIn, type Session, type SwiftAuth } from './swift-login.ts';

// A Swift account: the token and storage URL, renewed before they expire or when refused, and the
// requests made with them.

export class SwiftSession {
  private current: Promise<Session> | null = null;

  constructor(
    private readonly auth: SwiftAuth,
    /** Glance's swift_store_endpoint: this storage URL instead of the one auth returns. */
    private readonly endpoint: string | undefined,
    readonly agents: ReturnType<typeof keepAliveAgents>,
    /** Glance's swift_store_expire_soon_interval: a token this close to expiry is renewed first. */
    private readonly expireSoonMs = 60_000,
  ) {}

  /** The current session, logging in when there is none, it expires within expireSoonMs, or `stale` was refused. */
  login(stale?: string): Promise<Session> {
    const current = this.current;
    this.current = (async () => {
      const s = await current?.catch(() => null);
      if (s && s.token !== stale && s.expiresAt > Date.now() + this.expireSoonMs) return s;
      return logIn(this.auth, this.endpoint, this.agents);
    })();
    this.current.catch(() => {});
    return this.current;
  }

  /**
   * One request to the storage URL. A 401 (token expired or revoked) logs in again and retries once when
   * the body can be sent again (not for streamed segments: their tokens are renewed ahead of expiry).
   */
  async call(
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; body?: Buffer | string | Readable; signal?: AbortSignal } = {},
  ): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.login();
      const res = await request(`${session.storageUrl}${path}`, {
        method,
        headers: { ...opts.headers, 'x-auth-token': session.token },
        body: opts.body,
        signal: opts.signal,
        agents: this.agents,
      });
      if (res.statusCode !== 401 || attempt > 0 || opts.body instanceof Readable) return res;
      await res.body.dump();
      await this.login(session.token);
    }
  }

  /** Throws a StoreError unless the status is one of `ok`. The body of a 200/206 is left to the caller. */
  async expect(res: HttpResponse, ok: number[], what: string): Promise<void> {
    if (ok.includes(res.statusCode)) {
      if (res.statusCode !== 200 && res.statusCode !== 206) await res.body.dump();
      return;
    }
    const text = (await res.body.text().catch(() => '')).slice(0, 300).trim();
    throw new StoreError(statusCode(res.statusCode), `swift ${what} failed: HTTP ${res.statusCode}${text ? ` ${text}` : ''}`);
  }
}

export function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function isTrue(value: string | string[] | undefined): boolean {
  return /^(true|yes|1|on)$/i.test(String(value ?? ''));
}
