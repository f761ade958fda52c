import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Policy, imageTarget } from '../../src/auth/policy.ts';
import { makeContext } from '../../src/auth/context.ts';

const ctx = (projectId: string, roles: string[]) => makeContext({ requestId: 'req-1', projectId, roles });
const image = (owner: string, visibility = 'shared') => imageTarget({ owner, visibility });

test('Glance default rules: members modify their own images, readers only read, admins anything', () => {
  const policy = new Policy();
  assert.equal(policy.check('modify_image', ctx('p1', ['member', 'reader']), image('p1')), true);
  assert.equal(policy.check('modify_image', ctx('p1', ['reader']), image('p1')), false);
  assert.equal(policy.check('modify_image', ctx('p2', ['member']), image('p1')), false);
  assert.equal(policy.check('modify_image', ctx('p2', ['admin']), image('p1')), true);
  assert.equal(policy.check('get_image', ctx('p2', ['reader']), image('p1', 'public')), true);
  assert.equal(policy.check('get_image', ctx('p2', ['reader']), image('p1', 'private')), false);
  assert.equal(policy.check('download_image', ctx('p2', ['reader']), image('p1', 'public')), false, 'download needs member');
  assert.equal(policy.check('publicize_image', ctx('p1', ['member']), image('p1')), false);
  assert.equal(policy.check('tasks_api_access', ctx('p1', ['admin']), {}), true);
  assert.equal(policy.check('get_task', ctx('p1', []), {}), true, 'empty rule allows');
  assert.equal(policy.check('modify_member', ctx('p2', ['member']), { ...image('p1'), member_id: 'p2' }), true);
});

test('a missing target field never matches, even against a missing credential', () => {
  const policy = new Policy({ odd: 'project_id:%(nothing)s' });
  assert.equal(policy.check('odd', makeContext({ requestId: 'r', projectId: null, roles: [] }), {}), false);
  // Nor does a credential the caller lacks meet a target's None (oslo.policy lets "None" meet "None").
  const noProject = makeContext({ requestId: 'r', projectId: null, roles: ['reader'] });
  assert.equal(new Policy().check('get_images', noProject, { project_id: null }), false);
  assert.equal(new Policy().check('get_image', noProject, imageTarget({ owner: null, visibility: 'private' })), false);
});

test('check strings: not, parentheses, @, !, rule references and literals', () => {
  const policy = new Policy({
    a: 'not role:banned and (role:x or role:y)',
    b: '@',
    c: '!',
    d: 'rule:a or rule:c',
    e: "'public':%(visibility)s",
  });
  assert.equal(policy.check('a', ctx('p', ['y']), {}), true);
  assert.equal(policy.check('a', ctx('p', ['y', 'banned']), {}), false);
  assert.equal(policy.check('b', ctx('p', []), {}), true);
  assert.equal(policy.check('c', ctx('p', ['admin']), {}), false);
  assert.equal(policy.check('d', ctx('p', ['x']), {}), true);
  assert.equal(policy.check('e', ctx('p', []), { visibility: 'public' }), true);
  assert.equal(policy.check('e', ctx('p', []), { visibility: 'private' }), false);
});

test('a rule that cannot be understood denies, as in oslo.policy, and says so; the service still starts', () => {
  const policy = new Policy({ broken: '(role:x', trailing: 'role:admin and or (((', partly: 'role:x or garbage' });
  assert.equal(policy.check('broken', ctx('p', ['x']), {}), false);
  assert.equal(policy.check('trailing', ctx('p', ['admin']), {}), false);
  // a single check without a colon denies alone: the rest of the rule still counts
  assert.equal(policy.check('partly', ctx('p', ['x']), {}), true);
  assert.equal(policy.check('partly', ctx('p', ['y']), {}), false);
  assert.ok(policy.warnings.some((w) => /^rule 'broken': unbalanced parentheses .*: the rule denies$/.test(w)));
  assert.ok(policy.warnings.some((w) => /^rule 'trailing': .*: the rule denies$/.test(w)));
  assert.ok(policy.warnings.some((w) => /^rule 'partly': cannot parse policy check 'garbage' .*: that check denies$/.test(w)));
  assert.deepEqual(new Policy().warnings, [], "Glance's own defaults need no warning");
});

