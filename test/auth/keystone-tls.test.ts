// Keystone served over https with a certificate of the cloud's own CA, as production clouds serve it:
// a real Keystone behind a real HAProxy that terminates TLS. keystoneauth's cafile, insecure, certfile
// and keyfile of [keystone_authtoken] and [oslo_limit] decide whether Gaze trusts it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, ConfigError, type RawSections } from '../../src/config/index.ts';
import { GazeError } from '../../src/domain/errors.ts';
import { createKeystoneAuthenticator, KEYSTONE_UNAVAILABLE } from '../../src/auth/keystone.ts';
import { KeystoneLimits, LimitsUnavailable } from '../../src/quota/keystone-limits.ts';
import { fetchWithTls } from '../../src/net/tls-fetch.ts';
import { passwordAuthBody } from '../../src/auth/keystone-password.ts';
import { freePort, startKeystone, type RunningKeystone } from '../helpers/keystone.ts';
import { startHaproxyWith, type RunningHaproxy } from '../helpers/haproxy.ts';
import { selfSignedCertificate } from '../helpers/tls.ts';

let keystone: RunningKeystone;
let haproxy: RunningHaproxy;
let httpsUrl: string;
/** The same Keystone behind a frontend that also asks for a client certificate (`client`). */
let clientCertUrl: string;
const client = selfSignedCertificate();
const dir = mkdtempSync(path.join(tmpdir(), 'gaze-keystone-tls-'));
const caFile = path.join(dir, 'ca.pem');
const otherCaFile = path.join(dir, 'other-ca.pem');

