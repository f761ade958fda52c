import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Policy } from '../../src/auth/policy.ts';
import { makeContext } from '../../src/auth/context.ts';
import { PropertyProtectionConfigError, PropertyProtections, loadPropertyProtections } from '../../src/auth/property-protections.ts';

const policy = new Policy();
const roles = (...r: string[]) => ({ roles: r });
const parse = (text: string, format = 'roles', p = policy) => PropertyProtections.parse(text, format, p);

// Glance's sample file (spec §5).
const SAMPLE = `
[^x_.*]
create = admin,member,_member_
read = admin,member,_member_
update = admin,member,_member_
delete = admin,member,_member_
[.*]
create = admin
read = admin
update = admin
delete = admin
`;

test('section names are regexes kept verbatim and matched with search semantics', () => {
  const pp = parse(SAMPLE);
  assert.ok(pp.allows('create', 'x_foo', roles('member')));
  assert.ok(!pp.allows('create', 'foo', roles('member')), '[.*] is admin only');
  assert.ok(pp.allows('create', 'foo', roles('admin')));
  // search, not full match: a pattern without anchors matches anywhere in the name
  const search = parse('[foo]\ncreate = @\nread = @\nupdate = @\ndelete = @\n');
  assert.ok(search.allows('read', 'my_foo_prop', roles()));
  assert.ok(!search.allows('read', 'bar', roles()));
  // brackets inside a section name (the `ini` package would mangle these)
  const classes = parse('[a[0-9]+$]\nread = @\ncreate = !\nupdate = !\ndelete = !\n');
  assert.ok(classes.allows('read', 'xa12', roles()));
  assert.ok(!classes.allows('read', 'xa12b', roles()));
});

test('the first matching section in file order wins', () => {
  const pp = parse(`
[x_foo_matcher]
create = admin
read = admin
update = admin
delete = admin
[x_foo_.*]
create = @
read = @
update = @
delete = @
`);
  assert.ok(!pp.allows('read', 'x_foo_matcher', roles('member')), 'the earlier, stricter section applies');
  assert.ok(pp.allows('read', 'x_foo_other', roles('member')));
  const reversed = parse('[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n[^secret$]\ncreate = !\nread = !\nupdate = !\ndelete = !\n');
  assert.ok(reversed.allows('read', 'secret', roles()), '[.*] comes first and shadows the later section');
});

test("'@' allows everyone, '!' no one, admins included; both in one list is a configuration error", () => {
  const pp = parse('[^all]\ncreate = @\nread = @\nupdate = @\ndelete = @\n[^none]\ncreate = !\nread = !\nupdate = !\ndelete = !\n');
  assert.ok(pp.allows('create', 'all_x', roles()));
  assert.ok(pp.allows('delete', 'all_x', roles('joe_soap')));
  assert.ok(!pp.allows('create', 'none_x', roles('admin')));
  assert.ok(!pp.allows('read', 'none_x', roles('admin', 'member')));
  assert.throws(
    () => parse('[^x]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n'),
    (err: Error) => err instanceof PropertyProtectionConfigError && /\[\^x\] create.*'@' and '!' are mutually exclusive/.test(err.message),
  );
  assert.throws(() => parse('[^x]\ncreate = admin\nread = !, member, @\nupdate = @\ndelete = @\n'), PropertyProtectionConfigError);
});

