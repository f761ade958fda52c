// The locations API of image API 2.17 (POST and GET /v2/images/{id}/locations) and its location_import
// task, with the http store and a real loopback web server holding the data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, alice, bob, type Caller } from '../helpers/http.ts';
import { startFileServer, trickle, type FileServer } from '../helpers/file-server.ts';
import { until } from '../helpers/wait.ts';

// Nova and Cinder call with the user's token plus the service role (no-auth mode: the headers say so).
const service: Caller = { ...alice, roles: 'member,reader,service' };
let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
let web: FileServer;
const data = randomBytes(400_000);
const digest = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');

before(async () => {
  web = await startFileServer();
  web.routes.set('/disk.raw', data);
  gaze = await startGazeInProcess({
    import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
  await web.close();
});

const post = (id: string, body: unknown, as: Caller = service) => api.call('POST', `/v2/images/${id}/locations`, { json: body, as, headers: JSON_ACCEPT });
const image = (id: string) => api.get(`/v2/images/${id}`).then((r) => r.json);
const tasksOf = async (id: string) => (await api.get(`/v2/images/${id}/tasks`)).json.tasks as any[];
const settled = (id: string) =>
  until(async () => {
    const [task] = await tasksOf(id);
    return task && (task.status === 'success' || task.status === 'failure') ? task : undefined;
  }, `the location task of ${id}`);
const queuedImage = (as: Caller = alice) => api.createImage({ name: 'registered' }, as);

test('a service registers data with a digest: 202, a location_import task checks it, the image becomes active', async () => {
  const { id } = await queuedImage();
  const r = await post(id, { url: web.url('/disk.raw'), validation_data: { os_hash_algo: 'sha256', os_hash_value: digest('sha256', data) } });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.text, '');
  const task = await settled(id);
  assert.equal(task.type, 'location_import');
  assert.equal(task.status, 'success', task.message);
  const done = await image(id);
  assert.deepEqual(
    [done.status, done.size, done.checksum, done.os_hash_algo, done.os_hash_value],
    ['active', data.length, digest('md5', data), 'sha256', digest('sha256', data)],
  );
  assert.ok(!('os_glance_import_task' in done), 'the lock is released');
  const listed = await api.get(`/v2/images/${id}/locations`, { as: service });
  assert.deepEqual(listed.json, [{ url: web.url('/disk.raw'), metadata: {} }]);
  expectError(
    await api.get(`/v2/images/${id}/locations`, { as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete fetch_image_location action.',
  );
  const file = await fetch(`${gaze.url}/v2/images/${id}/file`);
  assert.deepEqual(Buffer.from(await file.arrayBuffer()), data);
});

test("a digest that does not match fails the task with Glance's message; the image is queued again without the location", async () => {
  const { id } = await queuedImage();
  const wrong = digest('sha512', Buffer.from('other data'));
  assert.equal((await post(id, { url: web.url('/disk.raw'), validation_data: { os_hash_algo: 'sha512', os_hash_value: wrong } })).status, 202);
  const task = await settled(id);
  assert.equal(task.status, 'failure');
  assert.equal(task.message, `os_hash_value: (${wrong}) not matched with actual os_hash_value: (${digest('sha512', data)})`);
  const back = await image(id);
  assert.deepEqual([back.status, back.size, back.checksum, back.os_hash_value], ['queued', null, null, null]);
  assert.ok(!('os_glance_import_task' in back));
  assert.deepEqual((await api.get(`/v2/images/${id}/locations`, { as: service })).json, []);
});

test('without a digest the image is active at once and its digests follow, computed from the data', async () => {
  const { id } = await queuedImage();
  assert.equal((await post(id, { url: web.url('/disk.raw') }, alice)).status, 202, 'an owner may register http data');
  const task = await settled(id);
  assert.equal(task.status, 'success', task.message);
  const done = await image(id);
  assert.deepEqual([done.status, done.checksum, done.os_hash_algo, done.os_hash_value], ['active', digest('md5', data), 'sha512', digest('sha512', data)]);
});

test('a digest the image expects since its creation is checked like a given one', async () => {
  const wrong = await api.createImage({ name: 'expects', os_hash_algo: 'sha512', os_hash_value: digest('sha512', Buffer.from('not this data')) }, alice);
  assert.equal((await post(wrong.id, { url: web.url('/disk.raw') })).status, 202);
  const failed = await settled(wrong.id);
  assert.equal(failed.status, 'failure');
  assert.match(failed.message, /^os_hash_value: \(.*\) not matched with actual os_hash_value: \(/);
  assert.equal((await image(wrong.id)).status, 'queued');

  const right = await api.createImage({ name: 'expects', os_hash_algo: 'sha512', os_hash_value: digest('sha512', data) }, alice);
  assert.equal((await post(right.id, { url: web.url('/disk.raw') })).status, 202);
  assert.equal((await settled(right.id)).status, 'success');
  const done = await image(right.id);
  assert.deepEqual([done.status, done.checksum, done.os_hash_value], ['active', digest('md5', data), digest('sha512', data)]);
});

test('refusals before any task: status, policy, non-http urls for non-services, malformed digests and bodies', async () => {
  const { id } = await queuedImage();
  const url = web.url('/disk.raw');
  expectError(await post(id, { url: 's3://bucket/object' }, alice), 403, 'http store must be enabled to use location API by normal user.');
  expectError(
    await post(id, { url, validation_data: { os_hash_algo: 'sha256', os_hash_value: 'zz' } }),
    400,
    'os_hash_value (zz) is not a valid hexadecimal value',
  );
  expectError(
    await post(id, { url, validation_data: { os_hash_algo: 'sha256', os_hash_value: 'ab' } }),
    400,
    'os_hash_value: (ab) is not the correct size for (sha256) (should be (32) bytes)',
  );
  expectError(
    await post(id, { url, validation_data: { os_hash_algo: 'sha384', os_hash_value: 'ab' } }),
    400,
    /^Provided object does not match schema 'location': 'sha384' is not one of/,
  );
  expectError(await post(id, { validation_data: {} }), 400, /^Provided object does not match schema 'location': 'url' is a required property/);
  const noBody = await api.call('POST', `/v2/images/${id}/locations`, { as: service, headers: { ...JSON_ACCEPT, 'content-type': 'application/json' } });
  expectError(noBody, 400, 'Body expected in request.');
  expectError(await post(id, { url }, bob), 404, `No image found with ID ${id}`);
  const shared = await api.createImage({ name: 'community', visibility: 'community' }, alice);
  expectError(await post(shared.id, { url }, bob), 403, 'You are not authorized to complete add_image_location action.');
  // A web server the import filter refuses (here an allow-list of this test's own server).
  for (const refused of ['http://10.1.2.3/disk.raw', 'http://169.254.169.254/latest/meta-data/', `http://127.0.0.1:1/disk.raw`]) {
    expectError(await post(id, { url: refused }), 400, `URI for add location does not pass filtering: ${refused}`);
    expectError(await post(id, { url: refused }, alice), 400, `URI for add location does not pass filtering: ${refused}`);
  }
  assert.deepEqual(await tasksOf(id), [], 'no task was made');

  assert.equal((await post(id, { url })).status, 202);
  assert.equal((await settled(id)).status, 'success');
  expectError(await post(id, { url }), 409, "It's not allowed to add locations if image status is active.");
});

test('an unusable location fails its task with "Invalid location" and leaves the image queued', async () => {
  const { id } = await queuedImage();
  assert.equal((await post(id, { url: web.url('/not-there.raw') })).status, 202);
  const task = await settled(id);
  assert.deepEqual([task.status, task.message], ['failure', 'Invalid location']);
  assert.equal((await image(id)).status, 'queued');

  // A member whose service token carries the service role may name any store's url (here: none takes it).
  const viaService = await api.call('POST', `/v2/images/${id}/locations`, {
    json: { url: 's3://bucket/object' },
    as: alice,
    headers: { 'x-service-roles': 'service', ...JSON_ACCEPT },
  });
  assert.equal(viaService.status, 202, viaService.text);
  await until(async () => ((await tasksOf(id)).filter((t) => t.status === 'failure').length === 2 ? true : undefined), 'the second task to fail');
});

test('the image lock: a second registration while one runs answers 409; deleting the image stops the task', async () => {
  web.routes.set('/slow.raw', trickle(2_000_000, 20));
  const { id } = await queuedImage();
  const slow = { url: web.url('/slow.raw'), validation_data: { os_hash_algo: 'sha512', os_hash_value: 'ab'.repeat(64) } };
  assert.equal((await post(id, slow)).status, 202);
  await until(async () => ((await image(id)).status === 'importing' ? true : undefined), 'the digest check to start');
  const [running] = await tasksOf(id);
  expectError(await post(id, { url: web.url('/disk.raw') }), 409, "It's not allowed to add locations if image status is importing.");
  const again = await queuedImage();
  assert.equal((await post(again.id, slow)).status, 202);
  assert.equal((await api.del(`/v2/images/${id}`)).status, 204);
  const task = await until(async () => {
    const row = (await api.get(`/v2/tasks/${running.id}`)).json;
    return row.status === 'failure' ? row : undefined;
  }, 'the task to stop');
  assert.equal(task.message, 'Image has been deleted, aborting import.');
  assert.equal(await (await fetch(`${gaze.url}/v2/images/${id}`)).status, 404);
  assert.equal((await api.del(`/v2/images/${again.id}`)).status, 204);
});

test('do_secure_hash = False: the digests given are taken as they are, and nothing is read', async () => {
  const trusting = await startGazeInProcess({
    DEFAULT: { do_secure_hash: 'False' },
    import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
  });
  try {
    const c = client(trusting.url);
    const { id } = await c.createImage({ name: 'trusted' }, alice);
    const vouched = digest('sha512', Buffer.from('whatever the service says'));
    const before = web.requests.length;
    const r = await c.call('POST', `/v2/images/${id}/locations`, {
      json: { url: web.url('/disk.raw'), validation_data: { os_hash_algo: 'sha512', os_hash_value: vouched } },
      as: service,
    });
    assert.equal(r.status, 202, r.text);
    const done = await until(async () => {
      const img = (await c.get(`/v2/images/${id}`)).json;
      return img.status === 'active' && !('os_glance_import_task' in img) ? img : undefined;
    }, 'activation');
    assert.deepEqual([done.checksum, done.os_hash_value, done.size], [null, vouched, data.length]);
    assert.deepEqual(web.requests.slice(before), ['HEAD /disk.raw'], 'only the size was asked');
  } finally {
    await trusting.stop();
  }
});

test('an image staged before its location task ran: the task fails, and the stage and the image are left as they were', async () => {
  const created = await queuedImage();
  const { tasks, images } = gaze.app.deps;
  // A task accepted and waiting for its turn (as behind busy import slots), then a stage of the same image.
  const task = gaze.app.imports.newTask({
    type: 'location_import',
    owner: created.owner,
    input: JSON.stringify({ image_id: created.id, loc_url: web.url('/disk.raw'), validation_data: {} }),
    image_id: created.id,
    request_id: null,
    user_id: null,
  });
  await tasks.insert(task);
  assert.ok(await images.takeImportLock(created.id, task.id));
  const staged = randomBytes(3000);
  assert.equal(
    (await api.put(`/v2/images/${created.id}/stage`, { body: staged, headers: { 'content-type': 'application/octet-stream' }, as: alice })).status,
    204,
  );
  gaze.app.imports.submit(task);
  const ended = await settled(created.id);
  assert.equal(ended.status, 'failure');
  assert.equal(ended.message, `Image ${created.id} is uploading now; its location was not added.`);
  const now = (await images.get(created.id))!;
  assert.equal(now.status, 'uploading');
  assert.equal(now.size, staged.length);
  assert.deepEqual(now.locations, []);
  assert.ok(!('os_glance_import_task' in now.properties), 'the lock is released');
});

test('a web server that announces one size and sends without end: the digest read stops at the size, and the task fails', async () => {
  let sent = 0;
  web.routes.set('/endless.raw', (res, req) => {
    if (req.method === 'HEAD') return void res.writeHead(200, { 'content-length': 1000 }).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 1);
    const pump = () => {
      while (!res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
    };
    pump();
  });
  const { id } = await queuedImage();
  const vouched = digest('sha256', Buffer.alloc(1000, 1));
  assert.equal((await post(id, { url: web.url('/endless.raw'), validation_data: { os_hash_algo: 'sha256', os_hash_value: vouched } })).status, 202);
  const task = await settled(id);
  assert.equal(task.status, 'failure');
  assert.equal(task.message, `Hash calculation failed for image ${id} data`);
  const now = await image(id);
  assert.equal(now.status, 'queued');
  assert.ok(!('os_glance_import_task' in now));
  const after = sent;
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(sent - after < 4 * 1024 * 1024, 'nothing keeps reading it');
});

test("a service user cannot register data for another project's image it can see (community, or shared with it): 403, and the image stays queued", async () => {
  const nova: Caller = { project: 'service-project', roles: 'service', user: 'nova' };
  for (const visibility of ['community', 'shared'] as const) {
    const victim = await api.createImage({ name: `victim ${visibility}`, visibility }, alice);
    if (visibility === 'shared') {
      assert.equal((await api.post(`/v2/images/${victim.id}/members`, { member: 'service-project' }, { as: alice })).status, 200);
    }
    expectError(await post(victim.id, { url: web.url('/disk.raw') }, nova), 403, 'You do not own this image');
    assert.deepEqual(await tasksOf(victim.id), [], 'no task was made');
    assert.equal((await image(victim.id)).status, 'queued');
  }
});
