// The Keystone authenticator against a real Keystone (scripts/start-keystone.sh), not a mock: the
// shapes of token bodies, implied roles and error statuses are Keystone's own.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { GazeError } from '../../src/domain/errors.ts';
import { createKeystoneAuthenticator, KEYSTONE_UNAVAILABLE } from '../../src/auth/keystone.ts';
import { Policy } from '../../src/auth/policy.ts';
import { makeContext } from '../../src/auth/context.ts';
import { freePort, startKeystone, type RunningKeystone } from '../helpers/keystone.ts';

let keystone: RunningKeystone;

before(async () => {
  keystone = await startKeystone({ regionOnePort: 19292, regionTwoPort: 19293 });
});

after(async () => {
  await keystone?.stop();
});

function config(overrides: Record<string, string> = {}): Config {
  return loadConfig(
    undefined,
    {},
    {
      keystone_authtoken: {
        auth_url: `${keystone.url}/v3`,
        username: 'gaze',
        password: 'gaze-secret',
        project_name: 'service',
        user_domain_id: 'default',
        project_domain_name: 'Default',
        ...overrides,
      },
    },
  );
}

/** A fetch that counts (and lets a test rewrite) what goes to Keystone. */
function countingFetch(rewrite?: (res: Response, init?: RequestInit) => Response) {
  const calls: string[] = [];
  const wrapped: typeof fetch = async (input, init) => {
    calls.push(`${init?.method ?? 'GET'} ${String(input)}`);
    const res = await fetch(input, init);
    return rewrite ? rewrite(res, init) : res;
  };
  return { fetch: wrapped, calls };
}

async function rejectsWith(promise: Promise<unknown>, status: number): Promise<GazeError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof GazeError, `expected a GazeError, got ${err}`);
    assert.equal(err.status, status, err.message);
    return err;
  }
  assert.fail(`expected HTTP ${status}`);
}

test('a demo user token yields project, implied roles and the two-region catalog', async () => {
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const auth = createKeystoneAuthenticator(config());
  const ctx = await auth.authenticate({ 'x-auth-token': token }, 'req-1');

  const project = await projectOf(token);
  assert.equal(ctx.projectId, project.id);
  assert.match(ctx.userId ?? '', /^[0-9a-f]{32}$/);
  assert.deepEqual([...ctx.roles].sort(), ['member', 'reader']);
  assert.equal(ctx.isAdmin, false);
  assert.equal(ctx.authToken, token);
  assert.equal(ctx.requestId, 'req-1');

  const image = ctx.serviceCatalog.find((s) => s.type === 'image');
  assert.ok(image, 'image service in the catalog');
  const publicUrl = (region: string) => image.endpoints.find((e) => e.region === region && e.interface === 'public')?.url;
  assert.equal(publicUrl('RegionOne'), 'http://127.0.0.1:19292');
  assert.equal(publicUrl('RegionTwo'), 'http://127.0.0.1:19293');
  assert.equal(image.endpoints.length, 6);
  for (const e of image.endpoints) {
    assert.equal(e.region_id, e.region);
    assert.match(e.id ?? '', /^[0-9a-f]{32}$/);
  }
  assert.ok(ctx.serviceCatalog.some((s) => s.type === 'identity'));
});

test('the service user is admin; the reader user only reads', async () => {
  const auth = createKeystoneAuthenticator(config());
  const admin = await auth.authenticate({ 'x-auth-token': await keystone.token('gaze', 'gaze-secret', 'service') }, 'r');
  assert.equal(admin.isAdmin, true);
  assert.deepEqual([...admin.roles].sort(), ['admin', 'member', 'reader']);

  const reader = await auth.authenticate({ 'x-auth-token': await keystone.token('reader', 'reader-secret', 'demo') }, 'r');
  assert.deepEqual(reader.roles, ['reader']);
  assert.equal(reader.isAdmin, false);

  const alt = await auth.authenticate({ 'x-auth-token': await keystone.token('alt', 'alt-secret', 'alt') }, 'r');
  assert.notEqual(alt.projectId, reader.projectId);
});

