// End to end with the real `glance` CLI and interoperable image import in Keystone mode: a real
// Keystone whose catalog names this Gaze as RegionOne's image endpoint, users logging in with
// passwords (OS_* variables), and a loopback HTTP server for web-download (its port is added to
// [import_filtering_opts] allowed_ports, 127.0.0.1 to allowed_hosts). Users (test/helpers/keystone.ts): admin (project admin,
// admin role), demo (project demo, member), alt (project alt, member).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import type { ApiImage, RawTask } from '../helpers/api-shapes.ts';
import { freePort, startKeystone, type RunningKeystone, keystoneAuthSections } from '../helpers/keystone.ts';
import { failed, keystoneGlance, md5, ok, parsePropertyTable, parseTable, sha512, type CliResult, type Glance } from '../helpers/cli.ts';

const IMPORT_LOCK = 'os_glance_import_task';

let keystone: RunningKeystone;
let gaze: GazeProcess;
let work: string;
let files: Server;
let filesUrl: string;
let imageFile: string;
let imageData: Buffer;
let webData: Buffer;
let demo: Glance;
let admin: Glance;
let demoProject: string;
let adminProject: string;
let demoUser: string;
const tokens: Record<string, string> = {};
/** The image demo imported with glance-direct (used by the visibility checks). */
let directId = '';

before(
  async () => {
    work = mkdtempSync(path.join(tmpdir(), 'gaze-import-ks-e2e-'));
    imageData = randomBytes(1024 * 1024 + 777);
    imageFile = path.join(work, 'image.raw');
    writeFileSync(imageFile, imageData);
    webData = randomBytes(512 * 1024 + 3);

    files = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/f') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(webData.length) });
        res.end(webData);
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not here\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      files.once('error', reject);
      files.listen(0, '127.0.0.1', () => resolve());
    });
    const filesPort = (files.address() as { port: number }).port;
    filesUrl = `http://127.0.0.1:${filesPort}`;

    const port = await freePort();
    keystone = await startKeystone({ regionOnePort: port, regionTwoPort: await freePort() });
    gaze = await startGazeProcess(
      {
        ...keystoneAuthSections(keystone.url, 'RegionOne'),
        import_filtering_opts: { allowed_ports: `80,443,${filesPort}`, allowed_hosts: '127.0.0.1' },
      },
      { port },
    );

    const as = (username: string, password: string, project: string): Glance => {
      const g = keystoneGlance({ authUrl: keystone.url, username, password, project });
      return (args, opts = {}) => g(args, { stdin: 'closed', ...opts });
    };
    demo = as('demo', 'demo-secret', 'demo');
    admin = as('admin', 'admin-secret', 'admin');
    tokens.demo = await keystone.token('demo', 'demo-secret', 'demo');
    tokens.alt = await keystone.token('alt', 'alt-secret', 'alt');
    tokens.admin = await keystone.token('admin', 'admin-secret', 'admin');
    demoProject = await keystoneId('projects', 'demo');
    adminProject = await keystoneId('projects', 'admin');
    demoUser = await keystoneId('users', 'demo');
  },
  { timeout: 240_000 },
);

