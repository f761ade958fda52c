import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKeystone, keystoneAuthSections, type RunningKeystone } from '../helpers/keystone.ts';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { ConfigError, loadConfig, type RawSections } from '../../src/config/index.ts';
import { quotaSettings } from '../../src/quota/from-config.ts';

// Unified limits read from a real Keystone (use_keystone_limits): registered defaults, a project
// override, usage in /v2/info/usage, and the 413 of a project over its limit.
let keystone: RunningKeystone;
let gaze: RunningGaze;
let demoToken: string;
let altToken: string;

async function systemAdminToken(url: string): Promise<string> {
  const res = await fetch(`${url}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'admin', password: 'admin-secret', domain: { id: 'default' } } } },
        scope: { system: { all: true } },
      },
    }),
  });
  assert.equal(res.status, 201, await res.text());
  return res.headers.get('x-subject-token')!;
}

async function keystoneCall(token: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${keystone.url}${path}`, {
    method,
    headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

before(async () => {
  keystone = await startKeystone();
  const admin = await systemAdminToken(keystone.url);
  const { services } = await keystoneCall(admin, 'GET', '/v3/services?type=image');
  const serviceId = services[0].id;
  const { projects } = await keystoneCall(admin, 'GET', '/v3/projects?name=demo');
  const defaults = { image_size_total: 100, image_stage_total: 100, image_count_total: 3, image_count_uploading: 2 };
  await keystoneCall(admin, 'POST', '/v3/registered_limits', {
    registered_limits: Object.entries(defaults).map(([resource_name, default_limit]) => ({
      service_id: serviceId,
      region_id: 'RegionOne',
      resource_name,
      default_limit,
    })),
  });
  await keystoneCall(admin, 'POST', '/v3/limits', {
    limits: [{ service_id: serviceId, region_id: 'RegionOne', project_id: projects[0].id, resource_name: 'image_count_total', resource_limit: 1 }],
  });
  gaze = await startGazeInProcess({
    ...keystoneAuthSections(keystone.url),
    DEFAULT: { use_keystone_limits: 'true' },
    oslo_limit: {
      auth_url: keystone.url,
      username: 'admin',
      password: 'admin-secret',
      user_domain_id: 'default',
      system_scope: 'all',
      endpoint_service_type: 'image',
      endpoint_region_name: 'RegionOne',
      endpoint_interface: 'public',
    },
  });
  demoToken = await keystone.token('demo', 'demo-secret', 'demo');
  altToken = await keystone.token('alt', 'alt-secret', 'alt');
});
after(async () => {
  await gaze?.stop();
  await keystone?.stop();
});

async function createImage(token: string) {
  const res = await fetch(`${gaze.url}/v2/images`, {
    method: 'POST',
    headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ disk_format: 'raw', container_format: 'bare' }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

test('a project limit in Keystone overrides the registered default; the next image is refused with 413', async () => {
  assert.equal((await createImage(demoToken)).status, 201);
  const refused = await createImage(demoToken);
  assert.equal(refused.status, 413);
  assert.match(
    refused.body.message,
    /^The request returned a 413 Request Entity Too Large\. This generally means that rate limiting or a quota threshold was breached\.\n\nThe response body:\nProject [0-9a-f]{32} is over a limit for \[Resource image_count_total is over limit of 1 due to current usage 1 and delta 1\]/,
  );
  // alt has no override: the registered default of 3 applies.
  for (let i = 0; i < 3; i++) assert.equal((await createImage(altToken)).status, 201);
  assert.equal((await createImage(altToken)).status, 413);
});

test('[oslo_limit] auth_type v3applicationcredential: the limits are read with an application credential, by id or by name with its user', async () => {
  const { token, userId } = await keystone.login('admin', 'admin-secret', 'admin');
  const { application_credential: credential } = await keystoneCall(token, 'POST', `/v3/users/${userId}/application_credentials`, {
    application_credential: { name: 'gaze-limits' },
  });
  const { projects } = await keystoneCall(await systemAdminToken(keystone.url), 'GET', '/v3/projects?name=demo');
  const endpoint = { endpoint_service_type: 'image', endpoint_region_name: 'RegionOne', endpoint_interface: 'public' };
  const warnings: string[] = [];
  const limitsWith = (login: Record<string, string>, projectId = projects[0].id, more: RawSections = {}) => {
    const config = loadConfig([], {}, { DEFAULT: { use_keystone_limits: 'true' }, oslo_limit: { auth_url: keystone.url, ...endpoint, ...login }, ...more });
    return quotaSettings(config, (message) => warnings.push(message)).source!.limitsFor(projectId);
  };
  // An application credential's token is its project's (admin here): Keystone lists that token no
  // other project's limits, so demo's own limit (1 image) is unseen and the registered defaults apply,
  // as with oslo.limit; start-up says so.
  const expected = { image_size_total: 100, image_stage_total: 100, image_count_total: 3, image_count_uploading: 2 };
  const secret = credential.secret as string;
  const byId = { auth_type: 'v3applicationcredential', application_credential_id: credential.id, application_credential_secret: secret };
  assert.deepEqual(await limitsWith(byId), expected);
  const byName = { auth_type: 'v3applicationcredential', application_credential_name: 'gaze-limits', username: 'admin', user_domain_id: 'default' };
  assert.deepEqual(await limitsWith({ ...byName, application_credential_secret: secret }), expected);
  // The plugin's options may live in the section auth_section names, as keystoneauth reads them.
  assert.deepEqual(
    await limitsWith({ auth_url: '', auth_section: 'limits_login' }, projects[0].id, { limits_login: { auth_url: keystone.url, ...byId } }),
    expected,
  );
  warnings.pop();
  assert.deepEqual(warnings, [
    `[oslo_limit] logs in with a project-scoped token (application credential ${credential.id}): Keystone shows it no other project's limits, so other projects get the registered defaults; a user with system_scope = all reads them all`,
    "[oslo_limit] logs in with a project-scoped token (application credential 'gaze-limits'): Keystone shows it no other project's limits, so other projects get the registered defaults; a user with system_scope = all reads them all",
  ]);
  // Its own project's limits it reads.
  const systemAdmin = await systemAdminToken(keystone.url);
  const adminProject = (await keystoneCall(systemAdmin, 'GET', '/v3/projects?name=admin')).projects[0].id;
  const serviceId = (await keystoneCall(systemAdmin, 'GET', '/v3/services?type=image')).services[0].id;
  await keystoneCall(systemAdmin, 'POST', '/v3/limits', {
    limits: [{ service_id: serviceId, region_id: 'RegionOne', project_id: adminProject, resource_name: 'image_size_total', resource_limit: 50 }],
  });
  assert.deepEqual(await limitsWith(byId, adminProject), { ...expected, image_size_total: 50 });
  // Keystone refuses a wrong secret: the limits cannot be read, and the message names the credential.
  await assert.rejects(limitsWith({ ...byId, application_credential_secret: 'wrong' }), (err: Error) => {
    assert.match(err.message, new RegExp(`^authentication to Keystone as application credential ${credential.id} for unified limits failed with HTTP 401$`));
    return true;
  });
  // Without its secret (or without a user for a name) the start stops, naming the option.
  const refusedWith = (message: string) => (err: unknown) => err instanceof ConfigError && err.message === message;
  assert.throws(() => limitsWith(byName), refusedWith('[oslo_limit] application_credential_secret is required with auth_type v3applicationcredential'));
  assert.throws(
    () => limitsWith({ auth_type: 'v3applicationcredential', application_credential_name: 'gaze-limits', application_credential_secret: secret }),
    refusedWith('[oslo_limit] user_id or username is required with application_credential_name'),
  );
  assert.throws(
    () => limitsWith({ username: 'admin', password: 'admin-secret' }),
    refusedWith('[oslo_limit] project_name or project_id is required with use_keystone_limits (or system_scope = all)'),
  );
});

test('/v2/info/usage shows the limits Keystone holds and the project usage', async () => {
  const res = await fetch(`${gaze.url}/v2/info/usage`, { headers: { 'X-Auth-Token': demoToken } });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    usage: {
      image_size_total: { limit: 100, usage: 0 },
      image_stage_total: { limit: 100, usage: 0 },
      image_count_total: { limit: 1, usage: 1 },
      image_count_uploading: { limit: 2, usage: 0 },
    },
  });
});

test("limits lowered below a project's usage: what it staged still imports (Glance checks only image_size_total then); an upload, even an empty one, is refused with delta 0", async () => {
  const admin = await systemAdminToken(keystone.url);
  const serviceId = (await keystoneCall(admin, 'GET', '/v3/services?type=image')).services[0].id;
  const altProject = (await keystoneCall(admin, 'GET', '/v3/projects?name=alt')).projects[0].id;
  const call = async (method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${gaze.url}${path}`, {
      method,
      headers: { 'X-Auth-Token': altToken, Accept: 'application/json', ...headers },
      body: body as BodyInit | undefined,
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  };
  const ids: string[] = (await call('GET', '/v2/images')).json.images.map((i: { id: string }) => i.id);
  assert.equal(ids.length, 3, 'the three images of the first test');
  const [first, second, third] = ids as [string, string, string];
  for (const id of [first, second]) {
    const staged = await call('PUT', `/v2/images/${id}/stage`, Buffer.alloc(1024 * 1024, 7), { 'Content-Type': 'application/octet-stream' });
    assert.equal(staged.status, 204);
  }
  const lowered = ['image_stage_total', 'image_count_uploading'].map((resource_name) => ({
    service_id: serviceId,
    region_id: 'RegionOne',
    project_id: altProject,
    resource_name,
    resource_limit: 1,
  }));
  await keystoneCall(admin, 'POST', '/v3/limits', { limits: lowered });
  const usage = (await call('GET', '/v2/info/usage')).json.usage;
  assert.deepEqual(
    [usage.image_stage_total, usage.image_count_uploading],
    [
      { limit: 1, usage: 2 },
      { limit: 1, usage: 2 },
    ],
  );
  const imported = await call('POST', `/v2/images/${first}/import`, JSON.stringify({ method: { name: 'glance-direct' } }), {
    'Content-Type': 'application/json',
  });
  assert.equal(imported.status, 202);
  let status = '';
  for (let i = 0; i < 200 && status !== 'active'; i++) {
    status = (await call('GET', `/v2/images/${first}`)).json.status;
    if (status !== 'active') await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(status, 'active');

  // 1 MiB stored against a limit of 0: an upload of nothing is refused as Glance refuses it.
  await keystoneCall(admin, 'POST', '/v3/limits', {
    limits: [{ service_id: serviceId, region_id: 'RegionOne', project_id: altProject, resource_name: 'image_size_total', resource_limit: 0 }],
  });
  const empty = await call('PUT', `/v2/images/${third}/file`, Buffer.alloc(0), { 'Content-Type': 'application/octet-stream' });
  assert.equal(empty.status, 413);
  assert.match(empty.json.message, /Resource image_size_total is over limit of 0 due to current usage 1 and delta 0\]/);
  assert.equal((await call('GET', `/v2/images/${third}`)).json.status, 'queued');
});
