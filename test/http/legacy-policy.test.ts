import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, alice, bob, carol } from '../helpers/http.ts';
import { startFileServer } from '../helpers/file-server.ts';

// `[oslo_policy] enforce_new_defaults = False`: Glance ORs each deprecated rule (mostly the empty
// `default`) into its rule, and holds changes to an image to its owner with its legacy checks. Compared
// with the new defaults in the same requests, each on its own service.

let legacy: RunningGaze;
let current: RunningGaze;
before(async () => {
  legacy = await startGazeInProcess({ oslo_policy: { enforce_new_defaults: 'False' } });
  current = await startGazeInProcess({});
});
after(async () => {
  await legacy.stop();
  await current.stop();
});

test('a reader may create and change an image of its own project with the deprecated rules, not without', async () => {
  const old = client(legacy.url);
  const img = await old.createImage({ name: 'by a reader' }, carol);
  assert.equal(img.owner, 'carol-project');
  const patched = await old.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/k', value: 'v' }], { as: carol });
  assert.equal(patched.status, 200, patched.text);
  assert.equal(patched.json.k, 'v');
  assert.equal((await old.get('/v2/images', { as: carol })).status, 200);

  expectError(
    await client(current.url).post('/v2/images', {}, { as: carol, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete add_image action.',
  );
});

test("with the deprecated rules, a member of a shared image may not change or delete it: Glance's owner checks answer", async () => {
  const old = client(legacy.url);
  const img = await old.createImage({ name: 'shared', visibility: 'shared', disk_format: 'raw', container_format: 'bare' }, alice);
  assert.equal((await old.post(`/v2/images/${img.id}/members`, { member: 'bob-project' }, { as: alice })).status, 200);

  expectError(await old.call('DELETE', `/v2/images/${img.id}`, { as: bob, headers: JSON_ACCEPT }), 403, 'You do not own this image');
  expectError(
    await old.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/k', value: 'v' }], { as: bob, headers: JSON_ACCEPT }),
    403,
    'You do not own this image',
  );
  expectError(await old.call('POST', `/v2/images/${img.id}/actions/deactivate`, { as: bob, headers: JSON_ACCEPT }), 403, 'You do not own this image');
  expectError(await old.call('PUT', `/v2/images/${img.id}/tags/t`, { as: bob, headers: JSON_ACCEPT }), 403, `Not allowed to update tags for image ${img.id}.`);
  expectError(
    await old.put(`/v2/images/${img.id}/file`, { body: Buffer.from('data'), as: bob, headers: { ...JSON_ACCEPT, 'content-type': 'application/octet-stream' } }),
    403,
    `Not allowed to upload image data for image ${img.id}`,
  );
  // Members: the legacy owner checks come before the membership is looked for (Glance's order), so the
  // owner answering for a member, and a member removing one, hear 403 even for a member that is not there.
  for (const member of ['bob-project', 'nobody']) {
    const answer = await old.put(`/v2/images/${img.id}/members/${member}`, { json: { status: 'accepted' }, as: alice, headers: JSON_ACCEPT });
    expectError(answer, 403, `Not allowed to update members for image ${img.id}.`);
    expectError(
      await old.call('DELETE', `/v2/images/${img.id}/members/${member}`, { as: bob, headers: JSON_ACCEPT }),
      403,
      `Not allowed to delete members for image ${img.id}.`,
    );
  }
  assert.equal((await old.put(`/v2/images/${img.id}/members/bob-project`, { json: { status: 'accepted' }, as: bob })).status, 200);
  // The owner still may; nothing of the refused calls stuck.
  const own = await old.get(`/v2/images/${img.id}`, { as: alice });
  assert.equal(own.json.status, 'queued');
  assert.deepEqual(own.json.tags, []);
  assert.equal(own.json.k, undefined);
  assert.equal((await old.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/k', value: 'v' }], { as: alice })).status, 200);
  assert.equal((await old.call('DELETE', `/v2/images/${img.id}`, { as: alice })).status, 204);
});

test("creating an image for another project: the legacy owner check's words after the visibility rule, or the add_image rule's words", async () => {
  const old = client(legacy.url);
  expectError(
    await old.post('/v2/images', { owner: 'bob-project' }, { as: alice, headers: JSON_ACCEPT }),
    403,
    "You are not permitted to create images owned by 'bob-project'.",
  );
  // The rules come first with the deprecated ones too: publicize_image is still admin only.
  expectError(
    await old.post('/v2/images', { owner: 'bob-project', visibility: 'public' }, { as: alice, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete publicize_image action.',
  );
  const now = client(current.url);
  expectError(
    await now.post('/v2/images', { owner: 'bob-project' }, { as: alice, headers: JSON_ACCEPT }),
    403,
    "You are not permitted to create images owned by 'bob-project'",
  );
  expectError(
    await now.post('/v2/images', { owner: 'bob-project', visibility: 'public' }, { as: alice, headers: JSON_ACCEPT }),
    403,
    "You are not permitted to create images owned by 'bob-project'",
  );
  // An owner given as null is no owner given: Glance weighs it as None, which is an admin's to give.
  expectError(
    await old.post('/v2/images', { owner: null }, { as: alice, headers: JSON_ACCEPT }),
    403,
    "You are not permitted to create images owned by 'None'.",
  );
  expectError(
    await now.post('/v2/images', { owner: null }, { as: alice, headers: JSON_ACCEPT }),
    403,
    "You are not permitted to create images owned by 'None'",
  );
  const admin = { ...alice, roles: 'admin,member,reader' };
  const ownerless = await now.post('/v2/images', { owner: null }, { as: admin });
  assert.equal(ownerless.status, 201, ownerless.text);
  assert.equal(ownerless.json.owner, null);
  assert.equal((await now.get(`/v2/images/${ownerless.json.id}`, { as: admin })).json.owner, null);
});

test('with the deprecated rules, removing an image from one store is for its owner: a member of a shared or community image hears 403 and the copy stays', async () => {
  const stores = await startGazeInProcess({
    DEFAULT: { enabled_backends: 'fast:file, cheap:file' },
    glance_store: { default_backend: 'fast' },
    fast: { filesystem_store_datadir: '__DIR__/fast' },
    cheap: { filesystem_store_datadir: '__DIR__/cheap' },
    oslo_policy: { enforce_new_defaults: 'False' },
  });
  try {
    const api = client(stores.url);
    for (const visibility of ['community', 'shared']) {
      const img = await api.createImage({ name: `in two stores, ${visibility}`, visibility }, alice);
      assert.equal((await api.upload(img.id, Buffer.from('two copies'), alice)).status, 204);
      const copy = await api.post(
        `/v2/images/${img.id}/import`,
        { method: { name: 'copy-image' }, stores: ['cheap'] },
        { as: { ...alice, roles: 'admin,member,reader' } },
      );
      assert.equal(copy.status, 202, copy.text);
      const inBoth = async () => ((await api.get(`/v2/images/${img.id}`, { as: alice })).json as { stores?: string }).stores === 'fast,cheap';
      for (let i = 0; i < 100 && !(await inBoth()); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(await inBoth(), 'the copy-image finished');
      if (visibility === 'shared') {
        assert.equal((await api.post(`/v2/images/${img.id}/members`, { member: 'bob-project' }, { as: alice })).status, 200);
        assert.equal((await api.put(`/v2/images/${img.id}/members/bob-project`, { json: { status: 'accepted' }, as: bob })).status, 200);
      }
      expectError(await api.del(`/v2/stores/fast/${img.id}`, { as: bob, headers: JSON_ACCEPT }), 403, 'You do not own this image');
      assert.ok(await inBoth(), 'nothing was removed');
      assert.equal((await api.del(`/v2/stores/fast/${img.id}`, { as: alice })).status, 204);
      assert.equal(((await api.get(`/v2/images/${img.id}`, { as: alice })).json as { stores?: string }).stores, 'cheap');
    }
  } finally {
    await stores.stop();
  }
});

test("another project's change the policy lets through is still refused: Glance's database takes changes only from an image's owner or an admin", async () => {
  const web = await startFileServer();
  web.routes.set('/same.img', Buffer.from('data'));
  // The deprecated rules' set_image_location passes anyone; Glance's database then refuses the save.
  const withLocations = await startGazeInProcess({
    oslo_policy: { enforce_new_defaults: 'False' },
    DEFAULT: { show_multiple_locations: 'True' },
    import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
  });
  // An operator's rule that lets any member modify (or delete) images: Glance's database still refuses.
  const permissive = await startGazeInProcess(
    { oslo_policy: { policy_file: 'policy.yaml' } },
    { besideConfig: { 'policy.yaml': '"modify_image": "role:member"\n"delete_image": "role:member"\n' } },
  );
  try {
    const old = client(withLocations.url);
    const img = await old.createImage({ name: 'shared', visibility: 'shared', disk_format: 'raw', container_format: 'bare' }, alice);
    assert.equal((await old.upload(img.id, Buffer.from('data'), alice)).status, 204);
    assert.equal((await old.post(`/v2/images/${img.id}/members`, { member: 'bob-project' }, { as: alice })).status, 200);
    const added = await old.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/locations/-', value: { url: web.url('/same.img'), metadata: {} } }], {
      as: bob,
      headers: JSON_ACCEPT,
    });
    expectError(added, 403, 'You do not own this image');
    assert.equal((await old.get(`/v2/images/${img.id}`, { as: alice })).json.locations.length, 1);
    // The owner may.
    const byOwner = await old.patch(`/v2/images/${img.id}`, [{ op: 'add', path: '/locations/-', value: { url: web.url('/same.img'), metadata: {} } }], {
      as: alice,
    });
    assert.equal(byOwner.status, 200, byOwner.text);

    const api = client(permissive.url);
    const pub = await api.createImage({ visibility: 'public', owner: 'alice-project' });
    expectError(
      await api.patch(`/v2/images/${pub.id}`, [{ op: 'add', path: '/k', value: 'v' }], { as: bob, headers: JSON_ACCEPT }),
      403,
      'You do not own this image',
    );
    // Glance's database does not find another project's image to delete (compared with Glance 25, whose
    // delete removes the data first; here nothing is touched).
    expectError(await api.call('DELETE', `/v2/images/${pub.id}`, { as: bob, headers: JSON_ACCEPT }), 404, `Failed to find image ${pub.id} to delete`);
    // The request's own faults come first: Glance refuses the save only after applying the changes.
    expectError(
      await api.patch(
        `/v2/images/${pub.id}`,
        [
          { op: 'add', path: '/k', value: 'v' },
          { op: 'remove', path: '/nope' },
        ],
        { as: bob, headers: JSON_ACCEPT },
      ),
      409,
      'Property nope does not exist.',
    );
    expectError(
      await api.call('PUT', `/v2/images/${pub.id}/tags/t`, { as: bob, headers: JSON_ACCEPT }),
      403,
      `Not allowed to update tags for image ${pub.id}.`,
    );
    assert.equal((await api.patch(`/v2/images/${pub.id}`, [{ op: 'add', path: '/k', value: 'v' }], { as: alice })).status, 200);
    // Nor does it import into another project's image (Glance accepts, and its task fails).
    const queued = await api.createImage({ visibility: 'public', owner: 'alice-project', disk_format: 'raw', container_format: 'bare' });
    const imported = await api.call('POST', `/v2/images/${queued.id}/import`, {
      json: { method: { name: 'web-download', uri: 'http://127.0.0.1:9/x' } },
      as: bob,
      headers: JSON_ACCEPT,
    });
    expectError(imported, 403, 'You do not own this image');
    assert.equal((await api.get(`/v2/images/${queued.id}`, { as: alice })).json.status, 'queued');
  } finally {
    await withLocations.stop();
    await permissive.stop();
    await web.close();
  }
});

test('an image without an owner is found by its id by every project, as Glance\'s "no owner == image visible"; the rules then decide, and lists leave it out', async () => {
  const admin = { ...alice, roles: 'admin,member,reader' };
  const outsider = { project: 'q3-project', roles: 'member,reader', user: 'q3' };
  const ownerless = async (api: ReturnType<typeof client>, visibility: string) => {
    const made = await api.post('/v2/images', { owner: null, visibility, name: `ownerless ${visibility}` }, { as: admin });
    assert.equal(made.status, 201, made.text);
    return made.json.id as string;
  };
  const old = client(legacy.url);
  const oldPrivate = await ownerless(old, 'private');
  assert.equal((await old.get(`/v2/images/${oldPrivate}`, { as: outsider })).status, 200, 'the deprecated get_image lets anyone read it');
  expectError(await old.del(`/v2/images/${oldPrivate}`, { as: outsider, headers: JSON_ACCEPT }), 403, /You do not own this image/);

  const now = client(current.url);
  const nowPrivate = await ownerless(now, 'private');
  expectError(await now.get(`/v2/images/${nowPrivate}`, { as: outsider, headers: JSON_ACCEPT }), 404, 'The resource could not be found.');
  const nowShared = await ownerless(now, 'shared');
  assert.equal((await now.get(`/v2/images/${nowShared}`, { as: outsider })).status, 200);
  const members = await now.get(`/v2/images/${nowShared}/members`, { as: outsider });
  assert.equal(members.status, 200, members.text);
  assert.deepEqual(members.json.members, []);
  const listed = (await now.get('/v2/images?limit=1000', { as: outsider })).json.images.map((i: any) => i.id);
  assert.ok(!listed.includes(nowShared) && !listed.includes(nowPrivate));
});
