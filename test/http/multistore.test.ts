import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { createFileDriver } from '../../src/stores/file-options.ts';
import type { Config } from '../../src/config/index.ts';
import { client, expectError, JSON_ACCEPT, alice } from '../helpers/http.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
const dirOf = (store: string) => path.join(gaze.dir, 'stores', store);
const holds = (store: string, id: string) => existsSync(path.join(dirOf(store), id));

before(async () => {
  gaze = await startGazeInProcess({
    DEFAULT: { enabled_backends: 'fast:file, cheap:file, archive:file, broken:file' },
    glance_store: { default_backend: 'fast' },
    fast: { filesystem_store_datadir: '__DIR__/stores/fast', store_description: 'Fast disks' },
    cheap: { filesystem_store_datadir: '__DIR__/stores/cheap' },
    archive: { filesystem_store_datadir: '__DIR__/stores/archive', read_only: 'true' },
    // A store whose directory can never be created: every write to it fails.
    broken: { filesystem_store_datadir: '/dev/null/gaze-broken' },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

async function settle(id: string): Promise<any> {
  for (let i = 0; i < 400; i++) {
    const img = (await api.get(`/v2/images/${id}`)).json;
    if (!('os_glance_import_task' in img) && !['importing', 'uploading', 'saving'].includes(img.status)) return img;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('import did not settle');
}
const stage = (id: string, data: Buffer) => api.put(`/v2/images/${id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } });
const importImage = (id: string, body: unknown, headers: Record<string, string> = {}) =>
  api.call('POST', `/v2/images/${id}/import`, { json: body, headers: { ...JSON_ACCEPT, ...headers } });

test('discovery lists the stores with Glance flags; details are admin-only; create names the store ids', async () => {
  const stores = (await api.get('/v2/info/stores')).json.stores;
  assert.deepEqual(stores, [
    { id: 'fast', description: 'Fast disks', default: 'true' },
    { id: 'cheap' },
    { id: 'archive', 'read-only': 'true' },
    { id: 'broken' },
  ]);
  expectError(
    await api.get('/v2/info/stores/detail', { as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete stores_info_detail action.',
  );
  const detail = (await api.get('/v2/info/stores/detail')).json.stores;
  assert.equal(detail[0].type, 'file');
  assert.equal(detail[0].properties.data_dir, dirOf('fast'));
  const created = await api.post('/v2/images', { name: 'x' });
  assert.equal(created.headers.get('openstack-image-store-ids'), 'fast,cheap,archive,broken');
});

test('with several stores the image schema lists the read-only stores, where Glance does (glanceclient needs it)', async () => {
  const schema = (await api.get('/v2/schemas/image')).json as { properties: Record<string, Record<string, unknown>> };
  const names = Object.keys(schema.properties);
  assert.deepEqual(names.slice(names.indexOf('file'), names.indexOf('file') + 3), ['file', 'stores', 'schema']);
  assert.equal(schema.properties.stores!.type, 'string');
  assert.equal(schema.properties.stores!.readOnly, true);
  const images = (await api.get('/v2/schemas/images')).json as { properties: { images: { items: { properties: Record<string, unknown> } } } };
  assert.ok('stores' in images.properties.images.items.properties);
});

test('upload goes to the default store or the one X-Image-Meta-Store names; the image shows its stores', async () => {
  const a = await api.createImage();
  assert.equal((await api.upload(a.id, 'to the default')).status, 204);
  assert.equal((await api.get(`/v2/images/${a.id}`)).json.stores, 'fast');
  const b = await api.createImage();
  const r = await api.put(`/v2/images/${b.id}/file`, {
    body: 'to cheap',
    headers: { 'content-type': 'application/octet-stream', 'x-image-meta-store': 'cheap' },
  });
  assert.equal(r.status, 204);
  assert.equal((await api.get(`/v2/images/${b.id}`)).json.stores, 'cheap');
  assert.ok(holds('cheap', b.id) && !holds('fast', b.id));
  const c = await api.createImage();
  // An unknown store, and a header that is there but empty (no store, not the default): both refused.
  for (const named of ['nowhere', '']) {
    const refused = await api.put(`/v2/images/${c.id}/file`, {
      body: 'x',
      headers: { 'content-type': 'application/octet-stream', 'x-image-meta-store': named, ...JSON_ACCEPT },
    });
    expectError(refused, 400, `Store for identifier ${named} not found`);
  }
  assert.equal((await api.get(`/v2/images/${c.id}`)).json.status, 'queued');
  // A store whose directory can never be made takes no images, as Glance's store it could not
  // configure: 410, which clients do not retry (a 503 they would).
  const disabled = await api.put(`/v2/images/${c.id}/file`, {
    body: 'x',
    headers: { 'content-type': 'application/octet-stream', 'x-image-meta-store': 'broken', ...JSON_ACCEPT },
  });
  expectError(disabled, 410, 'Error in store configuration. Adding images to store is disabled.');
  assert.equal((await api.get(`/v2/images/${c.id}`)).json.status, 'queued');
});

test('a store whose directory can never be made is said at start', () => {
  const lines: string[] = [];
  createFileDriver('broken', { filesystem_store_datadir: '/dev/null/gaze-broken' }, {} as Config, (message) => lines.push(message));
  assert.deepEqual(lines, ['the directory /dev/null/gaze-broken cannot be created (/dev/null is no directory): adding images to this store is refused']);
  const fine: string[] = [];
  createFileDriver('fine', { filesystem_store_datadir: path.join(gaze.dir, 'not-yet', 'made') }, {} as Config, (message) => fine.push(message));
  assert.deepEqual(fine, []);
  assert.ok(!existsSync(path.join(gaze.dir, 'not-yet')), 'looked at, not made');
});

test('glance-direct into several stores; store selection errors', async () => {
  const data = randomBytes(200_000);
  const img = await api.createImage();
  // The stores are read after the image's status, as Glance reads them.
  const unstaged = await importImage(img.id, { method: { name: 'glance-direct' }, stores: [false] });
  expectError(unstaged, 409, "Image needs to be staged before 'glance-direct' method can be used");
  await stage(img.id, data);
  expectError(await importImage(img.id, { method: { name: 'glance-direct' }, stores: [false] }), 400, "'stores' must be a list of store identifiers");
  // The conflicts come first, as Glance checks them, even with stores that are not a list.
  for (const stores of [['fast'], 'fast']) {
    expectError(
      await importImage(img.id, { method: { name: 'glance-direct' }, all_stores: true, stores }),
      400,
      "All_stores parameter can't be used with x-image-meta-store header or stores parameter",
    );
  }
  expectError(
    await importImage(img.id, { method: { name: 'glance-direct' }, stores: ['fast'] }, { 'x-image-meta-store': 'cheap' }),
    400,
    "Stores parameter and x-image-meta-store header can't be both specified",
  );
  expectError(await importImage(img.id, { method: { name: 'glance-direct' }, stores: ['nowhere'] }), 409, 'Store for identifier nowhere not found');
  expectError(await importImage(img.id, { method: { name: 'glance-direct' } }, { 'x-image-meta-store': '' }), 409, 'Store for identifier  not found');
  expectError(
    await importImage(img.id, { method: { name: 'glance-direct' }, stores: ['archive'] }),
    409,
    'Store archive is read-only; images cannot be imported into it.',
  );
  assert.equal((await importImage(img.id, { method: { name: 'glance-direct' }, stores: ['fast', 'cheap'] })).status, 202);
  const done = await settle(img.id);
  assert.equal(done.status, 'active');
  assert.equal(done.stores, 'fast,cheap');
  assert.equal(done.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(done.os_glance_importing_to_stores, '');
  assert.equal(done.os_glance_failed_import, '');
  assert.ok(holds('fast', img.id) && holds('cheap', img.id));
  const [task] = (await api.get(`/v2/images/${img.id}/tasks`)).json.tasks;
  assert.deepEqual(task.input.backend, ['fast', 'cheap']);

  // What a copy holds against the quotas goes as each store is done, whether its copy landed or failed.
  assert.equal((await importImage(img.id, { method: { name: 'copy-image' }, stores: ['broken'], all_stores_must_succeed: false })).status, 202);
  await settle(img.id);
  const row = await gaze.app.db.kysely.selectFrom('images').select('reserved_bytes').where('id', '=', img.id).executeTakeFirstOrThrow();
  assert.equal(row.reserved_bytes, null);

  // A copy to a read-only store that holds the image already: "already present" first, as Glance checks.
  mkdirSync(dirOf('archive'), { recursive: true });
  copyFileSync(path.join(dirOf('fast'), img.id), path.join(dirOf('archive'), img.id));
  const archived = await gaze.app.deps.images.reserveLocation(img.id, `file://${path.join(dirOf('archive'), img.id)}`, { store: 'archive' }, ['active']);
  await gaze.app.deps.images.activateLocation(img.id, archived.id, ['active']);
  expectError(await importImage(img.id, { method: { name: 'copy-image' }, stores: ['archive'] }), 400, "Image is already present at store 'archive'");
});

test('a store that fails: with all_stores_must_succeed the import reverts; without, the image is active elsewhere', async () => {
  const data = randomBytes(100_000);
  const strict = await api.createImage();
  await stage(strict.id, data);
  assert.equal((await importImage(strict.id, { method: { name: 'glance-direct' }, stores: ['fast', 'broken'] })).status, 202);
  const reverted = await settle(strict.id);
  assert.equal(reverted.status, 'queued');
  assert.equal(reverted.os_glance_failed_import, 'broken');
  assert.equal(reverted.os_glance_importing_to_stores, '');
  assert.ok(!holds('fast', strict.id), 'the data already written to fast was removed again');
  assert.equal((await api.get(`/v2/images/${strict.id}/tasks`)).json.tasks[0].status, 'failure');

  // The store that failed is the one listed as failed: one not tried yet is not (as in Glance's revert),
  // nor still listed as being imported to.
  const firstFails = await api.createImage();
  await stage(firstFails.id, data);
  assert.equal((await importImage(firstFails.id, { method: { name: 'glance-direct' }, stores: ['broken', 'cheap'] })).status, 202);
  const untried = await settle(firstFails.id);
  assert.equal(untried.status, 'queued');
  assert.equal(untried.os_glance_failed_import, 'broken');
  assert.equal(untried.os_glance_importing_to_stores, '');

  const lenient = await api.createImage();
  await stage(lenient.id, data);
  assert.equal((await importImage(lenient.id, { method: { name: 'glance-direct' }, all_stores: true, all_stores_must_succeed: false })).status, 202);
  const partial = await settle(lenient.id);
  assert.equal(partial.status, 'active');
  assert.equal(partial.stores, 'fast,cheap');
  assert.equal(partial.os_glance_failed_import, 'broken');
  assert.equal((await api.get(`/v2/images/${lenient.id}/tasks`)).json.tasks[0].status, 'success');
});

test('copy-image: admin only, copies an active image into more stores without changing its status', async () => {
  const data = randomBytes(150_000);
  const img = await api.createImage({}, { project: 'alice-project', roles: 'member,reader' });
  await api.put(`/v2/images/${img.id}/file`, { body: data, as: alice, headers: { 'content-type': 'application/octet-stream' } });
  expectError(
    await api.call('POST', `/v2/images/${img.id}/import`, { json: { method: { name: 'copy-image' }, stores: ['cheap'] }, as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete copy_image action.',
  );
  expectError(await importImage(img.id, { method: { name: 'copy-image' }, stores: ['fast'] }), 400, "Image is already present at store 'fast'");
  assert.equal((await importImage(img.id, { method: { name: 'copy-image' }, stores: ['cheap'] })).status, 202);
  const copied = await settle(img.id);
  assert.equal(copied.status, 'active');
  assert.equal(copied.stores, 'fast,cheap');
  assert.equal(copied.owner, 'alice-project');
  const bytes = await (await fetch(`${gaze.url}/v2/images/${img.id}/file`)).arrayBuffer();
  assert.ok(Buffer.from(bytes).equals(data));
  assert.ok(holds('cheap', img.id));
  assert.deepEqual(readdirSync(path.join(gaze.dir, 'data', 'staging')), [], 'no staged copy left');

  // All writable stores but the broken one hold it now: all_stores has only that one left, which fails.
  assert.equal((await importImage(img.id, { method: { name: 'copy-image' }, all_stores: true, all_stores_must_succeed: false })).status, 202);
  const after = await settle(img.id);
  assert.equal(after.status, 'active', 'a failed copy never changes the status');
  assert.equal(after.os_glance_failed_import, 'broken');
  assert.equal(after.stores, 'fast,cheap');
  // The image is still active, which is all Glance's import checks at its end: the task succeeded.
  const tasks = (await api.get(`/v2/images/${img.id}/tasks`)).json.tasks;
  const lenientCopy = tasks.find((t: any) => t.input.import_req.all_stores === true);
  assert.equal(lenientCopy?.status, 'success', JSON.stringify(tasks));
  // The input as the user gave it, as Glance shows it: not the copies the engine recorded for a revert.
  const firstCopy = tasks.find((t: any) => t.input.backend?.[0] === 'cheap');
  assert.deepEqual(Object.keys(firstCopy.input).sort(), ['backend', 'image_id', 'import_req'], JSON.stringify(firstCopy));
  assert.deepEqual(Object.keys((await api.get(`/v2/tasks/${firstCopy.id}`)).json.input).sort(), ['backend', 'image_id', 'import_req']);
});

test('DELETE /v2/stores/{store}/{image} removes one copy, with Glance checks', async () => {
  const img = await api.createImage();
  await api.upload(img.id, 'two copies');
  await importImage(img.id, { method: { name: 'copy-image' }, stores: ['cheap'] });
  assert.equal((await settle(img.id)).stores, 'fast,cheap');
  expectError(await api.del(`/v2/stores/nowhere/${img.id}`, { headers: JSON_ACCEPT }), 409, 'The selected store nowhere is not available on this node.');
  expectError(
    await api.del('/v2/stores/fast/00000000-0000-4000-8000-000000000000', { headers: JSON_ACCEPT }),
    404,
    'Failed to find image 00000000-0000-4000-8000-000000000000',
  );
  expectError(await api.del(`/v2/stores/fast/${img.id}`, { as: alice, headers: JSON_ACCEPT }), 404, `Failed to find image ${img.id}`);
  expectError(await api.del(`/v2/stores/archive/${img.id}`, { headers: JSON_ACCEPT }), 404, `Image ${img.id} is not stored in store archive.`);
  // Glance's reserved stores are stores to it, holding no image's data.
  expectError(
    await api.del(`/v2/stores/os_glance_staging_store/${img.id}`, { headers: JSON_ACCEPT }),
    404,
    `Image ${img.id} is not stored in store os_glance_staging_store.`,
  );
  assert.equal((await api.del(`/v2/stores/fast/${img.id}`)).status, 204);
  const after = (await api.get(`/v2/images/${img.id}`)).json;
  assert.equal(after.stores, 'cheap');
  assert.ok(!holds('fast', img.id) && holds('cheap', img.id));
  expectError(
    await api.del(`/v2/stores/cheap/${img.id}`, { headers: JSON_ACCEPT }),
    403,
    'Cannot delete image data from the only store containing it. Consider deleting the image instead.',
  );
  // One location: that answer comes first, even for a store the image is not in (as in Glance).
  expectError(
    await api.del(`/v2/stores/fast/${img.id}`, { headers: JSON_ACCEPT }),
    403,
    'Cannot delete image data from the only store containing it. Consider deleting the image instead.',
  );
  const queued = await api.createImage();
  expectError(
    await api.del(`/v2/stores/fast/${queued.id}`, { headers: JSON_ACCEPT }),
    409,
    "It's not allowed to remove image data from store if image status is not 'active'",
  );
});

test('DELETE /v2/stores/{store}/{image} losing to a delete of the image answers 404, as for an image already gone', async () => {
  const img = await api.createImage();
  await api.upload(img.id, 'deleted meanwhile');
  await importImage(img.id, { method: { name: 'copy-image' }, stores: ['cheap'] });
  assert.equal((await settle(img.id)).stores, 'fast,cheap');
  // The image is deleted after the removal read it and before it takes the image's lock.
  const images = gaze.app.deps.images;
  const discard = images.discardLocationsKeepingOne.bind(images);
  images.discardLocationsKeepingOne = async (...args) => {
    assert.equal((await api.del(`/v2/images/${img.id}`)).status, 204);
    return discard(...args);
  };
  try {
    expectError(await api.del(`/v2/stores/fast/${img.id}`, { headers: JSON_ACCEPT }), 404, `Failed to find image ${img.id}`);
  } finally {
    images.discardLocationsKeepingOne = discard;
  }
});

test('DELETE /v2/stores/{store}/{image} keeps the last copy this node can read: copies in a store taken out of the configuration do not count', async () => {
  const img = await api.createImage();
  await api.upload(img.id, 'kept readable');
  await importImage(img.id, { method: { name: 'copy-image' }, stores: ['cheap'] });
  assert.equal((await settle(img.id)).stores, 'fast,cheap');
  // As if cheap had been removed from enabled_backends: its location names a store, and a directory, this node lacks.
  await gaze.app.db.kysely
    .updateTable('image_locations')
    .set({ metadata: JSON.stringify({ store: 'retired' }), url: `file://${path.join(gaze.dir, 'stores', 'retired', img.id)}` })
    .where('image_id', '=', img.id)
    .where('url', 'like', '%/cheap/%')
    .execute();
  expectError(
    await api.del(`/v2/stores/fast/${img.id}`, { headers: JSON_ACCEPT }),
    403,
    'Cannot delete image data from the only store containing it. Consider deleting the image instead.',
  );
  assert.ok(holds('fast', img.id));
  const read = await api.get(`/v2/images/${img.id}/file`);
  assert.equal(read.status, 200);
  assert.equal(read.text, 'kept readable');

  // Two removals at once, of the two copies this node can read beside a retired one: one is refused
  // (decided under the image's lock), and the image stays readable.
  for (let round = 0; round < 5; round++) {
    const both = await api.createImage();
    await api.upload(both.id, `round ${round}`);
    await importImage(both.id, { method: { name: 'copy-image' }, stores: ['cheap'] });
    assert.equal((await settle(both.id)).stores, 'fast,cheap');
    await gaze.app.db.kysely
      .insertInto('image_locations')
      .values({
        id: crypto.randomUUID(),
        image_id: both.id,
        position: 9,
        url: `file://${path.join(gaze.dir, 'stores', 'retired', both.id)}`,
        metadata: JSON.stringify({ store: 'retired' }),
        status: 'active',
        created_at: '2026-01-01 00:00:00.000000',
        updated_at: '2026-01-01 00:00:00.000000',
      })
      .execute();
    const removals = await Promise.all(['fast', 'cheap'].map((store) => api.del(`/v2/stores/${store}/${both.id}`)));
    assert.deepEqual(removals.map((r) => r.status).sort(), [204, 403], removals.map((r) => r.text).join(' | '));
    assert.equal((await api.get(`/v2/images/${both.id}/file`)).text, `round ${round}`);
  }
});
