import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, rawRequest } from '../helpers/http.ts';

// [cors] as oslo.middleware answers in front of Glance, for Horizon's direct upload mode: the preflight
// of PUT /file and PUT /stage, and the headers on every answer to an allowed origin.

const HORIZON = 'http://horizon.example:8080';
let gaze: RunningGaze;
let plain: RunningGaze;

before(async () => {
  gaze = await startGazeInProcess({ cors: { allowed_origin: `${HORIZON},http://other.example` } });
  plain = await startGazeInProcess({});
});
after(async () => {
  await gaze.stop();
  await plain.stop();
});

const preflight = (base: string, path: string, method: string, headers: string | null, origin = HORIZON) =>
  rawRequest(base, 'OPTIONS', path, {
    origin,
    'access-control-request-method': method,
    ...(headers ? { 'access-control-request-headers': headers } : {}),
  });

test("the preflight of a direct upload (PUT /file, PUT /stage) is answered with Glance's defaults", async () => {
  const image = await client(gaze.url).createImage({ name: 'cors' });
  for (const path of [`/v2/images/${image.id}/file`, `/v2/images/${image.id}/stage`]) {
    const r = await preflight(gaze.url, path, 'PUT', 'x-auth-token,content-type,X-OpenStack-Request-ID');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), HORIZON);
    assert.equal(r.headers.get('access-control-allow-methods'), 'PUT');
    assert.equal(r.headers.get('access-control-allow-headers'), 'x-auth-token,content-type,X-OpenStack-Request-ID');
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(r.headers.get('access-control-max-age'), '3600');
    assert.equal(r.headers.get('vary'), 'Origin');
  }
  // what the defaults do not permit gets no CORS headers: the browser then refuses
  for (const r of [
    await preflight(gaze.url, '/v2/images', 'POST', 'x-auth-token,x-evil'),
    await preflight(gaze.url, '/v2/images', 'TRACE', null),
    await preflight(gaze.url, '/v2/images', 'GET', null, 'http://evil.example'),
    await rawRequest(gaze.url, 'OPTIONS', '/v2/images', { origin: HORIZON }),
  ]) {
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
  }
});

test('answers to an allowed origin, errors and uploads included, carry the CORS headers; other origins get none', async () => {
  const api = client(gaze.url);
  const listed = await api.get('/v2/images', { headers: { origin: 'http://other.example' } });
  assert.equal(listed.headers.get('access-control-allow-origin'), 'http://other.example');
  assert.equal(listed.headers.get('access-control-allow-credentials'), 'true');
  assert.equal(
    listed.headers.get('access-control-expose-headers'),
    'X-Image-Meta-Checksum,X-Auth-Token,X-Subject-Token,X-Service-Token,X-OpenStack-Request-ID',
  );
  assert.equal(listed.headers.get('vary'), 'Origin');
  const missing = await api.get('/v2/images/00000000-0000-4000-8000-000000000000', { headers: { origin: HORIZON } });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('access-control-allow-origin'), HORIZON);
  const image = await api.createImage({ name: 'browser-upload' });
  const put = await api.call('PUT', `/v2/images/${image.id}/file`, {
    body: Buffer.alloc(2048, 1),
    headers: { origin: HORIZON, 'content-type': 'application/octet-stream' },
  });
  assert.equal(put.status, 204);
  assert.equal(put.headers.get('access-control-allow-origin'), HORIZON);
  assert.equal((await api.get('/v2/images', { headers: { origin: 'http://evil.example' } })).headers.get('access-control-allow-origin'), null);
  // without [cors] allowed_origin, nothing
  const off = await client(plain.url).get('/v2/images', { headers: { origin: HORIZON } });
  assert.equal(off.headers.get('access-control-allow-origin'), null);
  assert.equal((await preflight(plain.url, '/v2/images', 'GET', null)).headers.get('access-control-allow-origin'), null);
});

test('allowed_origin = * answers every origin with *', async () => {
  const star = await startGazeInProcess({ cors: { allowed_origin: '*', allow_credentials: 'false', max_age: '60' } });
  try {
    const r = await preflight(star.url, '/v2/images', 'POST', 'content-type', 'http://anywhere.example');
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.equal(r.headers.get('access-control-allow-credentials'), null);
    assert.equal(r.headers.get('access-control-max-age'), '60');
  } finally {
    await star.stop();
  }
});
