import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { request, type HttpResponse, type keepAliveAgents } from '../net/http-client.ts';
import { isNetworkFailure, StoreError, type StoreErrorCode } from './driver.ts';

// A Swift account reached with auth v1 (tempauth): the token and storage URL, renewed before they
// expire or when refused, and the requests made with them.

export interface Session {
  storageUrl: string;
  token: string;
  expiresAt: number;
}

export class SwiftSession {
  private current: Promise<Session> | null = null;

  constructor(
    private readonly authUrl: string,
    private readonly user: string,
    private readonly key: string,
    /** Glance's swift_store_endpoint: this storage URL instead of the one auth returns. */
    private readonly endpoint: string | undefined,
    readonly agents: ReturnType<typeof keepAliveAgents>,
  ) {}

  /** The current session, logging in when there is none, it expires within a minute, or `stale` was refused. */
  login(stale?: string): Promise<Session> {
    const current = this.current;
    this.current = (async () => {
      const s = await current?.catch(() => null);
      if (s && s.token !== stale && s.expiresAt > Date.now() + 60_000) return s;
      return this.authenticate();
    })();
    this.current.catch(() => {});
    return this.current;
  }

  private async authenticate(): Promise<Session> {
    let res: HttpResponse;
    try {
      res = await request(this.authUrl, {
        method: 'GET',
        headers: { 'x-storage-user': this.user, 'x-storage-pass': this.key, 'x-auth-user': this.user, 'x-auth-key': this.key },
        agents: this.agents,
      });
    } catch (err) {
      throw toStoreError(err, `authenticating at ${this.authUrl}`);
    }
    await res.body.dump();
    if (res.statusCode === 401 || res.statusCode === 403)
      throw new StoreError('PERMISSION', `swift authentication of ${this.user} at ${this.authUrl} was refused (HTTP ${res.statusCode})`);
    if (res.statusCode < 200 || res.statusCode >= 300)
      throw new StoreError(statusCode(res.statusCode), `swift authentication at ${this.authUrl} failed: HTTP ${res.statusCode}`);
    const token = header(res, 'x-auth-token') ?? header(res, 'x-storage-token');
    const storageUrl = this.endpoint ?? header(res, 'x-storage-url');
    if (!token || !storageUrl) throw new StoreError('FAILED', `swift authentication at ${this.authUrl} returned no token or storage URL`);
    const ttl = Number(header(res, 'x-auth-token-expires') ?? NaN);
    return { token, storageUrl: storageUrl.replace(/\/+$/, ''), expiresAt: Number.isFinite(ttl) ? Date.now() + ttl * 1000 : Infinity };
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

export function header(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function statusCode(status: number): StoreErrorCode {
  if (status === 404) return 'NOT_FOUND';
  if (status === 401 || status === 403) return 'PERMISSION';
  if (status === 413 || status === 507) return 'FULL';
  if (status >= 500) return 'UNAVAILABLE';
  return 'FAILED';
}

export function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { name?: string; code?: string; message?: string } | null;
  const code: StoreErrorCode = e?.name === 'AbortError' || e?.code === 'ABORT_ERR' ? 'ABORTED' : isNetworkFailure(err) ? 'UNAVAILABLE' : 'FAILED';
  return new StoreError(code, `swift ${what} failed: ${e?.message ?? String(err)}`, { cause: err });
}
