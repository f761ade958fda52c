import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { lookup as systemLookup } from 'node:dns/promises';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.ts';
import {
  DownloadError,
  downloadOptionsFromConfig,
  guardBody,
  safeDownload,
  type DownloadErrorCode,
  type HostLookup,
  type SafeDownloadOptions,
} from '../../src/net/safe-download.ts';
import type { UriFilterOptions } from '../../src/net/uri-filter.ts';

// Every server here listens on 127.0.0.1, port 0; names other than localhost only ever resolve,
// through an injected lookup, to 127.0.0.1, or to addresses the filter refuses before connecting.

const TIMEOUT = 300;

interface TestServer {
  port: number;
  url(path?: string): string;
  /** Requests seen, in order. */
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; remoteAddress: string | undefined }>;
  /** Connections accepted so far, and how many of them are closed. */
  connections: Socket[];
  closed(): number;
}

function track(t: TestContext, server: Server): Promise<{ port: number; connections: Socket[]; closed: () => number }> {
  const connections: Socket[] = [];
  let closed = 0;
  server.on('connection', (socket: Socket) => {
    connections.push(socket);
    socket.on('close', () => {
      closed++;
    });
  });
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port, connections, closed: () => closed }));
  });
}

async function httpServer(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse, server: TestServer) => void): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  let self: TestServer;
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, remoteAddress: req.socket.remoteAddress });
    handler(req, res, self);
  });
  const { port, connections, closed } = await track(t, server);
  self = { port, url: (path = '/') => `http://127.0.0.1:${port}${path}`, requests, connections, closed };
  return self;
}

/** A TCP server that speaks whatever the test writes (or nothing at all). */
async function rawServer(t: TestContext, onSocket: (socket: Socket) => void): Promise<TestServer> {
  const server = createNetServer((socket) => {
    socket.on('error', () => {
      /* the client may reset */
    });
    onSocket(socket);
  });
  const { port, connections, closed } = await track(t, server);
  return { port, url: (path = '/') => `http://127.0.0.1:${port}${path}`, requests: [], connections, closed };
}

// These servers live on loopback: the filter here is Glance's lists, without the refusal of internal
// (and loopback) addresses, as for an endpoint the operator's catalog names (tested on its own below).
function openFilter(ports: number[]): UriFilterOptions {
  return {
    allowedSchemes: ['http', 'https'],
    disallowedSchemes: [],
    allowedHosts: [],
    disallowedHosts: [],
    allowedPorts: ports,
    disallowedPorts: [],
    refuseInternal: false,
    trustedEndpoint: true,
  };
}

function options(ports: number[], overrides: Partial<SafeDownloadOptions> = {}): SafeDownloadOptions {
  return { filter: openFilter(ports), connectTimeoutMs: 2000, readTimeoutMs: 2000, maxRedirects: 5, ...overrides };
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads a body whole, pausing twice the read timeout after each of its first two chunks (a slow reader). */
async function readPausingTwice(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    if (chunks.length <= 2) await sleep(TIMEOUT * 2);
  }
  return Buffer.concat(chunks);
}

async function rejectsWith(promise: Promise<unknown>, code: DownloadErrorCode, message?: RegExp | string): Promise<DownloadError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DownloadError, `expected a DownloadError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

/** Reads the body and expects it to fail; returns the error and how many bytes came through. */
async function bodyFails(body: Readable, code: DownloadErrorCode, message?: RegExp | string): Promise<{ error: DownloadError; received: number }> {
  let received = 0;
  const error = await rejectsWith(
    (async () => {
      for await (const chunk of body) received += (chunk as Buffer).length;
    })(),
    code,
    message,
  );
  return { error, received };
}

async function until(condition: () => boolean, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function countingLookup(answers: Record<string, Array<{ address: string; family: 4 | 6 }>>): HostLookup & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (host: string) => {
    calls.push(host);
    const answer = answers[host];
    if (!answer) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return answer;
  };
  return Object.assign(fn, { calls });
}

const never: HostLookup = () =>
  new Promise(() => {
    /* never answers */
  });

// ---------------------------------------------------------------------------------------------

test('downloads the bytes as served, with and without Content-Length', async (t) => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const server = await httpServer(t, (req, res) => {
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(data.subarray(0, 1000));
      setImmediate(() => res.end(data.subarray(1000)));
    } else {
      res.writeHead(200, { 'content-length': data.length });
      res.end(data);
    }
  });
  const result = await safeDownload(server.url('/image.img'), options([server.port], { maxBytes: data.length }));
  assert.equal(result.status, 200);
  assert.equal(result.contentLength, data.length);
  assert.equal(result.finalUrl, server.url('/image.img'));
  assert.ok((await readAll(result.body)).equals(data));

  const chunked = await safeDownload(server.url('/chunked'), options([server.port]));
  assert.equal(chunked.contentLength, null);
  assert.ok((await readAll(chunked.body)).equals(data));
  assert.equal(server.requests[0].method, 'GET');
  assert.equal(server.requests[0].headers.host, `127.0.0.1:${server.port}`);
});

test("sends the caller's headers but never its Host; URL credentials become Basic auth", async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('ok'));
  const r = await safeDownload(server.url('/x'), options([server.port], { headers: { 'X-Auth-Token': 'tok', Host: 'metadata.internal', Accept: '*/*' } }));
  assert.equal((await readAll(r.body)).toString(), 'ok');
  const seen = server.requests[0].headers;
  assert.equal(seen['x-auth-token'], 'tok');
  assert.equal(seen.accept, '*/*');
  assert.equal(seen.host, `127.0.0.1:${server.port}`);

  const withUser = await safeDownload(`http://al%20ice:p%40ss@127.0.0.1:${server.port}/y`, options([server.port]));
  await readAll(withUser.body);
  assert.equal(server.requests[1].headers.authorization, `Basic ${Buffer.from('al ice:p@ss').toString('base64')}`);
  assert.equal(server.requests[1].url, '/y');
});

