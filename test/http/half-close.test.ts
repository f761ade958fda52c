// A client that sends its whole request and then closes its sending side (shutdown(SHUT_WR), or a
// close() before reading) still gets its answer, and its data is kept, as Glance's server does.
// Node's default ends such a connection and aborts the requests still being answered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';

let gaze: RunningGaze;
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess();
  api = client(gaze.url);
});
after(() => gaze.stop());

/** Sends the request head and `body` (all, or its first `sendOnly` bytes), half-closes, and reads everything the server sends. */
function halfClosed(head: string, body: Buffer = Buffer.alloc(0), sendOnly = body.length): Promise<{ status: number; body: Buffer }> {
  const { port } = new URL(gaze.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(`${head}\r\nHost: 127.0.0.1\r\n\r\n`);
      socket.end(body.subarray(0, sendOnly));
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      resolve({ status: split < 0 ? 0 : Number(/^HTTP\/1\.1 (\d{3})/.exec(all.toString('latin1'))?.[1]), body: split < 0 ? all : all.subarray(split + 4) });
    });
  });
}

test('a stage sent whole and then half-closed is answered 204 and kept, every time', async () => {
  for (let round = 0; round < 10; round++) {
    const image = await api.createImage({ name: `stage ${round}`, disk_format: 'raw', container_format: 'bare' });
    const data = randomBytes(11 + round * 7000);
    const answer = await halfClosed(
      `PUT /v2/images/${image.id}/stage HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}`,
      data,
    );
    assert.equal(answer.status, 204, `round ${round}: ${answer.body.toString()}`);
    const shown = (await api.get(`/v2/images/${image.id}`)).json;
    assert.equal(shown.status, 'uploading', `round ${round}`);
    assert.equal(shown.size, data.length);
  }
});

test('an upload sent whole and then half-closed is answered 204; a download asked for and half-closed is sent whole', async () => {
  const image = await api.createImage({ name: 'half-closed upload', disk_format: 'raw', container_format: 'bare' });
  const data = randomBytes(6 << 20);
  const put = await halfClosed(`PUT /v2/images/${image.id}/file HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}`, data);
  assert.equal(put.status, 204, put.body.toString());
  assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'active');
  const got = await halfClosed(`GET /v2/images/${image.id}/file HTTP/1.1`);
  assert.equal(got.status, 200);
  assert.equal(got.body.length, data.length);
  assert.equal(createHash('md5').update(got.body).digest('hex'), createHash('md5').update(data).digest('hex'));
});

test('a body half-closed before it is whole is still a cut-off upload: the image goes back to queued', async () => {
  const image = await api.createImage({ name: 'cut short', disk_format: 'raw', container_format: 'bare' });
  const data = randomBytes(200_000);
  await halfClosed(`PUT /v2/images/${image.id}/file HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}`, data, 50_000);
  const shown = await until(
    async () => {
      const now = (await api.get(`/v2/images/${image.id}`)).json;
      return now.status === 'queued' ? now : undefined;
    },
    'the image to go back to queued',
    10_000,
  );
  assert.equal(shown.size, null);
  // And it takes a whole upload afterwards.
  assert.equal((await api.put(`/v2/images/${image.id}/file`, { body: data, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
});