test("a service token beside the user's token adds its roles as service roles; a bad one adds none, as in Glance", async () => {
  const auth = createKeystoneAuthenticator(config());
  const user = await keystone.token('demo', 'demo-secret', 'demo');
  const ctx = await auth.authenticate({ 'x-auth-token': user, 'x-service-token': await keystone.token('nova', 'nova-secret', 'service') }, 'r');
  assert.deepEqual([...ctx.roles].sort(), ['member', 'reader']);
  assert.deepEqual(ctx.serviceRoles, ['service']);
  assert.equal((await auth.authenticate({ 'x-auth-token': user }, 'r')).serviceRoles.length, 0);
  // service_token_roles name Keystone's roles exactly, as keystonemiddleware compares them: `Service` is
  // not nova's `service`, so under service_token_roles_required its token adds nothing.
  const exact = createKeystoneAuthenticator(config({ service_token_roles: 'Service', service_token_roles_required: 'true' }));
  const withNova = { 'x-auth-token': user, 'x-service-token': await keystone.token('nova', 'nova-secret', 'service') };
  assert.deepEqual((await exact.authenticate(withNova, 'r')).serviceRoles, []);
  const named = createKeystoneAuthenticator(config({ service_token_roles: 'service', service_token_roles_required: 'true' }));
  assert.deepEqual((await named.authenticate(withNova, 'r')).serviceRoles, ['service']);
  for (const bad of ['not-a-token', 'caf\u00e9']) {
    const ctx = await auth.authenticate({ 'x-auth-token': user, 'x-service-token': bad }, 'r');
    assert.deepEqual([ctx.userId, ctx.serviceRoles], [(await auth.authenticate({ 'x-auth-token': user }, 'r')).userId, []]);
  }
});

test('a bogus token is 401 with WWW-Authenticate', async () => {
  const auth = createKeystoneAuthenticator(config());
  const err = await rejectsWith(auth.authenticate({ 'x-auth-token': 'gAAAAABbogus' }, 'r'), 401);
  assert.equal(err.code, 'UNAUTHORIZED');
  assert.equal(err.headers['WWW-Authenticate'], `Keystone uri="${keystone.url}/v3"`);

  const withUri = createKeystoneAuthenticator(config({ www_authenticate_uri: 'http://keystone.example:5000' }));
  const err2 = await rejectsWith(withUri.authenticate({ 'x-auth-token': 'nope' }, 'r'), 401);
  assert.equal(err2.headers['WWW-Authenticate'], 'Keystone uri="http://keystone.example:5000"');
  // keystonemiddleware's deprecated name for it, still in older deployments' files.
  const withOldName = createKeystoneAuthenticator(config({ auth_uri: 'http://old.example:5000' }));
  const err3 = await rejectsWith(withOldName.authenticate({ 'x-auth-token': 'nope' }, 'r'), 401);
  assert.equal(err3.headers['WWW-Authenticate'], 'Keystone uri="http://old.example:5000"');
});