test('an invalid regex, a missing operation or an unparsable line is a configuration error', () => {
  assert.throws(() => parse('[x(]\ncreate = @\nread = @\nupdate = @\ndelete = @\n'), /malformed property protection rule \[x\(\]/);
  assert.throws(() => parse('[x]\ncreate = @\nread = @\nupdate = @\n'), /\[x\] has no 'delete' option/);
  assert.throws(() => parse('[x]\ncreate @\n'), /cannot parse/);
  assert.throws(() => parse('create = @\n'), /before any \[section\]/);
  assert.throws(() => parse('[x]\ncreate = @\nread = @\nupdate = @\ndelete = @\n[x]\nread = @\n'), /appears twice/);
  assert.throws(() => parse(SAMPLE, 'acl'), /property_protection_rule_format/);
  assert.throws(() => loadPropertyProtections(path.join(tmpdir(), 'no-such-gaze-protections.conf'), 'roles', policy), /cannot read the file/);
});

test('roles are compared case-insensitively; an empty list allows no one', () => {
  const pp = parse('[x_case]\ncreate = admin,Member\nread = ADMIN, Member\nupdate =\ndelete = admin\n');
  assert.ok(pp.allows('create', 'x_case', roles('member')));
  assert.ok(pp.allows('create', 'x_case', roles('MEMBER')));
  assert.ok(pp.allows('read', 'x_case', roles('Admin')));
  assert.ok(!pp.allows('update', 'x_case', roles('admin', 'member')));
  assert.ok(pp.warnings.some((w) => /\[x_case\] update is empty/.test(w)));
});

test('a property matching no section is denied every operation, for admins too', () => {
  const pp = parse('[^x_]\ncreate = @\nread = @\nupdate = @\ndelete = @\n');
  for (const op of ['create', 'read', 'update', 'delete'] as const) assert.ok(!pp.allows(op, 'other', roles('admin')), op);
});

test('a file without sections denies every extra property, as current Glance does, and says so', () => {
  for (const text of ['', '# nothing here\n', '[DEFAULT]\ncreate = admin\n', '[os_glance_x]\ncreate = @\nread = @\nupdate = @\ndelete = @\n']) {
    const empty = parse(text);
    for (const op of ['create', 'read', 'update', 'delete'] as const) assert.ok(!empty.allows(op, 'anything', roles('admin')), `${JSON.stringify(text)} ${op}`);
    assert.ok(empty.allows('update', 'os_glance_importing_to_stores', roles('member')));
    assert.ok(empty.warnings.some((w) => /defines no sections: every extra property is denied/.test(w)));
  }
});

test("a service's roles (X-Service-Token) count beside the user's", () => {
  const pp = parse('[^x_]\ncreate = service\nread = @\nupdate = service\ndelete = service\n');
  assert.ok(!pp.allows('create', 'x_a', roles('member')));
  assert.ok(pp.allows('create', 'x_a', makeContext({ requestId: 'r', roles: ['member'], serviceRoles: ['service'] })));
  const policies = parse('[^x_]\ncreate = by_service\nread = @\nupdate = @\ndelete = @\n', 'policies', new Policy({ by_service: 'role:service' }));
  assert.ok(policies.allows('create', 'x_a', makeContext({ requestId: 'r', roles: ['member'], serviceRoles: ['service'] })));
  assert.ok(!policies.allows('create', 'x_a', makeContext({ requestId: 'r', roles: ['member'] })));
});

test('os_glance properties are always allowed; os_glance sections in the file are ignored', () => {
  const pp = parse('[os_glance_secret]\ncreate = !\nread = !\nupdate = !\ndelete = !\n[.*]\ncreate = !\nread = !\nupdate = !\ndelete = !\n');
  assert.ok(pp.allows('read', 'os_glance_importing_to_stores', roles()));
  assert.ok(pp.allows('create', 'os_glance_secret', roles()));
  assert.ok(!pp.allows('read', 'x', roles('admin')));
  assert.ok(pp.warnings.some((w) => /\[os_glance_secret\] is ignored/.test(w)));
});

test('configparser details: DEFAULT options are inherited, keys are case-insensitive, comments and continuations', () => {
  const pp = parse(`
# a comment
[DEFAULT]
delete = !
; another comment
[^x_]
Create : admin,
   member
READ = @
update = admin
`);
  assert.ok(pp.allows('create', 'x_a', roles('member')), 'continuation line joins the list');
  assert.ok(pp.allows('read', 'x_a', roles()));
  assert.ok(!pp.allows('delete', 'x_a', roles('admin')), 'delete comes from [DEFAULT]');
  assert.ok(!pp.allows('read', 'DEFAULT', roles('admin')), '[DEFAULT] is not a rule');
});

test('Python-only regex spellings are translated', () => {
  const pp = parse('[(?i)^secret_(?P<n>\\d+)$]\ncreate = @\nread = @\nupdate = @\ndelete = @\n');
  assert.ok(pp.allows('read', 'SECRET_12', roles()));
  assert.ok(!pp.allows('read', 'secret_x', roles()));
  // \A and \Z are the ends of the name (JavaScript has neither); an escaped backslash stays a backslash
  const ends = parse(
    '[\\Ax_end\\Z]\ncreate = !\nread = @\nupdate = @\ndelete = @\n[x\\\\Z]\ncreate = !\nread = @\nupdate = @\ndelete = @\n[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n',
  );
  assert.ok(!ends.allows('create', 'x_end', roles()));
  assert.ok(ends.allows('create', 'x_endZ', roles()));
  assert.ok(ends.allows('create', 'a_x_end', roles()));
  assert.ok(!ends.allows('create', 'x\\Z', roles()), 'a backslash, then Z');
});

test('policies format: each operation names one rule of the policy engine', () => {
  const custom = new Policy({ glance_creator: 'role:admin or role:spl_role', owner_only: 'project_id:p1' });
  const pp = parse(
    `
[^spl_]
create = glance_creator
read = @
update = !
delete = owner_only
[^x_typo]
create = no_such_rule
read = no_such_rule
update = no_such_rule
delete = no_such_rule
`,
    'policies',
    custom,
  );
  assert.ok(pp.allows('create', 'spl_a', roles('spl_role')));
  assert.ok(pp.allows('create', 'spl_a', roles('Admin')));
  assert.ok(!pp.allows('create', 'spl_a', roles('member')));
  assert.ok(pp.allows('read', 'spl_a', roles()));
  assert.ok(!pp.allows('update', 'spl_a', roles('admin')));
  // the caller's other credentials count when they are known
  assert.ok(pp.allows('delete', 'spl_a', makeContext({ requestId: 'r', projectId: 'p1', roles: ['member'] })));
  assert.ok(!pp.allows('delete', 'spl_a', makeContext({ requestId: 'r', projectId: 'p2', roles: ['admin'] })));
  assert.ok(!pp.allows('delete', 'spl_a', roles('admin')));
  // Glance enforces `rule:no_such_rule`, which oslo.policy hands to the `default` rule (empty: allow)
  assert.ok(pp.allows('create', 'x_typo', roles('member')));
  assert.ok(pp.warnings.some((w) => /'no_such_rule', which is not defined: the 'default' rule decides/.test(w)));
  const strict = parse('[^x_typo]\ncreate = no_such_rule\nread = @\nupdate = @\ndelete = @\n', 'policies', new Policy({ default: 'role:admin' }));
  assert.ok(!strict.allows('create', 'x_typo', roles('member')));
  assert.ok(strict.allows('create', 'x_typo', roles('admin')));
  assert.throws(() => parse('[^x]\ncreate = a,b\nread = @\nupdate = @\ndelete = @\n', 'policies'), /one policy rule per operation/);
});

test('loadPropertyProtections: null without a file; reads the file', () => {
  assert.equal(loadPropertyProtections(null, 'roles', policy), null);
  assert.equal(loadPropertyProtections('', 'roles', policy), null);
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-pp-'));
  try {
    const file = path.join(dir, 'protections.conf');
    writeFileSync(file, SAMPLE);
    const pp = loadPropertyProtections(file, 'Roles', policy)!;
    assert.ok(pp.allows('update', 'x_y', roles('_member_')));
    writeFileSync(file, '[.*]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n');
    assert.throws(
      () => loadPropertyProtections(file, 'roles', policy),
      (err: Error) => err.message.includes(file),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('only names that start with os_glance are the service own: a name that merely contains it is protected', () => {
  const pp = parse(SAMPLE);
  assert.ok(pp.allows('create', 'os_glance_import_task', roles('reader')));
  assert.ok(!pp.allows('create', 'hw_os_glance_x', roles('member')));
  assert.ok(!pp.allows('read', 'secret_os_glance', roles('reader')));
});

test('mayWrite: a property the caller cannot read counts as absent, so writing it is a create', () => {
  const pp = parse('[^r_]\ncreate = member\nread = admin\nupdate = admin\ndelete = admin\n[.*]\ncreate = !\nread = !\nupdate = !\ndelete = !\n');
  assert.equal(pp.writeOperation('r_x', true, roles('member')), 'create');
  assert.ok(pp.mayWrite('r_x', true, roles('member')));
  assert.equal(pp.writeOperation('r_x', true, roles('admin')), 'update');
  assert.ok(!pp.mayWrite('r_x', true, roles('reader')));
});
