import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

// A 204 carries the content type where Glance's serializer sets the status on WebOb's response
// (WebOb's default, text/html), and none where Glance answers with WebOb's HTTPNoContent or its member
// controller: read from Glance 25 with scripts/notifications-against-glance.ts.

let gaze: RunningGaze;
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess({ DEFAULT: { enabled_import_methods: 'glance-direct' } });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

const HTML = 'text/html; charset=UTF-8';

test('204 answers: the content type where Glance sends one, none where it does not', async () => {
  const img = await api.createImage({ name: 'n', visibility: 'shared' });
  const empty = await api.get(`/v2/images/${img.id}/file`);
  assert.equal(empty.status, 204);
  assert.equal(empty.headers.get('content-type'), null, 'no data: HTTPNoContent');

  const uploaded = await api.upload(img.id, 'ten bytes!');
  assert.equal(uploaded.status, 204);
  assert.equal(uploaded.headers.get('content-type'), HTML);
  for (const [method, path] of [
    ['PUT', `/v2/images/${img.id}/tags/t`],
    ['DELETE', `/v2/images/${img.id}/tags/t`],
    ['POST', `/v2/images/${img.id}/actions/deactivate`],
    ['POST', `/v2/images/${img.id}/actions/reactivate`],
  ] as const) {
    const r = await api.call(method, path);
    assert.equal(r.status, 204, `${method} ${path}: ${r.text}`);
    assert.equal(r.headers.get('content-type'), HTML, `${method} ${path}`);
  }
  assert.equal((await api.post(`/v2/images/${img.id}/members`, { member: 'p2' })).status, 200);
  const unshared = await api.del(`/v2/images/${img.id}/members/p2`);
  assert.equal(unshared.status, 204);
  assert.equal(unshared.headers.get('content-type'), null, "Glance's member controller answers without one");

  const staged = await api.createImage({ name: 's' });
  const stage = await api.put(`/v2/images/${staged.id}/stage`, { body: Buffer.from('x'), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(stage.status, 204);
  assert.equal(stage.headers.get('content-type'), HTML);
  for (const id of [img.id, staged.id]) {
    const r = await api.del(`/v2/images/${id}`);
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('content-type'), HTML);
  }
});
