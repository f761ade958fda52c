import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, fileUriToPath, ConfigError, configFiles, intOption } from '../../src/config/index.ts';
import { parseIni } from '../../src/config/ini.ts';
import { OPTIONS } from '../../src/config/options.ts';
import { configuredParts } from '../../src/configured-parts.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { downloadOptionsFromConfig } from '../../src/net/safe-download.ts';

function withDir(fn: (dir: string, write: (name: string, text: string) => string) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-config-'));
  try {
    fn(dir, (name, text) => {
      const file = path.join(dir, name);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
      return file;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function withFile(text: string, fn: (file: string) => void): void {
  withDir((_dir, write) => fn(write('gaze.conf', text)));
}

/** Asserts a ConfigError whose one-line message is exactly `file:line: [section] option: reason`-shaped. */
function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    assert.match(err.message, message);
    return true;
  });
}

test('embedded defaults apply without a file', () => {
  const config = loadConfig(undefined, {});
  assert.equal(config.get('DEFAULT', 'bind_host'), '127.0.0.1');
  assert.equal(config.get('DEFAULT', 'bind_port'), 9292);
  assert.equal(config.get('DEFAULT', 'image_size_cap'), 1099511627776);
  assert.deepEqual(config.get('DEFAULT', 'enabled_import_methods'), ['glance-direct', 'web-download', 'copy-image']);
  assert.equal(config.get('paste_deploy', 'flavor'), '');
  assert.deepEqual(config.get('cors', 'allowed_origin'), []);
  assert.deepEqual(config.warnings, []);
});

test('Glance option names are read from the INI file; Glance options Gaze lacks and unknown options warn once, never fail', () => {
  withFile(
    `[DEFAULT]
bind_port = 9393
image_size_cap = 1024
enabled_import_methods = [glance-direct, web-download]
show_image_direct_url = True
bogus_option = 1
scrub_pool_size = 4

[database]
connection = postgresql://gaze:pw@127.0.0.1:5432/gaze

[keystone_authtoken]
auth_url = http://127.0.0.1:5000

[oslo_concurrency]
lock_path = /var/lock/glance
`,
    (file) => {
      const config = loadConfig(file, {});
      assert.equal(config.get('DEFAULT', 'bind_port'), 9393);
      assert.equal(config.get('DEFAULT', 'image_size_cap'), 1024);
      assert.deepEqual(config.get('DEFAULT', 'enabled_import_methods'), ['glance-direct', 'web-download']);
      assert.equal(config.get('DEFAULT', 'show_image_direct_url'), true);
      assert.equal(config.get('database', 'connection'), 'postgresql://gaze:pw@127.0.0.1:5432/gaze');
      assert.equal(config.get('keystone_authtoken', 'auth_url'), 'http://127.0.0.1:5000');
      assert.deepEqual(config.warnings.sort(), [
        '[DEFAULT] scrub_pool_size is a Glance option Gaze does not implement; it is ignored',
        '[oslo_concurrency] lock_path is a Glance option Gaze does not implement; it is ignored',
        'unknown option [DEFAULT] bogus_option ignored',
      ]);
    },
  );
});

test("a store's own section (the reserved stores' and an auth_section's too): a misspelt option, or one of Glance's Gaze does not implement, warns as in [glance_store]; the store's own are read", () => {
  withFile(
    `[DEFAULT]
enabled_backends = fast:file

[glance_store]
default_backend = fast

[fast]
filesystem_store_datdir = /srv/ssd/images
filesystem_store_chunk_size = 65536
filesystem_store_datadir = /srv/fast
store_description = SSD

[os_glance_staging_store]
filesystem_store_datadir = /srv/staging
filesystem_stor_datadir = /srv/staging

[os_glance_tasks_store]
filesystem_store_datadir = /srv/tasks
filesystem_store_datadr = /srv/tasks

[keystone_authtoken]
auth_section = service_login

[service_login]
auth_type = password
auth_url = http://127.0.0.1:5000
username = glance
pasword = secret
trust_id = 1234
`,
    (file) => {
      const config = loadConfig(file, {});
      assert.equal(config.section('fast').filesystem_store_datadir, '/srv/fast');
      // The reserved stores' sections and an auth_section's are checked too: a misspelt option there
      // would leave staging on its default directory, or the login without its password.
      assert.deepEqual(config.warnings.sort(), [
        '[fast] filesystem_store_chunk_size is a Glance option Gaze does not implement; it is ignored',
        '[service_login] trust_id is a Glance option Gaze does not implement; it is ignored',
        'unknown option [fast] filesystem_store_datdir ignored',
        'unknown option [os_glance_staging_store] filesystem_stor_datadir ignored',
        'unknown option [os_glance_tasks_store] filesystem_store_datadr ignored',
        'unknown option [service_login] pasword ignored',
      ]);
    },
  );
});

test('oslo.config values: bracketed and quoted lists, multi-line values, quoted dicts, booleans, integers, comments', () => {
  withFile(
    `# a comment
; another
[DEFAULT]
enabled_import_methods = [glance-direct,web-download,copy-image]
workers = +3
image_size_cap = 1_000_000
show_multiple_locations = ON
show_image_direct_url = "yes"
disabled_notifications = image.create # this is part of the value, as in oslo.config

[image_import_opts]
image_import_plugins = [inject_image_metadata]

[glance_download_properties]
extra_properties = [ 'hw_',
   'trait:',
   "os_distro" ]

[import_filtering_opts]
allowed_ports = []
allowed_hosts = [images.example.com, 10.0.0.0/8]
disallowed_schemes =
allowed_schemes = 'https'

[inject_metadata_properties]
inject = "property1":"value1","property2":"value with, comma"
ignore_user_roles = admin,
  reader
`,
    (file) => {
      const config = loadConfig(file, {});
      assert.deepEqual(config.get('DEFAULT', 'enabled_import_methods'), ['glance-direct', 'web-download', 'copy-image']);
      assert.equal(config.get('DEFAULT', 'workers'), 3);
      assert.equal(config.get('DEFAULT', 'image_size_cap'), 1000000);
      assert.equal(config.get('DEFAULT', 'show_multiple_locations'), true);
      assert.equal(config.get('DEFAULT', 'show_image_direct_url'), true);
      assert.deepEqual(config.get('DEFAULT', 'disabled_notifications'), ['image.create # this is part of the value', 'as in oslo.config']);
      assert.deepEqual(config.get('image_import_opts', 'image_import_plugins'), ['inject_image_metadata']);
      assert.deepEqual(config.get('glance_download_properties', 'extra_properties'), ['hw_', 'trait:', 'os_distro']);
      assert.deepEqual(config.get('import_filtering_opts', 'allowed_ports'), []);
      assert.deepEqual(config.get('import_filtering_opts', 'allowed_hosts'), ['images.example.com', '10.0.0.0/8']);
      assert.deepEqual(config.get('import_filtering_opts', 'disallowed_schemes'), []);
      assert.deepEqual(config.get('import_filtering_opts', 'allowed_schemes'), ['https']);
      assert.deepEqual(config.get('inject_metadata_properties', 'inject'), { property1: 'value1', property2: 'value with, comma' });
      assert.deepEqual(config.get('inject_metadata_properties', 'ignore_user_roles'), ['admin', 'reader']);
    },
  );
});

test('a list Glance declares without brackets, written with brackets, quotes or empty items: read as meant, and a warning says how Glance reads it', () => {
  withFile(
    `[DEFAULT]
disabled_notifications = [image.create, image.update]
[cors]
allowed_origin = "https://a.example", "https://b.example"
[image_format]
disk_formats = raw,,qcow2
[keystone_authtoken]
service_token_roles = service, admin
[glance_store]
stores = file,
  http
`,
    (file) => {
      const config = loadConfig(file, {});
      assert.deepEqual(config.get('DEFAULT', 'disabled_notifications'), ['image.create', 'image.update']);
      assert.deepEqual(config.get('cors', 'allowed_origin'), ['https://a.example', 'https://b.example']);
      assert.deepEqual(config.get('image_format', 'disk_formats'), ['raw', 'qcow2']);
      assert.deepEqual(config.warnings.sort(), [
        `[DEFAULT] disabled_notifications: Glance (oslo.config) reads this list as ['[image.create', 'image.update]'], keeping its brackets, quotes or empty items as written; Gaze reads ['image.create', 'image.update']. Write it as plain comma-separated items so that both read the same.`,
        `[cors] allowed_origin: Glance (oslo.config) reads this list as ['https://a.example"', '"https://b.example'], keeping its brackets, quotes or empty items as written; Gaze reads ['https://a.example', 'https://b.example']. Write it as plain comma-separated items so that both read the same.`,
        `[image_format] disk_formats: Glance (oslo.config) reads this list as ['raw', '', 'qcow2'], keeping its brackets, quotes or empty items as written; Gaze reads ['raw', 'qcow2']. Write it as plain comma-separated items so that both read the same.`,
      ]);
    },
  );
});

test('$ interpolation: same section, [DEFAULT], ${section.option}, $$ and \\$', () => {
  withFile(
    `[DEFAULT]
data_dir = /srv/gaze
node_staging_uri = file://$data_dir/staging
public_endpoint = http://images.example.com:\${bind_port}/
bind_port = 9494
default_publisher_id = image.\${database.connection}

[database]
connection = literal$$dollar\\$x $ %

[glance_store]
filesystem_store_datadir = $data_dir/images
`,
    (file) => {
      const config = loadConfig(file, {});
      assert.equal(config.get('DEFAULT', 'node_staging_uri'), 'file:///srv/gaze/staging');
      assert.equal(config.get('DEFAULT', 'public_endpoint'), 'http://images.example.com:9494/');
      assert.equal(config.get('database', 'connection'), 'literal$dollar$x $ %');
      assert.equal(config.get('DEFAULT', 'default_publisher_id'), 'image.literal$dollar$x $ %');
      assert.equal(config.get('glance_store', 'filesystem_store_datadir'), '/srv/gaze/images');
      assert.equal(config.section('glance_store').filesystem_store_datadir, '/srv/gaze/images');
    },
  );
});

test("--config-dir of Glance's own /etc/glance: other tools' files there (glance-swift.conf, property protections) are ignored, warned; a misspelt section still stops", () => {
  withDir((dir, write) => {
    write('etc/glance-api.conf', '[DEFAULT]\nbind_port = 9393\n[glance_store]\nstores = file,swift\n');
    const swift = write('etc/glance-swift.conf', '[ref1]\nuser = service:glance\nkey = secret\nauth_address = http://127.0.0.1:5000/v3\n');
    const roles = write('etc/property-protections-roles.conf', '[^x_.*]\ncreate = admin,member\nread = admin,member\n');
    const config = loadConfig(configFiles([{ kind: 'dir', path: path.join(dir, 'etc') }], {}), {});
    assert.equal(config.get('DEFAULT', 'bind_port'), 9393);
    for (const file of [swift, roles]) {
      assert.ok(
        config.warnings.includes(`${file} is ignored: none of its sections is one Glance reads (a file of another tool's beside the configuration)`),
        config.warnings.join('\n'),
      );
    }
    // A file whose only section is a near miss of [glance_store] is a mistake, not another tool's file.
    write('etc/zz-store.conf', '[glance_stroe]\nfilesystem_store_datadir = /srv/images\n');
    refused(() => loadConfig(configFiles([{ kind: 'dir', path: path.join(dir, 'etc') }], {}), {}), /unknown section \[glance_stroe\]/);
  });
});

test("later files win; --config-dir reads every *.conf in sorted order; Glance's layout in OS_GLANCE_CONFIG_DIR", () => {
  withDir((dir, write) => {
    const a = write('a.conf', '[DEFAULT]\nbind_port = 1111\nworkers = 2\n');
    const b = write('b.conf', '[DEFAULT]\nbind_port = 2222\n');
    write('conf.d/20-late.conf', '[DEFAULT]\nbind_port = 4444\n');
    write('conf.d/10-early.conf', '[DEFAULT]\nbind_port = 3333\nworkers = 5\n');
    write('conf.d/.hidden.conf', '[DEFAULT]\nbind_port = 9\n');
    write('conf.d/notes.txt', 'not a config');
    const config = loadConfig([a, b], {});
    assert.equal(config.get('DEFAULT', 'bind_port'), 2222);
    assert.equal(config.get('DEFAULT', 'workers'), 2);
    const files = configFiles(
      [
        { kind: 'file', path: a },
        { kind: 'dir', path: path.join(dir, 'conf.d') },
      ],
      {},
    );
    assert.deepEqual(files, [a, path.join(dir, 'conf.d/10-early.conf'), path.join(dir, 'conf.d/20-late.conf')]);
    assert.equal(loadConfig(files, {}).get('DEFAULT', 'bind_port'), 4444);
    assert.equal(loadConfig(files, {}).get('DEFAULT', 'workers'), 5);
    assert.equal(
      loadConfig(
        configFiles(
          [
            { kind: 'dir', path: path.join(dir, 'conf.d') },
            { kind: 'file', path: a },
          ],
          {},
        ),
        {},
      ).get('DEFAULT', 'bind_port'),
      1111,
    );

    // OS_GLANCE_CONFIG_DIR: paste ini and image-import conf when present, then glance-api.conf (it wins).
    const glance = path.join(dir, 'etc-glance');
    write('etc-glance/glance-api.conf', '[DEFAULT]\nbind_port = 5555\n[image_import_opts]\nimage_import_plugins = [no_op]\n');
    write(
      'etc-glance/glance-image-import.conf',
      '[image_import_opts]\nimage_import_plugins = [inject_image_metadata]\n[image_conversion]\noutput_format = qcow2\n',
    );
    write(
      'etc-glance/glance-api-paste.ini',
      '[pipeline:glance-api]\npipeline = cors healthcheck versionnegotiation unauthenticated-context rootapp\n[composite:rootapp]\npaste.composite_factory = glance.api:root_app_factory\n/: apiversions\n',
    );
    const layout = configFiles([], { OS_GLANCE_CONFIG_DIR: ` ${glance} ` });
    assert.deepEqual(
      layout,
      ['glance-api-paste.ini', 'glance-image-import.conf', 'glance-api.conf'].map((n) => path.join(glance, n)),
    );
    const fromGlance = loadConfig(layout, {});
    assert.equal(fromGlance.get('DEFAULT', 'bind_port'), 5555);
    assert.deepEqual(fromGlance.get('image_import_opts', 'image_import_plugins'), ['no_op']);
    assert.equal(fromGlance.get('image_conversion', 'output_format'), 'qcow2');
    // explicit files and GAZE_CONFIG come first; nothing is read implicitly
    assert.deepEqual(configFiles([{ kind: 'file', path: a }], { OS_GLANCE_CONFIG_DIR: glance, GAZE_CONFIG: b }), [a]);
    assert.deepEqual(configFiles([], { OS_GLANCE_CONFIG_DIR: glance, GAZE_CONFIG: b }), [b]);
    assert.deepEqual(configFiles([], {}), []);
    refused(
      () => configFiles([], { OS_GLANCE_CONFIG_DIR: path.join(dir, 'conf.d') }),
      /conf\.d: OS_GLANCE_CONFIG_DIR names a directory without glance-api\.conf$/,
    );
    refused(() => configFiles([{ kind: 'dir', path: path.join(dir, 'missing') }], {}), /missing: cannot read the config directory/);
  });
});

test('without --config-dir, the glance.conf.d and glance-api.conf.d directories oslo.config finds are read, the named files winning', () => {
  withDir((dir, write) => {
    const home = path.join(dir, 'home');
    const etc = path.join(dir, 'etc');
    const main = write('main.conf', '[DEFAULT]\nbind_port = 1111\n');
    // Each directory is read from the first place it is found: ~/.glance, ~, /etc/glance, /etc.
    const glanceD = write('home/glance.conf.d/10-members.conf', '[DEFAULT]\nimage_member_quota = 9\n');
    write('etc/glance/glance.conf.d/10-members.conf', '[DEFAULT]\nimage_member_quota = 1\n');
    const apiD = write('etc/glance/glance-api.conf.d/50-local.conf', '[DEFAULT]\nbind_port = 7777\nworkers = 3\n');
    write('etc/glance/glance-api.conf.d/notes.txt', 'not read');
    const files = configFiles([{ kind: 'file', path: main }], { HOME: home }, etc);
    assert.deepEqual(files, [glanceD, apiD, main]);
    const config = loadConfig(files, {});
    assert.equal(config.get('DEFAULT', 'bind_port'), 1111, 'a named file wins, as in oslo.config');
    assert.equal(config.get('DEFAULT', 'workers'), 3);
    assert.equal(config.get('DEFAULT', 'image_member_quota'), 9);
    // A --config-dir replaces them; without files named, the embedded defaults read nothing.
    const own = path.join(dir, 'own.d');
    const ownFile = write('own.d/a.conf', '[DEFAULT]\nworkers = 5\n');
    assert.deepEqual(
      configFiles(
        [
          { kind: 'file', path: main },
          { kind: 'dir', path: own },
        ],
        { HOME: home },
        etc,
      ),
      [main, ownFile],
    );
    assert.deepEqual(configFiles([], { HOME: home }, etc), []);
    // Glance's layout (its WSGI application): glance.conf.d after glance-api.conf, so it wins there.
    const api = write('layout/glance-api.conf', '[DEFAULT]\nimage_member_quota = 2\n');
    const layout = configFiles([], { HOME: home, OS_GLANCE_CONFIG_DIR: path.dirname(api) }, etc);
    assert.deepEqual(layout, [api, glanceD]);
    assert.equal(loadConfig(layout, {}).get('DEFAULT', 'image_member_quota'), 9);
  });
});

test('a multi-valued option (filesystem_store_datadirs) takes a value per line, from every file, each read on its own', () => {
  withDir((_dir, write) => {
    const a = write('a.conf', "[DEFAULT]\nroot = /srv\n\n[glance_store]\nfilesystem_store_datadirs = $root/a:200\nfilesystem_store_datadirs = '/srv/b'\n");
    const b = write(
      'b.conf',
      '[glance_store]\nfilesystem_store_datadirs = /srv/c:5\n\n[fast]\nfilesystem_store_datadirs = /x:1\nfilesystem_store_datadirs = /y\n',
    );
    const config = loadConfig([a, b, write('stores.conf', '[DEFAULT]\nenabled_backends = fast:file\n')], {});
    assert.equal(config.section('glance_store').filesystem_store_datadirs, '/srv/a:200\n/srv/b\n/srv/c:5');
    assert.equal(config.section('fast').filesystem_store_datadirs, '/x:1\n/y');
    // `gaze config show` lists them all; the environment replaces them, as oslo.config's does.
    assert.deepEqual(config.get('glance_store', 'filesystem_store_datadirs'), ['/srv/a:200', '/srv/b', '/srv/c:5']);
    const fromEnv = loadConfig([a, b, write('stores2.conf', '[DEFAULT]\nenabled_backends = fast:file\n')], {
      GAZE__glance_store__filesystem_store_datadirs: '/env:1',
    });
    assert.equal(fromEnv.section('glance_store').filesystem_store_datadirs, '/env:1');
    assert.deepEqual(fromEnv.get('glance_store', 'filesystem_store_datadirs'), ['/env:1']);
    // Any other option set twice in one file is the mistake it almost always is, under another name of
    // it too, but Glance starts with the last value: so does Gaze, saying so; a Glance option Gaze does
    // not read keeps its last value without a word.
    const alias = write('alias.conf', '[keystone_authtoken]\nauth_uri = http://a\nauth_uri = http://b\n');
    const aliased = loadConfig([alias], {});
    assert.equal(aliased.get('keystone_authtoken', 'www_authenticate_uri'), 'http://b');
    assert.ok(
      aliased.warnings.includes(
        `${alias}:3: [keystone_authtoken] auth_uri is set twice in this file (also at line 2); the last value is used, as oslo.config uses it`,
      ),
      aliased.warnings.join('\n'),
    );
    const ignored = loadConfig([write('ignored.conf', '[DEFAULT]\npydev_worker_debug_host = a\npydev_worker_debug_host = b\n')], {});
    assert.ok(ignored.warnings.some((w) => w.includes('pydev_worker_debug_host is a Glance option Gaze does not implement')));
    assert.ok(!ignored.warnings.some((w) => w.includes('set twice')), ignored.warnings.join('\n'));
    const twice = write('twice.conf', '[glance_store]\nfilesystem_store_datadir = /a\nfilesystem_store_datadir = /b\n');
    const lastWins = loadConfig([twice], {});
    assert.equal(lastWins.get('glance_store', 'filesystem_store_datadir'), '/b');
    assert.ok(lastWins.warnings.some((w) => w.startsWith(`${twice}:3: [glance_store] filesystem_store_datadir is set twice`)));
    // Glance's other files are read by Python's configparser, which refuses it: so does Gaze.
    refused(
      () => parseIni('[ref1]\nuser = a\nuser = b\n', 'glance-swift.conf'),
      /glance-swift\.conf:3: \[ref1\] user is set twice in this file \(also at line 2\)$/,
    );
  });
});

test("other names: the design documents' extra_properties_prefixes, Glance's deprecated [DEFAULT] formats, notification options and enforce_secure_rbac, keystonemiddleware's auth_uri", () => {
  withFile(
    `[DEFAULT]
disk_formats = raw,qcow2
notification_driver = messagingv2
notification_driver = log
notification_transport_url = rabbit://u:p@127.0.0.1:5672/
notification_topics = notifications,audit

enforce_secure_rbac = false

[keystone_authtoken]
auth_uri = http://keystone.example:5000
auth_plugin = v3password

[glance_download_properties]
extra_properties_prefixes = [ 'hw_', 'os_' ]
`,
    (file) => {
      const config = loadConfig(file, {});
      assert.deepEqual(config.get('glance_download_properties', 'extra_properties'), ['hw_', 'os_']);
      assert.deepEqual(config.get('image_format', 'disk_formats'), ['raw', 'qcow2']);
      // A MultiStrOpt: one driver per line, the option repeated.
      assert.deepEqual(config.get('oslo_messaging_notifications', 'driver'), ['messagingv2', 'log']);
      assert.equal(config.get('oslo_messaging_notifications', 'transport_url'), 'rabbit://u:p@127.0.0.1:5672/');
      assert.deepEqual(config.get('oslo_messaging_notifications', 'topics'), ['notifications', 'audit']);
      assert.equal(config.get('keystone_authtoken', 'www_authenticate_uri'), 'http://keystone.example:5000');
      assert.equal(config.get('keystone_authtoken', 'auth_type'), 'v3password');
      // Glance 25 starts only when it equals enforce_new_defaults (False by default there): Zed's rules.
      assert.equal(config.get('oslo_policy', 'enforce_new_defaults'), false);
      // Both written and not equal: Glance 25 does not start, nor does Gaze.
      refused(
        () => loadConfig([file], {}, { oslo_policy: { enforce_new_defaults: 'true' } }),
        /\[DEFAULT\] enforce_secure_rbac does not match \[oslo_policy\] enforce_new_defaults/,
      );
      assert.equal(loadConfig([file], {}, { oslo_policy: { enforce_new_defaults: 'false' } }).get('oslo_policy', 'enforce_new_defaults'), false);
      assert.equal(config.warnings.length, 8);
      assert.match(config.warnings.join('\n'), /\[DEFAULT\] disk_formats is another name of \[image_format\] disk_formats/);
    },
  );
});

test("environment variables override the files (GAZE__section__option and oslo.config's OS_SECTION__OPTION)", () => {
  withFile('[DEFAULT]\nbind_port = 9393\n', (file) => {
    assert.equal(loadConfig(file, { GAZE__DEFAULT__bind_port: '9494' }).get('DEFAULT', 'bind_port'), 9494);
    assert.equal(loadConfig(file, { OS_DEFAULT__BIND_PORT: '9595' }).get('DEFAULT', 'bind_port'), 9595);
    assert.deepEqual(loadConfig(file, { OS_IMAGE_IMPORT_OPTS__IMAGE_IMPORT_PLUGINS: '[no_op]' }).get('image_import_opts', 'image_import_plugins'), ['no_op']);
    refused(
      () => loadConfig(file, { GAZE__DEFAULT__bind_port: 'high' }),
      /^environment GAZE__DEFAULT__bind_port: \[DEFAULT\] bind_port: 'high' is not an integer$/,
    );
  });
});

test('bad input: one line naming the file, line and option', () => {
  withDir((dir, write) => {
    const cases: Array<[string, RegExp]> = [
      ['[DEFAULT]\nworkers = many\n', /bad\.conf:2: \[DEFAULT\] workers: 'many' is not an integer$/],
      ['[DEFAULT]\nshow_image_direct_url = maybe\n', /bad\.conf:2: \[DEFAULT\] show_image_direct_url: 'maybe' is not a boolean/],
      ['[DEFAULT]\n\n[glance_stroe]\nfilesystem_store_datadir = /x\n', /bad\.conf:3: unknown section \[glance_stroe\]$/],
      ['[default]\nbind_port = 1\n', /bad\.conf:1: unknown section \[default\] \(the default section is spelt \[DEFAULT\]\)$/],
      ['[DEFAULT]\nenabled_import_methods = [glance-direct, web-download\n', /bad\.conf:2: \[DEFAULT\] enabled_import_methods: '\[' is never closed/],
      ['[DEFAULT]\npublic_endpoint = http://$nowhere/\n', /bad\.conf:2: \[DEFAULT\] public_endpoint: \$nowhere refers to no option$/],
      ['[DEFAULT]\npublic_endpoint = $worker_self_reference_url\nworker_self_reference_url = $public_endpoint\n', /\[DEFAULT\] \w+: \$ references loop/],
      ['[DEFAULT]\n  bind_port = 1\n', /bad\.conf:2: unexpected continuation line/],
      ['bind_port = 1\n[DEFAULT]\n', /bad\.conf:1: 'bind_port' is set before any \[section\]$/],
      ['[DEFAULT\nbind_port = 1\n', /bad\.conf:1: invalid section header/],
      ['[DEFAULT]\njust words\n', /bad\.conf:2: 'just words' is neither/],
      ['[inject_metadata_properties]\ninject = a:1, a:2\n', /bad\.conf:2: \[inject_metadata_properties\] inject: key 'a' is given twice$/],
      ["[glance_download_properties]\nextra_properties = ['hw_, os_]\n", /bad\.conf:2: \[glance_download_properties\] extra_properties: a quote is not closed/],
      ['[import_filtering_opts]\nallowed_ports = [80, http]\n', /bad\.conf:2: \[import_filtering_opts\] allowed_ports: 'http' is not an integer$/],
    ];
    for (const [text, message] of cases) {
      const file = write('bad.conf', text);
      refused(() => loadConfig(file, {}), message);
    }
    refused(() => loadConfig(path.join(dir, 'nonexistent.conf'), {}), /nonexistent\.conf: cannot read the config file: it does not exist$/);
    // Not UTF-8 (a Latin-1 password): Glance stops on it, and so does Gaze, naming the line.
    const latin1 = path.join(dir, 'latin1.conf');
    writeFileSync(
      latin1,
      Buffer.concat([Buffer.from('[DEFAULT]\n# caf\u00e9 is fine\n[database]\nconnection = mysql+pymysql://u:'), Buffer.from([0xe9]), Buffer.from('@h/db\n')]),
    );
    refused(() => loadConfig(latin1, {}), /latin1\.conf:4: the file is not UTF-8 text$/);
  });
});

test('a value that parses but cannot be used is refused where it was set', () => {
  withFile('[DEFAULT]\n\n[image_import_opts]\nimage_import_plugins = [no_op, web_download]\n', (file) => {
    const config = loadConfig(file, {});
    refused(
      () => config.refuse('image_import_opts', 'image_import_plugins', "unknown import plugin 'web_download'"),
      /gaze\.conf:4: \[image_import_opts\] image_import_plugins: unknown import plugin 'web_download'$/,
    );
  });
});

/** What configuredParts() (what `config check` builds) makes of a gaze.conf written from `text` in a temp dir. */
async function configuredPartsOf(text: (dir: string) => string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-config-'));
  try {
    const file = path.join(dir, 'gaze.conf');
    writeFileSync(file, text(dir));
    return await configuredParts(loadConfig(file, {}), silentLogger());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a negative scrub_time stops start-up where it was set (oslo.config's minimum is 0)", async () => {
  await assert.rejects(
    configuredPartsOf((dir) => `[DEFAULT]\ndata_dir = ${dir}\ndelayed_delete = True\nscrub_time = -1\n`),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /gaze\.conf:4: \[DEFAULT\] scrub_time: must be 0 or more$/);
      return true;
    },
  );
});