test('the limits come from [import_filtering_opts]', () => {
  const config = loadConfig(undefined, {}, { import_filtering_opts: { connect_timeout: '5', read_timeout: '7', max_redirects: '3', allowed_ports: '8080' } });
  const o = downloadOptionsFromConfig(config);
  assert.equal(o.connectTimeoutMs, 5000);
  assert.equal(o.readTimeoutMs, 7000);
  assert.equal(o.maxRedirects, 3);
  assert.deepEqual(o.filter.allowedPorts, [8080]);
  assert.deepEqual(downloadOptionsFromConfig(loadConfig(undefined, {})).filter.allowedPorts, [80, 443]);
  // The uploads' minimum rate, for the service's own downloads too.
  assert.equal(downloadOptionsFromConfig(loadConfig(undefined, {})).minBytesPerSecond, 1024);
  assert.equal(downloadOptionsFromConfig(loadConfig(undefined, {}, { DEFAULT: { upload_min_rate: '0' } })).minBytesPerSecond, 0);
});

test('other schemes are refused before any connection', async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('no'));
  const lookup = countingLookup({});
  for (const uri of [
    'file:///etc/passwd',
    `ftp://127.0.0.1:${server.port}/x`,
    `gopher://127.0.0.1:${server.port}/_GET%20/`,
    'data:text/plain,hi',
    `ws://127.0.0.1:${server.port}/`,
  ]) {
    await rejectsWith(safeDownload(uri, options([server.port], { lookup })), 'FILTERED', `URI does not pass filtering: ${uri}`);
  }
  // even when the operator allows them: this client speaks HTTP only
  const lenient = options([server.port], { lookup, filter: { ...openFilter([server.port]), allowedSchemes: ['http', 'https', 'ftp', 'gopher'] } });
  await rejectsWith(safeDownload(`ftp://127.0.0.1:${server.port}/x`, lenient), 'FILTERED');
  await rejectsWith(safeDownload(`gopher://127.0.0.1:${server.port}/x`, lenient), 'FILTERED');
  assert.equal(server.connections.length, 0);
  assert.deepEqual(lookup.calls, []);
});

test('forbidden hosts and ports are refused before any connection', async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('no'));
  const p = server.port;
  // the test port is not an allowed port under Glance's defaults
  await rejectsWith(safeDownload(server.url('/x'), options([80, 443])), 'FILTERED', `URI does not pass filtering: ${server.url('/x')}`);
  await rejectsWith(safeDownload(server.url('/x'), options([], { filter: { ...openFilter([]), disallowedPorts: [p] } })), 'FILTERED');

  const denyLoopback = options([p], { filter: { ...openFilter([p]), disallowedHosts: ['127.0.0.1', 'localhost'] } });
  for (const uri of [
    `http://127.0.0.1:${p}/`,
    `http://0x7f.1:${p}/`,
    `http://2130706433:${p}/`,
    `http://127.1:${p}/`,
    `http://[::ffff:127.0.0.1]:${p}/`,
    `http://localhost:${p}/`,
    `http://LOCALHOST.:${p}/`,
  ]) {
    await rejectsWith(safeDownload(uri, denyLoopback), 'FILTERED');
  }
  const allowOther = options([p], { filter: { ...openFilter([p]), allowedHosts: ['images.example.com'] } });
  await rejectsWith(safeDownload(server.url('/x'), allowOther), 'FILTERED');
  assert.equal(server.connections.length, 0);
});

