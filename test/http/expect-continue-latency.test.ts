// `100 Continue` goes out only once the service reads the body, after its checks, also when each of
// those checks is a database round trip (PostgreSQL, MariaDB): a refusal comes alone, as from Glance.
// The latency is given to the image reads here; with SQLite the whole refusal runs in one tick.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
before(async () => {
  gaze = await startGazeInProcess();
  const images = gaze.app.deps.images as any;
  const origGet = images.get;
  images.get = async function (id: string) {
    await new Promise((r) => setTimeout(r, 20)); // a networked database's round trip
    return origGet.call(this, id);
  };
});
after(() => gaze.stop());

const expectingUpload = (path: string, body: string, extraHeaders = '') =>
  new Promise<string>((resolve, reject) => {
    const { port } = new URL(gaze.url);
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write(
        `PUT ${path} HTTP/1.1\r\nHost: x\r\nX-Roles: admin\r\nX-Project-Id: p\r\nContent-Type: application/octet-stream\r\n` +
          `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n${extraHeaders}\r\n`,
      ),
    );
    let answer = '';
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      if (answer === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write(body);
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    setTimeout(() => socket.destroy(), 3000).unref();
  });

test('no 100 Continue before a 404 or a 409 when each image read is a round trip', async () => {
  const missing = await expectingUpload('/v2/images/00000000-0000-4000-8000-000000000000/file', 'hello');
  assert.match(missing, /^HTTP\/1\.1 404 /, 'no 100 Continue before the 404');

  const api = client(gaze.url);
  const img = await api.createImage();
  assert.equal((await api.upload(img.id, 'data')).status, 204);
  const active = await expectingUpload(`/v2/images/${img.id}/file`, 'hello');
  assert.match(active, /^HTTP\/1\.1 409 /, 'no 100 Continue before the 409 of an active image');
  // An upload the checks let through gets its 100 when the body is read, and then its answer.
  const queued = await api.createImage();
  const accepted = await expectingUpload(`/v2/images/${queued.id}/file`, 'hello', 'Connection: close\r\n');
  assert.match(accepted, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 204 /);
  assert.equal((await api.get(`/v2/images/${queued.id}`)).json.size, 5);
});