test("image_cache_driver takes Glance's choices in any case, and refuses another", async () => {
  await configuredPartsOf((dir) => `[DEFAULT]\ndata_dir = ${dir}\nimage_cache_driver = SQLite\n`);
  await assert.rejects(
    configuredPartsOf((dir) => `[DEFAULT]\ndata_dir = ${dir}\nimage_cache_driver = memcached\n`),
    (err: unknown) => err instanceof ConfigError && /gaze\.conf:3: \[DEFAULT\] image_cache_driver: must be centralized_db, sqlite or xattr$/.test(err.message),
  );
});

test('empty policy_file, policy_dirs and property_protection_file values name no file', async () => {
  const parts = await configuredPartsOf((dir) => `[DEFAULT]\ndata_dir = ${dir}\nproperty_protection_file =\n\n[oslo_policy]\npolicy_file =\npolicy_dirs =\n`);
  assert.equal(parts.propertyProtections, null);
});

test('node_staging_uri takes file:// URIs', () => {
  assert.equal(fileUriToPath('file:///var/lib/gaze/staging'), '/var/lib/gaze/staging');
  assert.throws(() => fileUriToPath('http://x/'), /not a file:\/\/ URI/);
});

test('etc/gaze.conf.sample shows every option Gaze reads, and only those', () => {
  const samplePath = new URL('../../etc/gaze.conf.sample', import.meta.url);
  const sample = readFileSync(samplePath, 'utf8');
  // The sample's [fast], [objects], ... are examples of per-store sections: they take [glance_store]'s store options.
  const storeSections = new Set(['fast', 'objects', 'swiftstore', 'os_glance_staging_store']);
  const uncommented = sample
    .split('\n')
    .map((line) => line.replace(/^#(?=\[|[a-z_0-9]+ =)/, ''))
    .join('\n');
  const { sections } = parseIni(uncommented, 'gaze.conf.sample');
  const shown = new Set<string>();
  for (const [section, options] of sections) {
    const asSection = storeSections.has(section) ? 'glance_store' : section;
    for (const option of options.keys()) {
      if (asSection !== section && (option === 'store_description' || option === 'read_only')) continue; // per-store only
      shown.add(`${asSection}.${option}`);
    }
  }
  const known = new Set(Object.entries(OPTIONS).flatMap(([section, options]) => Object.keys(options).map((option) => `${section}.${option}`)));
  assert.deepEqual(
    [...known].filter((name) => !shown.has(name)),
    [],
    'options missing from the sample',
  );
  assert.deepEqual(
    [...shown].filter((name) => !known.has(name)),
    [],
    'sample options Gaze does not read',
  );
});

test("a store's integer option (intOption) is read as oslo.config reads an IntOpt: quotes and digit groups; a minimum", () => {
  assert.equal(intOption(undefined, 7, 'x', 0), 7);
  assert.equal(intOption('  ', 7, 'x', 0), 7);
  assert.equal(intOption(' 42 ', 7, 'x', 0), 42);
  assert.equal(intOption('"5"', 7, 'x', 0), 5);
  assert.equal(intOption('1_000', 7, 'x', 0), 1000);
  assert.throws(
    () => intOption('1.5', 7, 'store s: swift_store_retry_get_count', 0),
    /^ConfigError: store s: swift_store_retry_get_count: '1\.5' is not an integer$/,
  );
  assert.throws(() => intOption('-1', 7, 'store s: thread pools', 1), /store s: thread pools: -1 is less than the minimum of 1/);
});

test("Glance's older names of oslo.db, oslo.policy, oslo.log and keystoneauth options are read (an old glance-api.conf must not open another database)", () => {
  const read = (text: string) => {
    let out!: ReturnType<typeof loadConfig>;
    withFile(text, (file) => (out = loadConfig(file, {})));
    return out;
  };
  const old = read(
    `[DEFAULT]
sql_connection = postgresql://glance:pw@db/glance
sql_max_overflow = 7
policy_file = /etc/glance/custom-policy.yaml
policy_dirs = /etc/glance/extra.d
logfile = /var/log/glance/api.log
logdir = /var/log/glance
[keystone_authtoken]
user_name = glance
tenant_name = service
tenant_id = 1234
`,
  );
  assert.equal(old.get('database', 'connection'), 'postgresql://glance:pw@db/glance');
  assert.equal(old.get('database', 'max_overflow'), 7);
  assert.equal(old.get('oslo_policy', 'policy_file'), '/etc/glance/custom-policy.yaml');
  assert.deepEqual(old.get('oslo_policy', 'policy_dirs'), ['/etc/glance/extra.d']);
  assert.equal(old.get('DEFAULT', 'log_file'), '/var/log/glance/api.log');
  assert.equal(old.get('DEFAULT', 'log_dir'), '/var/log/glance');
  assert.deepEqual(
    [old.get('keystone_authtoken', 'username'), old.get('keystone_authtoken', 'project_name'), old.get('keystone_authtoken', 'project_id')],
    ['glance', 'service', '1234'],
  );
  assert.match(old.warnings.join('\n'), /\[DEFAULT\] sql_connection is another name of \[database\] connection/);
  // [DATABASE] is [database] to oslo.config; [sql] is a section of older names only.
  assert.equal(read('[DATABASE]\nsql_connection = postgresql://x@db3/glance\n').get('database', 'connection'), 'postgresql://x@db3/glance');
  assert.equal(read('[sql]\nconnection = postgresql://x@db2/glance\n').get('database', 'connection'), 'postgresql://x@db2/glance');
  // The option's own name wins over an older one in the same file, as in oslo.config.
  assert.equal(read('[DEFAULT]\nsql_connection = a://old\n[database]\nconnection = b://new\n').get('database', 'connection'), 'b://new');
});

test("a multi-valued option set under its old and new names keeps every value, in oslo.config's order", () => {
  // The expected lists are oslo.config 9's answers for the same files.
  withDir((_dir, write) => {
    const both = write('both.conf', '[DEFAULT]\nnotification_driver = log\n[oslo_messaging_notifications]\ndriver = messagingv2\ndriver = noop\n');
    assert.deepEqual(loadConfig(both, {}).get('oslo_messaging_notifications', 'driver'), ['log', 'messagingv2', 'noop']);
    const newFirst = write('new-first.conf', '[oslo_messaging_notifications]\ndriver = a\n[DEFAULT]\nnotification_driver = b\nnotification_driver = c\n');
    const old = write('old.conf', '[DEFAULT]\nnotification_driver = x\n');
    const current = write('new.conf', '[oslo_messaging_notifications]\ndriver = y\n');
    assert.deepEqual(loadConfig([newFirst, old, current], {}).get('oslo_messaging_notifications', 'driver'), ['b', 'c', 'a', 'x', 'y']);
    assert.deepEqual(loadConfig([current, old], {}).get('oslo_messaging_notifications', 'driver'), ['y', 'x']);
  });
});

test('$ interpolation substitutes the value without the quotes around it, as oslo.config does', () => {
  withFile('[DEFAULT]\nbind_host = "10.0.0.5"\nbind_port = 9393\npublic_endpoint = http://$bind_host:${bind_port}/\n', (file) => {
    const config = loadConfig(file, {});
    assert.equal(config.get('DEFAULT', 'public_endpoint'), 'http://10.0.0.5:9393/');
    assert.equal(config.get('DEFAULT', 'bind_host'), '10.0.0.5');
  });
});

test("an integer beyond 2^53 (the maximum Debian's glance-api.conf shows for image_size_cap) is read as the largest exact one", () => {
  withFile('[DEFAULT]\nimage_size_cap = 9223372036854775808\n', (file) => {
    assert.equal(loadConfig(file, {}).get('DEFAULT', 'image_size_cap'), Number.MAX_SAFE_INTEGER);
  });
  withFile('[DEFAULT]\nimage_cache_max_size = 18446744073709551616\n', (file) => {
    assert.equal(loadConfig(file, {}).get('DEFAULT', 'image_cache_max_size'), Number.MAX_SAFE_INTEGER);
  });
  withFile('[DEFAULT]\nbind_port = 99999999999999999999\n', (file) => {
    refused(() => loadConfig(file, {}), /bind_port/);
  });
});

test("integer options outside oslo.config's bounds stop start-up where they were set; an empty one is unset", () => {
  const cases: Array<[string, string, RegExp]> = [
    ['DEFAULT', 'limit_param_default = 0', /gaze\.conf:2: \[DEFAULT\] limit_param_default: 0 is not valid: Should be greater than or equal to 1$/],
    ['DEFAULT', 'api_limit_max = 0', /\[DEFAULT\] api_limit_max: 0 is not valid: Should be greater than or equal to 1$/],
    ['DEFAULT', 'image_size_cap = 0', /\[DEFAULT\] image_size_cap: 0 is not valid: Should be greater than or equal to 1$/],
    ['DEFAULT', 'bind_port = 70000', /\[DEFAULT\] bind_port: 70000 is not valid: Should be less than or equal to 65535$/],
    ['DEFAULT', 'backlog = 0', /\[DEFAULT\] backlog: 0 is not valid: Should be greater than or equal to 1$/],
    ['wsgi', 'task_pool_threads = 0', /\[wsgi\] task_pool_threads: 0 is not valid: Should be greater than or equal to 1$/],
    // Gaze's own: the prefetcher's period (0 ran it every millisecond).
    ['DEFAULT', 'cache_prefetcher_interval = 0', /\[DEFAULT\] cache_prefetcher_interval: 0 is not valid: Should be greater than or equal to 1$/],
  ];
  for (const [section, line, message] of cases) withFile(`[${section}]\n${line}\n`, (file) => refused(() => loadConfig(file, {}), message));
  withFile('[DEFAULT]\nworkers =\nbind_port = 65535\napi_limit_max = 1\n', (file) => {
    const config = loadConfig(file, {});
    assert.equal(config.get('DEFAULT', 'workers'), 1, 'the default');
    assert.equal(config.get('DEFAULT', 'bind_port'), 65535);
    assert.equal(config.get('DEFAULT', 'api_limit_max'), 1);
  });
});

test('an unknown section with nothing under it only warns; with an option it stops start-up, unless Glance 25 is known to read nothing there', () => {
  withFile('[DEFAULT]\nbind_port = 9292\n[glance_stroe]\n# a misspelt header, nothing under it\n', (file) => {
    const config = loadConfig(file, {});
    assert.equal(config.get('DEFAULT', 'bind_port'), 9292);
    assert.deepEqual(
      config.warnings.filter((w) => w.startsWith('unknown section')),
      ['unknown section [glance_stroe] ignored: it sets nothing'],
    );
  });
  // A misspelt section would lose every option in it.
  withFile('[glance_stroe]\ndefault_store = swift\n', (file) => refused(() => loadConfig(file, {}), /gaze\.conf:1: unknown section \[glance_stroe\]$/));
  // Sections of older samples and other services' libraries, which Glance 25 starts with and ignores.
  withFile('[matchmaker_redis]\nhost = redis\n[oslo_messaging_zmq]\nrpc_zmq_host = x\n[ssl]\nca_file = /x\n[privsep_osbrick]\nhelper_command = x\n', (file) => {
    assert.deepEqual(loadConfig(file, {}).warnings.sort(), [
      '[matchmaker_redis] is ignored: Glance 25 reads nothing in it (a section of an older sample or of another service)',
      '[oslo_messaging_zmq] is ignored: Glance 25 reads nothing in it (a section of an older sample or of another service)',
      '[privsep_osbrick] is ignored: Glance 25 reads nothing in it (a section of an older sample or of another service)',
      '[ssl] is ignored: Glance 25 reads nothing in it (a section of an older sample or of another service)',
    ]);
  });
});

test("a store's section left behind when its store was taken out of enabled_backends only warns (Glance ignores it); a misspelt section still stops start-up", () => {
  withFile(
    '[DEFAULT]\nenabled_backends = fast:file\n[glance_store]\ndefault_backend = fast\n[fast]\nfilesystem_store_datadir = /srv/fast\n[slow]\nfilesystem_store_datadir = /srv/slow\nstore_description = the old disks\n',
    (file) => {
      assert.deepEqual(loadConfig(file, {}).warnings, ['[slow] is ignored: it holds store options, but enabled_backends names no store slow']);
    },
  );
  // Anything else in such a section is a section nobody reads: start-up stops, as for any unknown section.
  withFile('[DEFAULT]\nenabled_backends = fast:file\n[slow]\nfilesystem_store_datadir = /srv/slow\nbind_port = 1\n', (file) =>
    refused(() => loadConfig(file, {}), /unknown section \[slow\]/),
  );
  withFile('[glance_stroe]\nfilesystem_store_datadir = /srv/x\n', (file) => refused(() => loadConfig(file, {}), /unknown section \[glance_stroe\]/));
  // A near miss of an enabled store's name would leave that store on its defaults: refused.
  withFile('[DEFAULT]\nenabled_backends = cheap:file\n[chaep]\nfilesystem_store_datadir = /srv/cheap\n', (file) =>
    refused(() => loadConfig(file, {}), /unknown section \[chaep\]/),
  );
  // Glance's own example names ([fast]) are no near miss of other sections ([task]); an empty section still sets nothing.
  withFile('[DEFAULT]\nenabled_backends = cheap:file\n[fast]\nfilesystem_store_datadir = /srv/fast\n[foobar]\n', (file) => {
    assert.deepEqual(loadConfig(file, {}).warnings.sort(), [
      '[fast] is ignored: it holds store options, but enabled_backends names no store fast',
      'unknown section [foobar] ignored: it sets nothing',
    ]);
  });
});

test("second options that feed timers are capped at Node's limit (a longer timer runs at once)", () => {
  withFile('[import_filtering_opts]\nconnect_timeout = 99999999999\nread_timeout = 30\n', (file) => {
    const options = downloadOptionsFromConfig(loadConfig(file, {}));
    assert.equal(options.connectTimeoutMs, 2 ** 31 - 1);
    assert.equal(options.readTimeoutMs, 30_000);
  });
});

test('an integer written as quoted spaces is unset, and quoted digits with spaces are the number, as oslo.config reads them', () => {
  withFile('[DEFAULT]\nbind_port = ""\nimage_tag_quota = \' 13 \'\n', (file) => {
    const config = loadConfig(file, {});
    assert.equal(config.get('DEFAULT', 'bind_port'), 9292);
    assert.equal(config.get('DEFAULT', 'image_tag_quota'), 13);
  });
});

test('a database connection or transport_url that cannot be used stops start-up where it was set, without its password', async () => {
  await assert.rejects(
    configuredPartsOf((dir) => `[DEFAULT]\ndata_dir = ${dir}\n[database]\nconnection = oracle+cx_oracle://glance:S3cret,Db/Pw@127.0.0.1:1/glance\n`),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /gaze\.conf:4: \[database\] connection: unsupported scheme in 'oracle\+cx_oracle:\/\/glance:\*\*\*\*@127\.0\.0\.1:1\/glance'/);
      assert.ok(!err.message.includes('S3cret') && !err.message.includes('Db/Pw'));
      return true;
    },
  );
  await assert.rejects(
    configuredPartsOf(
      (dir) => `[DEFAULT]\ndata_dir = ${dir}\n[oslo_messaging_notifications]\ndriver = messagingv2\ntransport_url = kafka://glance:K4fkaPw@127.0.0.1:1/\n`,
    ),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /\[oslo_messaging_notifications\] transport_url: transport_url 'kafka:\/\/glance:\*\*\*\*@127\.0\.0\.1:1\/'/);
      assert.ok(!err.message.includes('K4fkaPw'));
      return true;
    },
  );
});