test('a name resolving to a denied address is refused; the system resolver is used by default', async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('no'));
  const p = server.port;
  const deny = { ...openFilter([p]), disallowedHosts: ['127.0.0.1', '::1', '169.254.169.254'] };
  const lookup = countingLookup({
    'loopback.gaze.test': [{ address: '127.0.0.1', family: 4 }],
    'mapped.gaze.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
    'mixed.gaze.test': [
      { address: '192.0.2.1', family: 4 },
      { address: '169.254.169.254', family: 4 },
    ],
  });
  for (const host of ['loopback.gaze.test', 'mapped.gaze.test', 'mixed.gaze.test']) {
    await rejectsWith(
      safeDownload(`http://${host}:${p}/x`, options([p], { filter: deny, lookup })),
      'FILTERED',
      `URI does not pass filtering: http://${host}:${p}/x`,
    );
  }
  assert.deepEqual(lookup.calls, ['loopback.gaze.test', 'mapped.gaze.test', 'mixed.gaze.test']);

  const localhost = await systemLookup('localhost', { all: true });
  if (localhost.some((a) => a.address === '127.0.0.1' || a.address === '::1')) {
    await rejectsWith(
      safeDownload(`http://localhost:${p}/x`, options([p], { filter: { ...openFilter([p]), disallowedHosts: ['127.0.0.1', '::1'] } })),
      'FILTERED',
    );
  }
  assert.equal(server.connections.length, 0);

  if (localhost.some((a) => a.address === '127.0.0.1')) {
    const ok = await safeDownload(`http://localhost:${p}/x`, options([p]));
    assert.equal((await readAll(ok.body)).toString(), 'no');
    assert.equal(server.requests[0].headers.host, `localhost:${p}`);
  }
});

test('DNS failures and empty answers are DNS errors', async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('no'));
  const lookup = countingLookup({ 'empty.gaze.test': [] });
  await rejectsWith(safeDownload(`http://nowhere.gaze.test:${server.port}/`, options([server.port], { lookup })), 'DNS', /nowhere\.gaze\.test.*ENOTFOUND/);
  await rejectsWith(safeDownload(`http://empty.gaze.test:${server.port}/`, options([server.port], { lookup })), 'DNS');
  const bogus: HostLookup = async () => [{ address: 'not-an-address', family: 4 }];
  await rejectsWith(safeDownload(`http://bogus.gaze.test:${server.port}/`, options([server.port], { lookup: bogus })), 'DNS');
  assert.equal(server.connections.length, 0);
});

test('DNS answers are pinned: resolved once, connected to that address, Host stays the name', async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('pinned'));
  const p = server.port;
  let calls = 0;
  // a rebinding resolver: the first answer is harmless, any later one would not be
  const rebinding: HostLookup = async () => (calls++ === 0 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '169.254.169.254', family: 4 }]);
  const filter = { ...openFilter([p]), allowedHosts: ['files.gaze.test'] }; // names only: its addresses are allowed
  const r = await safeDownload(`http://files.gaze.test:${p}/img`, options([p], { filter, lookup: rebinding }));
  assert.equal((await readAll(r.body)).toString(), 'pinned');
  assert.equal(calls, 1);
  assert.equal(server.requests.length, 1);
  assert.equal(server.requests[0].headers.host, `files.gaze.test:${p}`);
  assert.equal(server.requests[0].remoteAddress, '127.0.0.1');
  assert.equal(r.finalUrl, `http://files.gaze.test:${p}/img`);

  // an IPv4-mapped answer is connected to as such and still reaches the same server
  const mapped = await safeDownload(
    `http://mapped.gaze.test:${p}/`,
    options([p], { lookup: countingLookup({ 'mapped.gaze.test': [{ address: '::ffff:127.0.0.1', family: 6 }] }) }),
  );
  assert.equal((await readAll(mapped.body)).toString(), 'pinned');
});

/** The server_name of a TLS ClientHello, read off the wire. */
function sniOf(hello: Buffer): string | null {
  try {
    if (hello[0] !== 0x16 || hello[5] !== 0x01) return null;
    let i = 5 + 4 + 2 + 32; // record header, handshake header, version, random
    i += 1 + hello[i]; // session id
    i += 2 + hello.readUInt16BE(i); // cipher suites
    i += 1 + hello[i]; // compression methods
    const end = i + 2 + hello.readUInt16BE(i);
    i += 2;
    while (i + 4 <= end) {
      const type = hello.readUInt16BE(i);
      const length = hello.readUInt16BE(i + 2);
      if (type === 0) {
        const nameLength = hello.readUInt16BE(i + 7);
        return hello.subarray(i + 9, i + 9 + nameLength).toString('ascii');
      }
      i += 4 + length;
    }
  } catch {
    /* truncated */
  }
  return null;
}

test("over https, the TLS server name is the URL's name, not the pinned address", async (t) => {
  let sni: string | null | undefined;
  const server = await rawServer(t, (socket) => {
    socket.once('data', (hello: Buffer) => {
      sni = sniOf(hello);
      socket.destroy();
    });
  });
  const lookup = countingLookup({ 'secure.gaze.test': [{ address: '127.0.0.1', family: 4 }] });
  await assert.rejects(safeDownload(`https://secure.gaze.test:${server.port}/img`, options([server.port], { lookup })), DownloadError);
  assert.equal(sni, 'secure.gaze.test');
  assert.deepEqual(lookup.calls, ['secure.gaze.test']);
});

