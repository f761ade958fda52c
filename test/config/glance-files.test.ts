import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchGaze, runGaze } from '../helpers/gaze.ts';
import { freePort } from '../helpers/keystone.ts';
import { client } from '../helpers/http.ts';
import { startFileServer, type FileServer } from '../helpers/file-server.ts';

// Gaze started on the configuration files Debian ships with Glance (package glance-common, installed by
// scripts/install-system-deps.sh), with only paths and ports changed, and on a config written the way
// deployment tools write Glance's: brackets everywhere, multi-line quoted lists, quoted dicts.

const ETC_GLANCE = '/etc/glance';
let root: string;
let files: FileServer;

before(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'gaze-glance-files-'));
  files = await startFileServer();
});
after(async () => {
  await files.close();
  rmSync(root, { recursive: true, force: true });
});

/** A copy of Debian's Glance config directory with its paths and the port moved to `dir`. */
function glanceConfigDir(dir: string, port: number): string {
  const etc = path.join(dir, 'etc-glance');
  mkdirSync(etc, { recursive: true });
  for (const name of ['glance-api.conf', 'glance-image-import.conf', 'glance-api-paste.ini', 'schema-image.json', 'property-protections-roles.conf'])
    copyFileSync(path.join(ETC_GLANCE, name), path.join(etc, name));
  // Debian's policy.d (one file, all comments), and an operator's rule beside it.
  cpSync(path.join(ETC_GLANCE, 'policy.d'), path.join(etc, 'policy.d'), { recursive: true });
  writeFileSync(path.join(etc, 'policy.d', '50-local.yaml'), '"publicize_image": "!"\n');
  const api = path.join(etc, 'glance-api.conf');
  const text = readFileSync(api, 'utf8')
    .replace(/^#bind_port = <None>$/m, `bind_port = ${port}`)
    .replace(/^#node_staging_uri = file:\/\/\/tmp\/staging\/$/m, `node_staging_uri = file://${dir}/staging/`)
    .replace(/^filesystem_store_datadir = \/var\/lib\/glance\/images$/m, `filesystem_store_datadir = ${dir}/images`)
    .replace(/^lock_path = \/var\/lock\/glance$/m, `lock_path = ${dir}/lock`)
    .replace(/^#connection = <None>$/m, `connection = sqlite:///${dir}/glance.db`)
    // Named as Glance finds it, beside the configuration files.
    .replace(/^#property_protection_file = <None>$/m, 'property_protection_file = property-protections-roles.conf')
    // The [glance_store] one (the [file] section's copy comes first and is not a store's section).
    .replace(/^#filesystem_store_file_perm = 0$(?![\s\S]*^#filesystem_store_file_perm = 0$)/m, 'filesystem_store_file_perm = 640');
  writeFileSync(api, text);
  return etc;
}

test(
  "Debian's glance-api.conf and glance-image-import.conf, paths and ports changed: Gaze starts and every option set there takes effect",
  { skip: !existsSync(`${ETC_GLANCE}/glance-api.conf`) && 'glance-common is not installed' },
  async () => {
    const dir = path.join(root, 'debian');
    const port = await freePort();
    const etc = glanceConfigDir(dir, port);

    const check = await runGaze(['config', 'show'], { cwd: dir, env: { OS_GLANCE_CONFIG_DIR: etc } });
    assert.equal(check.code, 0, check.stderr);
    const shown = check.stdout;
    const line = (option: string) => shown.split('\n').find((l) => l.startsWith(`${option} = `)) ?? '';
    assert.match(line('bind_port'), new RegExp(`^bind_port = ${port} +# ${etc}/glance-api\\.conf:699$`));
    assert.match(line('filesystem_store_datadir'), new RegExp(`^filesystem_store_datadir = ${dir}/images `));
    assert.match(line('auth_url'), /^auth_url = http:\/\/localhost:5000 +# .*glance-api\.conf:\d+$/);
    assert.match(line('www_authenticate_uri'), /^www_authenticate_uri = http:\/\/localhost:5000 /);
    assert.match(line('region_name'), /^region_name = regionOne /);
    assert.match(line('auth_type'), /^auth_type = password /);
    assert.match(line('project_domain_name'), /^project_domain_name = Default /);
    // Credentials are not printed (oslo.config's secret options): the database URL may hold a password.
    assert.match(line('connection'), /^connection = \*\*\*\* +# .*glance-api\.conf:\d+$/);
    assert.ok(!shown.includes('sqlite://'), 'the database URL is not shown');
    assert.match(line('password'), /^password = +# default$/);
    // what Gaze does not implement is named once, never refused
    assert.match(check.stderr, /\[oslo_concurrency\] lock_path is a Glance option Gaze does not implement; it is ignored/);

    // The service runs on these files: data lands where filesystem_store_datadir and node_staging_uri say.
    const gaze = await launchGaze({ args: [], cwd: dir, port, env: { OS_GLANCE_CONFIG_DIR: etc } });
    try {
      const api = client(gaze.url);
      const uploaded = await api.createImage({ name: 'debian-conf' });
      assert.equal((await api.upload(uploaded.id, randomBytes(100_000))).status, 204);
      assert.deepEqual(readdirSync(path.join(dir, 'images')), [uploaded.id]);
      // filesystem_store_file_perm = 640: the file for nova's group to read (the umask would give 644).
      assert.equal(statSync(path.join(dir, 'images', uploaded.id)).mode & 0o7777, 0o640);
      const staged = await api.createImage({ name: 'staged' });
      assert.equal(
        (await api.put(`/v2/images/${staged.id}/stage`, { body: randomBytes(1000), headers: { 'content-type': 'application/octet-stream' } })).status,
        204,
      );
      assert.deepEqual(readdirSync(path.join(dir, 'staging')), [staged.id]);
      // Debian's schema-image.json beside it: its custom properties, as Glance serves them.
      const schema = (await api.get('/v2/schemas/image')).json as { properties: Record<string, { is_base?: boolean }> };
      assert.deepEqual(Object.keys(schema.properties).slice(-3), ['description', 'cinder_encryption_key_id', 'cinder_encryption_key_deletion_policy']);
      assert.equal(schema.properties.kernel_id?.is_base, false);
      // Debian's property-protections-roles.conf, found beside glance-api.conf: only x_ properties for members.
      const asMember = { as: { project: 'p', roles: 'member,reader', user: 'u' } };
      assert.equal((await api.call('POST', '/v2/images', { ...asMember, json: { name: 'm', x_mine: 'yes' } })).status, 201);
      assert.equal((await api.call('POST', '/v2/images', { ...asMember, json: { name: 'm', os_distro: 'debian' } })).status, 403);
      // policy.d beside glance-api.conf is read, as oslo.policy reads it: not even an admin publicizes.
      const refused = await api.call('POST', '/v2/images', { json: { name: 'public', visibility: 'public', disk_format: 'raw', container_format: 'bare' } });
      assert.equal(refused.status, 403, refused.text);
      assert.match(refused.text, /You are not authorized to complete publicize_image action/);
      assert.ok(existsSync(path.join(dir, 'glance.db')), 'the database is where [database] connection says');
      assert.deepEqual((await api.get('/v2/info/import')).json['import-methods'].value, ['glance-direct', 'web-download', 'copy-image']);
    } finally {
      await gaze.stop();
    }

    // The same files named on the command line, as Debian's init script names glance-api.conf.
    const explicit = await runGaze(['config', 'check', '--config-file', `${etc}/glance-api.conf`, '--config-file', `${etc}/glance-image-import.conf`], {
      cwd: dir,
    });
    assert.equal(explicit.code, 0, explicit.stderr);
  },
);

test(
  "Debian's glance-api.conf with the file store on several disks (filesystem_store_datadirs), written as Glance needs it: uploads go to the disk of the highest priority",
  { skip: !existsSync(`${ETC_GLANCE}/glance-api.conf`) && 'glance-common is not installed' },
  async () => {
    const dir = path.join(root, 'datadirs');
    const port = await freePort();
    const etc = glanceConfigDir(dir, port);
    const conf = path.join(etc, 'glance-api.conf');
    const text = readFileSync(conf, 'utf8');
    const datadir = `filesystem_store_datadir = ${dir}/images\n`;
    assert.ok(text.includes(datadir));
    // Glance 25 refuses datadirs beside its default datadir: its operators empty that one.
    writeFileSync(
      conf,
      text.replace(datadir, `filesystem_store_datadir =\nfilesystem_store_datadirs = ${dir}/disk1:100\nfilesystem_store_datadirs = ${dir}/disk2:200\n`),
    );
    const gaze = await launchGaze({ args: [], cwd: dir, port, env: { OS_GLANCE_CONFIG_DIR: etc } });
    try {
      const api = client(gaze.url);
      const image = await api.createImage({ name: 'on the second disk' });
      const data = randomBytes(100_000);
      assert.equal((await api.upload(image.id, data)).status, 204);
      assert.deepEqual(readdirSync(path.join(dir, 'disk2')), [image.id]);
      assert.ok(readFileSync(path.join(dir, 'disk2', image.id)).equals(data));
      assert.ok(!existsSync(path.join(dir, 'images')));
      const download = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
      assert.ok(Buffer.from(await download.arrayBuffer()).equals(data));
    } finally {
      await gaze.stop();
    }
  },
);

test(
  "Debian's glance-api.conf with every value its comments give written out (Glance's defaults, as a generated file spells them): Gaze starts and reads them as Glance does",
  { skip: !existsSync(`${ETC_GLANCE}/glance-api.conf`) && 'glance-common is not installed' },
  async () => {
    const dir = path.join(root, 'written-out');
    mkdirSync(dir, { recursive: true });
    // `#option = value` becomes `option = value`; `<None>` marks an option with no default, left alone.
    const written = readFileSync(path.join(ETC_GLANCE, 'glance-api.conf'), 'utf8').replace(/^#([a-z][a-z0-9_.-]*) = (?!.*<None>)(.*)$/gm, '$1 = $2');
    writeFileSync(path.join(dir, 'glance-api.conf'), written);
    // The import and scrubber files written out the same way, as an operator passes them.
    for (const name of ['glance-image-import.conf', 'glance-scrubber.conf']) {
      const sample = readFileSync(path.join(ETC_GLANCE, name), 'utf8');
      writeFileSync(path.join(dir, name), sample.replace(/^#([a-z][a-z0-9_.-]*) = (?!.*<None>)(.*)$/gm, '$1 = $2'));
    }
    // Among them oslo.messaging's pre_settled, a MultiStrOpt Gaze does not read, set on two lines, and
    // [oslo_policy] policy_file = policy.yaml, oslo.policy's default name, with no such file.
    assert.match(written, /^pre_settled = rpc-cast\npre_settled = rpc-reply$/m);
    assert.match(written, /^policy_file = policy\.yaml$/m);
    writeFileSync(
      path.join(dir, 'local.conf'),
      `[DEFAULT]\nnode_staging_uri = file://${dir}/staging\n[database]\nconnection = sqlite:///${dir}/glance.db\n` +
        `[glance_store]\nfilesystem_store_datadir = ${dir}/images\n[keystone_authtoken]\npassword = secret\n`,
    );
    const files = ['glance-api.conf', 'glance-image-import.conf', 'glance-scrubber.conf', 'local.conf'].flatMap((name) => [
      '--config-file',
      path.join(dir, name),
    ]);
    const check = await runGaze(['config', 'check', ...files], { cwd: dir });
    assert.equal(check.code, 0, check.stderr);
    assert.doesNotMatch(check.stderr, /unknown option/);
    const shown = await runGaze(['config', 'show', ...files], { cwd: dir });
    assert.equal(shown.code, 0, shown.stderr);
    // Zed's defaults where they differ from Gaze's own: the deprecated rules, the sqlite cache index.
    assert.match(shown.stdout, /^enforce_new_defaults = false {4}# \S+\.conf:\d+$/m);
    assert.match(shown.stdout, /^image_cache_driver = sqlite {4}# \S+\.conf:\d+$/m);
    assert.match(shown.stdout, /^flavor = keystone {4}# \S+\.conf:\d+$/m);
    // Glance's sample shows glance-download's extra_properties in a section Glance does not read it from.
    assert.match(
      check.stderr,
      /\[glance_download_opts\] extra_properties is ignored, as Glance ignores it there: it is read from \[glance_download_properties\]/,
    );
    assert.match(check.stderr, /\[DEFAULT\] wakeup_time is a Glance option Gaze does not implement/);
  },
);

test("a deployment tool's config (brackets everywhere, multi-line quoted lists, quoted dicts): each option takes effect", async () => {
  const dir = path.join(root, 'tool');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'glance-api.conf');
  writeFileSync(
    conf,
    `[DEFAULT]
bind_host = 127.0.0.1
bind_port = ${port}
data_dir = ${dir}/data
enabled_import_methods = [ 'glance-direct',
                           'web-download',
                           'copy-image' ]
enabled_backends = fast:file, cheap:file
show_image_direct_url = True
image_member_quota = 2

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = ${dir}/fast
store_description = "Fast store"

[cheap]
filesystem_store_datadir = ${dir}/cheap

[os_glance_staging_store]
filesystem_store_datadir = ${dir}/staging

[image_import_opts]
image_import_plugins = [ "inject_image_metadata" ]

[inject_metadata_properties]
inject = "hw_disk_bus":"virtio","os_require_quiesce":"True"
ignore_user_roles = [ ]

[import_filtering_opts]
allowed_hosts = [ 127.0.0.1 ]
allowed_ports = [ ]

[glance_download_properties]
extra_properties_prefixes = [ 'hw_',
  'trait:',
  'os_' ]
`,
  );
  const check = await runGaze(['config', 'show', '--config-file', conf], { cwd: dir });
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /^extra_properties = \[hw_, trait:, os_\] +# .*glance-api\.conf:\d+$/m);
  assert.match(check.stdout, /^inject = hw_disk_bus:virtio, os_require_quiesce:True /m);
  assert.match(check.stdout, /^allowed_ports = \[\] /m);
  assert.match(check.stderr, /\[glance_download_properties\] extra_properties_prefixes is another name of \[glance_download_properties\] extra_properties/);

  const gaze = await launchGaze({ args: ['--config-file', conf], cwd: dir, port });
  try {
    const api = client(gaze.url);
    assert.deepEqual((await api.get('/v2/info/import')).json['import-methods'].value, ['glance-direct', 'web-download', 'copy-image']);
    assert.deepEqual((await api.get('/v2/info/stores')).json.stores, [{ id: 'fast', description: 'Fast store', default: 'true' }, { id: 'cheap' }]);

    // web-download from a loopback server on a random port: allowed_hosts names it, allowed_ports = [] allows any port
    const data = randomBytes(64 * 1024);
    files.routes.set('/tool.raw', data);
    const member = { project: 'tool-project', roles: 'member,reader' };
    const image = await api.createImage({ name: 'tool' }, member);
    const started = await api.call('POST', `/v2/images/${image.id}/import`, {
      json: { method: { name: 'web-download', uri: files.url('/tool.raw') } },
      as: member,
    });
    assert.equal(started.status, 202, started.text);
    let done: any;
    for (let i = 0; i < 200; i++) {
      done = (await api.get(`/v2/images/${image.id}`, { as: member })).json;
      if (done.status === 'active' || (done.status === 'queued' && !done.os_glance_import_task)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(done.status, 'active');
    // inject_image_metadata ran with the quoted dict, for a member (ignore_user_roles = [ ] exempts no one)
    assert.equal(done.hw_disk_bus, 'virtio');
    assert.equal(done.os_require_quiesce, 'True');
    assert.equal(done.stores, 'fast');
    assert.match(done.direct_url, new RegExp(`^file://${dir}/fast/${image.id}$`));
    // image_member_quota = 2
    const shared = await api.createImage({ name: 'shared', visibility: 'shared' });
    for (const project of ['p1', 'p2']) assert.equal((await api.post(`/v2/images/${shared.id}/members`, { member: project })).status, 200);
    assert.equal((await api.post(`/v2/images/${shared.id}/members`, { member: 'p3' })).status, 413);
  } finally {
    await gaze.stop();
  }
});

test('a config that cannot be used stops `gaze serve` and `gaze config check` with exit code 2 and one line', async () => {
  const dir = path.join(root, 'bad');
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'bad.conf');
  writeFileSync(conf, '[DEFAULT]\nbind_port = 9\n[image_import_opts]\nimage_import_plugins = [inject_image_metadata, web_download]\n');
  for (const command of [['config', 'check'], ['serve']]) {
    const run = await runGaze([...command, '--config-file', conf], { cwd: dir });
    assert.equal(run.code, 2, `${command.join(' ')}: ${run.stderr}`);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.match(run.stderr.trim(), new RegExp(`^gaze: ${conf}:4: \\[image_import_opts\\] image_import_plugins: unknown import plugin 'web_download'`));
  }
  writeFileSync(conf, '[DEFAULT]\nbind_port = 1\n[glance_stroe]\nx = 1\n');
  const unknown = await runGaze(['config', 'check', '--config', conf], { cwd: dir });
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr.trim(), `gaze: ${conf}:3: unknown section [glance_stroe]`);
});

test('a rules file or a quota value that cannot be used stops both commands with exit code 2 and one line, a log file set or not', async () => {
  const dir = path.join(root, 'bad-rules');
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'glance-api.conf');
  const log = path.join(dir, 'gaze.log');
  writeFileSync(path.join(dir, 'protections.conf'), '[x_(]\ncreate = @\nread = @\nupdate = @\ndelete = @\n');
  const cases: Array<[string, RegExp]> = [
    ['user_storage_quota = 1mb\n', new RegExp(`^gaze: ${conf}:\\d: \\[DEFAULT\\] user_storage_quota: '1mb' is not a size such as 10GB$`)],
    ['user_storage_quota = 1.5MB\n', /user_storage_quota: '1\.5MB' is not a size such as 10GB$/],
    [
      'property_protection_file = protections.conf\n',
      /\[DEFAULT\] property_protection_file: Invalid configuration in property protection file .*malformed property protection rule \[x_\(\]/,
    ],
    ['use_keystone_limits = true\n', /\[oslo_limit\] auth_url: is required with use_keystone_limits$/],
    [
      'use_keystone_limits = true\n[oslo_limit]\nauth_url = http://127.0.0.1:9/v3\nusername = u\npassword = p\nsystem_scope = all\n',
      /\[oslo_limit\] endpoint_id: is required with use_keystone_limits, unless endpoint_service_type/,
    ],
  ];
  for (const [text, expected] of cases) {
    for (const withLog of [false, true]) {
      writeFileSync(conf, `[DEFAULT]\n${withLog ? `log_file = ${log}\n` : ''}${text}`);
      for (const command of [['config', 'check'], ['serve']]) {
        const run = await runGaze([...command, '--config-file', conf], { cwd: dir });
        const what = `${command.join(' ')} ${JSON.stringify(text)} log_file ${withLog}`;
        assert.equal(run.code, 2, `${what}: ${run.stderr}`);
        // one line, and no trace of a log stream closed before it opened
        assert.equal(run.stderr.trim().split('\n').length, 1, `${what}: ${run.stderr}`);
        assert.match(run.stderr.trim(), expected, what);
      }
    }
  }
});

test('a policy rule that cannot be parsed, or that names an undefined rule, is a warning of config check, not a stop', async () => {
  const dir = path.join(root, 'policy-warnings');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'policy.yaml'), '"communitize_image": "role:admin and or ((("\n"add_member": "rule:admin_or_owner"\n');
  writeFileSync(path.join(dir, 'glance-api.conf'), '[DEFAULT]\nbind_port = 9\n');
  const run = await runGaze(['config', 'check', '--config-file', path.join(dir, 'glance-api.conf')], { cwd: dir });
  assert.equal(run.code, 0, run.stderr);
  const out = run.stdout + run.stderr;
  assert.match(out, /rule 'communitize_image': .*the rule denies/);
  assert.match(out, /rule 'add_member' refers to rule 'admin_or_owner', which is not defined: the 'default' rule decides in its place/);
});

test('gaze config show prints set credentials, and URLs that may hold them, as ****', async () => {
  const dir = path.join(root, 'secrets');
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'glance-api.conf');
  writeFileSync(
    conf,
    [
      '[DEFAULT]',
      'transport_url = rabbit://glance:rabbit-pw@127.0.0.1:5672/',
      '[database]',
      'connection = postgresql://glance:db-pw@127.0.0.1/glance',
      '[keystone_authtoken]',
      'username = glance',
      'password = keystone-pw',
      '[glance_store]',
      'swift_store_user = project:glance',
      'swift_store_key = swift-pw',
      's3_store_secret_key = s3-pw',
      '[DEFAULT]',
      'enabled_backends = fast:file, cloud:s3',
      'public_endpoint = http://proxy:url-pw@images.example.org/',
      '[oslo_limit]',
      'auth_section = limits_login',
      '[limits_login]',
      'username = limits',
      'password = login-pw',
      '[fast]',
      'filesystem_store_datadir = /srv/fast',
      '[cloud]',
      's3_store_host = http://127.0.0.1:8080',
      's3_store_access_key = cloud-access',
      's3_store_secret_key = cloud-pw',
      '',
    ].join('\n'),
  );
  const shown = await runGaze(['config', 'show', '--config-file', conf], { cwd: dir });
  assert.equal(shown.code, 0, shown.stderr);
  for (const secret of ['rabbit-pw', 'db-pw', 'keystone-pw', 'swift-pw', 's3-pw', 'project:glance', 'cloud-access', 'cloud-pw', 'url-pw', 'login-pw'])
    assert.ok(!shown.stdout.includes(secret), secret);
  // Each store's own section is shown as set, with where, its credentials hidden.
  assert.match(shown.stdout, /^\[fast\]\nfilesystem_store_datadir = \/srv\/fast +# .*glance-api\.conf:21$/m);
  // The section an auth_section names, as set; a URL's password, in any option.
  assert.match(shown.stdout, /^\[limits_login\]\nusername = limits +# .*glance-api\.conf:18\npassword = \*\*\*\* +# .*:19$/m);
  assert.match(shown.stdout, /^public_endpoint = http:\/\/proxy:\*\*\*\*@images\.example\.org\/ +# /m);
  assert.match(
    shown.stdout,
    /^\[cloud\]\ns3_store_host = http:\/\/127\.0\.0\.1:8080 +# .*glance-api\.conf:23\ns3_store_access_key = \*\*\*\* +# .*:24\ns3_store_secret_key = \*\*\*\* +# .*:25$/m,
  );
  for (const option of ['transport_url', 'connection', 'password', 'swift_store_user', 'swift_store_key', 's3_store_secret_key']) {
    assert.match(shown.stdout, new RegExp(`^${option} = \\*\\*\\*\\* +# .*glance-api\\.conf:\\d+$`, 'm'), option);
  }
  assert.match(shown.stdout, /^username = glance +# /m);
});