after(async () => {
  await gaze?.stop();
  await keystone?.stop();
  if (files) {
    files.closeAllConnections();
    await new Promise<void>((resolve) => files.close(() => resolve()));
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A project's or user's id from the Keystone API (as the cloud admin). */
async function keystoneId(kind: 'projects' | 'users', name: string): Promise<string> {
  const res = await fetch(`${keystone.url}/v3/${kind}?name=${encodeURIComponent(name)}&domain_id=default`, {
    headers: { 'X-Auth-Token': tokens.admin },
  });
  const body = (await res.json()) as Record<string, { id: string }[]>;
  assert.equal(res.status, 200);
  assert.equal(body[kind].length, 1, `${kind} ${name}`);
  return body[kind][0].id;
}

/** Raw HTTP to Gaze with a user's token. */
function api(user: string, method: string, url: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { 'X-Auth-Token': tokens[user] };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(`${gaze.url}${url}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function getJson<T>(user: string, url: string): Promise<T> {
  const res = await api(user, 'GET', url);
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url} as ${user}: ${text}`);
  return JSON.parse(text) as T;
}

/** Polls the image (as demo) until the import lock is gone and the status is not transient. */
async function settled(id: string, user = 'demo', timeoutMs = 30_000): Promise<ApiImage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const image = await getJson<ApiImage>(user, `/v2/images/${id}`);
    if (!(IMPORT_LOCK in image) && !['importing', 'saving'].includes(image.status)) return image;
    if (Date.now() > deadline) throw new Error(`image ${id} did not settle: ${JSON.stringify(image)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function assertActive(image: ApiImage, data: Buffer, owner: string): void {
  assert.equal(image.status, 'active', JSON.stringify(image));
  assert.equal(image.owner, owner);
  assert.equal(image.size, data.length);
  assert.equal(image.checksum, md5(data));
  assert.equal(image.os_hash_value, sha512(data));
  assert.ok(!(IMPORT_LOCK in image));
  assert.equal(image.os_glance_importing_to_stores, '');
  assert.equal(image.os_glance_failed_import, '');
}

function createdId(r: CliResult): string {
  const id = parsePropertyTable(ok(r)).id;
  assert.match(id ?? '', /^[0-9a-f-]{36}$/, r.stdout);
  return id;
}

test('demo: glance image-create-via-import glance-direct, image-tasks, image-download', { timeout: 120_000 }, async () => {
  const r = await demo([
    'image-create-via-import',
    '--import-method',
    'glance-direct',
    '--file',
    imageFile,
    '--disk-format',
    'raw',
    '--container-format',
    'bare',
    '--name',
    'ks-imp-direct',
  ]);
  directId = createdId(r);
  assertActive(await settled(directId), imageData, demoProject);

  const tasks = (await getJson<{ tasks: RawTask[] }>('demo', `/v2/images/${directId}/tasks`)).tasks;
  assert.equal(tasks.length, 1);
  assert.equal(tasks[0].type, 'api_image_import');
  assert.equal(tasks[0].status, 'success');
  assert.equal(tasks[0].owner, demoProject);
  assert.equal(tasks[0].user_id, demoUser);
  assert.deepEqual(tasks[0].result, { image_id: directId });

  const rows = parseTable(ok(await demo(['image-tasks', directId])));
  assert.deepEqual(
    rows.map((row) => [row.Message, row.Status]),
    [['Copied 1 MiB', 'success']],
  );

  const out = path.join(work, 'direct-out.raw');
  ok(await demo(['image-download', '--file', out, directId]));
  assert.ok(readFileSync(out).equals(imageData));
});

test('demo: glance image-create-via-import web-download from the loopback server', { timeout: 120_000 }, async () => {
  const uri = `${filesUrl}/f`;
  const id = createdId(
    await demo([
      'image-create-via-import',
      '--import-method',
      'web-download',
      '--uri',
      uri,
      '--disk-format',
      'raw',
      '--container-format',
      'bare',
      '--name',
      'ks-imp-web',
    ]),
  );
  assertActive(await settled(id), webData, demoProject);
  const tasks = (await getJson<{ tasks: RawTask[] }>('demo', `/v2/images/${id}/tasks`)).tasks;
  assert.deepEqual(
    tasks.map((t) => [t.status, t.owner, t.input?.import_req?.method]),
    [['success', demoProject, { name: 'web-download', uri }]],
  );

  const res = await api('demo', 'GET', `/v2/images/${id}/file`);
  assert.equal(res.status, 200);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(webData));
});

test("another project neither sees demo's import tasks nor may import into demo's image", { timeout: 60_000 }, async () => {
  assert.ok(directId, 'needs the image of the first test');
  let res = await api('alt', 'GET', `/v2/images/${directId}/tasks`);
  await res.arrayBuffer();
  assert.equal(res.status, 404);

  // A queued image of demo's: alt gets 404 (it cannot see the image), demo's own import is accepted.
  res = await api('demo', 'POST', '/v2/images', { name: 'ks-imp-target', disk_format: 'raw', container_format: 'bare' });
  const { id } = (await res.json()) as { id: string };
  assert.equal(res.status, 201);
  res = await api('alt', 'POST', `/v2/images/${id}/import`, { method: { name: 'web-download', uri: `${filesUrl}/f` } });
  const text = await res.text();
  assert.equal(res.status, 404, text);
  assert.deepEqual((await getJson<{ tasks: RawTask[] }>('demo', `/v2/images/${id}/tasks`)).tasks, []);
  assert.equal((await getJson<ApiImage>('demo', `/v2/images/${id}`)).status, 'queued');
});

test('legacy tasks API: glance task-create as demo is 403 (tasks_api_access), as admin it imports', { timeout: 120_000 }, async () => {
  const input = {
    import_from: `${filesUrl}/f`,
    import_from_format: 'raw',
    image_properties: { name: 'ks-imp-legacy', disk_format: 'raw', container_format: 'bare' },
  };
  const denied = await demo(['task-create', '--type', 'import', '--input', JSON.stringify(input)]);
  const text = failed(denied);
  assert.equal(denied.code, 1);
  assert.match(text, /403 Forbidden/);
  assert.match(text, /You are not authorized to complete tasks_api_access action/);
  // Listing is admin-only too, and nothing was created.
  const list = await api('demo', 'GET', '/v2/tasks');
  assert.equal(list.status, 403, await list.text());
  const adminList = await getJson<{ tasks: { type: string }[] }>('admin', '/v2/tasks?type=import');
  assert.deepEqual(adminList.tasks, []);

  const created = parsePropertyTable(ok(await admin(['task-create', '--type', 'import', '--input', JSON.stringify(input)])));
  const taskId = created.id;
  assert.match(taskId, /^[0-9a-f-]{36}$/);
  assert.equal(created.owner, adminProject);

  const deadline = Date.now() + 30_000;
  let view: { status: string; result: { image_id: string } | null; message: string };
  for (;;) {
    view = await getJson<typeof view>('admin', `/v2/tasks/${taskId}`);
    if (view.status === 'success' || view.status === 'failure') break;
    assert.ok(Date.now() < deadline, `task ${taskId} did not finish: ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(view.status, 'success', JSON.stringify(view));
  const image = await settled(view.result!.image_id, 'admin');
  assert.equal(image.name, 'ks-imp-legacy');
  assert.equal(image.owner, adminProject);
  assert.equal(image.status, 'active');
  assert.equal(image.checksum, md5(webData));

  const rows = parseTable(ok(await admin(['task-list', '--type', 'import'])));
  assert.deepEqual(rows, [{ ID: taskId, Type: 'import', Status: 'success', Owner: adminProject }]);
});
