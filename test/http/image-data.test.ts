import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import type { App } from '../../src/app.ts';
import { client, expectError, JSON_ACCEPT, alice, bob, rawRequest } from '../helpers/http.ts';

let gaze: RunningGaze & { app: App };
let api: ReturnType<typeof client>;
const CAP = 1 << 20;
before(async () => {
  gaze = await startGazeInProcess({ DEFAULT: { image_size_cap: String(CAP) } });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

const storeFiles = () => readdirSync(path.join(gaze.dir, 'data', 'images'));
const stagingFiles = () => (existsSync(path.join(gaze.dir, 'data', 'staging')) ? readdirSync(path.join(gaze.dir, 'data', 'staging')) : []);
const waitFor = async (check: () => Promise<boolean>, what: string) => {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
};

/**
 * Starts an upload that sends `first` bytes and then waits; returns a function that either finishes it or
 * cuts the connection, plus the promise of the server's reply (null when the connection was cut).
 */
function openUpload(id: string, declared: number, first: Buffer, target: 'file' | 'stage' = 'file') {
  let resolveReply!: (r: { status: number; body: string } | null) => void;
  const reply = new Promise<{ status: number; body: string } | null>((r) => {
    resolveReply = r;
  });
  const req = httpRequest(
    `${gaze.url}/v2/images/${id}/${target}`,
    {
      method: 'PUT',
      agent: false,
      headers: { 'content-type': 'application/octet-stream', 'content-length': declared, accept: 'application/json' },
    },
    (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolveReply({ status: res.statusCode!, body }));
    },
  );
  req.on('error', () => resolveReply(null));
  req.write(first);
  return { reply, finish: (rest: Buffer) => req.end(rest), cut: () => req.destroy() };
}

test('upload streams data in; size, checksum and sha512 are computed; download returns the bytes', async () => {
  const data = randomBytes(300_000);
  const img = await api.createImage({}, alice);
  assert.equal((await api.upload(img.id, data, alice)).status, 204);
  const shown = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
  assert.equal(shown.status, 'active');
  assert.equal(shown.size, data.length);
  assert.equal(shown.virtual_size, data.length, 'raw images report their virtual size');
  assert.equal(shown.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(shown.os_hash_algo, 'sha512');
  assert.equal(shown.os_hash_value, createHash('sha512').update(data).digest('hex'));
  const stored = await gaze.app.deps.images.get(img.id);
  assert.equal(stored!.properties.os_glance_upload_node, undefined, 'who wrote the data is forgotten once it is active');
  const res = await fetch(`${gaze.url}/v2/images/${img.id}/file`, { headers: { 'x-project-id': 'alice-project', 'x-roles': 'member' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  assert.equal(res.headers.get('content-md5'), shown.checksum);
  assert.equal(res.headers.get('content-length'), String(data.length));
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
});

test('ranges: 206 with Content-Range, suffix and open ranges, 416 and 400 for bad ones', async () => {
  const data = Buffer.from('0123456789');
  const img = await api.createImage();
  await api.upload(img.id, data);
  const get = (headers: Record<string, string>) => api.get(`/v2/images/${img.id}/file`, { headers: { ...headers, ...JSON_ACCEPT } });
  const first = await get({ range: 'bytes=0-4' });
  assert.equal(first.status, 206);
  assert.equal(first.text, '01234');
  assert.equal(first.headers.get('content-range'), 'bytes 0-4/10');
  assert.equal(first.headers.get('content-md5'), createHash('md5').update(data).digest('hex'), 'the whole image checksum, even on 206');
  assert.equal((await get({ range: 'bytes=4-' })).text, '456789');
  assert.equal((await get({ range: 'bytes=-2' })).text, '89');
  assert.equal((await get({ range: 'bytes=8-100' })).text, '89');
  assert.equal((await get({ 'content-range': 'bytes 1-2/*' })).text, '12');
  // WebOb's patterns, matched from the start only (checked against Glance 25): the range in any case,
  // with spaces, and whatever follows it ignored; the legacy header in lower case with single spaces.
  assert.equal((await get({ range: 'bytes=-5-10' })).text, '56789');
  assert.equal((await get({ range: 'BYTES = 2 - 4' })).text, '234');
  assert.equal((await get({ range: 'bytes=2-4xyz' })).text, '234');
  expectError(await get({ range: 'bytes\t=2-4' }), 416, 'Invalid Range header.');
  assert.equal((await get({ 'content-range': 'bytes 1-2/5 trailing' })).text, '12');
  expectError(await get({ 'content-range': 'Bytes 1-2/*' }), 416, 'Invalid Content-Range header.');
  expectError(await get({ 'content-range': 'bytes  1-2/*' }), 416, 'Invalid Content-Range header.');
  expectError(await get({ range: 'bytes=10-' }), 416, 'Invalid start position in Range header. Start position MUST be in the inclusive range [0, 9].');
  expectError(await get({ range: 'pages=1-2' }), 416, 'Invalid Range header.');
  // WebOb's 416, as Glance raises it: its explanation, the detail, its title and reason phrase.
  const unsatisfiable = await rawRequest(gaze.url, 'GET', `/v2/images/${img.id}/file`, { range: 'bytes=5-1', accept: 'application/json' });
  assert.equal(
    unsatisfiable.text,
    '{"message": "The Range requested is not available.<br /><br />\\nInvalid Range header.\\n\\n", "code": "416 Request Range Not Satisfiable", "title": "Request Range Not Satisfiable"}',
  );
  assert.equal(unsatisfiable.statusText, 'Request Range Not Satisfiable');
  // The legacy Content-Range, with Glance's own checks and words.
  expectError(await get({ 'content-range': 'bytes 2-1/*' }), 416, 'Invalid Content-Range header.');
  expectError(await get({ 'content-range': 'bytes 1-5/3' }), 416, 'Invalid Content-Range header.');
  expectError(
    await get({ 'content-range': 'bytes 5-20/*' }),
    416,
    'Invalid stop position in Content-Range header. The stop position MUST be in the inclusive range [0, 9].',
  );
  expectError(
    await get({ 'content-range': 'bytes 20-25/30' }),
    416,
    'Invalid start position in Content-Range header. Start position MUST be in the inclusive range [0, 9].',
  );
  // WebOb reads a suffix of 0 as a start of 0: the whole image.
  const zero = await get({ range: 'bytes=-0' });
  assert.equal(zero.status, 206);
  assert.equal(zero.text, '0123456789');
  expectError(
    await get({ range: 'bytes=0-1,3-4' }),
    400,
    'Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.',
  );
  // The range is read once the image is found, as Glance's serializer reads it: even without data, a
  // header it cannot read is a 416; one it can read changes nothing (204).
  const missing = await api.get('/v2/images/00000000-0000-4000-8000-000000000000/file', { headers: { range: 'bytes=0-1,3-4', ...JSON_ACCEPT } });
  expectError(missing, 404, 'No image found with ID 00000000-0000-4000-8000-000000000000');
  const queued = await api.createImage();
  expectError(await api.get(`/v2/images/${queued.id}/file`, { headers: { range: 'pages=1-2', ...JSON_ACCEPT } }), 416, 'Invalid Range header.');
  assert.equal((await api.get(`/v2/images/${queued.id}/file`, { headers: { range: 'bytes=0-1' } })).status, 204);
});

test('download of an image without data answers 204', async () => {
  const img = await api.createImage();
  const r = await api.get(`/v2/images/${img.id}/file`);
  assert.equal(r.status, 204);
  assert.equal(r.text, '');
  // As WebOb sends a 204: Content-Length 0 (so an HTTP/1.0 client may keep its connection).
  assert.equal(r.headers.get('content-length'), '0');
  const uploaded = await api.upload(img.id, 'data');
  assert.equal(uploaded.status, 204);
  assert.equal(uploaded.headers.get('content-length'), '0');
});

test('upload checks content type, formats, status, ownership', async () => {
  const img = await api.createImage({}, alice);
  const put = (headers: Record<string, string>, as = alice) => api.put(`/v2/images/${img.id}/file`, { body: 'x', headers: { ...headers, ...JSON_ACCEPT }, as });
  const plain = await put({ 'content-type': 'text/plain' });
  expectError(plain, 415, 'Invalid content type text/plain');
  assert.equal(plain.json.message, 'The request media type text/plain is not supported by this server.\n<br /><br />\nInvalid content type text/plain');
  expectError(await put({}), 415, /^Invalid content type /);
  // A type fastify could not parse reaches the route like any other; none at all reads as eventlet's text/plain.
  expectError(await put({ 'content-type': 'garbage' }), 415, 'Invalid content type garbage');
  // Compared as written, as WebOb reads it; the detail names the type without its parameters (Glance 25 and current Glance).
  expectError(await put({ 'content-type': 'Application/Octet-Stream' }), 415, 'Invalid content type Application/Octet-Stream');
  expectError(await put({ 'content-type': 'Text/Plain; x=1' }), 415, 'Invalid content type Text/Plain');
  expectError(await put({ 'content-type': 'application/octet-stream ;x=1' }), 415, 'Invalid content type application/octet-stream ');
  const none = await rawRequest(
    gaze.url,
    'PUT',
    `/v2/images/${img.id}/file`,
    { 'x-project-id': alice.project!, 'x-roles': alice.roles!, 'content-length': 1, ...JSON_ACCEPT },
    'x',
  );
  assert.equal(none.json?.message, 'The request media type text/plain is not supported by this server.\n<br /><br />\nInvalid content type None');
  expectError(await put({ 'content-type': 'application/octet-stream' }, bob), 404, `No image found with ID ${img.id}`);
  const noFormats = await api.post('/v2/images', {}, { as: alice });
  expectError(
    await api.put(`/v2/images/${noFormats.json.id}/file`, { body: 'x', as: alice, headers: { 'content-type': 'application/octet-stream', ...JSON_ACCEPT } }),
    400,
    'Properties disk_format, container_format must be set prior to saving data.',
  );
  const onlyDisk = await api.post('/v2/images', { disk_format: 'raw' }, { as: alice });
  expectError(
    await api.put(`/v2/images/${onlyDisk.json.id}/file`, { body: 'x', as: alice, headers: { 'content-type': 'application/octet-stream', ...JSON_ACCEPT } }),
    400,
    'Property container_format must be set prior to saving data.',
  );
  assert.equal((await put({ 'content-type': 'application/octet-stream' })).status, 204);
  expectError(await put({ 'content-type': 'application/octet-stream' }), 409, 'Image status transition from active to saving is not allowed');
  const pub = await api.createImage({ visibility: 'public' });
  expectError(
    await api.put(`/v2/images/${pub.id}/file`, { body: 'x', as: alice, headers: { 'content-type': 'application/octet-stream', ...JSON_ACCEPT } }),
    403,
    'You are not authorized to complete upload_image action.',
  );
});

test('an upload larger than image_size_cap is refused with 413 and the image stays queued with no data', async () => {
  const img = await api.createImage();
  expectError(
    await api.put(`/v2/images/${img.id}/file`, { body: Buffer.alloc(CAP + 1), headers: { 'content-type': 'application/octet-stream', ...JSON_ACCEPT } }),
    413,
    'The incoming image is too large: The provided image is too large.',
  );
  const shown = (await api.get(`/v2/images/${img.id}`)).json;
  assert.equal(shown.status, 'queued');
  assert.equal(shown.size, null);
  assert.equal(shown.checksum, null);
  assert.ok(!storeFiles().some((f) => f.includes(img.id)), 'no bytes of the refused upload remain');
  assert.equal((await api.upload(img.id, Buffer.alloc(CAP))).status, 204, 'exactly the cap is allowed');
});

test('an upload cut off mid-stream leaves the image queued and no stray bytes', async () => {
  const img = await api.createImage();
  const upload = openUpload(img.id, 500_000, randomBytes(100_000));
  await waitFor(async () => (await api.get(`/v2/images/${img.id}`)).json.status === 'saving', 'saving');
  upload.cut();
  await upload.reply;
  await waitFor(async () => (await api.get(`/v2/images/${img.id}`)).json.status === 'queued', 'queued after the cut');
  const shown = (await api.get(`/v2/images/${img.id}`)).json;
  assert.equal(shown.size, null);
  await waitFor(async () => !storeFiles().some((f) => f.includes(img.id)), 'partial file removed');
  assert.equal((await api.upload(img.id, 'retry')).status, 204, 'the image can be uploaded again');
});

test('a delete during an upload answers the uploader 410 and removes the data', async () => {
  const img = await api.createImage();
  const upload = openUpload(img.id, 500_000, randomBytes(100_000));
  await waitFor(async () => (await api.get(`/v2/images/${img.id}`)).json.status === 'saving', 'saving');
  assert.equal((await api.del(`/v2/images/${img.id}`)).status, 204);
  upload.finish(randomBytes(400_000));
  const reply = await upload.reply;
  assert.ok(reply, 'the uploader gets an answer');
  assert.equal(reply!.status, 410);
  assert.match(JSON.parse(reply!.body).message, new RegExp(`^Image ${img.id} could not be found after upload`));
  await waitFor(async () => !storeFiles().some((f) => f.includes(img.id)), 'data removed');
  assert.equal((await api.get(`/v2/images/${img.id}`)).status, 404);
});

test('a delete during a stage answers the stager 404, as Glance, and removes the staged data', async () => {
  const img = await api.createImage();
  const stage = openUpload(img.id, 500_000, randomBytes(100_000), 'stage');
  await waitFor(async () => (await api.get(`/v2/images/${img.id}`)).json.status === 'uploading', 'uploading');
  assert.equal((await api.del(`/v2/images/${img.id}`)).status, 204);
  stage.finish(randomBytes(400_000));
  const reply = await stage.reply;
  assert.ok(reply, 'the stager gets an answer');
  assert.equal(reply!.status, 404);
  assert.equal(JSON.parse(reply!.body).message, `No image found with ID ${img.id}<br /><br />\n\n\n`);
  await waitFor(async () => !stagingFiles().some((f) => f.includes(img.id)), 'staged data removed');
});

test('two concurrent uploads to one image: one wins, the other gets 409, the data is the winner', async () => {
  const img = await api.createImage();
  const a = randomBytes(200_000);
  const b = randomBytes(200_000);
  const first = openUpload(img.id, a.length, a.subarray(0, 1000));
  await waitFor(async () => (await api.get(`/v2/images/${img.id}`)).json.status === 'saving', 'saving');
  const second = await api.put(`/v2/images/${img.id}/file`, { body: b, headers: { 'content-type': 'application/octet-stream', ...JSON_ACCEPT } });
  expectError(second, 409, 'Image status transition from saving to saving is not allowed');
  first.finish(a.subarray(1000));
  assert.equal((await first.reply)!.status, 204);
  const shown = (await api.get(`/v2/images/${img.id}`)).json;
  assert.equal(shown.checksum, createHash('md5').update(a).digest('hex'));
});

test('a chunked upload without Content-Length works', async () => {
  const img = await api.createImage();
  const parts = [randomBytes(70_000), randomBytes(90_000)];
  const stream = new ReadableStream({
    start(c) {
      parts.forEach((p) => c.enqueue(p));
      c.close();
    },
  });
  const r = await api.put(`/v2/images/${img.id}/file`, { body: stream, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(r.status, 204, r.text);
  assert.equal((await api.get(`/v2/images/${img.id}`)).json.size, 160_000);
});

test('deleting an active image removes its data from the store', async () => {
  const img = await api.createImage();
  await api.upload(img.id, 'bytes to remove');
  assert.ok(storeFiles().includes(img.id));
  assert.equal((await api.del(`/v2/images/${img.id}`)).status, 204);
  assert.ok(!storeFiles().includes(img.id));
});

test('an expected sha512 given at create is verified: a mismatch is refused and nothing is kept', async () => {
  const data = randomBytes(50_000);
  const good = createHash('sha512').update(data).digest('hex');
  expectError(
    await api.post('/v2/images', { os_hash_algo: 'sha512' }, { headers: JSON_ACCEPT }),
    400,
    'os_hash_algo and os_hash_value must be given together, as strings.',
  );
  expectError(
    await api.post('/v2/images', { os_hash_algo: 'md5', os_hash_value: 'a'.repeat(32) }, { headers: JSON_ACCEPT }),
    400,
    'os_hash_algo must be sha512, not md5',
  );
  expectError(await api.post('/v2/images', { os_hash_algo: 'sha512', os_hash_value: 'xyz' }, { headers: JSON_ACCEPT }), 400, /128 lowercase hex digits/);
  // Both null, as a queued image shows them: no expectation, as Glance takes them.
  const copied = await api.post('/v2/images', { name: 'copied', os_hash_algo: null, os_hash_value: null });
  assert.deepEqual([copied.status, copied.json.os_hash_algo, copied.json.os_hash_value], [201, null, null]);

  const wrong = await api.createImage({ os_hash_algo: 'sha512', os_hash_value: 'f'.repeat(128) });
  assert.equal(wrong.os_hash_value, 'f'.repeat(128), 'the expectation is shown until data arrives');
  expectError(
    await api.put(`/v2/images/${wrong.id}/file`, { body: data, headers: { 'content-type': 'application/octet-stream', ...JSON_ACCEPT } }),
    400,
    'os_hash_value of uploaded data is different from current value set on the image.',
  );
  const after = (await api.get(`/v2/images/${wrong.id}`)).json;
  assert.equal(after.status, 'queued');
  assert.equal(after.size, null);
  assert.equal(after.os_hash_value, 'f'.repeat(128), 'the expectation stays');
  assert.ok(!storeFiles().includes(wrong.id), 'no data kept');

  const right = await api.createImage({ os_hash_algo: 'sha512', os_hash_value: good });
  assert.equal((await api.upload(right.id, data)).status, 204);
  assert.equal((await api.get(`/v2/images/${right.id}`)).json.status, 'active');
});
