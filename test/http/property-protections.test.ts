import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, type Caller } from '../helpers/http.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createApp, type App } from '../../src/app.ts';

// Modelled on Glance's functional test file (glance/tests/etc/property-protections.conf).
const RULES = `
[^x_owner_]
create = admin,member
read = admin,member
update = admin,member
delete = admin,member

[^spl_update_prop$]
create = admin,spl_role
read = admin,spl_role
update = admin,spl_role
delete = admin

[^spl_delete_prop$]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin,spl_role

[^x_none_read$]
create = admin,member
read = !
update = !
delete = !

[^x_frozen$]
create = !
read = @
update = !
delete = !

[.*]
create = admin
read = admin
update = admin
delete = admin
`;

const PROJECT = 'pp-project';
const admin: Caller = { project: PROJECT, roles: 'admin,member,reader', user: 'root' };
const member: Caller = { project: PROJECT, roles: 'member,reader', user: 'mem' };
const spl: Caller = { project: PROJECT, roles: 'Member,reader,SPL_ROLE', user: 'spl' };

let dir: string;
let gaze: RunningGaze & { app: App };
let api: ReturnType<typeof client>;
before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gaze-pp-http-'));
  const file = path.join(dir, 'property-protections.conf');
  writeFileSync(file, RULES);
  gaze = await startGazeInProcess({ DEFAULT: { property_protection_file: file } });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
  rmSync(dir, { recursive: true, force: true });
});

const AS_JSON = { headers: JSON_ACCEPT };

