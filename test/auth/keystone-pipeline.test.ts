// Tokens as Glance's pipeline weighs them (keystonemiddleware deferring its decision to Glance's context
// middleware), against a real Keystone whose tokens live a few seconds: a user token that expired
// meanwhile is accepted beside an X-Service-Token holding a service role (Nova uploading a snapshot after
// a long conversion); a service token that is not valid, or (with service_token_roles_required) holds no
// service role, adds nothing; with allow_anonymous_access, a request without a valid token reads as
// nobody and every write is 403 "Read-only access"; an application credential's access rules name the
// methods and paths its tokens may call (with service_type set). Checked side by side with Glance 25. Users
// (test/helpers/keystone.ts): admin, demo (member), alt (member), nova (service role, project service).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { createKeystoneAuthenticator } from '../../src/auth/keystone.ts';
import type { Authenticator } from '../../src/auth/context.ts';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { keystoneAuthSections, startKeystone, type RunningKeystone } from '../helpers/keystone.ts';
import { expectError, JSON_ACCEPT, rawRequest, type Reply } from '../helpers/http.ts';

// Long enough for a test's requests with one token on a busy machine, short enough to wait out.
const TOKEN_LIFE_S = 15;

let keystone: RunningKeystone;
let gaze: RunningGaze;
let strict: RunningGaze;
/** [keystone_authtoken] service_type = image: application credentials' access rules are enforced. */
let ruled: RunningGaze;
/** allow_anonymous_access, with the deprecated rules (Glance 25's defaults), under which anonymous callers read public images. */
let open: RunningGaze;
/** demo's token, expired before the tests run. */
let expired = '';
let imageId = '';

const call = (base: string, method: string, path: string, headers: Record<string, string>, body?: string | Buffer) =>
  rawRequest(base, method, path, { ...JSON_ACCEPT, ...headers }, body);

/** Glance's refusal: 401, WebOb's sentence, and where to authenticate. */
function assertUnauthorized(reply: Reply): void {
  expectError(reply, 401, /^This server could not verify that you are authorized/);
  assert.match(reply.headers.get('www-authenticate') ?? '', /^Keystone uri=/);
}

before(
  async () => {
    keystone = await startKeystone({ regionOnePort: 29292, regionTwoPort: 29293, tokenExpiration: TOKEN_LIFE_S });
    const sections = keystoneAuthSections(keystone.url);
    gaze = await startGazeInProcess(sections);
    strict = await startGazeInProcess({ ...sections, keystone_authtoken: { ...sections.keystone_authtoken!, service_token_roles_required: 'True' } });
    ruled = await startGazeInProcess({ ...sections, keystone_authtoken: { ...sections.keystone_authtoken!, service_type: 'image' } });
    open = await startGazeInProcess({ ...sections, DEFAULT: { allow_anonymous_access: 'True' }, oslo_policy: { enforce_new_defaults: 'False' } });
    const demo = await keystone.token('demo', 'demo-secret', 'demo');
    const created = await call(
      gaze.url,
      'POST',
      '/v2/images',
      { 'x-auth-token': demo, 'content-type': 'application/json' },
      JSON.stringify({ name: 'snap', disk_format: 'raw', container_format: 'bare' }),
    );
    assert.equal(created.status, 201, created.text);
    imageId = created.json.id;
    expired = demo;
    // Keystone's expires_at has second precision: wait past it with a margin.
    await sleep((TOKEN_LIFE_S + 2) * 1000);
  },
  { timeout: 240_000 },
);

after(async () => {
  for (const auth of authenticators.values()) await auth.close?.();
  await gaze?.stop();
  await strict?.stop();
  await open?.stop();
  await ruled?.stop();
  await keystone?.stop();
});

const nova = () => keystone.token('nova', 'nova-secret', 'service');

/** An authenticator configured as that Gaze is, to read the service roles a request is given (one per server). */
const authenticators = new Map<RunningGaze, Authenticator>();
function authenticator(server: RunningGaze): Authenticator {
  if (!authenticators.has(server)) authenticators.set(server, createKeystoneAuthenticator(loadConfig(path.join(server.dir, 'gaze.conf'), {})));
  return authenticators.get(server)!;
}

