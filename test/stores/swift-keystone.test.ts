// The swift driver with Keystone v3: a real Keystone, and a real Swift that takes its tokens
// (authtoken + keystoneauth, accounts KEY_<project id>). The account is the one the token's catalog names
// (region, interface and service type chosen as glance_store chooses them), and an operator's
// glance-swift.conf beside glance-api.conf is what a Gaze writes its images with.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { SwiftStoreDriver } from '../../src/stores/swift.ts';
import type { SwiftAuth } from '../../src/stores/swift-login.ts';
import type { StoreDriver } from '../../src/stores/driver.ts';
import { StoreError } from '../../src/stores/driver.ts';
import { freePort, startKeystone, type RunningKeystone } from '../helpers/keystone.ts';
import { startSwift, type RunningSwift } from '../helpers/swift.ts';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { startHaproxyWith, type RunningHaproxy } from '../helpers/haproxy.ts';
import { selfSignedCertificate } from '../helpers/tls.ts';
import { createSwiftDriver } from '../../src/stores/swift-options.ts';
import type { Config } from '../../src/config/index.ts';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { client } from '../helpers/http.ts';
import { runStoreConformance } from './conformance.ts';
import { chunks } from './sources.ts';

const MiB = 1024 * 1024;
let keystone: RunningKeystone;
let swift: RunningSwift;
let n = 0;
const drivers: SwiftStoreDriver[] = [];
const certificate = selfSignedCertificate();
const caFile = path.join(tmpdir(), `gaze-swift-ca-${process.pid}.pem`);
let haproxy: RunningHaproxy;
/** Keystone's and Swift's https addresses (HAProxy terminating TLS with `certificate`). */
let tls: { keystone: string; swift: string };

/** A token of a default-domain user, with the ids of its project and user. */
function login(user: string, password: string, project: string): Promise<{ token: string; projectId: string; userId: string }> {
  return keystone.login(user, password, project);
}

