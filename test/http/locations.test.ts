// Image locations through JSON patch (show_multiple_locations = True), with the read-only http store of
// single-store mode (`[glance_store] stores = file, http`, Glance's default) and a real loopback web
// server. The expected texts and statuses are those a Glance 25 answered for the same requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, alice, bob, type Caller } from '../helpers/http.ts';
import { startFileServer, type FileServer } from '../helpers/file-server.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
let web: FileServer;
const data = randomBytes(300_000);
const other = randomBytes(1000);
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

before(async () => {
  web = await startFileServer();
  web.routes.set('/a.img', data);
  web.routes.set('/b.img', data);
  web.routes.set('/c.img', data);
  web.routes.set('/small.img', other);
  web.routes.set('/empty.img', Buffer.alloc(0));
  web.routes.set('/inward', (res) => res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data' }).end());
  gaze = await startGazeInProcess({
    DEFAULT: { show_multiple_locations: 'True', show_image_direct_url: 'True', image_location_quota: '3' },
    import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
  await web.close();
});

const add = (id: string, value: unknown, at = '-', as?: Caller) =>
  api.patch(`/v2/images/${id}`, [{ op: 'add', path: `/locations/${at}`, value }], { as, headers: JSON_ACCEPT });
const replace = (id: string, value: unknown, as?: Caller) =>
  api.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/locations', value }], { as, headers: JSON_ACCEPT });
const remove = (id: string, at: string, as?: Caller) =>
  api.patch(`/v2/images/${id}`, [{ op: 'remove', path: `/locations/${at}` }], { as, headers: JSON_ACCEPT });
const at = (path: string, metadata: Record<string, unknown> = {}) => ({ url: web.url(path), metadata });

test('a location added to a queued image makes it active, sized by HEAD, served from the web server', async () => {
  const image = await api.createImage({ name: 'web' });
  const r = await add(image.id, at('/a.img'));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'active');
  assert.equal(r.json.size, data.length);
  assert.equal(r.json.checksum, null, 'no digest is invented for data the service never read');
  assert.deepEqual(r.json.locations, [at('/a.img')]);
  assert.equal(r.json.direct_url, web.url('/a.img'));
  const keys = Object.keys(r.json);
  assert.deepEqual(keys.slice(keys.indexOf('updated_at')), ['updated_at', 'locations', 'direct_url', 'tags', 'self', 'file', 'schema'], "Glance's key order");
  assert.ok(web.requests.includes('HEAD /a.img'), 'its size comes from a HEAD');

  const file = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
  assert.equal(file.status, 200);
  assert.deepEqual(Buffer.from(await file.arrayBuffer()), data);
  const shown = (await api.get(`/v2/images/${image.id}`)).json;
  assert.deepEqual(shown.locations, [at('/a.img')]);
});

test('a range is asked of the web server when it can, and cut from the whole file when it cannot', async () => {
  const image = await api.createImage({ name: 'ranged' });
  assert.equal((await add(image.id, at('/b.img'))).status, 200);
  const part = async () => {
    const r = await fetch(`${gaze.url}/v2/images/${image.id}/file`, { headers: { range: 'bytes=1000-70999' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), `bytes 1000-70999/${data.length}`);
    return Buffer.from(await r.arrayBuffer());
  };
  web.ranges = true;
  try {
    assert.deepEqual(await part(), data.subarray(1000, 71000));
    assert.ok(web.requests.includes('GET /b.img range=bytes=1000-70999'));
  } finally {
    web.ranges = false;
  }
  assert.deepEqual(await part(), data.subarray(1000, 71000), 'a server without Range support: the part is cut out here');
});

test('validation_data sets the digests of a queued image; Glance refuses malformed or conflicting ones with 409', async () => {
  const image = await api.createImage({ name: 'vouched' });
  expectError(
    await add(image.id, { ...at('/a.img'), validation_data: { os_hash_algo: 'md5', os_hash_value: md5(data) } }),
    409,
    'os_hash_algo must be sha512, not md5',
  );
  expectError(
    await add(image.id, { ...at('/a.img'), validation_data: { os_hash_algo: 'sha512', os_hash_value: 'abc' } }),
    409,
    'os_hash_value (abc) is not a valid hexadecimal value',
  );
  expectError(
    await add(image.id, { ...at('/a.img'), validation_data: { os_hash_algo: 'sha512', os_hash_value: 'ab' } }),
    409,
    'os_hash_value (ab) is not the correct size for sha512 (should be 64 bytes)',
  );
  expectError(
    await add(image.id, { ...at('/a.img'), validation_data: { checksum: 'z'.repeat(32), os_hash_algo: 'sha512', os_hash_value: sha512(data) } }),
    409,
    `checksum (${'z'.repeat(32)}) is not a valid hexadecimal value`,
  );
  expectError(
    await add(image.id, { ...at('/a.img'), validation_data: { checksum: 'zz', os_hash_algo: 'sha512', os_hash_value: sha512(data) } }),
    400,
    /^Provided object does not match schema 'image': 'zz' is too short/,
  );
  expectError(await add(image.id, { url: web.url('/a.img') }), 400, /^Provided object does not match schema 'image': 'metadata' is a required property/);
  assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued', 'nothing of the refused patches was kept');

  const validation_data = { checksum: md5(data), os_hash_algo: 'sha512', os_hash_value: sha512(data) };
  const r = await add(image.id, { metadata: {}, validation_data, url: web.url('/a.img') });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.status, r.json.checksum, r.json.os_hash_algo, r.json.os_hash_value], ['active', md5(data), 'sha512', sha512(data)]);
  // Glance 25's answer shows the location as the request wrote it, its key order and validation_data
  // too; a later read shows url and metadata only.
  assert.equal(JSON.stringify(r.json.locations), JSON.stringify([{ metadata: {}, validation_data, url: web.url('/a.img') }]));
  assert.equal(JSON.stringify((await api.get(`/v2/images/${image.id}`)).json.locations), JSON.stringify([at('/a.img')]));
  // On an active image the same values are accepted, new ones are not.
  assert.equal((await add(image.id, { ...at('/b.img'), validation_data: { os_hash_algo: 'sha512', os_hash_value: sha512(data) } })).status, 200);
  expectError(
    await add(image.id, { ...at('/c.img'), validation_data: { os_hash_algo: 'sha512', os_hash_value: sha512(other) } }),
    409,
    'os_hash_value is already set with a different value',
  );
});

test('locations that no store can vouch for are refused: file urls, missing data, filtered hosts and redirects, empty data', async () => {
  const image = await api.createImage({ name: 'refused' });
  for (const url of [
    'file:///etc/passwd',
    `file://${gaze.dir}/data/images/x`,
    web.url('/nope'),
    web.url('/empty.img'),
    web.url('/inward'),
    'http://127.0.0.2:1/a.img',
    'ftp://127.0.0.1/a.img',
    'rbd://fsid/pool/image/snap',
  ]) {
    expectError(await add(image.id, { url, metadata: {} }), 400, 'Invalid location');
  }
  assert.ok(!web.requests.some((r) => r.includes('169.254')), 'the redirect target is never contacted');
  assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued');
});

test("Glance's rules for add, replace and remove, and its messages", async () => {
  const noFormats = (await api.post('/v2/images', { name: 'bare' })).json;
  expectError(await add(noFormats.id, at('/a.img')), 400, 'Properties disk_format, container_format must be set prior to saving data.');
  expectError(await replace(noFormats.id, [at('/a.img')]), 400, 'Properties disk_format, container_format must be set prior to saving data.');

  const image = await api.createImage({ name: 'rules', visibility: 'public' });
  expectError(await replace(image.id, []), 403, 'Cannot set locations to empty list.');
  expectError(await add(image.id, at('/a.img'), 'x'), 400, 'Invalid position for adding a location.');
  expectError(await remove(image.id, '0'), 409, "It's not allowed to remove locations if image status is queued.");
  // A position past the end appends, as Python's list.insert.
  assert.equal((await add(image.id, at('/a.img'), '7')).status, 200);
  expectError(await add(image.id, at('/a.img')), 400, `The location ${web.url('/a.img')} already exists`);
  expectError(await remove(image.id, '0'), 403, 'Cannot remove last location in the image.');
  expectError(
    await add(image.id, at('/small.img')),
    400,
    `Invalid location: ${web.url('/small.img')} holds ${other.length} bytes, the image has ${data.length}.`,
  );
  // The same url with other metadata is another location.
  assert.equal((await add(image.id, at('/a.img', { note: 'mirror' }))).status, 200);
  const inserted = await add(image.id, at('/b.img'), '0');
  assert.deepEqual(
    inserted.json.locations.map((l: any) => l.url),
    [web.url('/b.img'), web.url('/a.img'), web.url('/a.img')],
  );
  assert.equal(inserted.json.direct_url, web.url('/b.img'));
  expectError(await add(image.id, at('/c.img')), 413, 'The limit has been exceeded on the number of allowed image locations. Attempted: 4, Maximum: 3');
  // Glance's words list its location rows as Python writes them.
  const ids = (await gaze.app.deps.images.require(image.id)).locations.map((l) => l.id);
  const row = (id: string, url: string, metadata: string) => `{'id': '${id}', 'url': '${web.url(url)}', 'metadata': ${metadata}, 'status': 'active'}`;
  expectError(
    await replace(image.id, [at('/c.img')]),
    400,
    `Original locations is not empty: [${row(ids[0]!, '/b.img', '{}')}, ${row(ids[1]!, '/a.img', '{}')}, ${row(ids[2]!, '/a.img', "{'note': 'mirror'}")}]`,
  );
  // The same urls in another order, with other metadata: accepted without asking the server again.
  const heads = web.requests.length;
  const reordered = await replace(image.id, [at('/a.img', { note: 'mirror' }), at('/a.img', { k: 'v' }), at('/b.img')]);
  assert.equal(reordered.status, 200, reordered.text);
  assert.deepEqual(reordered.json.locations, [at('/a.img', { note: 'mirror' }), at('/a.img', { k: 'v' }), at('/b.img')]);
  assert.equal(web.requests.length, heads);

  expectError(await remove(image.id, '3'), 400, 'Invalid position for removing a location.');
  const removed = await remove(image.id, '-');
  assert.deepEqual(removed.json.locations, [at('/a.img', { note: 'mirror' }), at('/a.img', { k: 'v' })]);
  assert.equal((await remove(image.id, '0')).status, 200);
  assert.deepEqual((await api.get(`/v2/images/${image.id}`)).json.locations, [at('/a.img', { k: 'v' })]);
  assert.equal((await fetch(web.url('/b.img'))).status, 200, 'data on a web server is never deleted');

  assert.equal((await api.post(`/v2/images/${image.id}/actions/deactivate`)).status, 204);
  expectError(await add(image.id, at('/b.img')), 409, "It's not allowed to add locations if image status is deactivated.");
  expectError(await replace(image.id, [at('/b.img')]), 409, "It's not allowed to replace locations if image status is deactivated.");
  assert.deepEqual((await api.get(`/v2/images/${image.id}`, { as: alice })).json.locations ?? [], [], 'non-admins see no locations of a deactivated image');
});

test('image_location_quota holds for concurrent additions: with room for two more, five at once leave three', async () => {
  const image = await api.createImage({ name: 'crowded' });
  assert.equal((await add(image.id, at('/a.img'))).status, 200);
  const answers = await Promise.all([1, 2, 3, 4, 5].map((n) => add(image.id, at('/a.img', { n }))));
  const statuses = answers.map((r) => r.status).sort();
  assert.equal(statuses.filter((s) => s === 200).length, 2, JSON.stringify(statuses));
  assert.ok(
    statuses.every((s) => s === 200 || s === 413 || s === 409),
    JSON.stringify(statuses),
  );
  assert.equal((await api.get(`/v2/images/${image.id}`)).json.locations.length, 3);
});

test('a location added to an active image counts against user_storage_quota, as in Glance: 413 when its data does not fit', async () => {
  const kib = randomBytes(1024);
  for (const name of ['/kib1.img', '/kib2.img']) web.routes.set(name, kib);
  const limited = await startGazeInProcess({
    DEFAULT: { show_multiple_locations: 'True', user_storage_quota: '1500B' },
    import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
  });
  try {
    const api2 = client(limited.url);
    const image = await api2.createImage({ name: 'kib' }, alice);
    const first = await api2.patch(`/v2/images/${image.id}`, [{ op: 'add', path: '/locations/-', value: at('/kib1.img') }], {
      as: alice,
      headers: JSON_ACCEPT,
    });
    assert.equal(first.status, 200, first.text);
    const second = await api2.patch(`/v2/images/${image.id}`, [{ op: 'add', path: '/locations/-', value: at('/kib2.img') }], {
      as: alice,
      headers: JSON_ACCEPT,
    });
    expectError(second, 413, 'Image exceeds the storage quota: The size of the data 1024 will exceed the limit. 476 bytes remaining.');
    assert.deepEqual((await api2.get(`/v2/images/${image.id}`, { as: alice })).json.locations, [at('/kib1.img')]);
  } finally {
    await limited.stop();
  }
});

test('policies: owners set locations of their images, only admins remove them; others get 403 or 404', async () => {
  const mine = await api.createImage({ name: 'alice', visibility: 'community' }, alice);
  assert.equal((await add(mine.id, at('/a.img'), '-', alice)).status, 200);
  assert.equal((await add(mine.id, at('/b.img'), '-', alice)).status, 200);
  expectError(await remove(mine.id, '0', alice), 403, 'You are not authorized to complete delete_image_location action.');
  expectError(await add(mine.id, at('/c.img'), '-', bob), 403, 'You are not authorized to complete set_image_location action.');
  const hidden = await api.createImage({ name: 'alice-private' }, alice);
  expectError(await add(hidden.id, at('/a.img'), '-', bob), 404, `No image found with ID ${hidden.id}`);
  assert.equal((await remove(mine.id, '1')).status, 200, 'an admin removes');
});

test('a read falls over to the next location when one fails, and a body cut short breaks the download', async () => {
  const image = await api.createImage({ name: 'fallover' });
  web.routes.set('/flaky.img', data);
  assert.equal((await add(image.id, at('/flaky.img'))).status, 200);
  assert.equal((await add(image.id, at('/c.img'))).status, 200);
  web.routes.delete('/flaky.img');
  const r = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
  assert.equal(r.status, 200);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), data);

  // Now the last good location dies half way through its body.
  web.routes.set('/c.img', (res) => {
    res.writeHead(200, { 'content-length': data.length });
    res.write(data.subarray(0, 100_000));
    setTimeout(() => res.destroy(), 50);
  });
  try {
    const cut = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
    await assert.rejects(cut.arrayBuffer(), 'the client sees the transfer fail, not a short file that looks whole');
  } finally {
    web.routes.set('/c.img', data);
  }
  assert.equal((await api.get('/healthcheck')).status, 200);
});

