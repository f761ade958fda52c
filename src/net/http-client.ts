import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { text } from 'node:stream/consumers';

// A small HTTP client on Node's own http/https, for the service's calls to servers the operator
// configured (Swift, other workers). Not undici: its HTTP/1 parser throws an uncatchable assertion when
// a server closes a connection whose response body is paused by back-pressure (nodejs/undici#5360,
// fixed only in releases that need Node 22), which would take the whole service down.

export interface HttpResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: ResponseBody;
}

export interface ResponseBody extends Readable {
  /** Reads and discards the rest (frees the connection for reuse). */
  dump(): Promise<void>;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string | Readable;
  signal?: AbortSignal;
  /** Longest wait for the response headers, from the start (0 or absent: none). */
  headersTimeoutMs?: number;
  agent?: HttpAgent | false;
}

/**
 * Keep-alive connection pools for one remote service; `ca` (PEM) is what the server's certificate is
 * checked against instead of the system's CAs, and `insecure` skips the check.
 */
export function keepAliveAgents(opts: { insecure?: boolean; ca?: Buffer } = {}): { http: HttpAgent; https: HttpsAgent; close(): void } {
  const http = new HttpAgent({ keepAlive: true, keepAliveMsecs: 10_000 });
  const https = new HttpsAgent({ keepAlive: true, keepAliveMsecs: 10_000, rejectUnauthorized: !opts.insecure, ca: opts.ca });
  return {
    http,
    https,
    close: () => {
      http.destroy();
      https.destroy();
    },
  };
}

export class HttpTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`no response within ${ms} ms`);
    this.name = 'HttpTimeoutError';
  }
}

/**
 * A connection error after the response began reaches the request, not the response, and Node's parser
 * then ends a body framed by the connection's close as if it were complete: a reset mid-body would pass
 * for the end of the data. This fails such a body instead.
 */
export function failBodyOnConnectionError(req: ClientRequest, res: IncomingMessage): void {
  req.on('error', (err) => {
    if (!res.complete) res.destroy(err);
  });
}

function asBody(res: IncomingMessage): ResponseBody {
  // Errors reach whoever reads the body; without a reader they must not be unhandled events.
  res.on('error', () => {});
  return Object.assign(res, {
    dump: () =>
      pipeline(res, async (source: AsyncIterable<unknown>) => {
        for await (const _ of source) {
          /* discard */
        }
      }),
    text: () => text(res),
    json: async () => JSON.parse(await text(res)) as unknown,
  });
}

/** One request; resolves with the response once its headers arrived. */
export function request(url: string | URL, opts: HttpRequestOptions & { agents?: ReturnType<typeof keepAliveAgents> } = {}): Promise<HttpResponse> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const secure = target.protocol === 'https:';
  const agent = opts.agent !== undefined ? opts.agent : secure ? opts.agents?.https : opts.agents?.http;
  return new Promise<HttpResponse>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const req = (secure ? httpsRequest : httpRequest)(target, { method: opts.method ?? 'GET', headers: opts.headers, agent, signal: opts.signal }, (res) => {
      if (timer) clearTimeout(timer);
      failBodyOnConnectionError(req, res);
      resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: asBody(res) });
    });
    req.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    if (opts.headersTimeoutMs) timer = setTimeout(() => req.destroy(new HttpTimeoutError(opts.headersTimeoutMs!)), opts.headersTimeoutMs);
    const body = opts.body;
    if (body instanceof Readable) {
      // A failing body fails the request (its 'error' rejects above, or the response's body).
      pipeline(body, req).catch(() => {});
    } else {
      req.end(body);
    }
  });
}
