import { request as httpRequest } from 'node:http';
import assert from 'node:assert/strict';
// A small client for API tests: JSON in, parsed body out, every header visible.

export interface Reply {
  status: number;
  /** The status line's reason phrase. */
  statusText: string;
  headers: Headers;
  text: string;
  json: any;
}

export type Caller = { project?: string; roles?: string; user?: string };

export const ADMIN: Caller = {};
export const alice: Caller = { project: 'alice-project', roles: 'member,reader', user: 'alice' };
export const bob: Caller = { project: 'bob-project', roles: 'member,reader', user: 'bob' };
export const carol: Caller = { project: 'carol-project', roles: 'reader', user: 'carol' };

export function client(base: string) {
  async function call(
    method: string,
    path: string,
    opts: {
      as?: Caller;
      json?: unknown;
      body?: string | Buffer | ReadableStream;
      headers?: Record<string, string>;
    } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.as?.project) headers['x-project-id'] = opts.as.project;
    if (opts.as?.roles) headers['x-roles'] = opts.as.roles;
    if (opts.as?.user) headers['x-user-id'] = opts.as.user;
    let body: BodyInit | undefined;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['content-type'] ??= 'application/json';
    } else if (opts.body !== undefined) {
      body = opts.body as BodyInit;
    }
    const res = await fetch(base + path, { method, headers, body, duplex: 'half' } as RequestInit);
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, statusText: res.statusText, headers: res.headers, text, json };
  }
  return {
    call,
    get: (path: string, opts?: Parameters<typeof call>[2]) => call('GET', path, opts),
    post: (path: string, json?: unknown, opts?: Parameters<typeof call>[2]) => call('POST', path, { ...opts, json }),
    put: (path: string, opts?: Parameters<typeof call>[2]) => call('PUT', path, opts),
    del: (path: string, opts?: Parameters<typeof call>[2]) => call('DELETE', path, opts),
    patch: (path: string, ops: unknown, opts: Parameters<typeof call>[2] & { mediaType?: string } = {}) =>
      call('PATCH', path, {
        ...opts,
        body: JSON.stringify(ops),
        headers: { 'content-type': opts.mediaType ?? 'application/openstack-images-v2.1-json-patch', ...(opts.headers ?? {}) },
      }),
    async createImage(fields: Record<string, unknown> = {}, as: Caller = ADMIN): Promise<any> {
      const r = await call('POST', '/v2/images', { json: { disk_format: 'raw', container_format: 'bare', ...fields }, as });
      if (r.status !== 201) throw new Error(`create failed: ${r.status} ${r.text}`);
      return r.json;
    },
    async upload(id: string, data: Buffer | string, as: Caller = ADMIN): Promise<Reply> {
      return call('PUT', `/v2/images/${id}/file`, {
        body: typeof data === 'string' ? Buffer.from(data) : data,
        as,
        headers: { 'content-type': 'application/octet-stream' },
      });
    },
  };
}

/**
 * What a Glance-shaped JSON error says: its explanation, or, when Glance gives it as WebOb's detail
 * (`<standard explanation><br /><br />\n<detail>\n\n`), the detail.
 */
export function message(reply: Reply): string {
  const text = String(reply.json?.message ?? '');
  // A 415: WebOb's sentence about the request's Content-Type, then Glance's detail.
  const media = /^The request media type [^\n]* is not supported by this server\.\n<br \/><br \/>\n([\s\S]*)$/.exec(text);
  if (media) return media[1]!;
  const m = /^[\s\S]*?<br \/><br \/>\n([\s\S]*)\n\n$/.exec(text);
  if (m && m[1] !== '' && m[1] !== '\n') return m[1];
  return text.replace(/<br \/><br \/>\n\n\n$/, '');
}

/** A request fetch() refuses to send (a GET with a body, a body cut off mid-way). */
export function rawRequest(base: string, method: string, path: string, headers: Record<string, string | number>, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(base + path, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
        resolve({ status: res.statusCode!, statusText: res.statusMessage ?? '', headers: h, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Ask for JSON error bodies, so that message() can read them. */
export const JSON_ACCEPT = { accept: 'application/json' };

/** Asserts a Glance-shaped error: its status and its explanation (exact text or pattern). */
export function expectError(reply: Reply, status: number, text: string | RegExp): void {
  assert.equal(reply.status, status, reply.text);
  if (typeof text === 'string') assert.equal(message(reply), text);
  else assert.match(message(reply), text);
}

/**
 * An upload (PUT /file) that announces 10 MB, sends `sent` bytes and then stalls; resolves once the image
 * is `saving`. Destroy the request to end it.
 */
export async function stalledUpload(base: string, id: string, sent: number): Promise<ReturnType<typeof httpRequest>> {
  const req = httpRequest(`${base}/v2/images/${id}/file`, {
    method: 'PUT',
    agent: false,
    headers: { 'content-type': 'application/octet-stream', 'content-length': 10_000_000 },
  });
  req.on('error', () => {});
  req.write(Buffer.alloc(sent, 1));
  const api = client(base);
  for (let i = 0; i < 200 && (await api.get(`/v2/images/${id}`)).json.status !== 'saving'; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal((await api.get(`/v2/images/${id}`)).json.status, 'saving', 'the upload began');
  return req;
}

/**
 * A raw PUT of `caller`'s that announces `declared` bytes, sends `chunk` at once and then every
 * `everyMs` (without a chunk: only the headers), until the server answers. An answer that comes before
 * the body shows the service decided without reading it (or cut off a client that sent too little).
 */
export function announcedPut(
  url: string,
  opts: { declared: number; caller: Caller; chunk?: Buffer; everyMs?: number | null },
): Promise<{ status: number; body: string; connection: string | undefined; sent: number }> {
  const { declared, chunk, everyMs = null } = opts;
  return new Promise((resolve, reject) => {
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const req = httpRequest(
      url,
      {
        method: 'PUT',
        agent: false,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': declared,
          accept: 'application/json',
          'x-project-id': opts.caller.project!,
          'x-roles': opts.caller.roles!,
        },
      },
      (res) => {
        clearInterval(timer);
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          resolve({ status: res.statusCode!, body, connection: res.headers.connection, sent });
          req.destroy();
        });
      },
    );
    req.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    if (!chunk) {
      req.flushHeaders();
      return;
    }
    const send = () => {
      if (sent + chunk.length <= declared) {
        req.write(chunk);
        sent += chunk.length;
      }
    };
    send();
    if (everyMs !== null) timer = setInterval(send, everyMs);
  });
}