test('redirects (301, 302, 303, 307, 308; relative and absolute) to allowed URLs are followed', async (t) => {
  const target = await httpServer(t, (req, res) => res.end(`target ${req.url}`));
  const server = await httpServer(t, (req, res) => {
    const m = /^\/(\d{3})\/(abs|rel|schemeless)$/.exec(req.url ?? '');
    if (m) {
      const location = m[2] === 'abs' ? target.url('/dest') : m[2] === 'rel' ? '../here' : `//127.0.0.1:${target.port}/dest2`;
      res.writeHead(Number(m[1]), { location }).end('moved');
    } else {
      res.end(`same ${req.url}`);
    }
  });
  const ports = [server.port, target.port];
  for (const status of [301, 302, 303, 307, 308]) {
    const abs = await safeDownload(server.url(`/${status}/abs`), options(ports));
    assert.equal((await readAll(abs.body)).toString(), 'target /dest');
    assert.equal(abs.finalUrl, target.url('/dest'));
    const rel = await safeDownload(server.url(`/${status}/rel`), options(ports));
    assert.equal((await readAll(rel.body)).toString(), 'same /here');
    assert.equal(rel.finalUrl, server.url('/here'));
  }
  const schemeless = await safeDownload(server.url('/302/schemeless'), options(ports));
  assert.equal((await readAll(schemeless.body)).toString(), 'target /dest2');
  assert.ok(server.requests.every((r) => r.method === 'GET') && target.requests.every((r) => r.method === 'GET'));
});

test('a redirect to a forbidden host, port or scheme is refused with REDIRECT_FILTERED', async (t) => {
  const forbidden = await httpServer(t, (_req, res) => res.end('secret'));
  const server = await httpServer(t, (req, res) => {
    const to = decodeURIComponent((req.url ?? '').replace(/^\/\d{3}\?to=/, ''));
    const status = Number((req.url ?? '').slice(1, 4));
    res.writeHead(status, { location: to }).end();
  });
  const p = server.port;
  const go = (status: number, to: string) => server.url(`/${status}?to=${encodeURIComponent(to)}`);
  const lookup = countingLookup({ 'internal.gaze.test': [{ address: '::1', family: 6 }] });
  const filter = { ...openFilter([p]), disallowedHosts: ['169.254.169.254', '::1', 'localhost'] };
  const cases: Array<[number, string]> = [
    [301, forbidden.url('/secret')], // port not allowed
    [302, `http://localhost:${p}/x`], // host denied
    [307, `http://0xa9fea9fe:${p}/latest/meta-data/`], // 169.254.169.254, encoded
    [307, `http://[::ffff:a9fe:a9fe]:${p}/`],
    [308, `http://127.0.0.1:80/`], // explicit default port, not in the allow-list
    [302, 'file:///etc/passwd'],
    [301, `gopher://127.0.0.1:${p}/_x`],
    [302, `http://internal.gaze.test:${p}/`], // a name resolving to a denied address
  ];
  for (const [status, to] of cases) {
    const expected = new URL(to).href;
    const err = await rejectsWith(
      safeDownload(go(status, to), options([p], { filter, lookup })),
      'REDIRECT_FILTERED',
      `Redirect to disallowed URL: ${expected}`,
    );
    assert.equal(err.url, expected);
  }
  assert.deepEqual(lookup.calls, ['internal.gaze.test']);
  assert.equal(forbidden.connections.length, 0);
  // The refused target's password is not shown.
  await rejectsWith(
    safeDownload(go(302, `http://mirror:t0ken@127.0.0.1:${forbidden.port}/x`), options([p], { filter })),
    'REDIRECT_FILTERED',
    `Redirect to disallowed URL: http://mirror:****@127.0.0.1:${forbidden.port}/x`,
  );
  // relative Locations are resolved first: a relative redirect to a denied port
  await rejectsWith(
    safeDownload(go(302, `//127.0.0.1:${forbidden.port}/secret`), options([p], { filter })),
    'REDIRECT_FILTERED',
    `Redirect to disallowed URL: ${forbidden.url('/secret')}`,
  );
  assert.equal(forbidden.connections.length, 0);
});