test('an expired user token alone is 401', async () => {
  assertUnauthorized(await call(gaze.url, 'GET', `/v2/images/${imageId}`, { 'x-auth-token': expired }));
});

test("an expired user token beside a service token with the service role is the user's request", async () => {
  const data = Buffer.from('snapshot bytes after a long conversion');
  const headers = { 'x-auth-token': expired, 'x-service-token': await nova() };
  const put = await call(gaze.url, 'PUT', `/v2/images/${imageId}/file`, { ...headers, 'content-type': 'application/octet-stream' }, data);
  assert.equal(put.status, 204, put.text);
  const shown = await call(gaze.url, 'GET', `/v2/images/${imageId}`, headers);
  assert.equal(shown.status, 200, shown.text);
  assert.equal(shown.json.status, 'active');
  assert.equal(shown.json.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(shown.json.owner, (await keystone.login('demo', 'demo-secret', 'demo')).projectId);
  // Accepted once beside a service token, the expired token is not remembered as valid on its own.
  assertUnauthorized(await call(gaze.url, 'GET', `/v2/images/${imageId}`, { 'x-auth-token': expired }));
});

test('a service token without a service role does not let an expired user token through', async () => {
  const alt = await keystone.token('alt', 'alt-secret', 'alt');
  assertUnauthorized(await call(gaze.url, 'GET', `/v2/images/${imageId}`, { 'x-auth-token': expired, 'x-service-token': alt }));
});

test('without service_token_roles_required, a service token without a service role adds its roles', async () => {
  const demo = await keystone.token('demo', 'demo-secret', 'demo');
  const alt = await keystone.token('alt', 'alt-secret', 'alt');
  const ctx = await authenticator(gaze).authenticate({ 'x-auth-token': demo, 'x-service-token': alt }, 'r');
  assert.deepEqual([...ctx.serviceRoles].sort(), ['member', 'reader']);
  const shown = await call(gaze.url, 'GET', `/v2/images/${imageId}`, { 'x-auth-token': demo, 'x-service-token': alt });
  assert.equal(shown.status, 200, shown.text);
});

test('with service_token_roles_required, a service token without a service role adds nothing; one with it counts', async () => {
  const demo = await keystone.token('demo', 'demo-secret', 'demo');
  const alt = await keystone.token('alt', 'alt-secret', 'alt');
  const auth = authenticator(strict);
  assert.deepEqual((await auth.authenticate({ 'x-auth-token': demo, 'x-service-token': alt }, 'r')).serviceRoles, []);
  assert.deepEqual((await auth.authenticate({ 'x-auth-token': demo, 'x-service-token': await nova() }, 'r')).serviceRoles, ['service']);
  // The user's own request goes on (Glance answers it as the user's), whichever service token came with it.
  const shown = await call(strict.url, 'GET', '/v2/images', { 'x-auth-token': demo, 'x-service-token': alt });
  assert.equal(shown.status, 200, shown.text);
  assertUnauthorized(await call(strict.url, 'GET', '/v2/images', { 'x-auth-token': expired, 'x-service-token': alt }));
  const expiredBesideNova = await call(strict.url, 'GET', '/v2/images', { 'x-auth-token': expired, 'x-service-token': await nova() });
  assert.equal(expiredBesideNova.status, 200, expiredBesideNova.text);
});

test('an expired or bogus service token adds nothing: a valid user token goes on, an expired one is 401', async () => {
  const stale = await nova();
  await sleep((TOKEN_LIFE_S + 2) * 1000);
  const demo = await keystone.token('demo', 'demo-secret', 'demo');
  for (const service of [stale, 'gAAAAABbogus']) {
    assert.deepEqual((await authenticator(gaze).authenticate({ 'x-auth-token': demo, 'x-service-token': service }, 'r')).serviceRoles, []);
    const shown = await call(gaze.url, 'GET', `/v2/images/${imageId}`, { 'x-auth-token': demo, 'x-service-token': service });
    assert.equal(shown.status, 200, shown.text);
    assertUnauthorized(await call(gaze.url, 'GET', `/v2/images/${imageId}`, { 'x-auth-token': expired, 'x-service-token': service }));
  }
});

test('allow_anonymous_access: no valid token reads public images as nobody; every write is 403 Read-only access', async () => {
  const admin = { 'x-auth-token': await keystone.token('admin', 'admin-secret', 'admin'), 'content-type': 'application/json' };
  const create = async (body: Record<string, unknown>) => (await call(open.url, 'POST', '/v2/images', admin, JSON.stringify(body))).json.id as string;
  const pub = await create({ name: 'pub', disk_format: 'raw', container_format: 'bare', visibility: 'public' });
  const priv = await create({ name: 'priv', visibility: 'private' });
  const put = await call(open.url, 'PUT', `/v2/images/${pub}/file`, { ...admin, 'content-type': 'application/octet-stream' }, 'public bytes');
  assert.equal(put.status, 204, put.text);

  // No token, a token Keystone does not know, and no-auth headers (never trusted with Keystone) alike.
  for (const who of [{}, { 'x-auth-token': 'gAAAAABbogus' }, { 'x-roles': 'admin', 'x-project-id': 'admin' }] as Array<Record<string, string>>) {
    const listed = await call(open.url, 'GET', '/v2/images?member_status=all', who);
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(
      listed.json.images.map((i: { id: string }) => i.id),
      [pub],
    );
    expectError(await call(open.url, 'GET', `/v2/images/${priv}`, who), 404, `No image found with ID ${priv}`);
    assert.equal((await call(open.url, 'GET', `/v2/images/${pub}/file`, who)).text, 'public bytes');
    assert.deepEqual((await call(open.url, 'GET', '/v2/info/usage', who)).json, { usage: {} });
  }

  const json = { 'content-type': 'application/json' };
  const writes: Array<[string, string, Record<string, string>, string?]> = [
    ['POST', '/v2/images', json, '{"name": "x"}'],
    ['PATCH', `/v2/images/${pub}`, { 'content-type': 'application/openstack-images-v2.1-json-patch' }, '[{"op": "replace", "path": "/name", "value": "x"}]'],
    ['DELETE', `/v2/images/${pub}`, {}],
    ['PUT', `/v2/images/${pub}/tags/t1`, {}],
    ['DELETE', `/v2/images/${pub}/tags/t1`, {}],
    ['POST', `/v2/images/${pub}/members`, json, '{"member": "abc"}'],
    ['PUT', `/v2/images/${pub}/members/abc`, json, '{"status": "accepted"}'],
    ['DELETE', `/v2/images/${pub}/members/abc`, {}],
    ['PUT', `/v2/images/${pub}/file`, { 'content-type': 'application/octet-stream' }, 'x'],
    ['PUT', `/v2/images/${pub}/stage`, { 'content-type': 'application/octet-stream' }, 'x'],
    ['POST', `/v2/images/${pub}/import`, json, '{"method": {"name": "glance-direct"}}'],
    ['POST', `/v2/images/${pub}/actions/deactivate`, {}],
    ['POST', `/v2/images/${pub}/actions/reactivate`, {}],
    ['DELETE', `/v2/stores/default/${pub}`, {}],
    ['POST', '/v2/metadefs/namespaces', json, '{"namespace": "anon"}'],
  ];
  for (const [method, path, headers, body] of writes) {
    const refused = await call(open.url, method, path, headers, body);
    assert.equal(refused.status, 403, `${method} ${path}: ${refused.text}`);
    assert.equal(refused.json.message, 'Access was denied to this resource.<br /><br />\nRead-only access\n\n', `${method} ${path}`);
  }
  const still = await call(open.url, 'GET', `/v2/images/${pub}`, {});
  assert.deepEqual([still.json.name, still.json.status, still.json.tags], ['pub', 'active', []]);
  // Without the option, the same request is refused as unauthenticated.
  assertUnauthorized(await call(gaze.url, 'GET', '/v2/images', {}));
});

/** A token of a new application credential of demo's, with these access rules (none: a credential without rules). */
async function applicationCredentialToken(accessRules?: Array<{ service: string; method: string; path: string }>): Promise<string> {
  const { token, userId } = await keystone.login('demo', 'demo-secret', 'demo');
  const credential = { name: `cred-${Math.random()}`, ...(accessRules && { access_rules: accessRules }) };
  const made = await call(
    keystone.url,
    'POST',
    `/v3/users/${userId}/application_credentials`,
    { 'x-auth-token': token, 'content-type': 'application/json' },
    JSON.stringify({ application_credential: credential }),
  );
  assert.equal(made.status, 201, made.text);
  const { id, secret } = made.json.application_credential;
  const auth = { auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } } };
  const issued = await call(keystone.url, 'POST', '/v3/auth/tokens', { 'content-type': 'application/json' }, JSON.stringify(auth));
  assert.equal(issued.status, 201, issued.text);
  return issued.headers.get('x-subject-token')!;
}

