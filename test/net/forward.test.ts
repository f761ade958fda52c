// The replay of a request to the node holding an image's staged data: what goes along, and one hop only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { forwardToStageHost, unavailable } from '../../src/net/forward.ts';
import { HttpTimeoutError } from '../../src/net/http-client.ts';
import { renderError } from '../../src/http/errors.ts';
import { GazeError } from '../../src/domain/errors.ts';

/** A request's logger that keeps what is said, as [level, message]. */
function logTo(lines: Array<[string, string]>) {
  const say = (level: string) => (first: unknown, second?: string) => void lines.push([level, typeof first === 'string' ? first : (second ?? '')]);
  return { info: say('info'), warn: say('warn'), error: say('error') };
}

test("the caller's token goes along whichever header it came in (keystonemiddleware takes X-Storage-Token too), with the one-hop mark", async () => {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(202, { 'x-openstack-request-id': 'req-stage-host' }).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const stageHost = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const incoming = (headers: Record<string, string>) =>
      ({ headers, url: '/v2/images/x/import', method: 'POST', log: logTo([]) }) as unknown as FastifyRequest;
    const forwarded = await forwardToStageHost(stageHost, incoming({ 'x-storage-token': 'tok-1', 'x-roles': 'member' }), { method: { name: 'glance-direct' } });
    assert.deepEqual(forwarded, { status: 202, requestId: 'req-stage-host' });
    assert.equal(seen[0]!['x-storage-token'], 'tok-1');
    assert.equal(seen[0]!['x-roles'], 'member');
    assert.equal(seen[0]!['x-gaze-forwarded'], '1');
    await assert.rejects(
      forwardToStageHost(stageHost, incoming({ 'x-auth-token': 'tok-2', 'x-gaze-forwarded': '1' }), undefined),
      (err: unknown) => err instanceof GazeError && err.code === 'STAGE_HOST_LOOP' && err.status === 502,
    );
    assert.equal(seen.length, 1, 'a forwarded request is not forwarded again');
  } finally {
    server.close();
  }
});

test("a stage host that cannot be asked: 504 without a connection, 502 for the rest, as Glance maps requests' errors; each failure logged with its URL", async () => {
  const lines: Array<[string, string]> = [];
  const incoming = { headers: {}, url: '/v2/images/x/import', method: 'POST', log: logTo(lines) } as unknown as FastifyRequest;
  const status = (promise: Promise<unknown>) =>
    promise.then(
      () => 0,
      (err: unknown) => (err instanceof GazeError ? err.status : -1),
    );
  // Nobody listens there.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  assert.equal(await status(forwardToStageHost(`http://127.0.0.1:${closedPort}`, incoming, undefined)), 504);
  assert.deepEqual(lines.at(-1)?.[0], 'error');
  assert.match(lines.at(-1)![1], new RegExp(`^Failed to proxy to http://127.0.0.1:${closedPort}/v2/images/x/import: .*ECONNREFUSED`));
  assert.equal(lines.at(-2)?.[1], `Proxying POST request to host http://127.0.0.1:${closedPort} which has image staged`);

  // https to a node that speaks plain HTTP: the TLS handshake fails, which requests counts as a ConnectionError.
  const plain = createServer((_req, res) => res.end('plain'));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  try {
    assert.equal(await status(forwardToStageHost(`https://127.0.0.1:${(plain.address() as AddressInfo).port}`, incoming, undefined)), 504);
  } finally {
    plain.close();
  }
  // Not a URL, or one of another scheme: requests' InvalidURL/MissingSchema/InvalidSchema, 502.
  assert.equal(await status(forwardToStageHost('not a url', incoming, undefined)), 502);
  assert.equal(await status(forwardToStageHost('ftp://127.0.0.1:21', incoming, undefined)), 502);
  assert.match(lines.at(-1)![1], /^Failed to proxy to ftp:\/\/127.0.0.1:21\/v2\/images\/x\/import: /);
  // Connected, no answer in time (requests' ReadTimeout): 502.
  assert.equal(unavailable(new HttpTimeoutError(60_000)).status, 502);
  assert.equal(unavailable(Object.assign(new Error('timed out'), { name: 'TimeoutError' })).status, 502);
  assert.equal(unavailable(Object.assign(new Error('reset'), { code: 'ECONNRESET' })).status, 504);
});

test("the stage host's refusal is passed on with its status and WebOb's empty body, as Glance's, without the host's address", async () => {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(409, { 'content-type': 'application/json' }).end('{"message": "internal detail"}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const lines: Array<[string, string]> = [];
  try {
    const stageHost = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const incoming = { headers: {}, url: '/v2/images/x/import', method: 'POST', log: logTo(lines) } as unknown as FastifyRequest;
    const err = await forwardToStageHost(stageHost, incoming, { method: { name: 'glance-direct' } }).then(
      () => assert.fail('refused'),
      (e: unknown) => e as GazeError,
    );
    assert.equal(err.status, 409);
    const shown = renderError(err.status, err.message, 'application/json');
    assert.deepEqual(JSON.parse(shown.body), { message: '<br /><br />\n\n\n', code: '409 Conflict', title: 'Conflict' });
    assert.ok(lines.some(([level, line]) => level === 'warn' && line === `The stage host ${stageHost} answered 409 to POST /v2/images/x/import`));
  } finally {
    server.close();
  }
});