test('a missing or empty token is 401 without asking Keystone', async () => {
  const counter = countingFetch();
  const auth = createKeystoneAuthenticator(config(), { fetch: counter.fetch });
  // An empty X-Auth-Token is no token, and no reason to take X-Storage-Token instead (keystonemiddleware).
  const storage = await keystone.token('demo', 'demo-secret', 'demo');
  for (const headers of [{}, { 'x-auth-token': '' }, { 'x-auth-token': undefined }, { 'x-auth-token': '', 'x-storage-token': storage }]) {
    const err = await rejectsWith(auth.authenticate(headers, 'r'), 401);
    assert.match(err.headers['WWW-Authenticate'], /^Keystone uri="/);
  }
  assert.deepEqual(counter.calls, []);
});

test('a second validation of the same token does not call Keystone', async () => {
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const counter = countingFetch();
  const auth = createKeystoneAuthenticator(config(), { fetch: counter.fetch });

  const first = await auth.authenticate({ 'x-auth-token': token }, 'a');
  assert.equal(counter.calls.length, 2, counter.calls.join('\n')); // service token + validation
  const second = await auth.authenticate({ 'X-Auth-Token': token }, 'b');
  assert.equal(counter.calls.length, 2, counter.calls.join('\n'));
  assert.equal(second.requestId, 'b');
  assert.deepEqual({ ...second, requestId: 'a' }, first);

  // Another user's token reuses the service token: one more call.
  await auth.authenticate({ 'x-auth-token': await keystone.token('alt', 'alt-secret', 'alt') }, 'c');
  assert.equal(counter.calls.length, 3, counter.calls.join('\n'));
});

test('cached validations expire after token_cache_time and the cache is bounded', async () => {
  let clock = Date.now();
  const counter = countingFetch();
  const auth = createKeystoneAuthenticator(config({ token_cache_time: '60' }), {
    fetch: counter.fetch,
    now: () => clock,
    maxCachedTokens: 1,
  });
  const demo = await keystone.token('demo', 'demo-secret', 'demo');
  const alt = await keystone.token('alt', 'alt-secret', 'alt');

  await auth.authenticate({ 'x-auth-token': demo }, 'r');
  const afterFirst = counter.calls.length;
  clock += 59_000;
  await auth.authenticate({ 'x-auth-token': demo }, 'r');
  assert.equal(counter.calls.length, afterFirst, 'still cached');
  clock += 2_000;
  await auth.authenticate({ 'x-auth-token': demo }, 'r');
  assert.equal(counter.calls.length, afterFirst + 1, 'expired from the cache');

  await auth.authenticate({ 'x-auth-token': alt }, 'r'); // evicts demo (one entry at most)
  await auth.authenticate({ 'x-auth-token': demo }, 'r');
  assert.equal(counter.calls.length, afterFirst + 3, 'evicted from the cache');
});

test('a service token Keystone rejects is replaced once', async () => {
  // The first service token handed out is corrupted, so Keystone answers 401 to the first validation.
  let corrupted = false;
  const counter = countingFetch((res, init) => {
    if (init?.method !== 'POST' || corrupted) return res;
    corrupted = true;
    const headers = new Headers(res.headers);
    headers.set('x-subject-token', 'gAAAAABnot-a-real-service-token');
    return new Response(res.body, { status: res.status, headers });
  });
  const auth = createKeystoneAuthenticator(config(), { fetch: counter.fetch });
  const ctx = await auth.authenticate({ 'x-auth-token': await keystone.token('demo', 'demo-secret', 'demo') }, 'r');
  assert.deepEqual([...ctx.roles].sort(), ['member', 'reader']);
  assert.deepEqual(
    counter.calls.map((c) => c.split(' ')[0]),
    ['POST', 'GET', 'POST', 'GET'],
  );
});

test('auth_type: password and v3password log in alike, v3applicationcredential with a credential id; another plugin stops the start', async () => {
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const ctx = await createKeystoneAuthenticator(config({ auth_type: 'v3password' })).authenticate({ 'x-auth-token': token }, 'r');
  assert.deepEqual([...ctx.roles].sort(), ['member', 'reader']);

  // Gaze's own user makes an application credential (it holds the service project's admin role).
  const gaze = await keystone.login('gaze', 'gaze-secret', 'service');
  const made = await fetch(`${keystone.url}/v3/users/${gaze.userId}/application_credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': gaze.token },
    body: JSON.stringify({ application_credential: { name: `gaze-${Date.now()}` } }),
  });
  assert.equal(made.status, 201);
  const { id, secret } = ((await made.json()) as { application_credential: { id: string; secret: string } }).application_credential;
  const withCredential = (extra: Record<string, string>) =>
    loadConfig(undefined, {}, { keystone_authtoken: { auth_url: `${keystone.url}/v3`, auth_type: 'v3applicationcredential', ...extra } });
  const byCredential = await createKeystoneAuthenticator(withCredential({ application_credential_id: id, application_credential_secret: secret })).authenticate(
    { 'x-auth-token': token },
    'r',
  );
  assert.deepEqual([byCredential.userId, [...byCredential.roles].sort()], [ctx.userId, ['member', 'reader']]);
  assert.throws(() => createKeystoneAuthenticator(withCredential({ application_credential_id: id })), {
    name: 'ConfigError',
    message: /\[keystone_authtoken\] application_credential_secret is required with auth_type v3applicationcredential/,
  });

  // `auth_plugin` is keystoneauth's deprecated name for auth_type.
  assert.throws(() => createKeystoneAuthenticator(config({ auth_plugin: 'v3token' })), {
    name: 'ConfigError',
    message: /\[keystone_authtoken\] auth_type v3token is not supported: use password, v3password or v3applicationcredential/,
  });
});

test('the service user by id and its project by id; a credential by name with its user; the plugin from auth_section', async () => {
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const gaze = await keystone.login('gaze', 'gaze-secret', 'service');
  const byIds = createKeystoneAuthenticator(
    loadConfig(undefined, {}, { keystone_authtoken: { auth_url: keystone.url, user_id: gaze.userId, password: 'gaze-secret', project_id: gaze.projectId } }),
  );
  const ctx = await byIds.authenticate({ 'x-auth-token': token }, 'r');
  assert.deepEqual([...ctx.roles].sort(), ['member', 'reader']);

  const name = `gaze-named-${Date.now()}`;
  const made = await fetch(`${keystone.url}/v3/users/${gaze.userId}/application_credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': gaze.token },
    body: JSON.stringify({ application_credential: { name } }),
  });
  assert.equal(made.status, 201);
  const { secret } = ((await made.json()) as { application_credential: { secret: string } }).application_credential;
  const named = (user: Record<string, string>) =>
    loadConfig(
      undefined,
      {},
      {
        keystone_authtoken: {
          auth_url: keystone.url,
          auth_type: 'v3applicationcredential',
          application_credential_name: name,
          application_credential_secret: secret,
          ...user,
        },
      },
    );
  const users: Array<Record<string, string>> = [{ username: 'gaze', user_domain_name: 'Default' }, { user_id: gaze.userId }];
  for (const user of users) {
    const byName = await createKeystoneAuthenticator(named(user)).authenticate({ 'x-auth-token': token }, 'r');
    assert.equal(byName.userId, ctx.userId, JSON.stringify(user));
  }
  // Keystone finds a credential by name only within its user's.
  assert.throws(() => createKeystoneAuthenticator(named({})), {
    name: 'ConfigError',
    message: /^\[keystone_authtoken\] user_id or username is required with application_credential_name/,
  });
  const wrongUser = createKeystoneAuthenticator(named({ username: 'demo', user_domain_id: 'default' }));
  await rejectsWith(wrongUser.authenticate({ 'x-auth-token': token }, 'r'), 503);

  // auth_section: every plugin option comes from the section it names, and [keystone_authtoken]'s own
  // (a wrong password here) are not read; that section does not stop the start as an unknown one.
  const shared = {
    auth_url: keystone.url,
    auth_plugin: 'v3password',
    username: 'gaze',
    password: 'gaze-secret',
    project_name: 'service',
    default_domain_id: 'default',
  };
  const viaSection = loadConfig(undefined, {}, { keystone_authtoken: { auth_section: 'glance_service_user', password: 'wrong' }, glance_service_user: shared });
  const fromSection = await createKeystoneAuthenticator(viaSection).authenticate({ 'x-auth-token': token }, 'r');
  assert.equal(fromSection.userId, ctx.userId);
  assert.throws(() => loadConfig(undefined, {}, { keystone_authtoken: {}, glance_service_user: shared }), {
    name: 'ConfigError',
    message: /unknown section \[glance_service_user\]/,
  });
  assert.throws(
    () =>
      createKeystoneAuthenticator(
        loadConfig(undefined, {}, { keystone_authtoken: { auth_section: 'glance_service_user' }, glance_service_user: { ...shared, project_name: '' } }),
      ),
    {
      name: 'ConfigError',
      message: /^\[glance_service_user\] \(the auth_section of \[keystone_authtoken\]\) project_name or project_id is required/,
    },
  );
});