test('a trusted origin (a catalog endpoint) may be internal; its redirects elsewhere meet the filter as any URL', async (t) => {
  const elsewhere = await httpServer(t, (_req, res) => res.end('metadata'));
  const endpoint = await httpServer(t, (req, res) => {
    if (req.url === '/here') return res.writeHead(302, { location: '/data' }).end();
    if (req.url === '/away') return res.writeHead(302, { location: elsewhere.url('/latest/meta-data/') }).end();
    res.end('image data');
  });
  // The operator's filter: loopback refused (Gaze's default); the endpoint's origin is trusted alone.
  const filter: UriFilterOptions = { ...openFilter([endpoint.port, elsewhere.port]), refuseInternal: true, trustedEndpoint: false };
  const trusted = options([], { filter, trustedOrigin: `http://127.0.0.1:${endpoint.port}` });
  assert.equal((await readAll((await safeDownload(endpoint.url('/here'), trusted)).body)).toString(), 'image data');
  await rejectsWith(safeDownload(endpoint.url('/away'), trusted), 'REDIRECT_FILTERED', `Redirect to disallowed URL: ${elsewhere.url('/latest/meta-data/')}`);
  assert.equal(elsewhere.connections.length, 0);
  await rejectsWith(safeDownload(endpoint.url('/here'), options([], { filter })), 'FILTERED');
});

test('credentials do not follow a redirect to another origin', async (t) => {
  const other = await httpServer(t, (_req, res) => res.end('other'));
  const server = await httpServer(t, (req, res) => {
    if (req.url === '/same') res.writeHead(302, { location: '/final' }).end();
    else if (req.url === '/cross') res.writeHead(302, { location: other.url('/final') }).end();
    else res.end('final');
  });
  const headers = { authorization: 'Bearer x', 'x-auth-token': 'tok', 'x-other': 'kept' };
  await readAll((await safeDownload(server.url('/same'), options([server.port, other.port], { headers }))).body);
  assert.equal(server.requests[1].headers['x-auth-token'], 'tok');
  assert.equal(server.requests[1].headers.authorization, 'Bearer x');
  await readAll((await safeDownload(server.url('/cross'), options([server.port, other.port], { headers }))).body);
  assert.equal(other.requests[0].headers['x-auth-token'], undefined);
  assert.equal(other.requests[0].headers.authorization, undefined);
  assert.equal(other.requests[0].headers['x-other'], 'kept');
});

test('redirect loops and too many redirects: TOO_MANY_REDIRECTS', async (t) => {
  const server = await httpServer(t, (req, res) => {
    const n = Number((req.url ?? '/0').slice(1));
    if (req.url === '/loop') res.writeHead(302, { location: '/loop' }).end();
    else if (n > 0) res.writeHead(307, { location: `/${n - 1}` }).end();
    else res.end('done');
  });
  const p = server.port;
  await rejectsWith(safeDownload(server.url('/loop'), options([p], { maxRedirects: 4 })), 'TOO_MANY_REDIRECTS', /more than 4 redirects/);
  assert.equal(server.requests.length, 5);
  const exact = await safeDownload(server.url('/4'), options([p], { maxRedirects: 4 }));
  assert.equal((await readAll(exact.body)).toString(), 'done');
  await rejectsWith(safeDownload(server.url('/5'), options([p], { maxRedirects: 4 })), 'TOO_MANY_REDIRECTS');
  await rejectsWith(safeDownload(server.url('/1'), options([p], { maxRedirects: 0 })), 'TOO_MANY_REDIRECTS');
  await until(() => server.closed() === server.connections.length, 'every connection to close');
});

test('a final status other than 2xx is HTTP_STATUS', async (t) => {
  const server = await httpServer(t, (req, res) => {
    if (req.url === '/no-location') res.writeHead(302).end();
    else if (req.url === '/not-modified') res.writeHead(304).end();
    else res.writeHead(Number((req.url ?? '/500').slice(1))).end('error page');
  });
  for (const status of [404, 403, 500, 503]) {
    const err = await rejectsWith(safeDownload(server.url(`/${status}`), options([server.port])), 'HTTP_STATUS', new RegExp(`\\b${status}\\b`));
    assert.equal(err.status, status);
  }
  assert.equal((await rejectsWith(safeDownload(server.url('/no-location'), options([server.port])), 'HTTP_STATUS')).status, 302);
  assert.equal((await rejectsWith(safeDownload(server.url('/not-modified'), options([server.port])), 'HTTP_STATUS')).status, 304);
  // The message (a task's, which its project reads) never shows the password of the URL's userinfo.
  const withUser = server.url('/500').replace('//', '//user:s3cret@');
  const shown = await rejectsWith(safeDownload(withUser, options([server.port])), 'HTTP_STATUS');
  assert.equal(shown.message, `HTTP status 500 from ${withUser.replace('s3cret', '****')}`);
  const ok = await safeDownload(server.url('/204'), options([server.port]));
  assert.equal(ok.status, 204);
  assert.equal((await readAll(ok.body)).length, 0);
});

test("TLS spoken to a server that does not speak it: a NETWORK error whose message leaves out OpenSSL's source file", async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('plain'));
  const err = await rejectsWith(safeDownload(server.url('/').replace('http:', 'https:'), options([server.port])), 'NETWORK');
  assert.match(err.message, /^request to 127\.0\.0\.1:\d+ failed: .*(wrong version number|packet length too long)/);
  assert.doesNotMatch(err.message, /\.c:\d+/);
});

