import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, type Caller } from '../helpers/http.ts';
import type { App } from '../../src/app.ts';

// An operator's policy.yaml means what it means to Glance 25 (compared side by side with it): who is
// admin comes from context_is_admin, a rule naming an undefined rule falls to `default`, and a rule
// that cannot be parsed denies its action alone while the service runs.
const POLICY = `
"context_is_admin": "role:cloud_admin"
"add_member": "rule:admin_or_owner"
"communitize_image": "role:admin and or ((("
"delete_member": "role:member"
"get_member": "role:member"
"get_image": "role:cloud_admin or (not 'yes':%(x_hide)s and ((role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)) or 'public':%(visibility)s))"
"add_image": "role:cloud_admin or (role:member and 'private':%(visibility)s) or (role:member and 'shared':%(visibility)s)"
"publicize_image": "'public':%(visibility)s"
`;

const owner: Caller = { project: 'qb', roles: 'member,reader', user: 'ub' };
const admin: Caller = { project: 'qa', roles: 'admin,member,reader', user: 'ua' };
const cloudAdmin: Caller = { project: 'qa', roles: 'cloud_admin,member,reader', user: 'uc' };
const sharedWith: Caller = { project: 'qm', roles: 'member,reader', user: 'um' };

let gaze: RunningGaze & { app: App };
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess({ oslo_policy: { policy_file: 'policy.yaml' } }, { besideConfig: { 'policy.yaml': POLICY } });
  api = client(gaze.url);
});
after(() => gaze.stop());

test('context_is_admin decides who is admin: role admin loses the view of other projects, cloud_admin gains it', async () => {
  const image = await api.createImage({ name: 'private-of-qb', visibility: 'private' }, owner);
  const listed = async (as: Caller) => ((await api.get('/v2/images?name=private-of-qb', { as })).json as { images: unknown[] }).images.length;

  assert.equal(await listed(admin), 0);
  // not admin any more: the image is not found at all (Glance's database finds no such image)
  expectError(await api.get(`/v2/images/${image.id}`, { as: admin, headers: JSON_ACCEPT }), 404, `No image found with ID ${image.id}`);
  assert.equal(await listed(cloudAdmin), 1);
  assert.equal((await api.get(`/v2/images/${image.id}`, { as: cloudAdmin })).status, 200);
  assert.equal((await api.get(`/v2/images/${image.id}`, { as: owner })).status, 200);
  // get_image names no role admin here: the policy hides the image from an admin of its project without reader, with Glance's bare 404
  const adminOfQb: Caller = { project: 'qb', roles: 'admin', user: 'ub2' };
  expectError(await api.get(`/v2/images/${image.id}`, { as: adminOfQb, headers: JSON_ACCEPT }), 404, 'The resource could not be found.');
});

test('a rule that names an undefined rule is decided by `default` (allow), as oslo.policy does', async () => {
  const image = await api.createImage({ name: 'shared-of-qb', visibility: 'shared' }, owner);
  assert.equal((await api.post(`/v2/images/${image.id}/members`, { member: sharedWith.project }, { as: owner })).status, 200);
  // Glance 25 has no admin_or_owner rule: a member that is not the owner may add members too
  const added = await api.post(`/v2/images/${image.id}/members`, { member: 'qz' }, { as: sharedWith });
  assert.equal(added.status, 200, added.text);
  assert.equal((added.json as { member_id: string }).member_id, 'qz');
  // and with delete_member opened to any member, a member that is not the owner may remove its own
  // membership: no owner check of Gaze's own (the default rule keeps it to the owner)
  assert.equal((await api.del(`/v2/images/${image.id}/members/${sharedWith.project}`, { as: sharedWith })).status, 204);
  expectError(await api.get(`/v2/images/${image.id}/members/${sharedWith.project}`, { as: owner, headers: JSON_ACCEPT }), 404, /not found/);
});

