// Gaze behind a real HAProxy that terminates TLS and serves the API under a path (/image), as clouds
// put Glance behind one: with [oslo_middleware] enable_proxy_headers_parsing the version document and
// the Location headers name the proxy's scheme, host and prefix, so the real `openstack` CLI, which
// follows the version document's link, reaches the API; without it the CLI goes astray, as with Glance.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, fetch as undiciFetch } from 'undici';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { startHaproxyWith, type RunningHaproxy } from '../helpers/haproxy.ts';
import { freePort } from '../helpers/keystone.ts';
import { OPENSTACK, runCli, describeRun } from '../helpers/cli.ts';
import { selfSignedCertificate } from '../helpers/tls.ts';

const insecure = new Agent({ connect: { rejectUnauthorized: false } });
let plain: RunningGaze;
let proxied: RunningGaze;
let haproxy: RunningHaproxy;
/** The proxy's address for each Gaze, with the /image prefix. */
let plainUrl: string;
let proxiedUrl: string;

function frontend(name: string, port: number, backendPort: number): string {
  return `
frontend ${name}
  bind 127.0.0.1:${port} ssl crt __DIR__/site.pem
  http-request deny deny_status 404 unless { path_beg /image }
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-Forwarded-Prefix /image
  http-request set-path %[path,regsub(^/image/?,/)]
  default_backend ${name}_nodes

backend ${name}_nodes
  server node 127.0.0.1:${backendPort}
`;
}

before(
  async () => {
    plain = await startGazeInProcess();
    proxied = await startGazeInProcess({ oslo_middleware: { enable_proxy_headers_parsing: 'True' } });
    const [plainPort, proxiedPort] = [await freePort(), await freePort()];
    plainUrl = `https://127.0.0.1:${plainPort}/image`;
    proxiedUrl = `https://127.0.0.1:${proxiedPort}/image`;
    haproxy = await startHaproxyWith(
      `defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n${frontend('plain', plainPort, plain.port)}${frontend('proxied', proxiedPort, proxied.port)}`,
      proxiedUrl,
      { 'site.pem': selfSignedCertificate().pem },
    );
  },
  { timeout: 300_000 },
);
after(async () => {
  await haproxy?.stop();
  await plain?.stop();
  await proxied?.stop();
});

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; location: string | null }> {
  const res = await undiciFetch(url, { headers, dispatcher: insecure });
  return { status: res.status, json: await res.json(), location: res.headers.get('location') };
}

test('through the proxy: the version document and Location headers name https, the proxy host and /image', async () => {
  const versions = await get(proxiedUrl);
  assert.equal(versions.status, 300);
  assert.ok(versions.json.versions.length > 10);
  for (const v of versions.json.versions) assert.deepEqual(v.links, [{ rel: 'self', href: `${proxiedUrl}/v2/` }]);
  const created = await undiciFetch(`${proxiedUrl}/v2/images`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'behind a proxy' }),
    dispatcher: insecure,
  });
  assert.equal(created.status, 201);
  const image = (await created.json()) as { id: string };
  assert.equal(created.headers.get('location'), `${proxiedUrl}/v2/images/${image.id}`);

  // Without the option the proxy's headers are not believed, as Glance does not believe them.
  const { port } = new URL(plainUrl);
  assert.equal((await get(plainUrl)).json.versions[0].links[0].href, `http://127.0.0.1:${port}/v2/`);
});

test("RFC 7239 Forwarded is read before X-Forwarded-*, its first proxy's proto and host; without the option none is", async () => {
  const forwarded = { forwarded: 'for=192.0.2.60;proto=https;host="images.example.com", for=198.51.100.17;proto=http', 'x-forwarded-proto': 'ftp' };
  assert.equal((await get(proxied.url, forwarded)).json.versions[0].links[0].href, 'https://images.example.com/v2/');
  const xForwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'images.example.com:8443', 'x-forwarded-prefix': '/glance' };
  assert.equal((await get(proxied.url, xForwarded)).json.versions[0].links[0].href, 'https://images.example.com:8443/glance/v2/');
  assert.equal((await get(plain.url, xForwarded)).json.versions[0].links[0].href, `${plain.url}/v2/`);
  assert.equal((await get(plain.url, forwarded)).json.versions[0].links[0].href, `${plain.url}/v2/`);
});

test('the real openstack CLI through the proxy: follows the version document, so it works only with the option', async () => {
  const cli = (endpoint: string, args: string[]) => runCli(OPENSTACK, ['--os-auth-type', 'none', '--os-endpoint', endpoint, '--insecure', ...args]);
  const created = await cli(proxiedUrl, ['image', 'create', '--disk-format', 'raw', '--container-format', 'bare', 'via-cli', '-f', 'value', '-c', 'id']);
  assert.equal(created.code, 0, describeRun(created));
  const listed = await cli(proxiedUrl, ['image', 'list', '-f', 'value', '-c', 'Name']);
  assert.equal(listed.code, 0, describeRun(listed));
  assert.ok(listed.stdout.split('\n').includes('via-cli'), describeRun(listed));

  // The document's http://…/v2/ without /image: the client asks the proxy for /v2/images, which it does not serve.
  const astray = await cli(plainUrl, ['image', 'list']);
  assert.notEqual(astray.code, 0, describeRun(astray));
  assert.match(astray.stderr, /404.*\/v2\/images/);
});