test('a server that accepts but never answers: READ_TIMEOUT within the configured time', async (t) => {
  const server = await rawServer(t, (socket) =>
    socket.on('data', () => {
      /* never answers */
    }),
  );
  const started = Date.now();
  await rejectsWith(safeDownload(server.url('/'), options([server.port], { readTimeoutMs: TIMEOUT })), 'READ_TIMEOUT', /within 300 ms/);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= TIMEOUT - 20 && elapsed < TIMEOUT + 700, `took ${elapsed} ms`);
  await until(() => server.closed() === 1, 'the socket to be released');
});

test('connect-phase timeouts: a TLS handshake that never completes, a resolver that never answers', async (t) => {
  const server = await rawServer(t, (socket) =>
    socket.on('data', () => {
      /* swallows the ClientHello */
    }),
  );
  let started = Date.now();
  await rejectsWith(safeDownload(`https://127.0.0.1:${server.port}/`, options([server.port], { connectTimeoutMs: TIMEOUT })), 'CONNECT_TIMEOUT');
  let elapsed = Date.now() - started;
  assert.ok(elapsed >= TIMEOUT - 20 && elapsed < TIMEOUT + 700, `took ${elapsed} ms`);
  await until(() => server.closed() === 1, 'the socket to be released');

  started = Date.now();
  await rejectsWith(
    safeDownload(`http://slow-dns.gaze.test:${server.port}/`, options([server.port], { connectTimeoutMs: TIMEOUT, lookup: never })),
    'CONNECT_TIMEOUT',
    /resolving slow-dns\.gaze\.test/,
  );
  elapsed = Date.now() - started;
  assert.ok(elapsed >= TIMEOUT - 20 && elapsed < TIMEOUT + 700, `took ${elapsed} ms`);
  assert.equal(server.connections.length, 1);
});