test('a list Glance declares with brackets is read without them too, with a warning that Glance cannot; port lists hold ports', () => {
  withFile(
    `[DEFAULT]
enabled_import_methods = glance-direct

[import_filtering_opts]
allowed_hosts =
allowed_ports = [19496, 443]
disallowed_ports = 8080
`,
    (file) => {
      const config = loadConfig(file, {});
      assert.deepEqual(config.get('DEFAULT', 'enabled_import_methods'), ['glance-direct']);
      assert.deepEqual(config.get('import_filtering_opts', 'allowed_hosts'), []);
      assert.deepEqual(config.get('import_filtering_opts', 'allowed_ports'), [19496, 443]);
      assert.deepEqual(config.get('import_filtering_opts', 'disallowed_ports'), [8080]);
      assert.deepEqual(
        config.warnings.map((w) => w.replace(/:.*Write it as/, ': … Write it as')),
        [
          '[DEFAULT] enabled_import_methods: … Write it as [glance-direct] so that both read the same.',
          '[import_filtering_opts] allowed_hosts: … Write it as [] so that both read the same.',
          '[import_filtering_opts] disallowed_ports: … Write it as [8080] so that both read the same.',
        ],
      );
      assert.match(config.warnings[0]!, /Glance \(oslo\.config\) reads this list only in brackets/);
    },
  );
  for (const [ports, reason] of [
    ['[80, 70000]', /70000 is not valid: Should be less than or equal to 65535/],
    ['[0]', /0 is not valid: Should be greater than or equal to 1/],
  ] as const) {
    withFile(`[import_filtering_opts]\nallowed_ports = ${ports}\n`, (file) => {
      assert.throws(
        () => loadConfig(file, {}),
        (err: Error) => err instanceof ConfigError && reason.test(err.message) && /allowed_ports/.test(err.message),
      );
    });
  }
});
