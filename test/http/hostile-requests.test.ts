// Requests an attacker or a careless client sends, found by probing a running Gaze from outside: names no
// header can carry, JSON bodies that stop, hang up or nest without end, idle connections, requests
// without Host or with an Expect Node does not know. Each gets a Glance-shaped answer, never a 500 or a
// connection held open, and leaves nothing half-written.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, Socket } from 'node:net';
import { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { readJson } from '../../src/http/body.ts';
import { GazeError } from '../../src/domain/errors.ts';
import { pino } from 'pino';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, expectError, rawRequest } from '../helpers/http.ts';

let gaze: RunningGaze;
let api: ReturnType<typeof client>;
const logLines: string[] = [];
before(async () => {
  const log = pino({ level: 'info' }, { write: (line: string) => logLines.push(line) });
  // Legacy tasks may name a port on loopback no one listens on: a source that resolves (and fails fast).
  gaze = await startGazeInProcess(
    { DEFAULT: { client_socket_timeout: '1' }, import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: '9' } },
    { log },
  );
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

/** Opens a connection, sends `text`, and resolves with everything the server sent until it closed (or null after `waitMs`). */
function exchange(text: string, waitMs: number): Promise<string | null> {
  const { port } = new URL(gaze.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(text));
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, waitMs);
    socket.on('data', (d) => (received += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', reject);
  });
}

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

test('a metadefs namespace named with characters no header can carry: 201 with a percent-encoded Location that leads to it', async () => {
  for (const name of ['☃ snow', 'café']) {
    const created = await api.post('/v2/metadefs/namespaces', { namespace: name });
    assert.equal(created.status, 201, created.text);
    const location = created.headers.get('location')!;
    assert.equal(location, `${gaze.url}/v2/metadefs/namespaces/${encodeURIComponent(name)}`);
    const shown = await api.get(new URL(location).pathname);
    assert.equal(shown.status, 200);
    assert.equal(shown.json.namespace, name);
  }
});

test('a JSON body that stops arriving gets 408 after client_socket_timeout and the connection closes; nothing was created', async () => {
  const before = (await api.get('/v2/images')).json.images.length;
  const started = Date.now();
  const answer = await exchange(
    'POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 100\r\n\r\n{"name":',
    10_000,
  );
  assert.ok(answer !== null, 'the connection was closed');
  assert.match(answer, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.match(answer, /"message": "The request body was cut off: no data arrived for 1 seconds\./);
  assert.ok(Date.now() - started < 5000);
  assert.equal((await api.get('/v2/images')).json.images.length, before);

  const image = await api.createImage({ name: 'patched slowly' });
  const patch = await exchange(
    `PATCH /v2/images/${image.id} HTTP/1.1\r\nHost: x\r\nContent-Type: application/openstack-images-v2.1-json-patch\r\nContent-Length: 80\r\n\r\n[{"op"`,
    10_000,
  );
  assert.match(patch ?? '', /^HTTP\/1\.1 408 /);
});

test('a client that hangs up in the middle of a JSON body is no error of the service: nothing logged as unhandled, nothing created', async () => {
  const before = (await api.get('/v2/tasks')).json.tasks.length;
  const marker = logLines.length;
  for (const path of ['/v2/images', '/v2/tasks', '/v2/metadefs/namespaces']) {
    const { port } = new URL(gaze.url);
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":`);
        setTimeout(() => socket.destroy(), 100);
      });
      socket.on('close', () => resolve());
    });
  }
  await new Promise((r) => setTimeout(r, 200));
  const logged = logLines.slice(marker).map((line) => JSON.parse(line) as { level: number; msg: string });
  // Not even a warning: the client's doing is no concern of the operator's.
  assert.deepEqual(
    logged.filter((l) => l.level >= 40),
    [],
  );
  assert.equal((await api.get('/v2/tasks')).json.tasks.length, before);
  assert.equal((await api.get('/versions')).status, 200, 'the service still answers');
});