test('create with a property the caller may not create: 403 "Attribute \'<k>\' is reserved."', async () => {
  const denied = await api.post(
    '/v2/images',
    { name: 'image-1', disk_format: 'raw', container_format: 'bare', foo: 'bar', x_owner_foo: 'o' },
    { as: member, ...AS_JSON },
  );
  expectError(denied, 403, "Attribute 'foo' is reserved.");
  assert.deepEqual({ code: denied.json.code, title: denied.json.title }, { code: '403 Forbidden', title: 'Forbidden' });
  const html = await api.post('/v2/images', { foo: 'bar' }, { as: member });
  assert.equal(html.status, 403);
  assert.match(html.text, /Attribute &#x27;foo&#x27; is reserved\./, 'quoted as WebOb escapes HTML');
  // admins are governed too
  expectError(await api.post('/v2/images', { x_owner_ok: '1', x_frozen: 'x' }, { as: admin, ...AS_JSON }), 403, "Attribute 'x_frozen' is reserved.");
  expectError(
    await api.post('/v2/images', { x_none_read: '1', spl_update_prop: 'x' }, { as: member, ...AS_JSON }),
    403,
    "Attribute 'spl_update_prop' is reserved.",
  );

  const ok = await api.post('/v2/images', { name: 'image-1', disk_format: 'raw', container_format: 'bare', x_owner_foo: 'o' }, { as: member });
  assert.equal(ok.status, 201, ok.text);
  assert.equal(ok.json.x_owner_foo, 'o');
  assert.equal((await api.get('/v2/images?x_owner_foo=o', { as: member })).json.images.length, 1);
});

test('unreadable properties are left out of show, list, create and PATCH answers', async () => {
  const created = await api.createImage({ name: 'mixed', x_owner_a: 'a', x_secret: 's', x_none_read: 'n' }, admin);
  assert.equal(created.x_owner_a, 'a');
  assert.equal(created.x_secret, 's');
  assert.ok(!('x_none_read' in created), 'read = ! hides it even from the admin who created it');

  const asMember = (await api.get(`/v2/images/${created.id}`, { as: member })).json;
  assert.equal(asMember.x_owner_a, 'a');
  assert.ok(!('x_secret' in asMember) && !('x_none_read' in asMember));
  assert.equal(asMember.name, 'mixed', 'base attributes are not governed');

  const listed = (await api.get('/v2/images', { as: member })).json.images.find((i: { id: string }) => i.id === created.id);
  assert.ok(listed && !('x_secret' in listed) && listed.x_owner_a === 'a');
  const patched = await api.patch(`/v2/images/${created.id}`, [{ op: 'replace', path: '/name', value: 'renamed' }], { as: member });
  assert.equal(patched.status, 200, patched.text);
  assert.ok(!('x_secret' in patched.json));

  // Hidden properties survive a PATCH by someone who cannot see them.
  const again = (await api.get(`/v2/images/${created.id}`, { as: admin })).json;
  assert.equal(again.x_secret, 's');
  assert.equal(again.name, 'renamed');
  assert.equal((await gaze.app.deps.images.get(created.id))!.properties.x_none_read, 'n');
});

test('a list filter on a property the caller cannot read matches nothing', async () => {
  const img = await api.createImage({ x_filter_secret: 'v', x_owner_tag: 'f' }, admin);
  const ids = async (query: string, as: Caller) => (await api.get(`/v2/images?${query}`, { as })).json.images.map((i: { id: string }) => i.id);
  assert.deepEqual(await ids('x_filter_secret=v', admin), [img.id]);
  assert.deepEqual(await ids('x_filter_secret=v', member), []);
  assert.deepEqual(await ids('x_filter_secret=nope', member), []);
  assert.deepEqual(await ids('x_owner_tag=f', member), [img.id]);
  assert.deepEqual(await ids('x_owner_tag=f&x_filter_secret=v', member), []);
  // other parameters are still checked
  expectError(await api.get('/v2/images?x_filter_secret=v&sort_key=bogus', { as: member, headers: JSON_ACCEPT }), 400, /Invalid sort key: bogus/);
});

test('PATCH add/replace/remove follow the create/update/delete rules', async () => {
  const img = await api.createImage({ spl_update_prop: 'u0', spl_delete_prop: 'd0' }, spl);
  const path = `/v2/images/${img.id}`;
  const patch = (ops: unknown[], as: Caller = spl) => api.patch(path, ops, { as, headers: JSON_ACCEPT });

  const replaced = await patch([
    { op: 'replace', path: '/spl_update_prop', value: '' },
    { op: 'replace', path: '/spl_update_prop', value: 'u' },
  ]);
  assert.equal(replaced.status, 200, replaced.text);
  assert.equal(replaced.json.spl_update_prop, 'u');
  expectError(await patch([{ op: 'replace', path: '/spl_delete_prop', value: 'x' }]), 403, "Attribute 'spl_delete_prop' is reserved.");
  expectError(await patch([{ op: 'add', path: '/spl_delete_prop', value: 'x' }]), 403, "Attribute 'spl_delete_prop' is reserved.");
  expectError(await patch([{ op: 'remove', path: '/spl_update_prop' }]), 403, "Attribute 'spl_update_prop' is reserved.");
  expectError(await patch([{ op: 'add', path: '/spl_new_prop', value: 'n' }]), 403, "Attribute 'spl_new_prop' is reserved.");

  // All or nothing: the allowed first operation is not kept when a later one is refused.
  expectError(
    await patch([
      { op: 'replace', path: '/spl_update_prop', value: 'lost' },
      { op: 'remove', path: '/spl_update_prop' },
    ]),
    403,
    "Attribute 'spl_update_prop' is reserved.",
  );
  assert.equal((await api.get(path, { as: spl })).json.spl_update_prop, 'u');

  const removed = await patch([{ op: 'remove', path: '/spl_delete_prop' }]);
  assert.equal(removed.status, 200, removed.text);
  assert.ok(!('spl_delete_prop' in removed.json));

  const byAdmin = await patch(
    [
      { op: 'add', path: '/spl_new_prop', value: 'n' },
      { op: 'remove', path: '/spl_update_prop' },
    ],
    admin,
  );
  assert.equal(byAdmin.status, 200, byAdmin.text);
  assert.equal(byAdmin.json.spl_new_prop, 'n');
});

test('PATCH on a property the caller cannot read: absent for replace and remove, a create for add', async () => {
  const img = await api.createImage({ x_secret: 's', x_none_read: 'n' }, admin);
  const path = `/v2/images/${img.id}`;
  const patch = (ops: unknown[], as: Caller, mediaType?: string) => api.patch(path, ops, { as, headers: JSON_ACCEPT, mediaType });

  expectError(await patch([{ op: 'replace', path: '/x_secret', value: 'x' }], member), 409, 'Property x_secret does not exist.');
  expectError(await patch([{ op: 'remove', path: '/x_secret' }], member), 409, 'Property x_secret does not exist.');
  expectError(await patch([{ op: 'add', path: '/x_secret', value: 'x' }], member), 403, "Attribute 'x_secret' is reserved.");

  // x_none_read: nobody reads it, members may create it: `add` overwrites the hidden value.
  expectError(await patch([{ op: 'replace', path: '/x_none_read', value: 'x' }], admin), 409, 'Property x_none_read does not exist.');
  expectError(await patch([{ op: 'remove', path: '/x_none_read' }], admin), 409, 'Property x_none_read does not exist.');
  const added = await patch([{ op: 'add', path: '/x_none_read', value: 'm' }], member);
  assert.equal(added.status, 200, added.text);
  assert.ok(!('x_none_read' in added.json));
  assert.equal((await gaze.app.deps.images.get(img.id))!.properties.x_none_read, 'm');
  // the v2.0 dialect's "already present" check does not reveal it either
  const v20 = await patch([{ add: '/x_none_read', value: 'v' }], member, 'application/openstack-images-v2.0-json-patch');
  assert.equal(v20.status, 200, v20.text);
  assert.equal((await gaze.app.deps.images.get(img.id))!.properties.x_none_read, 'v');
  assert.equal((await api.get(path, { as: admin })).json.x_secret, 's');
});

test('base attributes and os_glance handling are unaffected', async () => {
  const img = await api.createImage({ name: 'base', min_ram: 1, tags: ['t'], visibility: 'private', protected: false }, member);
  assert.equal(img.name, 'base');
  const r = await api.patch(
    `/v2/images/${img.id}`,
    [
      { op: 'replace', path: '/name', value: 'b2' },
      { op: 'add', path: '/min_disk', value: 2 },
      { op: 'replace', path: '/tags', value: ['u'] },
      { op: 'replace', path: '/os_hidden', value: true },
    ],
    { as: member },
  );
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.name, r.json.min_disk, r.json.tags, r.json.os_hidden], ['b2', 2, ['u'], true]);
  expectError(
    await api.patch(`/v2/images/${img.id}`, [{ op: 'remove', path: '/name' }], { as: member, headers: JSON_ACCEPT }),
    403,
    'Property name may not be removed.',
  );
  expectError(
    await api.post('/v2/images', { os_glance_import_task: 'x' }, { as: member, headers: JSON_ACCEPT }),
    403,
    "Attribute 'os_glance_import_task' is reserved.",
  );
});