test('with show_multiple_locations off, every location operation answers 403 as in Glance', async () => {
  const plain = await startGazeInProcess({});
  try {
    const c = client(plain.url);
    const image = await c.createImage({ name: 'x' });
    const p = (ops: unknown) => c.patch(`/v2/images/${image.id}`, ops, { headers: JSON_ACCEPT });
    expectError(
      await p([{ op: 'add', path: '/locations/-', value: { url: 'http://x', metadata: {} } }]),
      403,
      "It's not allowed to add locations if locations are invisible.",
    );
    expectError(
      await p([{ op: 'replace', path: '/locations', value: [{ url: 'http://x', metadata: {} }] }]),
      403,
      "It's not allowed to update locations if locations are invisible.",
    );
    expectError(await p([{ op: 'remove', path: '/locations/0' }]), 403, "It's not allowed to remove locations if locations are invisible.");
    expectError(await p([{ op: 'replace', path: '/locations', value: [] }]), 403, 'Cannot set locations to empty list.');
  } finally {
    await plain.stop();
  }
});

test('multi-store: an http store in enabled_backends names itself on the locations it holds; it takes no uploads', async () => {
  const multi = await startGazeInProcess({
    DEFAULT: { enabled_backends: 'fast:file, web:http', show_multiple_locations: 'True' },
    glance_store: { default_backend: 'fast' },
    fast: { filesystem_store_datadir: '__DIR__/stores/fast' },
    import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
  });
  try {
    const c = client(multi.url);
    const stores = (await c.get('/v2/info/stores')).json.stores;
    assert.deepEqual(stores, [
      { id: 'fast', default: 'true' },
      { id: 'web', 'read-only': 'true' },
    ]);
    const image = await c.createImage({ name: 'm' });
    const r = await c.patch(`/v2/images/${image.id}`, [{ op: 'add', path: '/locations/-', value: at('/a.img') }]);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.locations, [at('/a.img', { store: 'web' })]);
    assert.equal(r.json.stores, 'web');
    const target = (await c.createImage()).id;
    const upload = await c.call('PUT', `/v2/images/${target}/file`, {
      body: Buffer.from('x'),
      headers: { 'content-type': 'application/octet-stream', 'x-image-meta-store': 'web', ...JSON_ACCEPT },
    });
    expectError(upload, 410, 'Error in store configuration. Adding images to store is disabled.');
    assert.equal((await c.get(`/v2/images/${target}`)).json.status, 'queued');
  } finally {
    await multi.stop();
  }
});

