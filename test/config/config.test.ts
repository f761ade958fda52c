import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, fileUriToPath, ConfigError } from '../../src/config/index.ts';

function withFile(text: string, fn: (file: string) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-config-'));
  try {
    const file = path.join(dir, 'gaze.conf');
    writeFileSync(file, text);
    fn(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('embedded defaults apply without a file', () => {
  const config = loadConfig(undefined, {});
  assert.equal(config.get('DEFAULT', 'bind_host'), '127.0.0.1');
  assert.equal(config.get('DEFAULT', 'bind_port'), 9292);
  assert.equal(config.get('DEFAULT', 'image_size_cap'), 1099511627776);
  assert.deepEqual(config.get('DEFAULT', 'enabled_import_methods'), ['glance-direct', 'web-download', 'copy-image']);
  assert.equal(config.get('paste_deploy', 'flavor'), '');
});

test('Glance option names are read from the INI file; unknown options warn, never fail', () => {
  withFile(`[DEFAULT]
bind_port = 9393
image_size_cap = 1024
enabled_import_methods = glance-direct, web-download
show_image_direct_url = True
bogus_option = 1

[database]
connection = postgresql://gaze:pw@127.0.0.1:5432/gaze

[keystone_authtoken]
auth_url = http://127.0.0.1:5000

[not_a_section]
x = y
`, (file) => {
    const config = loadConfig(file, {});
    assert.equal(config.get('DEFAULT', 'bind_port'), 9393);
    assert.equal(config.get('DEFAULT', 'image_size_cap'), 1024);
    assert.deepEqual(config.get('DEFAULT', 'enabled_import_methods'), ['glance-direct', 'web-download']);
    assert.equal(config.get('DEFAULT', 'show_image_direct_url'), true);
    assert.equal(config.get('database', 'connection'), 'postgresql://gaze:pw@127.0.0.1:5432/gaze');
    assert.equal(config.get('keystone_authtoken', 'auth_url'), 'http://127.0.0.1:5000');
    assert.deepEqual(config.warnings.sort(), ['unknown option [DEFAULT] bogus_option ignored', 'unknown option [not_a_section] x ignored']);
  });
});

test('environment variables override the file; bad values are refused clearly', () => {
  withFile('[DEFAULT]\nbind_port = 9393\n', (file) => {
    assert.equal(loadConfig(file, { GAZE__DEFAULT__bind_port: '9494' }).get('DEFAULT', 'bind_port'), 9494);
    assert.throws(() => loadConfig(file, { GAZE__DEFAULT__bind_port: 'high' }), (err: unknown) => err instanceof ConfigError && /bind_port.*not an integer/.test((err as Error).message));
  });
  assert.throws(() => loadConfig('/nonexistent/gaze.conf', {}), /cannot read config file/);
});

test('node_staging_uri takes file:// URIs', () => {
  assert.equal(fileUriToPath('file:///var/lib/gaze/staging'), '/var/lib/gaze/staging');
  assert.throws(() => fileUriToPath('http://x/'), /not a file:\/\/ URI/);
});