test('a connection refused is NETWORK', async () => {
  // a port nobody listens on: one just released
  const free = await new Promise<number>((resolve) => {
    const probe = createNetServer();
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
  await rejectsWith(safeDownload(`http://127.0.0.1:${free}/`, options([free])), 'NETWORK', /ECONNREFUSED/);
});

test('the body stops with READ_TIMEOUT when the server stalls, but a slow reader is not a stall', async (t) => {
  const big = randomBytes(4 * 1024 * 1024);
  const server = await httpServer(t, (req, res) => {
    if (req.url === '/stall') {
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.alloc(100));
    } else {
      res.writeHead(200, { 'content-length': big.length });
      res.end(big);
    }
  });
  const stalled = await safeDownload(server.url('/stall'), options([server.port], { readTimeoutMs: TIMEOUT }));
  const started = Date.now();
  const { received } = await bodyFails(stalled.body, 'READ_TIMEOUT', /no data received for 300 ms after 100 bytes/);
  const elapsed = Date.now() - started;
  assert.equal(received, 100);
  assert.ok(elapsed >= TIMEOUT - 20 && elapsed < TIMEOUT + 700, `took ${elapsed} ms`);
  await until(() => server.closed() === 1, 'the socket to be released');

  // the reader takes longer than the read timeout between reads: back-pressure, not a stall
  const slow = await safeDownload(server.url('/big'), options([server.port], { readTimeoutMs: TIMEOUT }));
  assert.ok((await readPausingTwice(slow.body)).equals(big));
});

test('a body that trickles below minBytesPerSecond over a read timeout of waiting is TOO_SLOW; a steady source and a slow reader are not', async (t) => {
  const big = randomBytes(4 * 1024 * 1024);
  const server = await httpServer(t, (req, res) => {
    // 10 bytes (trickle) or 100 bytes (steady) every 30 ms: about 330 or 3,300 bytes per second.
    const step = req.url === '/trickle' ? 10 : req.url === '/steady' ? 100 : 0;
    if (step === 0) {
      res.writeHead(200, { 'content-length': big.length });
      res.end(big);
      return;
    }
    res.writeHead(200, { 'content-length': 3000 });
    let sent = 0;
    const timer = setInterval(() => {
      res.write(Buffer.alloc(step));
      sent += step;
      if (sent >= 3000) {
        clearInterval(timer);
        res.end();
      }
    }, 30);
    res.on('close', () => clearInterval(timer));
  });
  const limits = { readTimeoutMs: TIMEOUT, minBytesPerSecond: 1000 };
  const trickle = await safeDownload(server.url('/trickle'), options([server.port], limits));
  const { received } = await bodyFails(trickle.body, 'TOO_SLOW', /^fewer than 1000 bytes per second arrived over 0\.3 seconds \(\d+ bytes, \d+ in all\)$/);
  assert.ok(received > 0 && received < 300, `received ${received}`);
  await until(() => server.closed() === 1, 'the socket to be released');

  const steady = await safeDownload(server.url('/steady'), options([server.port], limits));
  assert.equal((await readAll(steady.body)).length, 3000);

  // The reader pauses longer than a window twice: its own slowness, not the source's.
  const slowReader = await safeDownload(server.url('/big'), options([server.port], limits));
  assert.ok((await readPausingTwice(slowReader.body)).equals(big));
});

test('maxBytes: TOO_LARGE from Content-Length, without it, and as soon as exceeded', async (t) => {
  const server = await httpServer(t, (req, res) => {
    if (req.url === '/declared') {
      res.writeHead(200, { 'content-length': 5000 }).end(Buffer.alloc(5000));
    } else if (req.url === '/chunked') {
      res.writeHead(200);
      res.end(Buffer.alloc(5000));
    } else {
      // streams forever
      res.writeHead(200);
      const timer = setInterval(() => res.write(Buffer.alloc(1024)), 5);
      res.on('close', () => clearInterval(timer));
    }
  });
  const o = options([server.port], { maxBytes: 4096 });
  await rejectsWith(safeDownload(server.url('/declared'), o), 'TOO_LARGE', /Content-Length 5000 exceeds the limit of 4096 bytes/);
  const exact = await safeDownload(server.url('/declared'), options([server.port], { maxBytes: 5000 }));
  assert.equal((await readAll(exact.body)).length, 5000);

  const chunked = await safeDownload(server.url('/chunked'), o);
  const { received } = await bodyFails(chunked.body, 'TOO_LARGE', /exceeds the limit of 4096 bytes/);
  assert.ok(received <= 4096, `${received} bytes came through`);

  const endless = await safeDownload(server.url('/endless'), o);
  const { received: r2 } = await bodyFails(endless.body, 'TOO_LARGE');
  assert.ok(r2 <= 4096);
  await until(() => server.closed() === server.connections.length, 'every socket to be released');
});

test('a lying Content-Length never lets more than it (or maxBytes) through', async (t) => {
  const server = await rawServer(t, (socket) => {
    socket.once('data', () => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n${'y'.repeat(100_000)}`));
  });
  const r = await safeDownload(server.url('/'), options([server.port], { maxBytes: 50 }));
  assert.equal(r.contentLength, 10);
  assert.equal((await readAll(r.body)).toString(), 'y'.repeat(10)); // HTTP framing: the rest is not body

  // the guard itself does not trust the announced length
  const source = Readable.from([Buffer.alloc(40), Buffer.alloc(40), Buffer.alloc(40)]);
  const { received } = await bodyFails(guardBody(source, { expectedLength: 10, maxBytes: 50, readTimeoutMs: 0 }), 'TOO_LARGE');
  assert.ok(received <= 40, `${received} bytes came through`);
  assert.ok(source.destroyed);
});

test('a body shorter than Content-Length is CLOSED_EARLY', async (t) => {
  const server = await rawServer(t, (socket) => {
    socket.once('data', (req: Buffer) => {
      if (req.toString().startsWith('GET /chunked')) socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      else socket.end(`HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n${'x'.repeat(40)}`);
    });
  });
  const r = await safeDownload(server.url('/short'), options([server.port]));
  assert.equal(r.contentLength, 100);
  const { received } = await bodyFails(r.body, 'CLOSED_EARLY', 'downloaded data size 40 is different from expected 100');
  assert.equal(received, 40);
  const chunked = await safeDownload(server.url('/chunked'), options([server.port]));
  await bodyFails(chunked.body, 'CLOSED_EARLY', /after 5 bytes/);

  // and the guard on its own, for a source that just ends
  await bodyFails(
    guardBody(Readable.from([Buffer.from('abc')]), { expectedLength: 7, readTimeoutMs: 0 }),
    'CLOSED_EARLY',
    'downloaded data size 3 is different from expected 7',
  );
});

test('abort through the signal at every stage, releasing the socket', async (t) => {
  const server = await httpServer(t, (req, res) => {
    if (req.url === '/body') {
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.alloc(10));
    } // '/silent': never answers
  });
  const silent = await rawServer(t, (socket) =>
    socket.on('data', () => {
      /* swallows */
    }),
  );
  const o = (signal: AbortSignal, extra: Partial<SafeDownloadOptions> = {}) => options([server.port, silent.port], { signal, ...extra });

  // before anything
  await rejectsWith(safeDownload(server.url('/body'), o(AbortSignal.abort())), 'ABORTED');
  assert.equal(server.connections.length, 0);

  // while resolving
  let ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  let started = Date.now();
  await rejectsWith(safeDownload(`http://slow-dns.gaze.test:${server.port}/`, o(ac.signal, { lookup: never })), 'ABORTED');
  assert.ok(Date.now() - started < 1000);

  // while connecting (a TLS handshake that never completes)
  ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  started = Date.now();
  await rejectsWith(safeDownload(`https://127.0.0.1:${silent.port}/`, o(ac.signal)), 'ABORTED');
  assert.ok(Date.now() - started < 1000);
  await until(() => silent.closed() === 1, 'the TLS socket to be released');

  // while waiting for the response
  ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  await rejectsWith(safeDownload(server.url('/silent'), o(ac.signal)), 'ABORTED');
  await until(() => server.closed() === 1, 'the socket to be released');

  // while reading the body
  ac = new AbortController();
  const r = await safeDownload(server.url('/body'), o(ac.signal));
  setTimeout(() => ac.abort(), 50);
  const { received } = await bodyFails(r.body, 'ABORTED');
  assert.equal(received, 10);
  await until(() => server.closed() === 2, "the body's socket to be released");

  // a reader that gives up (destroys the body) releases the socket too
  const dropped = await safeDownload(server.url('/body'), options([server.port]));
  dropped.body.destroy();
  await until(() => server.closed() === 3, "the dropped body's socket to be released");
});

test('a server that sends its whole body and closes while the reader is paused: the body arrives whole, nothing throws', async (t) => {
  // undici 7 threw an uncatchable AssertionError (assert(!this.paused)) from its socket 'end' handler
  // here and took the whole process down (nodejs/undici#5360); small bodies hit it reliably.
  for (const size of [64 * 1024, 100 * 1024, 1024 * 1024]) {
    const data = randomBytes(size);
    const server = await rawServer(t, (socket) => {
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\nConnection: close\r\n\r\n`);
        socket.end(data);
      });
    });
    const r = await safeDownload(server.url('/'), options([server.port]));
    await sleep(300); // the consumer does not read: back-pressure pauses the body while the FIN arrives
    assert.ok((await readAll(r.body)).equals(data), `${size} bytes`);

    // and a server that dies mid-body while the reader is paused: a clean CLOSED_EARLY
    const dying = await rawServer(t, (socket) => {
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length * 2}\r\n\r\n`);
        socket.end(data);
      });
    });
    const cut = await safeDownload(dying.url('/'), options([dying.port]));
    await sleep(300);
    const { received } = await bodyFails(cut.body, 'CLOSED_EARLY', `downloaded data size ${size} is different from expected ${size * 2}`);
    assert.equal(received, size);
  }
});

test('by default internal destinations are refused: literal, resolved, and after a redirect; allowed_hosts can list them', async (t) => {
  const server = await httpServer(t, (req, res) => {
    if (req.url === '/to-internal') res.writeHead(302, { location: `http://127.0.0.1:${server.port}/secret` }).end();
    else res.end('internal data');
  });
  const p = server.port;
  const strict = (extra: Partial<UriFilterOptions> = {}) => ({ ...openFilter([p]), refuseInternal: true, ...extra });
  const lookup = countingLookup({
    'loopback.gaze.test': [{ address: '127.0.0.1', family: 4 }],
    'metadata.gaze.test': [{ address: '169.254.169.254', family: 4 }],
    'mixed.gaze.test': [
      { address: '93.184.215.14', family: 4 },
      { address: '10.1.2.3', family: 4 },
    ],
  });
  for (const uri of [`http://127.0.0.1:${p}/`, `http://2130706433:${p}/`, `http://0:${p}/`, `http://[::1]:${p}/`, `http://[::ffff:7f00:1]:${p}/`]) {
    await rejectsWith(safeDownload(uri, options([p], { filter: strict(), lookup })), 'FILTERED');
  }
  for (const host of ['loopback.gaze.test', 'metadata.gaze.test', 'mixed.gaze.test']) {
    await rejectsWith(safeDownload(`http://${host}:${p}/`, options([p], { filter: strict(), lookup })), 'FILTERED');
  }
  assert.equal(server.connections.length, 0, 'nothing was connected to');

  // listed by name (its addresses are then trusted), by address, or by network: allowed
  const ok = await safeDownload(`http://loopback.gaze.test:${p}/`, options([p], { filter: strict({ allowedHosts: ['loopback.gaze.test'] }), lookup }));
  assert.equal((await readAll(ok.body)).toString(), 'internal data');
  for (const allowedHosts of [['127.0.0.1'], ['127.0.0.0/8']]) {
    const literal = await safeDownload(`http://127.0.0.1:${p}/`, options([p], { filter: strict({ allowedHosts }), lookup }));
    assert.equal((await readAll(literal.body)).toString(), 'internal data', JSON.stringify(allowedHosts));
  }
  // a public name that redirects inward is stopped at the redirect
  const redirecting = countingLookup({ 'public.gaze.test': [{ address: '127.0.0.1', family: 4 }] });
  await rejectsWith(
    safeDownload(`http://public.gaze.test:${p}/to-internal`, options([p], { filter: strict({ allowedHosts: ['public.gaze.test'] }), lookup: redirecting })),
    'REDIRECT_FILTERED',
    `Redirect to disallowed URL: http://127.0.0.1:${p}/secret`,
  );
  assert.equal(server.requests.filter((r) => r.url === '/secret').length, 0);
});
