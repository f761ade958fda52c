// Which policy files are read, as oslo.policy finds them beside the configuration files: policy_file
// (policy.yaml by default), then each file of policy_dirs (policy.d), later rules winning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { policyFiles } from '../../src/auth/policy-files.ts';
import { Policy } from '../../src/auth/policy.ts';
import { makeContext } from '../../src/auth/context.ts';
import { loadConfig } from '../../src/config/index.ts';

const noWarning = (message: string) => assert.fail(`unexpected warning: ${message}`);

function withTree(body: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-policy-files-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const member = makeContext({ projectId: 'p', roles: ['member', 'reader'], userId: 'u', requestId: 'req-policy-files' });

test('policy.yaml and policy.d beside the configuration files, in name order; dot-files and subdirectories left out', () => {
  withTree((dir) => {
    const etc = path.join(dir, 'etc');
    mkdirSync(path.join(etc, 'policy.d', 'nested'), { recursive: true });
    writeFileSync(path.join(etc, 'glance-api.conf'), '[DEFAULT]\n');
    writeFileSync(path.join(etc, 'policy.yaml'), '"publicize_image": "role:member"\n"add_image": "role:member"\n');
    writeFileSync(path.join(etc, 'policy.d', '20-json.json'), '{"add_image": "!"}');
    writeFileSync(path.join(etc, 'policy.d', '10-comments.yaml'), '# nothing but comments, as Debian ships it\n#"default": ""\n');
    writeFileSync(path.join(etc, 'policy.d', '.hidden.yaml'), '"publicize_image": "!"\n');
    writeFileSync(path.join(etc, 'policy.d', 'nested', 'x.yaml'), '"publicize_image": "!"\n');
    const files = policyFiles({ configFiles: [path.join(etc, 'glance-api.conf')], policyFile: null, policyDirs: ['policy.d'], warn: noWarning });
    assert.deepEqual(
      files.map((f) => path.relative(etc, f)),
      ['policy.yaml', 'policy.d/10-comments.yaml', 'policy.d/20-json.json'],
    );
    const policy = Policy.fromFiles(files);
    assert.equal(policy.check('publicize_image', member, {}), true, 'from policy.yaml');
    assert.equal(policy.check('add_image', member, { project_id: 'p', owner: 'p' }), false, 'policy.d overrides policy.yaml');

    // Named ones: relative to the configuration's directory, or absolute; policy_dirs of another name.
    writeFileSync(path.join(etc, 'local.yaml'), '"add_image": "role:member"\n');
    mkdirSync(path.join(dir, 'rules'));
    writeFileSync(path.join(dir, 'rules', 'a.yaml'), '"publicize_image": "!"\n');
    assert.deepEqual(
      policyFiles({ configFiles: [path.join(etc, 'glance-api.conf')], policyFile: 'local.yaml', policyDirs: [path.join(dir, 'rules')], warn: noWarning }),
      [path.join(etc, 'local.yaml'), path.join(dir, 'rules', 'a.yaml')],
    );
    // Not found: the default rules, as in Glance, said at start.
    const warnings: string[] = [];
    const read = policyFiles({
      configFiles: [path.join(etc, 'glance-api.conf')],
      policyFile: 'missing.yaml',
      policyDirs: ['policy.d'],
      warn: (m) => warnings.push(m),
    });
    assert.deepEqual(read, [path.join(etc, 'policy.d', '10-comments.yaml'), path.join(etc, 'policy.d', '20-json.json')], 'policy_dirs still apply');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^\[oslo_policy\] policy_file missing\.yaml was not found \(.*missing\.yaml\): its rules are not in force/);
    // The default name written out, as a generated glance-api.conf has it: missing is no error.
    const emptyEtc = path.join(dir, 'empty');
    mkdirSync(emptyEtc);
    assert.deepEqual(
      policyFiles({ configFiles: [path.join(emptyEtc, 'glance-api.conf')], policyFile: 'policy.yaml', policyDirs: ['policy.d'], warn: noWarning }),
      [],
    );
  });
});

test('policy_dirs set once per directory (a MultiStrOpt), in every file: each directory read in turn, later ones winning', () => {
  withTree((dir) => {
    const etc = path.join(dir, 'etc');
    for (const sub of ['policy.d', 'site.d', 'extra']) mkdirSync(path.join(etc, sub), { recursive: true });
    writeFileSync(path.join(etc, 'glance-api.conf'), '[oslo_policy]\npolicy_dirs = policy.d\npolicy_dirs = site.d\n');
    writeFileSync(path.join(etc, 'override.conf'), '[oslo_policy]\npolicy_dirs = extra\n');
    writeFileSync(path.join(etc, 'policy.d', '50.yaml'), '"add_image": "!"\n');
    writeFileSync(path.join(etc, 'site.d', '10.yaml'), '"add_image": "role:member"\n');
    writeFileSync(path.join(etc, 'extra', '10.yaml'), '"publicize_image": "role:member"\n');
    const configFiles = [path.join(etc, 'glance-api.conf'), path.join(etc, 'override.conf')];
    const config = loadConfig(configFiles, {});
    assert.deepEqual(config.get('oslo_policy', 'policy_dirs'), ['policy.d', 'site.d', 'extra']);
    const files = policyFiles({ configFiles, policyFile: null, policyDirs: config.get('oslo_policy', 'policy_dirs'), warn: noWarning });
    assert.deepEqual(
      files.map((f) => path.relative(etc, f)),
      ['policy.d/50.yaml', 'site.d/10.yaml', 'extra/10.yaml'],
    );
    const policy = Policy.fromFiles(files);
    assert.equal(policy.check('add_image', member, { project_id: 'p', owner: 'p' }), true, 'site.d, read after policy.d, wins');
    assert.equal(policy.check('publicize_image', member, {}), true);
    // Unset: oslo.policy's default, policy.d.
    assert.deepEqual(loadConfig(undefined, {}).get('oslo_policy', 'policy_dirs'), ['policy.d']);
  });
});

test('the embedded defaults read no policy file, and a configuration without policy.yaml or policy.d none', () => {
  withTree((dir) => {
    assert.deepEqual(policyFiles({ configFiles: [], policyFile: null, policyDirs: ['policy.d'], warn: noWarning }), []);
    writeFileSync(path.join(dir, 'gaze.conf'), '[DEFAULT]\n');
    assert.deepEqual(policyFiles({ configFiles: [path.join(dir, 'gaze.conf')], policyFile: null, policyDirs: ['policy.d'], warn: noWarning }), []);
    // Empty values (`policy_file =`) name no file: not the configuration's directory itself.
    assert.deepEqual(policyFiles({ configFiles: [path.join(dir, 'gaze.conf')], policyFile: '', policyDirs: [''], warn: noWarning }), []);
  });
});