test('JSON nested deeper than 1000 levels is a 400 on every route, before anything is stored; 1000 levels are taken', async () => {
  const tasksBefore = (await api.get('/v2/tasks')).json.tasks.length;
  const deep = nested(5000);
  const image = await api.createImage({ name: 'deep import' });
  const task = (depth: number) =>
    `{"type": "import", "input": {"import_from": "http://127.0.0.1:9/x.raw", "import_from_format": "raw", "image_properties": {"deep": ${nested(depth)}}}}`;
  for (const [method, path, body] of [
    ['POST', '/v2/images', deep],
    ['POST', '/v2/images', `{"name": ${deep}}`],
    ['POST', `/v2/images/${image.id}/import`, `{"method": {"name": "web-download", "uri": ${deep}}}`],
    ['POST', '/v2/tasks', task(1001)],
    ['PATCH', `/v2/images/${image.id}`, `[{"op": "add", "path": "/x", "value": ${deep}}]`],
    ['POST', '/v2/metadefs/namespaces', `{"namespace": "deep", "properties": {"p": {"type": "array", "items": ${deep}}}}`],
  ] as const) {
    const type = method === 'PATCH' ? 'application/openstack-images-v2.1-json-patch' : 'application/json';
    const answer = await rawRequest(gaze.url, method, path, { 'content-type': type, accept: 'application/json' }, body);
    expectError(answer, 400, 'Malformed JSON in request body: arrays and objects nest deeper than 1000 levels.');
  }
  assert.equal((await api.get('/v2/tasks')).json.tasks.length, tasksBefore, 'no task stored');
  assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued');

  // 1000 levels in all (three of them the task's own), about the most Python's parser reads in Glance,
  // are stored and read back.
  const accepted = await rawRequest(gaze.url, 'POST', '/v2/tasks', { 'content-type': 'application/json' }, task(997));
  assert.equal(accepted.status, 201, accepted.text);
  const stored = await api.get(`/v2/tasks/${(accepted.json as { id: string }).id}`);
  assert.equal(stored.status, 200);
  assert.equal(JSON.stringify(stored.json.input.image_properties.deep), nested(997));
});

test('headers that do not arrive within client_socket_timeout get 408; requests without Host or with an unknown Expect are served', async () => {
  const idle = await exchange('GET /v2/images HTTP/1.1\r\nHost: x\r\n', 10_000);
  assert.match(idle ?? '', /^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*The request was not received in time\./);

  const noHost = await exchange('GET /v2/images HTTP/1.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n', 10_000);
  assert.match(noHost ?? '', /^HTTP\/1\.1 200 OK\r\n[\s\S]*"images":/);
  // Its links name the address it reached, as Glance's server names itself.
  const created = await exchange('POST /v2/images HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}', 10_000);
  assert.match(created ?? '', new RegExp(`^HTTP/1\\.1 201 Created\r\n[\\s\\S]*location: ${gaze.url}/v2/images/[0-9a-f-]{36}\r\n`, 'i'));
  const expect = await exchange('GET /versions HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n', 10_000);
  assert.match(expect ?? '', /^HTTP\/1\.1 200 OK\r\n[\s\S]*"versions"/);
});

test('a connection refused for slow headers is closed on the service side even while its client keeps its own half open', async () => {
  const { port } = new URL(gaze.url);
  const server = (gaze as Awaited<ReturnType<typeof startGazeInProcess>>).app.server.server;
  // The service's side of this test's connection, found by the client's port.
  const serverSide = new Promise<Socket>((resolve) => {
    const onConnection = (s: Socket) => {
      if (s.remotePort === socket.localPort) {
        server.off('connection', onConnection);
        resolve(s);
      }
    };
    server.on('connection', onConnection);
  });
  // The client never closes its side: it reads the 408 and its end, and stays.
  const socket = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true }, () => socket.write('GET /v2/images HTTP/1.1\r\nX-A: a'));
  socket.on('error', () => {});
  let received = '';
  socket.on('data', (d) => (received += d.toString('latin1')));
  await new Promise((resolve) => socket.once('end', resolve));
  assert.match(received, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  const held = await serverSide;
  const deadline = Date.now() + 8_000;
  while (!held.destroyed) {
    assert.ok(Date.now() < deadline, 'the service still holds the connection');
    await new Promise((r) => setTimeout(r, 50));
  }
  socket.destroy();
});