test("oslo.policy's other spellings: operators in any case, the old list syntax; is_admin is no credential", () => {
  const policy = new Policy({
    upper: 'role:x OR role:y',
    negated: 'NOT role:banned AND role:x',
    listed: [['role:x', 'project_id:%(project_id)s'], 'role:y'],
    openList: [],
    asAdmin: 'is_admin:True',
  });
  assert.equal(policy.check('upper', ctx('p', ['y']), {}), true);
  assert.equal(policy.check('negated', ctx('p', ['x']), {}), true);
  assert.equal(policy.check('negated', ctx('p', ['x', 'banned']), {}), false);
  assert.equal(policy.check('listed', ctx('p', ['x']), { project_id: 'p' }), true);
  assert.equal(policy.check('listed', ctx('p', ['x']), { project_id: 'q' }), false);
  assert.equal(policy.check('listed', ctx('q', ['y']), { project_id: 'p' }), true);
  assert.equal(policy.check('openList', ctx('p', []), {}), true);
  // oslo.context's policy values have no is_admin: such a check never matches in Glance 25
  assert.equal(policy.check('asAdmin', ctx('p', ['admin']), {}), false);
  assert.deepEqual(policy.warnings, []);
});

test("rules mean what they mean to Debian's oslo.policy: its tokens, its literals, its credentials, Glance's image target", () => {
  // Each answer below is oslo.policy's own (3.x, Glance 25's), for a member of p1 and this target.
  const target = { project_id: 'p1', owner: 'p1', visibility: 'public', protected: true, license: 'restricted', member_id: null, os_hidden: false, min_ram: 0 };
  const member = makeContext({ requestId: 'r', projectId: 'p1', userId: 'u', roles: ['member'] });
  const answers: Array<[string, boolean]> = [
    ['role:admin or(role:member)', false], // `or(role:member` is one check, and the `)` after it unbalanced
    ['(role:admin)or(role:member)', false], // one role check, of the role `admin)or(role:member`
    ['role:admin or (role:member)', true],
    ["not 'restricted':%(license)s", false],
    ['not True:%(protected)s', false],
    ['True:%(protected)s', true],
    ['False:%(os_hidden)s', true],
    ['not is_admin_project:True', false],
    ["'public':%(visibility)s", true],
    ['"public":%(visibility)s', true],
    ['0:%(min_ram)s', true],
    ['roles:member', true],
    ['project_id:%(member_id)s', false],
    ['None:%(member_id)s', true],
    ["role:member and 'x y':%(visibility)s", false], // a quoted word with a space: the rule cannot be read
    ["not 'restricted':%(nothing)s", true], // a field the target lacks fails its check
    ['(((role:member)))', true],
    ['role:member)', false],
  ];
  for (const [rule, expected] of answers) assert.equal(new Policy({ r: rule }).check('r', member, target), expected, rule);
  // Glance's ImageTarget: the image's fields and its extra properties, `id` and `project_id` among them.
  const image = imageTarget({
    id: 'i1',
    owner: 'p1',
    visibility: 'shared',
    protected: true,
    os_hidden: false,
    status: 'active',
    disk_format: 'qcow2',
    min_ram: 512,
    properties: { license: 'restricted', owner: 'not-this' },
  });
  const download = new Policy({ download_image: "role:member and project_id:%(project_id)s and not 'restricted':%(license)s" });
  assert.equal(download.check('download_image', member, image), false);
  assert.equal(download.check('download_image', member, imageTarget({ owner: 'p1', visibility: 'shared', properties: {} })), true);
  const fields = new Policy({ r: "True:%(protected)s and 'qcow2':%(disk_format)s and 512:%(min_ram)s and 'i1':%(id)s and project_id:%(owner)s" });
  assert.equal(fields.check('r', member, image), true, 'a core field wins over an extra property of its name');
});