async function keystoneCall(token: string, method: string, path: string, json: unknown): Promise<any> {
  const res = await fetch(`${keystone.url}/v3${path}`, {
    method,
    headers: { 'x-auth-token': token, 'content-type': 'application/json' },
    body: JSON.stringify(json),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

before(
  async () => {
    keystone = await startKeystone();
    swift = await startSwift({ keystoneUrl: keystone.url });
    // The catalog: Swift's account URL in RegionOne (public and internal), and a RegionTwo whose Swift is down.
    const admin = await login('admin', 'admin-secret', 'admin');
    const { service } = await keystoneCall(admin.token, 'POST', '/services', { service: { type: 'object-store', name: 'swift' } });
    const dead = `http://127.0.0.1:${await freePort()}`;
    for (const [region, iface, base] of [
      ['RegionTwo', 'public', dead],
      ['RegionOne', 'public', swift.url],
      ['RegionOne', 'internal', swift.url],
    ] as const) {
      await keystoneCall(admin.token, 'POST', '/endpoints', {
        endpoint: { service_id: service.id, interface: iface, region_id: region, url: `${base}/v1/KEY_$(project_id)s` },
      });
    }
    // Both again over https, as a cloud serves them, through a real HAProxy with a certificate of our own.
    const [keystonePort, swiftPort] = [await freePort(), await freePort()];
    const frontend = (name: string, port: number, backend: number) =>
      `frontend ${name}\n  bind 127.0.0.1:${port} ssl crt __DIR__/site.pem\n  default_backend ${name}_servers\nbackend ${name}_servers\n  server s 127.0.0.1:${backend}\n`;
    haproxy = await startHaproxyWith(
      `defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n${frontend('keystone', keystonePort, keystone.port)}${frontend('swift', swiftPort, swift.port)}`,
      `https://127.0.0.1:${keystonePort}`,
      { 'site.pem': certificate.pem },
      '/v3',
    );
    tls = { keystone: `https://127.0.0.1:${keystonePort}`, swift: `https://127.0.0.1:${swiftPort}` };
    writeFileSync(caFile, certificate.cert);
  },
  { timeout: 300_000 },
);
after(async () => {
  await Promise.all(drivers.map((d) => d.close()));
  await haproxy?.stop();
  await swift?.stop();
  await keystone?.stop();
  rmSync(caFile, { force: true });
});

function containerName(): string {
  return `gaze-ks-${process.pid}-${n++}-${randomBytes(3).toString('hex')}`;
}

function demoAuth(overrides: { password?: string; region?: string; interface?: 'public' | 'internal' | 'admin' } = {}): SwiftAuth {
  return {
    version: '3',
    url: `${keystone.url}/v3`,
    endpoint: { region: overrides.region ?? 'RegionOne', interface: overrides.interface ?? 'public', serviceType: 'object-store' },
    password: { username: 'demo', password: overrides.password ?? 'demo-secret', scope: { projectName: 'demo' } },
  };
}

function driverFor(auth: SwiftAuth, container = containerName()): SwiftStoreDriver {
  const driver = new SwiftStoreDriver({ auth, container, createContainerOnPut: true, segmentSize: MiB });
  drivers.push(driver);
  return driver;
}

/** Object names in a container of a project's account, read with that project's own token. */
async function listing(project: { token: string; projectId: string }, container: string): Promise<string[]> {
  const res = await fetch(`${swift.url}/v1/KEY_${project.projectId}/${encodeURIComponent(container)}?format=json`, {
    headers: { 'x-auth-token': project.token },
  });
  if (res.status === 404) return [];
  assert.equal(res.status, 200, `listing ${container}: HTTP ${res.status}`);
  return ((await res.json()) as { name: string }[]).map((o) => o.name);
}

async function listAll(driver: StoreDriver): Promise<string[]> {
  const d = driver as SwiftStoreDriver;
  const demo = await login('demo', 'demo-secret', 'demo');
  const segments = (await listing(demo, d.segmentContainer)).map((name) => `segment:${name}`);
  return [...(await listing(demo, d.container)), ...segments].sort();
}

// The whole store contract, in the demo project's account, logged in with the demo user's password.
runStoreConformance({ name: 'swift (keystone v3)', make: async () => driverFor(demoAuth()), listAll });

test('swift keystone: the data lands in the project of the token, at the catalog URL of the chosen region and interface', async () => {
  const demo = await login('demo', 'demo-secret', 'demo');
  const alt = await login('alt', 'alt-secret', 'alt');
  const container = containerName();
  const data = randomBytes(2 * MiB + 3);
  const { url } = await driverFor(demoAuth({ interface: 'internal' }), container).write('img', chunks(data, 65536));
  assert.deepEqual(await listing(demo, container), ['img']);
  assert.deepEqual(await listing(alt, container), []);
  assert.ok((await buffer(await driverFor(demoAuth(), container).read(url))).equals(data));

  // RegionTwo's endpoint is down: its region was used. No admin endpoint: the catalog is read, not guessed.
  await assert.rejects(
    driverFor(demoAuth({ region: 'RegionTwo' }), container).stat(url),
    (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE',
  );
  await assert.rejects(
    driverFor(demoAuth({ interface: 'admin' }), container).stat(url),
    (err: unknown) =>
      err instanceof StoreError &&
      err.code === 'FAILED' &&
      /the Keystone catalog of demo:demo has no admin object-store endpoint in region RegionOne/.test(err.message),
  );
});

test('swift keystone: a wrong password is PERMISSION, and the message names the user, never the key', async () => {
  const driver = driverFor(demoAuth({ password: 'not-the-secret' }));
  await assert.rejects(
    driver.write('k', Readable.from([Buffer.from('x')])),
    (err: unknown) =>
      err instanceof StoreError &&
      err.code === 'PERMISSION' &&
      /swift authentication of demo:demo at .*\/v3\/auth\/tokens was refused \(HTTP 401\)/.test(err.message) &&
      !err.message.includes('not-the-secret'),
  );
});

test('swift keystone: an application credential logs in with its own project scope', async () => {
  const demo = await login('demo', 'demo-secret', 'demo');
  const { application_credential: credential } = await keystoneCall(demo.token, 'POST', `/users/${demo.userId}/application_credentials`, {
    application_credential: { name: `gaze-swift-${randomBytes(3).toString('hex')}` },
  });
  const container = containerName();
  const driver = driverFor(
    {
      version: '3',
      url: keystone.url,
      endpoint: { region: 'RegionOne', interface: 'public', serviceType: 'object-store' },
      applicationCredential: { id: credential.id, secret: credential.secret },
    },
    container,
  );
  const { url } = await driver.write('by-appcred', Readable.from([Buffer.from('application credential')]));
  assert.equal((await buffer(await driver.read(url))).toString(), 'application credential');
  assert.deepEqual(await listing(demo, container), ['by-appcred']);
});

test('swift keystone: a Gaze reads the operator glance-swift.conf beside its configuration and stores images in that account', async () => {
  const container = containerName();
  const gaze = await startGazeInProcess(
    {
      glance_store: {
        default_store: 'swift',
        stores: 'swift',
        swift_store_config_file: 'glance-swift.conf',
        default_swift_reference: 'demo_account',
        swift_store_region: 'RegionOne',
        swift_store_container: container,
        swift_store_create_container_on_put: 'True',
        // 3 MiB of known size is above 2 "MB" of 1000 KiB: segments of 1 "MB".
        swift_store_large_object_size: '2',
        swift_store_large_object_chunk_size: '1',
      },
      // Staged data in the same account, named by the same file.
      os_glance_staging_store: {
        swift_store_config_file: 'glance-swift.conf',
        default_swift_reference: 'demo_account',
        swift_store_region: 'RegionOne',
        swift_store_container: `${container}-staging`,
        swift_store_create_container_on_put: 'True',
      },
    },
    {
      besideConfig: {
        'glance-swift.conf': [
          '[DEFAULT]',
          `auth_address = "${keystone.url}/v3"`,
          'auth_version = 3',
          '',
          '[ref1]',
          'user = alt:alt',
          'key = alt-secret',
          '',
          '[demo_account]',
          'user = demo:demo',
          "key = 'demo-secret'",
          'user_domain_id = default',
          'project_domain_name = Default',
          '',
        ].join('\n'),
      },
    },
  );
  try {
    const api = client(gaze.url);
    const image = await api.createImage({ name: 'in swift via keystone' });
    const data = randomBytes(3 * MiB + 7);
    assert.equal((await api.upload(image.id, data)).status, 204);
    const download = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
    assert.equal(download.status, 200);
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(data));
    const demo = await login('demo', 'demo-secret', 'demo');
    assert.deepEqual(await listing(demo, container), [image.id]);
    assert.equal((await listing(demo, `${container}_segments`)).length, 4);
    assert.deepEqual(await listing(await login('alt', 'alt-secret', 'alt'), container), []);

    // glance-direct through the staging store of the same account.
    const staged = await api.createImage({ name: 'staged in swift' });
    const stagedData = randomBytes(100_000);
    assert.equal((await api.put(`/v2/images/${staged.id}/stage`, { body: stagedData, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    assert.deepEqual(await listing(demo, `${container}-staging`), [staged.id]);
    assert.equal((await api.post(`/v2/images/${staged.id}/import`, { method: { name: 'glance-direct' } })).status, 202);
    for (let i = 0; i < 300 && (await api.get(`/v2/images/${staged.id}`)).json.status !== 'active'; i++) await new Promise((r) => setTimeout(r, 50));
    const stagedDownload = await fetch(`${gaze.url}/v2/images/${staged.id}/file`);
    assert.ok(Buffer.from(await stagedDownload.arrayBuffer()).equals(stagedData));
    // The staged object goes after the activation, before the task succeeds: wait for the task's end.
    const tasks = async () => (await api.get(`/v2/images/${staged.id}/tasks`)).json.tasks as Array<{ status: string }>;
    for (let i = 0; i < 300 && (await tasks()).some((t) => t.status !== 'success'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      (await tasks()).map((t) => t.status),
      ['success'],
    );
    assert.deepEqual(await listing(demo, `${container}-staging`), []);
  } finally {
    await gaze.stop();
  }
});

test('swift keystone over https: swift_store_cacert checks Keystone and Swift with the cloud CA; without it the login fails on the certificate', async () => {
  const demo = await login('demo', 'demo-secret', 'demo');
  const container = containerName();
  const options = {
    swift_store_auth_address: `${tls.keystone}/v3`,
    swift_store_user: 'demo:demo',
    swift_store_key: 'demo-secret',
    swift_store_region: 'RegionOne',
    // The catalog names Swift's plain address; the https one is given.
    swift_store_endpoint: `${tls.swift}/v1/KEY_${demo.projectId}`,
    swift_store_container: container,
    swift_store_create_container_on_put: 'True',
  };
  const trusted = createSwiftDriver('tls', { ...options, swift_store_cacert: caFile }, {} as Config);
  drivers.push(trusted);
  const { url } = await trusted.write('over-tls', Readable.from([Buffer.from('sent over https')]));
  assert.equal((await buffer(await trusted.read(url))).toString(), 'sent over https');
  assert.deepEqual(await listing(demo, container), ['over-tls']);

  const untrusted = createSwiftDriver('tls', options, {} as Config);
  drivers.push(untrusted);
  await assert.rejects(untrusted.stat(url), (err: unknown) => err instanceof StoreError && /self[- ]signed certificate/i.test(err.message));
  assert.throws(
    () => createSwiftDriver('tls', { ...options, swift_store_cacert: `${caFile}.absent` }, {} as Config),
    /swift_store_cacert .* cannot be read: ENOENT/,
  );
});