test('requests pipelined after an upload on one connection run after it, as in Glance: a GET sees the image active', async () => {
  const image = await api.createImage({ disk_format: 'raw', container_format: 'bare' });
  const body = Buffer.alloc(3_000_000, 1);
  const head = `PUT /v2/images/${image.id}/file HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`;
  const next = `GET /v2/images/${image.id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
  const { port } = new URL(gaze.url);
  const answers = await new Promise<string>((resolve, reject) => {
    // Written, not ended: the GET's `Connection: close` ends the exchange.
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(Buffer.concat([Buffer.from(head), body, Buffer.from(next)])));
    let received = '';
    socket.on('data', (d) => (received += d.toString('latin1')));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
  assert.match(answers, /^HTTP\/1\.1 204 No Content\r\n[\s\S]*HTTP\/1\.1 200 OK\r\n/);
  assert.match(answers, /"status": "active"/, 'the GET ran once the upload was done');
});

test("a method Node's parser does not know gets what Glance's router gives any other: 405 with Allow on a resource, 501 elsewhere", async () => {
  const image = await api.createImage({ name: 'for FOO' });
  const answers = await Promise.all(
    [`/v2/images`, `/v2.9/images/${image.id}`, `/v2/images/${image.id}/tags/x`, '/v2/nothing/here'].map((path) =>
      exchange(`FOO ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, 10_000),
    ),
  );
  const [list, one, tag, nowhere] = answers.map((a) => a ?? '');
  assert.match(list!, /^HTTP\/1\.1 405 Method Not Allowed\r\nAllow: GET, POST\r\n[\s\S]*The method FOO is not allowed for this resource\./);
  assert.match(one!, /^HTTP\/1\.1 405 Method Not Allowed\r\nAllow: GET, PATCH, DELETE\r\n/);
  assert.match(tag!, /^HTTP\/1\.1 405 Method Not Allowed\r\nAllow: PUT, DELETE\r\n/);
  assert.match(nowhere!, /^HTTP\/1\.1 501 Not Implemented\r\n[\s\S]*The request method FOO is not implemented for this server\./);
});

test('CONNECT, which Node keeps off its routes, is answered as an unknown method (not dropped): 405 with Allow, or 501', async () => {
  const [images, host] = await Promise.all(['/v2/images', '127.0.0.1:443'].map((target) => exchange(`CONNECT ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, 10_000)));
  assert.match(images ?? '', /^HTTP\/1\.1 405 Method Not Allowed\r\nAllow: GET, POST\r\n[\s\S]*The method CONNECT is not allowed for this resource\./);
  assert.match(host ?? '', /^HTTP\/1\.1 501 Not Implemented\r\n[\s\S]*The request method CONNECT is not implemented for this server\./);
  assert.equal((await api.get('/v2/images')).status, 200, 'the server goes on');
});

test('a CONNECT whose client resets the connection at once is no uncaught error (the server goes on)', async () => {
  const { port } = new URL(gaze.url);
  for (let i = 0; i < 30; i++) {
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write('CONNECT /v2/images HTTP/1.1\r\nHost: x\r\n\r\n', () => {
          if (i % 2) socket.resetAndDestroy();
          else setImmediate(() => socket.resetAndDestroy());
        });
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve());
    });
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await api.get('/v2/images')).status, 200);
});

test('a JSON body whose client hung up before the read began (while it was authenticated) is cut off at once, not after client_socket_timeout', async () => {
  const gone = new IncomingMessage(new Socket());
  gone.destroy();
  const request = { raw: gone, headers: { 'content-length': '10' }, method: 'POST', bodyIdleMs: 0 } as unknown as FastifyRequest;
  const started = Date.now();
  await assert.rejects(
    readJson(request),
    (err: unknown) => err instanceof GazeError && err.status === 400 && /the client closed the connection/.test(err.message),
  );
  assert.ok(Date.now() - started < 1000);
});