test('a policy file that is not valid YAML is named in the error', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-policy-'));
  try {
    const file = path.join(dir, 'broken.yaml');
    writeFileSync(file, '"a": [unclosed\n');
    assert.throws(
      () => Policy.fromFiles([file]),
      (err: Error) => err.message.startsWith(`${file}: `),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a reference to a rule nobody defined is decided by the 'default' rule, as oslo.policy does", () => {
  // Glance 25 has no admin_or_owner: legacy files that use it without defining it get `default` (allow).
  const open = new Policy({ add_member: 'rule:admin_or_owner' });
  assert.equal(open.has('admin_or_owner'), false);
  assert.equal(open.check('add_member', ctx('p2', ['member']), image('p1')), true);
  assert.ok(open.warnings.some((w) => /rule 'add_member' refers to rule 'admin_or_owner', which is not defined/.test(w)));
  const closed = new Policy({ add_member: 'rule:admin_or_owner', default: 'role:admin' });
  assert.equal(closed.check('add_member', ctx('p2', ['member']), image('p1')), false);
  assert.equal(closed.check('add_member', ctx('p2', ['admin']), image('p1')), true);
  // a `default` that names a missing rule itself denies rather than loops
  const looping = new Policy({ add_member: 'rule:nowhere', default: 'rule:elsewhere' });
  assert.equal(looping.check('add_member', ctx('p2', ['admin']), image('p1')), false);
  assert.equal(looping.check('no_such_action', ctx('p2', ['admin']), {}), false);
});

test('is_admin is the context_is_admin rule: an operator can take admin from role admin and give it to another', () => {
  assert.equal(new Policy().isAdmin(ctx('p', ['admin'])), true);
  assert.equal(new Policy().isAdmin(ctx('p', ['member'])), false);
  const moved = new Policy({ context_is_admin: 'role:cloud_admin' });
  assert.equal(moved.isAdmin(ctx('p', ['admin', 'member'])), false);
  assert.equal(moved.isAdmin(ctx('p', ['cloud_admin'])), true);
  // the caller's own credentials are the target
  assert.equal(new Policy({ context_is_admin: 'project_id:%(project_id)s and role:x' }).isAdmin(ctx('p', ['x'])), true);
});

test('a policy file overrides defaults (YAML or JSON)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-policy-'));
  try {
    const file = path.join(dir, 'policy.yaml');
    writeFileSync(file, `"copy_image": "'public':%(visibility)s"\n"publicize_image": "role:member"\n`);
    const policy = Policy.fromFiles([file]);
    assert.equal(policy.check('publicize_image', ctx('p', ['member']), {}), true);
    assert.equal(policy.check('copy_image', ctx('p', ['member']), { visibility: 'public' }), true);
    assert.equal(policy.check('modify_image', ctx('p', ['member']), image('p')), true, 'other rules keep their defaults');
    assert.throws(
      () => policy.enforce('copy_image', ctx('p', ['member']), { visibility: 'private' }),
      /You are not authorized to complete copy_image action\./,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("enforce_new_defaults off: each deprecated rule is OR'd in, unless the policy file sets that rule", () => {
  const legacy = new Policy({}, { enforceNewDefaults: false });
  assert.equal(legacy.legacyDefaults, true);
  assert.equal(new Policy().legacyDefaults, false);
  // rule:default is empty: anyone passes the rules it was the deprecated default of.
  assert.equal(legacy.check('modify_image', ctx('p1', ['reader']), image('p1')), true);
  assert.equal(legacy.check('add_image', ctx('p1', []), { project_id: 'p1', owner: 'p1' }), true);
  assert.equal(legacy.check('get_images', ctx('p2', []), {}), true);
  assert.equal(legacy.check('get_metadef_namespaces', ctx('p2', []), {}), true, 'rule:metadef_default');
  // Rules without a deprecated one are the same in both modes.
  assert.equal(legacy.check('publicize_image', ctx('p1', ['member']), image('p1')), false);
  assert.equal(legacy.check('copy_image', ctx('p1', ['member']), image('p1')), false);
  assert.equal(legacy.check('tasks_api_access', ctx('p1', ['member']), {}), false);
  // The cache API's deprecated rule is manage_image_cache, itself admin only.
  assert.equal(legacy.check('cache_list', ctx('p1', ['member']), {}), false);
  // A rule the operator wrote is taken as written.
  const written = new Policy({ modify_image: 'role:admin' }, { enforceNewDefaults: false });
  assert.equal(written.check('modify_image', ctx('p1', ['member']), image('p1')), false);
  assert.equal(written.check('delete_image', ctx('p1', ['reader']), image('p1')), true);
  // The deprecated rule refers to `default` by name: an operator's `default` counts.
  const strictDefault = new Policy({ default: 'role:admin' }, { enforceNewDefaults: false });
  assert.equal(strictDefault.check('modify_image', ctx('p1', ['reader']), image('p1')), false);
  assert.equal(strictDefault.check('modify_image', ctx('p1', ['member']), image('p1')), true, 'the new rule still passes a member');
});

test('an image property named __proto__ is a property of the target like any other', () => {
  const policy = new Policy({ get_image: "'x':%(__proto__)s" });
  const ctx = makeContext({ requestId: 'r', projectId: 'p', roles: ['reader'] });
  const image = { owner: 'p', visibility: 'private', properties: JSON.parse('{"__proto__": "x"}') as Record<string, string> };
  const target = imageTarget(image);
  assert.equal(Object.getPrototypeOf(target), Object.prototype);
  assert.equal(policy.check('get_image', ctx, target), true);
});
