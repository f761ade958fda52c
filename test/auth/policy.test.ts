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