test('include_service_catalog = false validates tokens without their catalog', async () => {
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const counter = countingFetch();
  const without = await createKeystoneAuthenticator(config({ include_service_catalog: 'false' }), { fetch: counter.fetch }).authenticate(
    { 'x-auth-token': token },
    'r',
  );
  assert.deepEqual(without.serviceCatalog, []);
  assert.ok(
    counter.calls.some((c) => c.startsWith('GET ') && c.endsWith('/v3/auth/tokens?nocatalog')),
    counter.calls.join('\n'),
  );
  assert.deepEqual([...without.roles].sort(), ['member', 'reader']);
  const withIt = await createKeystoneAuthenticator(config()).authenticate({ 'x-auth-token': token }, 'r');
  assert.ok(withIt.serviceCatalog.some((s) => s.type === 'image'));
});

test("wrong service credentials are 503, not the caller's fault", async () => {
  const auth = createKeystoneAuthenticator(config({ password: 'wrong' }));
  const err = await rejectsWith(auth.authenticate({ 'x-auth-token': 'anything' }, 'r'), 503);
  assert.equal(err.message, KEYSTONE_UNAVAILABLE);
  assert.equal((err.cause as Error).message, "service authentication as 'gaze' failed with HTTP 401");
});

test('a Keystone that never answers is 503 after http_connect_timeout', async () => {
  // A listener that accepts connections and says nothing.
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket));
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  try {
    const auth = createKeystoneAuthenticator(
      loadConfig(
        undefined,
        {},
        {
          keystone_authtoken: {
            auth_url: `http://127.0.0.1:${port}`,
            username: 'gaze',
            password: 'gaze-secret',
            project_name: 'service',
            http_connect_timeout: '1',
          },
        },
      ),
    );
    const started = Date.now();
    const err = await rejectsWith(auth.authenticate({ 'x-auth-token': 'anything' }, 'r'), 503);
    assert.equal(err.message, KEYSTONE_UNAVAILABLE);
    assert.equal((err.cause as Error).message, `no answer from http://127.0.0.1:${port} within 1 s`);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A token of the bootstrap admin with any scope Keystone's API takes. */
async function adminToken(scope: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${keystone.url}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: 'admin-secret' } } }, scope },
    }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return res.headers.get('x-subject-token')!;
}

