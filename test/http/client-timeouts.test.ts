import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { announcedPut, client, alice } from '../helpers/http.ts';

// client_socket_timeout = 1 s and a minimum of 2000 bytes/s: a stalled and a trickling client are cut
// off; the image goes back to queued with nothing kept. A download whose client stops reading is given up.
let gaze: RunningGaze;
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess({ DEFAULT: { client_socket_timeout: '1', upload_min_rate: '2000' } });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

/** A PUT of alice's that announces `declared` bytes, then sends `chunk` every `everyMs` until the server answers. */
const slowUpload = (url: string, declared: number, chunk: Buffer, everyMs: number | null) => announcedPut(url, { declared, caller: alice, chunk, everyMs });

test('an upload that stalls is cut off with 408; the image is queued again and nothing is stored', async () => {
  const img = await api.createImage({}, alice);
  const started = Date.now();
  const r = await slowUpload(`${gaze.url}/v2/images/${img.id}/file`, 1 << 20, Buffer.alloc(4096, 1), null);
  assert.equal(r.status, 408, r.body);
  assert.match(JSON.parse(r.body).message, /The upload was cut off: no data arrived for 1 seconds/);
  assert.equal(JSON.parse(r.body).title, 'Request Timeout', "WebOb's title of a 408");
  assert.equal(r.connection, 'close');
  assert.ok(Date.now() - started < 10_000);
  const after = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
  assert.equal(after.status, 'queued');
  assert.equal(after.size, null);
  assert.deepEqual(filesIn(path.join(gaze.dir, 'data', 'images')), []);
});

test('an upload that sends plenty and then stops is cut off soon after client_socket_timeout, not a whole timeout later', async () => {
  const patient = await startGazeInProcess({ DEFAULT: { client_socket_timeout: '4', upload_min_rate: '2000' } });
  try {
    const img = await client(patient.url).createImage({}, alice);
    const started = Date.now();
    // 400 kB now and 400 kB half a second later (far above the rate asked for; a third would pass the
    // length announced), then nothing.
    const r = await slowUpload(`${patient.url}/v2/images/${img.id}/file`, 1_000_000, Buffer.alloc(400_000, 1), 500);
    const took = Date.now() - started;
    assert.equal(r.status, 408, r.body);
    assert.equal(r.sent, 800_000);
    assert.match(JSON.parse(r.body).message, /no data arrived for 4 seconds/);
    // Looked at every second: cut about 5 s in, 4 to 5 s after the last byte (a look every 4 s cut it at 8).
    assert.ok(took >= 4_400 && took < 7_000, `cut off after ${took} ms`);
  } finally {
    await patient.stop();
  }
});

test('an upload that trickles (slowloris) is cut off too', async () => {
  const img = await api.createImage({}, alice);
  // 100 bytes every 100 ms: never idle, but 1000 bytes/s, under the 2000 asked for.
  const r = await slowUpload(`${gaze.url}/v2/images/${img.id}/file`, 1 << 20, Buffer.alloc(100, 1), 100);
  assert.equal(r.status, 408, r.body);
  assert.match(JSON.parse(r.body).message, /fewer than 2000 bytes per second arrived over 1 seconds/);
  assert.ok(r.sent < 1 << 20);
  assert.equal((await api.get(`/v2/images/${img.id}`, { as: alice })).json.status, 'queued');
  assert.deepEqual(filesIn(path.join(gaze.dir, 'data', 'images')), []);
});

test('a stalled stage is cut off: the image is queued and staging is empty', async () => {
  const img = await api.createImage({}, alice);
  const r = await slowUpload(`${gaze.url}/v2/images/${img.id}/stage`, 1 << 20, Buffer.alloc(4096, 1), null);
  assert.equal(r.status, 408, r.body);
  assert.equal((await api.get(`/v2/images/${img.id}`, { as: alice })).json.status, 'queued');
  assert.deepEqual(filesIn(path.join(gaze.dir, 'data', 'staging')), []);
});

test('an upload that keeps pace passes, even when it takes longer than the timeout', async () => {
  const img = await api.createImage({}, alice);
  // 64 KiB every 200 ms over ~2.4 s: well above the minimum rate.
  const r = await slowUpload(`${gaze.url}/v2/images/${img.id}/file`, 12 * 65536, Buffer.alloc(65536, 3), 200);
  assert.equal(r.status, 204, r.body);
  const done = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
  assert.equal(done.status, 'active');
  assert.equal(done.size, 12 * 65536);
});

test('client_socket_timeout = 0 turns both cut-offs off, as in Glance: 1.5 s pauses and a rate under upload_min_rate pass', async () => {
  const patient = await startGazeInProcess({ DEFAULT: { client_socket_timeout: '0', upload_min_rate: '2000' } });
  try {
    const c = client(patient.url);
    const img = await c.createImage({}, alice);
    // 1 KiB every 1.5 s: idle longer than the 1 s the other server allows, at about 680 bytes/s.
    const started = Date.now();
    const r = await slowUpload(`${patient.url}/v2/images/${img.id}/file`, 3 * 1024, Buffer.alloc(1024, 1), 1500);
    assert.equal(r.status, 204, r.body);
    assert.ok(Date.now() - started >= 3000, 'the upload really paused');
    const done = (await c.get(`/v2/images/${img.id}`, { as: alice })).json;
    assert.equal(done.status, 'active');
    assert.equal(done.size, 3 * 1024);
  } finally {
    await patient.stop();
  }
});

test("a download whose client stops reading is given up after client_socket_timeout, as by the socket timeout of Glance's server", async () => {
  const img = await api.createImage({ disk_format: 'raw', container_format: 'bare' });
  const size = 64 << 20;
  assert.equal((await api.upload(img.id, Buffer.alloc(size, 7))).status, 204);
  // The client reads nothing for 3 s, then everything the server still sends.
  const received = await new Promise<number>((resolve) => {
    const socket = connect(gaze.port, '127.0.0.1');
    let bytes = 0;
    socket.on('error', () => {});
    socket.on('close', () => resolve(bytes));
    socket.pause();
    socket.write(`GET /v2/images/${img.id}/file HTTP/1.1\r\nHost: gaze\r\nConnection: close\r\n\r\n`);
    setTimeout(() => {
      socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      socket.resume();
    }, 3000);
  });
  assert.ok(received > 0 && received < size, `received ${received} of ${size} bytes`);
  // the image is untouched and a reading client gets all of it
  const whole = await api.get(`/v2/images/${img.id}/file`);
  assert.equal(whole.status, 200);
  assert.equal(Number(whole.headers.get('content-length')), size);
});