test("a policy rule naming a property the caller may not read sees no such property, as in Glance's protected image target", async () => {
  // x_none_read: a member may create it, nobody may read it.
  const policy = [
    `"get_image": "role:admin or (role:reader and project_id:%(project_id)s and not 'yes':%(x_none_read)s)"`,
    `"modify_image": "'yes':%(x_none_read)s"`,
    `"download_image": "not 'restricted':%(x_none_read)s"`,
  ].join('\n');
  const own = await startGazeInProcess(
    { DEFAULT: { property_protection_file: path.join(dir, 'property-protections.conf') }, oslo_policy: { policy_file: 'policy.yaml' } },
    { besideConfig: { 'policy.yaml': policy } },
  );
  try {
    const ownApi = client(own.url);
    const marked = await ownApi.createImage({ name: 'marked', x_none_read: 'yes' }, member);
    // get_image: the rule's `not 'yes':…` holds, since the caller sees no x_none_read at all
    assert.equal((await ownApi.get(`/v2/images/${marked.id}`, { as: member })).status, 200);
    // modify_image: `'yes':…` fails for the same reason
    expectError(
      await ownApi.patch(`/v2/images/${marked.id}`, [{ op: 'replace', path: '/name', value: 'renamed' }], { as: member, ...AS_JSON }),
      403,
      'You are not authorized to complete modify_image action.',
    );
    const restricted = await ownApi.createImage({ name: 'restricted', disk_format: 'raw', container_format: 'bare', x_none_read: 'restricted' }, member);
    assert.equal((await ownApi.upload(restricted.id, 'restricted bytes', admin)).status, 204);
    const download = await ownApi.get(`/v2/images/${restricted.id}/file`, { as: member });
    assert.equal(download.status, 200, download.text);
    assert.equal(download.text, 'restricted bytes');
  } finally {
    await own.stop();
  }
});

test("the service refuses to start when a rule list holds both '@' and '!'", async () => {
  const bad = mkdtempSync(path.join(tmpdir(), 'gaze-pp-bad-'));
  try {
    const file = path.join(bad, 'pp.conf');
    writeFileSync(file, '[^x_]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n');
    const config = loadConfig(undefined, {}, { DEFAULT: { property_protection_file: file, data_dir: path.join(bad, 'data') } });
    await assert.rejects(createApp(config), /Invalid configuration in property protection file .*\[\^x_\] create.*'@' and '!' are mutually exclusive/);
    writeFileSync(file, '[x(]\ncreate = @\nread = @\nupdate = @\ndelete = @\n');
    await assert.rejects(createApp(config), /malformed property protection rule \[x\(\]/);
  } finally {
    rmSync(bad, { recursive: true, force: true });
  }
});