test("the scope of a token reaches the policy: system and domain scopes, the domains of user and project, the service token's identity; enforce_scope refuses the other scopes", async () => {
  const auth = createKeystoneAuthenticator(config());
  const demo = await auth.authenticate(
    { 'x-auth-token': await keystone.token('demo', 'demo-secret', 'demo'), 'x-service-token': await keystone.token('nova', 'nova-secret', 'service') },
    'r',
  );
  const nova = await auth.authenticate({ 'x-auth-token': await keystone.token('nova', 'nova-secret', 'service') }, 'r');
  assert.deepEqual(demo.scope, {
    isAdminProject: true, // Keystone names no admin project here: keystonemiddleware's default
    systemScope: null,
    domainId: null,
    userDomainId: 'default',
    projectDomainId: 'default',
    service: { userId: nova.userId, userDomainId: 'default', projectId: nova.projectId, projectDomainId: 'default' },
  });

  const system = await auth.authenticate({ 'x-auth-token': await adminToken({ system: { all: true } }) }, 'r');
  assert.deepEqual([system.projectId, system.scope?.systemScope, system.scope?.domainId], [null, 'all', null]);
  // The admin role on the default domain, then a domain-scoped token.
  const projectAdmin = await adminToken({ project: { name: 'admin', domain: { id: 'default' } } });
  const lookup = async (path: string) => (await (await fetch(`${keystone.url}/v3/${path}`, { headers: { 'x-auth-token': projectAdmin } })).json()) as any;
  const userId = (await lookup('users?name=admin')).users[0].id;
  const roleId = (await lookup('roles?name=admin')).roles[0].id;
  const grant = await fetch(`${keystone.url}/v3/domains/default/users/${userId}/roles/${roleId}`, { method: 'PUT', headers: { 'x-auth-token': projectAdmin } });
  assert.equal(grant.status, 204);
  const domain = await auth.authenticate({ 'x-auth-token': await adminToken({ domain: { id: 'default' } }) }, 'r');
  assert.deepEqual([domain.projectId, domain.scope?.systemScope, domain.scope?.domainId], [null, null, 'default']);

  const policy = new Policy(
    { get_images: 'user_domain_id:default or system_scope:all', add_image: 'project_domain_id:default', get_tasks: 'service_user_id:%(service)s' },
    { enforceScope: false },
  );
  assert.ok(policy.check('get_images', demo) && policy.check('get_images', system) && policy.check('add_image', demo));
  assert.ok(policy.check('get_tasks', demo, { service: nova.userId! }));
  assert.ok(!policy.check('add_image', system));
  // enforce_scope: Glance's rules are for project-scoped tokens; context_is_admin is checked for any.
  const scoped = new Policy({}, { enforceScope: true });
  for (const ctx of [system, domain]) {
    assert.equal(scoped.check('get_images', ctx), false);
    assert.equal(scoped.isAdmin(ctx), true);
  }
  assert.equal(scoped.check('get_images', demo, { project_id: demo.projectId }), true);
});

