// One object in a store may be named by several locations: the same url written again, a location
// added back, another spelling of an S3 url (Glance's forms with credentials and host, the scheme in
// another case). Data is removed only when no location that holds it, or may hold it again (a delayed
// delete), still names it; and no project can add a location naming another image's object. Against a
// real Swift (its s3api as the S3 store) and a file store.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, JSON_ACCEPT, alice, bob, expectError } from '../helpers/http.ts';
import { s3StoreOptions, startSwift, type RunningSwift } from '../helpers/swift.ts';
import { DataScrubber } from '../../src/services/scrubber.ts';
import type { StoreDriver } from '../../src/stores/driver.ts';

const BUCKET = 'gaze-shared-objects';
let swift: RunningSwift;
let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;

before(
  async () => {
    swift = await startSwift();
    gaze = await startGazeInProcess({
      DEFAULT: { enabled_backends: 'fast:file, s3:s3', show_multiple_locations: 'True', delayed_delete: 'True', scrub_time: '0' },
      glance_store: { default_backend: 's3' },
      fast: { filesystem_store_datadir: '__DIR__/stores/fast' },
      s3: s3StoreOptions(swift, BUCKET),
    });
    api = client(gaze.url);
  },
  { timeout: 180_000 },
);
after(async () => {
  await gaze?.stop();
  await swift?.stop();
});

/** One pass of the scrubber, once what was queued just now is due (its times count in whole seconds). */
const scrubPass = async () => {
  await new Promise((r) => setTimeout(r, 1100));
  return new DataScrubber(gaze.app.deps, { intervalSeconds: 3600, graceSeconds: 0, scrubTimeSeconds: 0 }).run();
};
const upload = (id: string, data: Buffer, store: string, as = alice) =>
  api.call('PUT', `/v2/images/${id}/file`, { as, body: data, headers: { 'content-type': 'application/octet-stream', 'x-image-meta-store': store } });
const show = async (id: string, as = alice) => (await api.get(`/v2/images/${id}`, { as })).json;
const download = async (id: string, as = alice) => {
  const res = await fetch(`${gaze.url}/v2/images/${id}/file`, { headers: { 'x-project-id': as.project!, 'x-roles': as.roles! } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
};
const addLocation = (id: string, url: string, as = alice) =>
  api.call('PATCH', `/v2/images/${id}`, {
    as,
    json: [{ op: 'add', path: '/locations/-', value: { url, metadata: {} } }],
    headers: { 'content-type': 'application/openstack-images-v2.1-json-patch', ...JSON_ACCEPT },
  });
const s3Holds = async (url: string) => (await gaze.app.deps.stores.get('s3')!.stat(url)) !== null;

test("another project cannot add a location naming an image's S3 object, in any spelling of its url", { timeout: 60_000 }, async () => {
  const data = randomBytes(100_000);
  const victim = await api.createImage({ name: 'victim' }, alice);
  assert.equal((await upload(victim.id, data, 's3')).status, 204);
  const url = (await show(victim.id)).locations[0].url as string;
  const host = new URL(swift.s3.endpoint).host;
  for (const spelling of [url, url.replace(/^s3:/, 'S3:'), `s3+http://key:secret@${host}/${BUCKET}/${victim.id}`]) {
    const attacker = await api.createImage({ name: 'attacker' }, bob);
    expectError(await addLocation(attacker.id, spelling, bob), 400, 'Invalid location');
    assert.equal((await api.del(`/v2/images/${attacker.id}`, { as: bob })).status, 204);
  }
  await scrubPass();
  assert.ok(await s3Holds(url));
  assert.deepEqual(await download(victim.id), { status: 200, body: data });
});

test('a location of an image deleted with delayed_delete (restorable) cannot be added to another image', { timeout: 60_000 }, async () => {
  const data = randomBytes(50_000);
  const deleted = await api.createImage({ name: 'deleted, restorable' }, alice);
  assert.equal((await upload(deleted.id, data, 's3')).status, 204);
  const url = (await show(deleted.id)).locations[0].url as string;
  assert.equal((await api.del(`/v2/images/${deleted.id}`, { as: alice })).status, 204);
  const other = await api.createImage({ name: 'other' }, alice);
  expectError(await addLocation(other.id, url), 400, 'Invalid location');
  await scrubPass();
  assert.equal(await s3Holds(url), false, 'the delayed delete ends as before');
});

test('one PATCH that removes a location and adds its url back keeps the data', { timeout: 120_000 }, async () => {
  const data = randomBytes(80_000);
  const image = await api.createImage({ name: 'removed and added back' }, alice);
  assert.equal((await upload(image.id, data, 's3')).status, 204);
  assert.equal((await api.post(`/v2/images/${image.id}/import`, { method: { name: 'copy-image' }, stores: ['fast'] }, { headers: JSON_ACCEPT })).status, 202);
  for (let i = 0; (await show(image.id)).stores !== 's3,fast'; i++) {
    assert.ok(i < 300, 'the copy never ended');
    await new Promise((r) => setTimeout(r, 50));
  }
  const locations = (await show(image.id)).locations as Array<{ url: string }>;
  const index = locations.findIndex((l) => l.url.startsWith('s3://'));
  const url = locations[index]!.url;
  const patched = await api.call('PATCH', `/v2/images/${image.id}`, {
    json: [
      { op: 'remove', path: `/locations/${index}` },
      { op: 'add', path: '/locations/-', value: { url, metadata: {} } },
    ],
    headers: { 'content-type': 'application/openstack-images-v2.1-json-patch', ...JSON_ACCEPT },
  });
  assert.equal(patched.status, 200, patched.text);
  await scrubPass();
  assert.ok(await s3Holds(url), 'the object stays: a location still names it');
  assert.equal((await api.del(`/v2/stores/fast/${image.id}`)).status, 204);
  assert.deepEqual(await download(image.id), { status: 200, body: data });
});

test('an upload whose store failed, and whose removal failed too, then uploaded again: the scrubber leaves the new data', { timeout: 60_000 }, async () => {
  const fast = gaze.app.deps.stores.get('fast')!;
  const driver = fast.driver as StoreDriver;
  const { write, delete: remove } = driver;
  driver.write = async () => {
    throw new Error('EIO: the store is away');
  };
  driver.delete = async () => {
    throw new Error('EIO: the store is away');
  };
  const image = await api.createImage({ name: 'written again' }, alice);
  const data = randomBytes(60_000);
  try {
    assert.equal((await upload(image.id, data, 'fast')).status, 503);
  } finally {
    driver.write = write;
    driver.delete = remove;
  }
  const queued = await gaze.app.db.kysely.selectFrom('image_locations').select('status').where('image_id', '=', image.id).execute();
  assert.deepEqual(
    queued.map((r) => r.status),
    ['pending_delete'],
    'the failed removal waits for the scrubber',
  );
  assert.equal((await upload(image.id, data, 'fast')).status, 204);
  const pass = await scrubPass();
  assert.equal(pass.locationsRemoved, 1, 'the old row goes');
  assert.deepEqual(await download(image.id), { status: 200, body: data });
});
