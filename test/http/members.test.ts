import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import type { App } from '../../src/app.ts';
import { client, expectError, JSON_ACCEPT, alice, bob, carol } from '../helpers/http.ts';
import { setClockOffset } from '../../src/domain/time.ts';

let gaze: RunningGaze & { app: App };
let api: ReturnType<typeof client>;
before(async () => {
  gaze = await startGazeInProcess({ DEFAULT: { image_member_quota: '2' } });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

test('the owner shares an image; the member accepts it and then sees it in its list', async () => {
  const img = await api.createImage({ name: 'to-share' }, alice);
  const added = await api.post(`/v2/images/${img.id}/members`, { member: 'bob-project' }, { as: alice });
  assert.equal(added.status, 200);
  assert.equal(added.json.member_id, 'bob-project');
  assert.equal(added.json.image_id, img.id);
  assert.equal(added.json.status, 'pending');
  assert.equal(added.json.schema, '/v2/schemas/member');
  assert.match(added.json.created_at, /Z$/);

  const bobList = async () => (await api.get('/v2/images', { as: bob })).json.images.map((i: any) => i.id);
  assert.ok(!(await bobList()).includes(img.id), 'pending: not in the default list');
  assert.equal((await api.get(`/v2/images/${img.id}`, { as: bob })).status, 200, 'pending: still visible by id');

  const accepted = await api.put(`/v2/images/${img.id}/members/bob-project`, { json: { status: 'accepted' }, as: bob });
  assert.equal(accepted.status, 200);
  assert.equal(accepted.json.status, 'accepted');
  assert.ok((await bobList()).includes(img.id));

  const list = await api.get(`/v2/images/${img.id}/members`, { as: alice });
  assert.equal(list.json.schema, '/v2/schemas/members');
  assert.deepEqual(
    list.json.members.map((m: any) => [m.member_id, m.status]),
    [['bob-project', 'accepted']],
  );
  assert.equal((await api.get(`/v2/images/${img.id}/members/bob-project`, { as: bob })).json.status, 'accepted');

  const rejected = await api.put(`/v2/images/${img.id}/members/bob-project`, { json: { status: 'rejected' }, as: bob });
  assert.equal(rejected.json.status, 'rejected');
  assert.ok(!(await bobList()).includes(img.id));

  assert.equal((await api.del(`/v2/images/${img.id}/members/bob-project`, { as: alice })).status, 204);
  assert.equal((await api.get(`/v2/images/${img.id}`, { as: bob })).status, 404, 'no longer a member: invisible');
});

test('a status set to the one the member already has changes nothing, not even updated_at (as in Glance)', async () => {
  const img = await api.createImage({ name: 'same status' }, alice);
  const added = await api.post(`/v2/images/${img.id}/members`, { member: 'bob-project' }, { as: alice });
  setClockOffset(5_000); // later, as seen by the service's clock
  try {
    const same = await api.put(`/v2/images/${img.id}/members/bob-project`, { json: { status: 'pending' }, as: bob });
    assert.equal(same.status, 200);
    assert.equal(same.json.updated_at, added.json.updated_at);
    assert.equal((await api.get(`/v2/images/${img.id}/members/bob-project`, { as: alice })).json.updated_at, added.json.updated_at);
    const changed = await api.put(`/v2/images/${img.id}/members/bob-project`, { json: { status: 'accepted' }, as: bob });
    assert.notEqual(changed.json.updated_at, added.json.updated_at);
    assert.equal(changed.json.created_at, added.json.created_at);
  } finally {
    setClockOffset(0);
  }
});

test('member calls refuse bad bodies, duplicates, non-owners and non-shared images', async () => {
  const img = await api.createImage({}, alice);
  const add = (body: unknown, as = alice) => api.call('POST', `/v2/images/${img.id}/members`, { json: body, as, headers: JSON_ACCEPT });
  expectError(await add({}), 400, 'Member to be added not specified');
  expectError(await add({ member: '' }), 400, "Member can't be empty");
  // Python's falsy values are all empty to Glance; another non-string is not a member id.
  for (const member of [null, false, 0, [], {}]) expectError(await add({ member }), 400, "Member can't be empty");
  expectError(await add({ member: 5 }), 400, 'Expected a member in the form: {"member": "image_id"}');
  expectError(await add(['x']), 400, 'Expected a member in the form: {"member": "image_id"}');
  // No body at all is Glance's deserializer's own 400, before the image is looked at.
  const bare = { as: alice, headers: JSON_ACCEPT };
  expectError(await api.call('POST', `/v2/images/${img.id}/members`, bare), 400, 'Body expected in request.');
  expectError(await api.call('PUT', `/v2/images/${img.id}/members/bob-project`, bare), 400, 'Body expected in request.');
  // Beyond the Basic Multilingual Plane: Glance's database layer refuses it (compared with Glance 25).
  expectError(await add({ member: 'é💥' }), 400, "Member can't contain 4 byte unicode characters.");
  assert.equal((await add({ member: 'bob-project' })).status, 200);
  expectError(await add({ member: 'bob-project' }), 409, `Member bob-project is duplicated for image ${img.id}`);
  assert.equal((await add({ member: 'carol-project' })).status, 200);
  expectError(
    await add({ member: 'dave-project' }),
    413,
    `Image member limit exceeded for image ${img.id}: The limit has been exceeded on the number of allowed image members for this image. Attempted: 3, Maximum: 2:`,
  );
  // A refusal by the member rules keeps oslo.policy's sentence (Glance 25 under its new defaults, compared
  // side by side); Glance's own "Not allowed to ..." words its domain's refusals: an image not shared,
  // and the owner checks of the deprecated rules.
  expectError(await add({ member: 'x' }, bob), 403, 'You are not authorized to complete add_member action.');
  // The member's value is looked at after the image: who cannot see it hears 404 first, as from Glance.
  const hidden = await api.createImage({ visibility: 'private' }, alice);
  const addHidden = await api.call('POST', `/v2/images/${hidden.id}/members`, { json: { member: true }, as: bob, headers: JSON_ACCEPT });
  expectError(addHidden, 404, `Image ${hidden.id} not found.`);

  const update = (body: unknown, member = 'bob-project', as = bob) =>
    api.put(`/v2/images/${img.id}/members/${member}`, { json: body, as, headers: JSON_ACCEPT });
  expectError(await update({}), 400, 'Status not specified');
  expectError(await update({ status: 'maybe' }), 400, 'Incorrect request: Status must be "pending", "accepted" or "rejected".');
  expectError(await update(['accepted']), 400, 'Expected a status in the form: {"status": "status"}');
  expectError(await update({ status: 'accepted' }, 'bob-project', alice), 403, 'You are not authorized to complete modify_member action.');
  // Another member does not find bob's membership at all, as in Glance (its repository shows a member
  // only its own): 404 whatever the status says.
  expectError(await update({ status: 'accepted' }, 'bob-project', carol), 404, `bob-project not found in the member list of the image ${img.id}.`);
  expectError(await update({ status: 'accepted' }, 'nobody', alice), 404, /nobody/);
  // The status's value is judged after the image, the member and the caller, as in Glance.
  expectError(await update({ status: true }, 'bob-project', carol), 404, /bob-project not found/);
  expectError(await update({ status: true }, 'bob-project', alice), 403, 'You are not authorized to complete modify_member action.');
  const hiddenUpdate = await api.put(`/v2/images/${hidden.id}/members/bob-project`, { json: { status: true }, as: bob, headers: JSON_ACCEPT });
  expectError(hiddenUpdate, 404, `Image ${hidden.id} not found.`);
  // A status of another type is refused as a wrong value, as Glance's member refuses it.
  for (const status of [true, null, 1, ['accepted']]) {
    expectError(await update({ status }), 400, 'Incorrect request: Status must be "pending", "accepted" or "rejected".');
  }

  expectError(await api.get(`/v2/images/${img.id}/members/carol-project`, { as: bob, headers: JSON_ACCEPT }), 404, /carol-project/);
  const bobSees = (await api.get(`/v2/images/${img.id}/members`, { as: bob })).json.members.map((m: any) => m.member_id);
  assert.deepEqual(bobSees, ['bob-project'], 'a member sees only its own membership');
  expectError(
    await api.del(`/v2/images/${img.id}/members/bob-project`, { as: bob, headers: JSON_ACCEPT }),
    403,
    'You are not authorized to complete delete_member action.',
  );
  expectError(
    await api.del(`/v2/images/${img.id}/members/nobody`, { as: alice, headers: JSON_ACCEPT }),
    404,
    `nobody not found in the member list of the image ${img.id}.`,
  );
  // A member looks for another's membership (or none) before the policy is asked: not found.
  expectError(await api.del(`/v2/images/${img.id}/members/carol-project`, { as: bob, headers: JSON_ACCEPT }), 404, /carol-project not found/);
  expectError(await api.del(`/v2/images/${img.id}/members/nobody`, { as: bob, headers: JSON_ACCEPT }), 404, /nobody not found/);
  const stillThere = (await api.get(`/v2/images/${img.id}/members`, { as: alice })).json.members.map((m: any) => m.member_id);
  assert.deepEqual(stillThere.sort(), ['bob-project', 'carol-project']);

  const priv = await api.createImage({ visibility: 'private' }, alice);
  expectError(
    await api.call('POST', `/v2/images/${priv.id}/members`, { json: { member: 'bob-project' }, as: alice, headers: JSON_ACCEPT }),
    403,
    `Not allowed to create members for image ${priv.id}.`,
  );
  expectError(
    await api.get(`/v2/images/${priv.id}/members`, { as: alice, headers: JSON_ACCEPT }),
    403,
    `Not allowed to list members for image ${priv.id}: Only shared images have members.`,
  );
  expectError(await api.get(`/v2/images/${priv.id}/members`, { as: bob, headers: JSON_ACCEPT }), 404, `Image ${priv.id} not found.`);
  expectError(await api.get(`/v2/images/${priv.id}/members/bob-project`, { as: alice, headers: JSON_ACCEPT }), 404, 'Only shared images have members.');
});

test("the member API weighs an image's visibility before the member policy, as Glance 25 does", async () => {
  // A project holding only the service role: the policy does not let it read images (get_image).
  const service = { project: 'service-project', roles: 'service', user: 'nova' };
  const pub = await api.createImage({ visibility: 'public', owner: 'alice-project' });
  const call = (method: string, path: string, json?: unknown) => api.call(method, path, { json, as: service, headers: JSON_ACCEPT });
  expectError(await call('POST', `/v2/images/${pub.id}/members`, { member: 'x' }), 403, `Not allowed to create members for image ${pub.id}.`);
  expectError(await call('GET', `/v2/images/${pub.id}/members`), 403, `Not allowed to list members for image ${pub.id}: Only shared images have members.`);
  expectError(await call('GET', `/v2/images/${pub.id}/members/alice-project`), 404, 'Only shared images have members.');
  expectError(await call('DELETE', `/v2/images/${pub.id}/members/alice-project`), 403, `Not allowed to delete members for image ${pub.id}.`);
  // On a shared image it is a member of, every member call is the bare 404 of an image it may not read.
  const shared = await api.createImage({ visibility: 'shared' }, alice);
  assert.equal((await api.post(`/v2/images/${shared.id}/members`, { member: 'service-project' }, { as: alice })).status, 200);
  const own = `/v2/images/${shared.id}/members/service-project`;
  for (const [method, path, json] of [
    ['GET', `/v2/images/${shared.id}/members`],
    ['GET', own],
    ['PUT', own, { status: 'accepted' }],
    ['POST', `/v2/images/${shared.id}/members`, { member: 'x' }],
    ['DELETE', own],
  ] as Array<[string, string, unknown?]>) {
    expectError(await call(method, path, json), 404, 'The resource could not be found.');
  }
});

test('a member removed while its status change is under way: 404, as for a member that is not there', async () => {
  const img = await api.createImage({ name: 'removed meanwhile', visibility: 'shared' }, alice);
  assert.equal((await api.post(`/v2/images/${img.id}/members`, { member: 'bob-project' }, { as: alice })).status, 200);
  const members = gaze.app.deps.members;
  const setStatus = members.setStatus.bind(members);
  // The owner's DELETE commits between the member's lookup and its status write.
  members.setStatus = async (imageId, member, status) => {
    await members.remove(imageId, member);
    return setStatus(imageId, member, status);
  };
  try {
    expectError(
      await api.put(`/v2/images/${img.id}/members/bob-project`, { json: { status: 'accepted' }, as: bob, headers: JSON_ACCEPT }),
      404,
      `bob-project not found in the member list of the image ${img.id}.`,
    );
  } finally {
    members.setStatus = setStatus;
  }
});
