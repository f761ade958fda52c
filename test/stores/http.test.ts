// The read-only http store against a real loopback web server. It writes nothing, so the shared
// conformance suite (which writes first) does not apply; these are its read-side promises.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHttpDriver, HttpStoreDriver } from '../../src/stores/http.ts';
import { loadConfig } from '../../src/config/index.ts';
import { selfSignedCertificate } from '../helpers/tls.ts';
import { Store } from '../../src/stores/store.ts';
import { StoreError } from '../../src/stores/driver.ts';
import { startFileServer, type FileServer } from '../helpers/file-server.ts';

let web: FileServer;
let store: Store;
const data = randomBytes(200_000);

const bytes = async (stream: Readable) => {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
};
const code = (expected: string) => (err: unknown) => err instanceof StoreError && err.code === expected;

before(async () => {
  web = await startFileServer();
  web.routes.set('/d', data);
  web.routes.set('/moved', (res) => res.writeHead(301, { location: '/d' }).end());
  web.routes.set('/inward', (res) => res.writeHead(302, { location: 'http://10.1.2.3/d' }).end());
  web.routes.set('/dies', (res) => {
    res.writeHead(200, { 'content-length': data.length });
    res.write(data.subarray(0, 50_000));
    setTimeout(() => res.destroy(), 20);
  });
  const driver = new HttpStoreDriver({
    filter: {
      allowedSchemes: ['http', 'https'],
      disallowedSchemes: [],
      allowedHosts: ['127.0.0.1'],
      disallowedHosts: [],
      allowedPorts: [web.port],
      disallowedPorts: [],
      refuseInternal: true,
    },
    connectTimeoutMs: 5000,
    readTimeoutMs: 5000,
    maxRedirects: 3,
  });
  store = new Store('web', driver);
});
after(() => web.close());

test('http store: stat is the Content-Length of a HEAD (following redirects); missing data is null', async () => {
  assert.equal(await store.stat(web.url('/d')), data.length);
  assert.equal(await store.stat(web.url('/moved')), data.length);
  assert.equal(await store.stat(web.url('/absent')), null);
  assert.ok(web.requests.includes('HEAD /d'));
});

test('http store: reads whole objects and exact ranges, with or without Range support on the server', async () => {
  assert.deepEqual(await bytes(await store.read(web.url('/d'))), data);
  for (const ranges of [true, false]) {
    web.ranges = ranges;
    assert.deepEqual(await bytes(await store.read(web.url('/d'), { start: 10, end: 150_009 })), data.subarray(10, 150_010), `ranges=${ranges}`);
    assert.deepEqual(await bytes(await store.read(web.url('/d'), { start: 0, end: 0 })), data.subarray(0, 1), `ranges=${ranges}`);
  }
  web.ranges = false;
  await assert.rejects(store.read(web.url('/absent')), code('NOT_FOUND'));
});

test('http store: urls and redirects outside the filter are refused before any connection', async () => {
  const before = web.requests.length;
  await assert.rejects(store.read('http://127.0.0.1:1/d'), code('INVALID_URL'));
  await assert.rejects(store.stat('http://10.1.2.3/d'), code('INVALID_URL'));
  assert.equal(web.requests.length, before);
  await assert.rejects(store.read(web.url('/inward')), code('PERMISSION'));
});

test('http store: a body cut short fails the stream; writes and deletes are refused as read-only', async () => {
  await assert.rejects(bytes(await store.read(web.url('/dies'))));
  await assert.rejects(store.write('k', (await store.read(web.url('/d'))) as Readable), code('READ_ONLY'));
  await assert.rejects(store.delete(web.url('/d')), code('READ_ONLY'));
  assert.equal(store.writable, false);
  assert.equal(store.ownsData, false);
  assert.equal(store.driver.owns('https://example.com/x'), true);
  assert.equal(store.driver.owns('s3://bucket/x'), false);
});

test('http store over https: servers are checked against the system CAs, https_ca_certificates_file, or not at all with https_insecure', async (t) => {
  const certificate = selfSignedCertificate();
  const server = createHttpsServer({ cert: certificate.cert, key: certificate.key }, (_req, res) => res.end('served over https'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-http-tls-'));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}/image`;
  writeFileSync(path.join(dir, 'ca.pem'), certificate.cert);
  const config = loadConfig(undefined, {}, { import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(port) } });
  const driver = (options: Record<string, string>) => new Store('web', createHttpDriver('web', options, config));

  await assert.rejects(driver({}).read(url), (err: unknown) => err instanceof StoreError && /self[- ]signed certificate/i.test(err.message));
  assert.equal((await bytes(await driver({ https_ca_certificates_file: path.join(dir, 'ca.pem') }).read(url))).toString(), 'served over https');
  assert.equal((await bytes(await driver({ https_insecure: 'True' }).read(url))).toString(), 'served over https');
  // A CA file wins over https_insecure, as in Glance: this one is not the server's.
  writeFileSync(path.join(dir, 'other.pem'), selfSignedCertificate().cert);
  await assert.rejects(
    driver({ https_ca_certificates_file: path.join(dir, 'other.pem'), https_insecure: 'True' }).read(url),
    (err: unknown) => err instanceof StoreError && /self[- ]signed certificate/i.test(err.message),
  );
  assert.throws(
    () => createHttpDriver('web', { https_ca_certificates_file: path.join(dir, 'absent.pem') }, config),
    /https_ca_certificates_file .* cannot be read: ENOENT/,
  );
});