test('a rule that cannot be parsed denies its own action; the others work', async () => {
  const refused = await api.post('/v2/images', { name: 'c', visibility: 'community' }, { as: cloudAdmin, headers: JSON_ACCEPT });
  expectError(refused, 403, 'You are not authorized to complete communitize_image action.');
  assert.equal((await api.post('/v2/images', { name: 'c', visibility: 'private' }, { as: owner })).status, 201);
});

test("a membership the get_member rule refuses: hidden as not found on GET (the rule's sentence kept), 403 on PUT, as Glance's member controller", async () => {
  const image = await api.createImage({ name: 'shared-of-qb', visibility: 'shared' }, owner);
  assert.equal((await api.post(`/v2/images/${image.id}/members`, { member: 'qm' }, { as: owner })).status, 200);
  const readerOfQm: Caller = { project: 'qm', roles: 'reader', user: 'ur' };
  const member = `/v2/images/${image.id}/members/qm`;
  assert.equal((await api.get(`/v2/images/${image.id}`, { as: readerOfQm })).status, 200, 'get_image lets it read the image');
  expectError(await api.get(member, { as: readerOfQm, headers: JSON_ACCEPT }), 404, 'You are not authorized to complete get_member action.');
  expectError(
    await api.put(member, { json: { status: 'accepted' }, as: readerOfQm, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete get_member action.',
  );
  // The list shows only what get_member lets it see: nothing.
  const listed = await api.get(`/v2/images/${image.id}/members`, { as: readerOfQm });
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.json.members, []);
  assert.equal((await api.get(`/v2/images/${image.id}/members`, { as: sharedWith })).json.members.length, 1);
  assert.equal((await api.put(member, { json: { status: 'accepted' }, as: sharedWith })).status, 200);
});

test('the list leaves out each image get_image refuses, as Glance filters its page; the next link follows the last image kept', async () => {
  const hidden = await api.createImage({ name: 'listed-or-not', visibility: 'public', x_hide: 'yes' }, cloudAdmin);
  const shown = await api.createImage({ name: 'listed-or-not', visibility: 'public' }, cloudAdmin);
  const names = async (as: Caller, query = '') => {
    const reply = await api.get(`/v2/images?name=listed-or-not&sort=created_at:asc${query}`, { as });
    assert.equal(reply.status, 200, reply.text);
    return reply.json as { images: Array<{ id: string }>; next?: string };
  };
  assert.deepEqual(
    (await names(sharedWith)).images.map((i) => i.id),
    [shown.id],
  );
  expectError(await api.get(`/v2/images/${hidden.id}`, { as: sharedWith, headers: JSON_ACCEPT }), 404, 'The resource could not be found.');
  assert.deepEqual(
    (await names(cloudAdmin)).images.map((i) => i.id),
    [hidden.id, shown.id],
  );
  // A page whose every image is left out ends the listing (no next link), as Glance's does.
  const first = await names(sharedWith, '&limit=1');
  assert.deepEqual(first.images, []);
  assert.equal(first.next, undefined);
  const page = await names(cloudAdmin, '&limit=1');
  assert.deepEqual(
    page.images.map((i) => i.id),
    [hidden.id],
  );
  assert.match(page.next ?? '', new RegExp(`marker=${hidden.id}`));
});

test("add_image and publicize_image see the visibility asked for, 'private' when none is", async () => {
  assert.equal((await api.post('/v2/images', { name: 'no-visibility' }, { as: owner })).status, 201);
  assert.equal((await api.post('/v2/images', { name: 'private', visibility: 'private' }, { as: owner })).status, 201);
  expectError(
    await api.post('/v2/images', { name: 'community', visibility: 'community' }, { as: owner, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete add_image action.',
  );
  const made = await api.post('/v2/images', { name: 'public', visibility: 'public' }, { as: cloudAdmin });
  assert.equal(made.status, 201, made.text);
});