/** An image whose data is `data` at two web locations, in this order. */
async function imageAtTwoLocations(name: string, first: string, second: string): Promise<{ id: string }> {
  const image = await api.createImage({ name });
  for (const path of [first, second]) {
    web.routes.set(path, data);
    assert.equal((await add(image.id, at(path))).status, 200);
  }
  return image;
}

test('a web server whose data changed after it was registered: the next location serves, else 503, never other bytes', async () => {
  const image = await imageAtTwoLocations('changed', '/changing.img', '/steady.img');
  // The server announces the new length: refused before a byte is sent.
  for (const [what, changed] of [
    ['grown', Buffer.concat([data, Buffer.from('appended')])],
    ['shrunk', data.subarray(0, 1000)],
  ] as const) {
    web.routes.set('/changing.img', changed);
    web.routes.set('/steady.img', data);
    const served = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
    assert.equal(served.status, 200, what);
    assert.deepEqual(Buffer.from(await served.arrayBuffer()), data, `${what}: the intact location serves`);
    web.routes.delete('/steady.img');
    const refused = await api.get(`/v2/images/${image.id}/file`, { headers: JSON_ACCEPT });
    expectError(refused, 503, `Image data for image ${image.id} is not available from any of its locations.`);
  }
  // Without a length the change shows only once the bytes go past the image's size: the download has
  // begun by then, and it fails rather than end as if it were whole.
  web.routes.set('/changing.img', (res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(data.subarray(0, 1000));
    setTimeout(() => res.end(Buffer.concat([data.subarray(1000), Buffer.from('appended')])), 50);
  });
  const cut = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
  assert.equal(cut.status, 200);
  await assert.rejects(cut.arrayBuffer());
});