before(
  async () => {
    keystone = await startKeystone();
    const certificate = selfSignedCertificate();
    writeFileSync(caFile, certificate.cert);
    writeFileSync(otherCaFile, selfSignedCertificate().cert);
    writeFileSync(path.join(dir, 'client.pem'), client.pem);
    writeFileSync(path.join(dir, 'client-cert.pem'), client.cert);
    writeFileSync(path.join(dir, 'client-key.pem'), client.key);
    const [port, clientPort] = [await freePort(), await freePort()];
    httpsUrl = `https://127.0.0.1:${port}`;
    clientCertUrl = `https://127.0.0.1:${clientPort}`;
    haproxy = await startHaproxyWith(
      `defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n` +
        `frontend keystone\n  bind 127.0.0.1:${port} ssl crt __DIR__/site.pem\n  default_backend keystone\n` +
        `frontend keystone_client_cert\n  bind 127.0.0.1:${clientPort} ssl crt __DIR__/site.pem ca-file __DIR__/client-ca.pem verify required\n  default_backend keystone\n` +
        `backend keystone\n  server k 127.0.0.1:${keystone.port}\n`,
      httpsUrl,
      { 'site.pem': certificate.pem, 'client-ca.pem': client.cert },
      '/v3',
    );
  },
  { timeout: 300_000 },
);
after(async () => {
  await haproxy?.stop();
  await keystone?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function authenticator(tls: Record<string, string>, url = httpsUrl, warn?: (message: string) => void) {
  const sections: RawSections = {
    keystone_authtoken: {
      auth_url: `${url}/v3`,
      username: 'gaze',
      password: 'gaze-secret',
      project_name: 'service',
      user_domain_id: 'default',
      project_domain_id: 'default',
      ...tls,
    },
  };
  return createKeystoneAuthenticator(loadConfig(undefined, {}, sections), { warn });
}

test('[keystone_authtoken] cafile: tokens are validated over https with the CA named; without it, or with another CA, Keystone is unavailable (503)', async () => {
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const ctx = await authenticator({ cafile: caFile }).authenticate({ 'x-auth-token': token }, 'r');
  assert.ok(ctx.userId);
  assert.deepEqual([...ctx.roles].sort(), ['member', 'reader']);

  for (const tls of [{}, { cafile: otherCaFile }] as Array<Record<string, string>>) {
    await assert.rejects(
      authenticator(tls).authenticate({ 'x-auth-token': token }, 'r'),
      (err: unknown) => err instanceof GazeError && err.status === 503 && /self[- ]signed certificate/i.test((err.cause as Error).message),
    );
  }
  // insecure = True skips the check, as keystoneauth's does.
  const insecure = await authenticator({ insecure: 'True' }).authenticate({ 'x-auth-token': token }, 'r');
  assert.deepEqual([...insecure.roles].sort(), ['member', 'reader']);
});

test('[keystone_authtoken] certfile and keyfile: a Keystone that asks for a client certificate gets it (key beside it, or in the same file)', async () => {
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const withCert: Array<Record<string, string>> = [
    { cafile: caFile, certfile: path.join(dir, 'client-cert.pem'), keyfile: path.join(dir, 'client-key.pem') },
    { cafile: caFile, certfile: path.join(dir, 'client.pem') },
  ];
  for (const tls of withCert) {
    const ctx = await authenticator(tls, clientCertUrl).authenticate({ 'x-auth-token': token }, 'r');
    assert.deepEqual([...ctx.roles].sort(), ['member', 'reader']);
  }
  await assert.rejects(
    authenticator({ cafile: caFile }, clientCertUrl).authenticate({ 'x-auth-token': token }, 'r'),
    (err: unknown) => err instanceof GazeError && err.status === 503,
  );
});

test('[oslo_limit] cafile: unified limits are read over https with the CA named', async () => {
  const limits = (cafile: string) =>
    new KeystoneLimits({
      authUrl: httpsUrl,
      login: {
        body: passwordAuthBody({ username: 'admin', password: 'admin-secret', userDomainId: 'default', scope: 'system' }),
        who: "'admin'",
        systemScoped: true,
      },
      endpointId: null,
      endpointServiceType: 'image',
      endpointRegionName: 'RegionOne',
      endpointInterface: 'public',
      fetch: fetchWithTls({ cafile, certfile: null, keyfile: null, insecure: false }, 'oslo_limit'),
    });
  // No limit registered here: every resource is 0, read from Keystone.
  assert.deepEqual(await limits(caFile).limitsFor('any-project'), {
    image_size_total: 0,
    image_stage_total: 0,
    image_count_total: 0,
    image_count_uploading: 0,
  });
  await assert.rejects(
    limits(otherCaFile).limitsFor('any-project'),
    (err: unknown) => err instanceof LimitsUnavailable && /self[- ]signed certificate/i.test(err.message),
  );
});

test('a TLS file that cannot be read stops start-up', () => {
  const tls = { cafile: null, certfile: null, keyfile: null, insecure: false };
  assert.throws(
    () => fetchWithTls({ ...tls, cafile: path.join(dir, 'absent.pem') }, 'keystone_authtoken'),
    (err: unknown) => err instanceof ConfigError && /\[keystone_authtoken\] cafile .*absent\.pem cannot be read: ENOENT/.test(err.message),
  );
  assert.throws(
    () => fetchWithTls({ ...tls, certfile: path.join(dir, 'client-cert.pem'), keyfile: path.join(dir, 'absent-key.pem') }, 'oslo_limit'),
    (err: unknown) => err instanceof ConfigError && /\[oslo_limit\] keyfile .*absent-key\.pem cannot be read: ENOENT/.test(err.message),
  );
  assert.throws(
    () => authenticator({ cafile: path.join(dir, 'absent.pem') }),
    (err: unknown) => err instanceof ConfigError && /cafile/.test(err.message),
  );
});

test('a cafile that is not there (devstack names one whether or not TLS is on): said at start; over http tokens are validated, over https none can be', async () => {
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const absent = path.join(dir, 'ca-bundle.pem');
  const warnings: string[] = [];
  const overHttp = authenticator({ cafile: absent }, keystone.url, (m) => warnings.push(m));
  assert.deepEqual(warnings, [
    `[keystone_authtoken] cafile ${absent} does not exist: https connections of keystone_authtoken will fail their certificate check; http ones do not use it`,
  ]);
  assert.deepEqual([...(await overHttp.authenticate({ 'x-auth-token': token }, 'r')).roles].sort(), ['member', 'reader']);
  await assert.rejects(
    authenticator({ cafile: absent }, httpsUrl, () => {}).authenticate({ 'x-auth-token': token }, 'r'),
    (err: unknown) => err instanceof GazeError && err.status === 503 && err.message === KEYSTONE_UNAVAILABLE,
  );
});