test("an application credential's access rules name what its tokens may call; without service_type such a token is refused", async () => {
  const demo = await keystone.token('demo', 'demo-secret', 'demo');
  const json = { 'content-type': 'application/json' };
  const made = await call(ruled.url, 'POST', '/v2/images', { 'x-auth-token': demo, ...json }, '{"name": "ruled"}');
  const id = made.json.id as string;
  const token = await applicationCredentialToken([
    { service: 'image', method: 'GET', path: '/v2/images' },
    { service: 'image', method: 'GET', path: '/v2/images/*' },
    { service: 'image', method: 'PUT', path: '/v2/images/{id}/tags/**' },
  ]);
  const asked = async (method: string, path: string, extra: Record<string, string> = {}) =>
    (await call(ruled.url, method, path, { 'x-auth-token': token, ...json, ...extra }, method === 'POST' ? '{"name": "x"}' : undefined)).status;
  assert.equal(await asked('GET', '/v2/images'), 200);
  assert.equal(await asked('GET', '/v2/images?limit=1'), 200, 'the query is not part of the path');
  assert.equal(await asked('GET', `/v2/images/${id}`), 200);
  // The path with its %-escapes decoded, as keystonemiddleware reads it: the same image.
  assert.equal(await asked('GET', `/v2/%69mages/${id}`), 200);
  assert.equal(await asked('PUT', `/v2/images/${id}/tags/a`), 204);
  assert.equal(await asked('GET', `/v2/images/${id}/members`), 401, '* is one segment');
  assert.equal(await asked('POST', '/v2/images'), 401);
  assert.equal(await asked('GET', '/v2/schemas/image'), 401);
  assert.equal(await asked('GET', '/v2/images/'), 401, 'the path as asked, trailing slash and all');
  // A service calling on the user's behalf is a chain of calls: the rules were checked at its start.
  // Gaze asks for a valid service token with a service role (keystonemiddleware takes any header).
  assert.equal(await asked('POST', '/v2/images', { 'x-service-token': await nova() }), 201);
  for (const notService of ['gAAAAABbogus', await keystone.token('alt', 'alt-secret', 'alt')]) {
    assertUnauthorized(await call(ruled.url, 'POST', '/v2/images', { 'x-auth-token': token, 'x-service-token': notService, ...json }, '{}'));
  }

  // Without service_type the rules cannot be checked: such a token is refused everywhere, as in Glance.
  assertUnauthorized(await call(gaze.url, 'GET', '/v2/images', { 'x-auth-token': token }));
  // A credential without rules is a user's token like any other, service_type or not.
  const free = await applicationCredentialToken();
  for (const server of [gaze, ruled])
    assert.equal((await call(server.url, 'POST', '/v2/images', { 'x-auth-token': free, ...json }, '{"name": "free"}')).status, 201);
});