test('a location that fails before its first byte, without a length, passes the read to the next; a short body never ends the process', async () => {
  const image = await imageAtTwoLocations('flaky', '/flaky.img', '/good.img');
  web.routes.set('/flaky.img', (res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.flushHeaders();
    setTimeout(() => res.socket?.destroy(), 30);
  });
  for (const range of [undefined, 'bytes=10-70009']) {
    const r = await fetch(`${gaze.url}/v2/images/${image.id}/file`, { headers: range ? { range } : {} });
    assert.equal(r.status, range ? 206 : 200);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), range ? data.subarray(10, 70010) : data, range ?? 'whole');
  }
  // A short body that arrives with its end at once fails between the first bytes and the reader.
  web.routes.set('/flaky.img', (res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(data.subarray(0, 500));
  });
  web.routes.delete('/good.img');
  const uncaught: unknown[] = [];
  const record = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', record);
  try {
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
      await r.arrayBuffer().catch(() => null);
      assert.ok(r.status === 503 || r.status === 200, `${r.status}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  } finally {
    process.off('uncaughtException', record);
  }
  assert.deepEqual(uncaught.map(String), []);
});

test('location_strategy = store_type reads from the preferred store type first and lists locations, direct_url and stores so; location_order keeps the list order', async () => {
  const bytes = randomBytes(50_000);
  web.routes.set('/mirror.img', bytes);
  for (const strategy of ['store_type', 'location_order']) {
    const multi = await startGazeInProcess({
      DEFAULT: { enabled_backends: 'fast:file, web:http', show_multiple_locations: 'True', show_image_direct_url: 'True', location_strategy: strategy },
      store_type_location_strategy: { store_type_preference: 'http, file' },
      glance_store: { default_backend: 'fast' },
      fast: { filesystem_store_datadir: '__DIR__/stores/fast' },
      import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
    });
    try {
      const c = client(multi.url);
      const image = await c.createImage({ name: strategy });
      assert.equal((await c.upload(image.id, bytes)).status, 204);
      assert.equal((await c.patch(`/v2/images/${image.id}`, [{ op: 'add', path: '/locations/-', value: at('/mirror.img') }])).status, 200);
      const before = web.requests.length;
      const r = await fetch(`${multi.url}/v2/images/${image.id}/file`);
      assert.deepEqual(Buffer.from(await r.arrayBuffer()), bytes);
      assert.deepEqual(web.requests.slice(before), strategy === 'store_type' ? ['GET /mirror.img'] : [], strategy);
      // Glance 25 lists them in the strategy's order too (its database layer orders them).
      const shown = (await c.get(`/v2/images/${image.id}`)).json;
      const urls = shown.locations.map((l: { url: string }) => l.url);
      const mirror = at('/mirror.img').url;
      assert.deepEqual(urls[0] === mirror, strategy === 'store_type', JSON.stringify(urls));
      assert.equal(shown.direct_url, urls[0]);
      assert.equal(shown.stores, strategy === 'store_type' ? 'web,fast' : 'fast,web');
      // A page of images lists them in the same order.
      const listed = (await c.get(`/v2/images?name=${strategy}`)).json.images[0];
      assert.deepEqual(
        listed.locations.map((l: { url: string }) => l.url),
        urls,
      );
      // A patch's positions count in that order: /locations/0 is the first location shown.
      const removed = await c.patch(`/v2/images/${image.id}`, [{ op: 'remove', path: '/locations/0' }]);
      assert.equal(removed.status, 200);
      assert.deepEqual(
        removed.json.locations.map((l: { url: string }) => l.url),
        urls.slice(1),
      );
    } finally {
      await multi.stop();
    }
  }
});