test("is_admin_project from the token: an admin of another project than Keystone's admin project is no cloud admin to a rule that asks", () => {
  const policy = new Policy({ context_is_admin: 'role:admin and is_admin_project:True', publicize_image: 'rule:context_is_admin' });
  const scope = { systemScope: null, domainId: null, userDomainId: 'default', projectDomainId: 'default', service: null };
  const elsewhere = makeContext({ requestId: 'r', projectId: 'demo', roles: ['admin'], scope: { ...scope, isAdminProject: false } });
  const cloud = makeContext({ requestId: 'r', projectId: 'admin', roles: ['admin'], scope: { ...scope, isAdminProject: true } });
  assert.deepEqual([policy.isAdmin(elsewhere), policy.check('publicize_image', elsewhere)], [false, false]);
  assert.deepEqual([policy.isAdmin(cloud), policy.check('publicize_image', cloud)], [true, true]);
});

test('Keystone stopped → 503', async () => {
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const auth = createKeystoneAuthenticator(config());
  await keystone.stop();
  const err = await rejectsWith(auth.authenticate({ 'x-auth-token': token }, 'r'), 503);
  assert.equal(err.code, 'SERVICE_UNAVAILABLE');
  assert.equal(err.message, KEYSTONE_UNAVAILABLE);
  assert.match((err.cause as Error).message, /ECONNREFUSED/);
});

async function projectOf(token: string): Promise<{ id: string; name: string }> {
  // The token validates itself (a user may look at its own token).
  const res = await fetch(`${keystone.url}/v3/auth/tokens`, { headers: { 'X-Auth-Token': token, 'X-Subject-Token': token } });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { token: { project: { id: string; name: string } } };
  assert.equal(body.token.project.name, 'demo');
  return body.token.project;
}
