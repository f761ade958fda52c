import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT } from '../helpers/http.ts';
import { startFileServer, type FileServer } from '../helpers/file-server.ts';

// Gaze refuses web-download destinations that are not on the public internet unless the operator lists
// them (a deliberate difference from upstream Glance, whose defaults refuse no host): with no
// [import_filtering_opts] at all, every spelling of an internal address is refused at POST /import.

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
let files: FileServer;

before(async () => {
  files = await startFileServer();
  gaze = await startGazeInProcess({});
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
  await files.close();
});

const importFrom = (id: string, uri: string) =>
  api.call('POST', `/v2/images/${id}/import`, { json: { method: { name: 'web-download', uri } }, headers: JSON_ACCEPT });

test('with the default configuration, internal destinations in every spelling are refused with 400 before any task exists', async () => {
  const image = await api.createImage({ name: 'ssrf' });
  const uris = [
    'http://169.254.169.254/',
    'http://169.254.169.254/latest/meta-data/iam/',
    'http://127.0.0.1/',
    'http://[::1]/',
    'http://2130706433/',
    'http://0/',
    'http://[::ffff:7f00:1]/',
    'http://10.0.0.1/',
    'http://0x7f.1/',
    'http://127.1/',
    'http://192.168.0.1/',
    'http://172.16.0.1/',
    'http://100.64.1.1/',
    'http://[fd12::1]/',
    'http://[fe80::1]/',
    'http://224.0.0.251/',
    'http://255.255.255.255/',
    // a name that does not resolve is refused now, as by Glance 25, not left to fail in the task
    'http://nonexistent.invalid/x',
  ];
  // a name that resolves to loopback is refused after resolution
  if ((await lookup('localhost', { all: true })).every((a) => a.address === '127.0.0.1' || a.address === '::1')) uris.push('http://localhost/');
  for (const uri of uris) expectError(await importFrom(image.id, uri), 400, `URI for web-download does not pass filtering: ${uri}`);
  assert.deepEqual((await api.get(`/v2/images/${image.id}/tasks`)).json.tasks, []);
  assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued');
});

test('listing the host (or its network) in allowed_hosts lets the import through; a redirect inward is still refused', async () => {
  const data = Buffer.alloc(50_000, 9);
  files.routes.set('/ok.raw', data);
  files.routes.set('/inward', (res) => res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end());
  const allowing = await startGazeInProcess({ import_filtering_opts: { allowed_hosts: '127.0.0.0/8', allowed_ports: String(files.port) } });
  try {
    const a = client(allowing.url);
    const ok = await a.createImage({ name: 'allowed' });
    assert.equal((await a.call('POST', `/v2/images/${ok.id}/import`, { json: { method: { name: 'web-download', uri: files.url('/ok.raw') } } })).status, 202);
    const redirected = await a.createImage({ name: 'redirected' });
    assert.equal(
      (await a.call('POST', `/v2/images/${redirected.id}/import`, { json: { method: { name: 'web-download', uri: files.url('/inward') } } })).status,
      202,
    );
    const settle = async (id: string) => {
      for (let i = 0; i < 200; i++) {
        const [task] = (await a.get(`/v2/images/${id}/tasks`)).json.tasks;
        if (task && ['success', 'failure'].includes(task.status)) return task;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('import did not finish');
    };
    assert.equal((await settle(ok.id)).status, 'success');
    assert.equal((await a.get(`/v2/images/${ok.id}`)).json.size, data.length);
    const refused = await settle(redirected.id);
    assert.equal(refused.status, 'failure');
    assert.equal(refused.message, 'Downloading the image failed: Redirect to disallowed URL: http://169.254.169.254/latest/meta-data/');
    assert.equal((await a.get(`/v2/images/${redirected.id}`)).json.status, 'queued');
  } finally {
    await allowing.stop();
  }
});
