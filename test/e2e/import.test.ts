// End to end with the real clients and interoperable image import, in no-auth mode: a `gaze serve`
// process, Debian's `glance` (python3-glanceclient 4.x) and `openstack` (python3-openstackclient 6.x),
// and a loopback HTTP server (node:http on a random port) serving the bytes web-download fetches. Its
// port is added to [import_filtering_opts] allowed_ports (the defaults allow only 80 and 443), and
// 127.0.0.1 to allowed_hosts (Gaze refuses internal addresses unless they are listed).
// The clients run with standard input closed: glanceclient takes any other non-TTY stdin as image
// data. Waiting for the background import is done with plain HTTP, the checks with the CLI.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import type { ApiImage, RawTask } from '../helpers/api-shapes.ts';
import {
  failed,
  json,
  md5,
  noAuthOpenStack,
  ok,
  parsePropertyTable,
  parseTable,
  sha512,
  tokenGlance,
  type CliOptions,
  type CliResult,
  type OpenStack,
} from '../helpers/cli.ts';

interface TaskView {
  id: string;
  type: string;
  status: string;
  result: { image_id: string } | null;
  message: string;
  image_id?: string;
}

const IMPORT_LOCK = 'os_glance_import_task';

let gaze: GazeProcess;
let work: string;
let openstack: OpenStack;
let glance: (args: string[], opts?: CliOptions) => Promise<CliResult>;
let files: Server;
let filesUrl: string;
let filesPort: number;
let imageFile: string;
let imageData: Buffer;
let webData: Buffer;
/** Released by a test: until then /slow sends half its bytes and holds the connection open. */
let releaseSlow: () => void = () => {};
let slowReleased: Promise<void> = Promise.resolve();
/** Requests the file server saw, as "METHOD /path". */
const served: string[] = [];

before(
  async () => {
    work = mkdtempSync(path.join(tmpdir(), 'gaze-import-e2e-'));
    imageData = randomBytes(1024 * 1024 + 4321);
    imageFile = path.join(work, 'image.raw');
    writeFileSync(imageFile, imageData);
    webData = randomBytes(768 * 1024 + 99);

    files = createServer((req, res) => {
      served.push(`${req.method} ${req.url}`);
      if (req.method === 'GET' && req.url === '/f') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(webData.length) });
        res.end(webData);
      } else if (req.method === 'GET' && req.url === '/slow') {
        const half = webData.length >> 1;
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(webData.length) });
        res.write(webData.subarray(0, half));
        void slowReleased.then(() => res.end(webData.subarray(half)));
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not here\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      files.once('error', reject);
      files.listen(0, '127.0.0.1', () => resolve());
    });
    filesPort = (files.address() as { port: number }).port;
    filesUrl = `http://127.0.0.1:${filesPort}`;

    gaze = await startGazeProcess({ import_filtering_opts: { allowed_ports: `80,443,${filesPort}`, allowed_hosts: '127.0.0.1' } });
    openstack = noAuthOpenStack(gaze.url);
    const g = tokenGlance(gaze.url);
    glance = (args, opts = {}) => g(args, { stdin: 'closed', ...opts });
  },
  { timeout: 60_000 },
);

after(async () => {
  releaseSlow();
  await gaze?.stop();
  if (files) {
    files.closeAllConnections();
    await new Promise<void>((resolve) => files.close(() => resolve()));
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(`${gaze.url}${url}`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url}: ${text}`);
  return JSON.parse(text) as T;
}

const getImage = (id: string) => getJson<ApiImage>(`/v2/images/${id}`);
const imageTasks = async (id: string) => (await getJson<{ tasks: RawTask[] }>(`/v2/images/${id}/tasks`)).tasks;

/** Polls GET /v2/images/{id} until the import is over: the lock is gone and the status is not a transient one. */
async function settled(id: string, timeoutMs = 30_000): Promise<ApiImage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const image = await getImage(id);
    if (!(IMPORT_LOCK in image) && !['importing', 'saving'].includes(image.status)) return image;
    if (Date.now() > deadline) throw new Error(`image ${id} did not settle: ${JSON.stringify(image)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Asserts an image that an import made active holds exactly `data`. */
function assertActive(image: ApiImage, data: Buffer): void {
  assert.equal(image.status, 'active', JSON.stringify(image));
  assert.equal(image.size, data.length);
  assert.equal(image.checksum, md5(data));
  assert.equal(image.os_hash_algo, 'sha512');
  assert.equal(image.os_hash_value, sha512(data));
  assert.ok(!(IMPORT_LOCK in image), 'the import lock is released');
  // Single store: both progress properties stay behind as empty strings.
  assert.equal(image.os_glance_importing_to_stores, '');
  assert.equal(image.os_glance_failed_import, '');
  assert.ok(!('os_glance_stage_host' in image));
}

/** The image table `image-create-via-import` prints (also when the import call failed). */
function createdTable(r: CliResult): Record<string, string> {
  const shown = parsePropertyTable(r.stdout);
  assert.match(shown.id ?? '', /^[0-9a-f-]{36}$/, `no image table in:\n${r.stdout}\n${r.stderr}`);
  return shown;
}

test('glance image-create-via-import --import-method glance-direct --file: active, image-tasks, image-download', { timeout: 120_000 }, async () => {
  const r = await glance([
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
    'imp-direct',
  ]);
  ok(r);
  const created = createdTable(r);
  const id = created.id;
  assert.equal(created.name, 'imp-direct');
  // The client prints the image right after the 202: staged (size known), not yet hashed.
  assert.ok(['importing', 'active'].includes(created.status), created.status);
  assert.equal(created.size, String(imageData.length));

  assertActive(await settled(id), imageData);

  const tasks = await imageTasks(id);
  assert.equal(tasks.length, 1, JSON.stringify(tasks));
  const [task] = tasks;
  assert.equal(task.type, 'api_image_import');
  assert.equal(task.status, 'success');
  assert.equal(task.image_id, id);
  assert.deepEqual(task.input, { image_id: id, import_req: { method: { name: 'glance-direct' } }, backend: [null] });
  assert.deepEqual(task.result, { image_id: id });
  if (created.status === 'importing') assert.equal(created[IMPORT_LOCK], task.id, 'the lock the client saw is the task');

  const rows = parseTable(ok(await glance(['image-tasks', id])));
  assert.deepEqual(
    rows.map((r) => [r.Message, r.Status]),
    [['Copied 1 MiB', 'success']],
  );
  assert.match(rows[0]['Updated at'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);

  const out = path.join(work, 'direct-out.raw');
  ok(await glance(['image-download', '--file', out, id]));
  assert.ok(readFileSync(out).equals(imageData), 'downloaded bytes are the imported bytes');
});

test('glance image-create-via-import --import-method web-download --uri: lock visible while importing, then active', { timeout: 120_000 }, async () => {
  slowReleased = new Promise<void>((resolve) => (releaseSlow = resolve));
  const uri = `${filesUrl}/slow`;
  const r = await glance([
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
    'imp-web',
  ]);
  ok(r);
  const created = createdTable(r);
  const id = created.id;
  // The source is holding back half of the data: the import cannot be over yet.
  assert.equal(created.status, 'importing');
  assert.match(created[IMPORT_LOCK] ?? '', /^[0-9a-f-]{36}$/);

  const during = await getImage(id);
  assert.equal(during.status, 'importing');
  assert.equal(during[IMPORT_LOCK], created[IMPORT_LOCK]);
  let tasks = await imageTasks(id);
  assert.equal(tasks.length, 1);
  assert.equal(tasks[0].id, created[IMPORT_LOCK]);
  assert.ok(['pending', 'processing'].includes(tasks[0].status), tasks[0].status);
  assert.deepEqual(tasks[0].input?.import_req, { method: { name: 'web-download', uri } });
  // Another import while this one runs is refused (the image is no longer queued).
  const again = await fetch(`${gaze.url}/v2/images/${id}/import`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ method: { name: 'web-download', uri } }),
  });
  const againText = await again.text();
  assert.equal(again.status, 409, againText);
  assert.match(againText, /Image needs to be in 'queued' state to use 'web-download' method/);

  releaseSlow();
  assertActive(await settled(id), webData);
  tasks = await imageTasks(id);
  assert.deepEqual(
    tasks.map((t) => [t.status, t.message]),
    [['success', 'Copied 0 MiB']],
  );
  assert.ok(served.includes('GET /slow'));

  // Round trip through the API (the CLI download is covered above).
  const res = await fetch(`${gaze.url}/v2/images/${id}/file`);
  assert.equal(res.status, 200);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(webData));
});

test('openstack image create --import --file: staged and imported with glance-direct, then active', { timeout: 120_000 }, async () => {
  const created = json<{ id: string; name: string; status: string }>(
    await openstack(['image', 'create', '--import', '--file', imageFile, '--disk-format', 'raw', '--container-format', 'bare', 'imp-osc', '-f', 'json']),
  );
  assert.equal(created.name, 'imp-osc');
  // openstackclient 6 prints the image as it created it (before staging); it does not wait.
  assert.equal(created.status, 'queued');
  const id = created.id;

  assertActive(await settled(id), imageData);
  // The import path, not a plain PUT /file: one glance-direct task.
  const tasks = await imageTasks(id);
  assert.deepEqual(
    tasks.map((t) => [t.type, t.status, t.input?.import_req?.method.name]),
    [['api_image_import', 'success', 'glance-direct']],
  );

  const out = path.join(work, 'osc-out.raw');
  ok(await openstack(['image', 'save', '--file', out, id]));
  assert.ok(readFileSync(out).equals(imageData));
});

test('web-download failures: a 404 source fails the task (image back to queued); a forbidden port is a 400 with no task', { timeout: 120_000 }, async () => {
  const missing = `${filesUrl}/missing`;
  const r404 = await glance([
    'image-create-via-import',
    '--import-method',
    'web-download',
    '--uri',
    missing,
    '--disk-format',
    'raw',
    '--container-format',
    'bare',
    '--name',
    'imp-404',
  ]);
  ok(r404); // the import call itself is accepted (202); the download fails in the background
  const id404 = createdTable(r404).id;
  const image404 = await settled(id404);
  assert.equal(image404.status, 'queued');
  assert.equal(image404.size, null);
  assert.equal(image404.checksum, null);
  assert.ok(!(IMPORT_LOCK in image404));
  assert.equal(image404.os_glance_importing_to_stores, '');
  assert.equal(image404.os_glance_failed_import, '');
  assert.ok(served.includes('GET /missing'));

  const rows = parseTable(ok(await glance(['image-tasks', id404])));
  assert.equal(rows.length, 1, JSON.stringify(rows));
  assert.equal(rows[0].Status, 'failure');
  assert.match(rows[0].Message, /404/);
  const [task] = await imageTasks(id404);
  assert.equal(task.status, 'failure');
  assert.match(task.message, /404/);
  assert.equal(task.result, null);

  // A failed web-download may be retried on the queued image (here from a good URL).
  const retry = await fetch(`${gaze.url}/v2/images/${id404}/import`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ method: { name: 'web-download', uri: `${filesUrl}/f` } }),
  });
  assert.equal(retry.status, 202, await retry.text());
  assertActive(await settled(id404), webData);
  assert.deepEqual((await imageTasks(id404)).map((t) => t.status).sort(), ['failure', 'success']);

  // 8080 is not in allowed_ports: refused synchronously, before any task exists or any byte is fetched.
  const forbidden = 'http://127.0.0.1:8080/f';
  const servedBefore = served.length;
  const rPort = await glance([
    'image-create-via-import',
    '--import-method',
    'web-download',
    '--uri',
    forbidden,
    '--disk-format',
    'raw',
    '--container-format',
    'bare',
    '--name',
    'imp-port',
  ]);
  const text = failed(rPort);
  assert.equal(rPort.code, 1);
  assert.match(text, new RegExp(`HTTP 400 Bad Request: URI for web-download does not pass filtering: ${forbidden.replace(/[.]/g, '\\.')}`));
  // The client had created the image first and prints it anyway: still queued, never locked.
  const portImage = createdTable(rPort);
  assert.equal(portImage.status, 'queued');
  const image = await getImage(portImage.id);
  assert.equal(image.status, 'queued');
  assert.ok(!(IMPORT_LOCK in image));
  assert.ok(!('os_glance_importing_to_stores' in image), 'no import ever started');
  assert.deepEqual(await imageTasks(portImage.id), []);
  assert.equal(served.length, servedBefore);
});

test('legacy tasks API: glance task-create --type import, task-show until success, task-list', { timeout: 120_000 }, async () => {
  const input = {
    import_from: `${filesUrl}/f`,
    import_from_format: 'raw',
    image_properties: { name: 'imp-legacy', disk_format: 'raw', container_format: 'bare', os_distro: 'gazeos' },
  };
  const created = parsePropertyTable(ok(await glance(['task-create', '--type', 'import', '--input', JSON.stringify(input)])));
  const taskId = created.id;
  assert.match(taskId, /^[0-9a-f-]{36}$/);
  assert.equal(created.type, 'import');
  assert.ok(['pending', 'processing', 'success'].includes(created.status), created.status);
  assert.deepEqual(JSON.parse(created.input), input);
  assert.equal(created.owner, 'admin');

  // Wait through the API, then look at the finished task with the CLI.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const view = await getJson<TaskView>(`/v2/tasks/${taskId}`);
    if (view.status === 'success' || view.status === 'failure') break;
    assert.ok(Date.now() < deadline, `task ${taskId} did not finish: ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const shown = parsePropertyTable(ok(await glance(['task-show', taskId])));
  assert.equal(shown.status, 'success', JSON.stringify(shown));
  assert.equal(shown.message, '');
  const result = JSON.parse(shown.result) as { image_id: string };
  assert.match(result.image_id, /^[0-9a-f-]{36}$/);
  assert.equal(shown.image_id, result.image_id);
  assert.match(shown.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const image = await getImage(result.image_id);
  assert.equal(image.name, 'imp-legacy');
  assert.equal(image.os_distro, 'gazeos');
  assert.equal(image.status, 'active');
  assert.equal(image.size, webData.length);
  assert.equal(image.checksum, md5(webData));
  assert.equal(image.os_hash_value, sha512(webData));

  const listed = parseTable(ok(await glance(['task-list'])));
  const row = listed.find((t) => t.ID === taskId);
  assert.deepEqual(row, { ID: taskId, Type: 'import', Status: 'success', Owner: 'admin' });
  // The import API's tasks are listed there too (as in Glance).
  assert.ok(
    listed.some((t) => t.Type === 'api_image_import'),
    JSON.stringify(listed),
  );
});

test('two steps: glance image-stage --file, then glance image-import --import-method glance-direct', { timeout: 120_000 }, async () => {
  const res = await fetch(`${gaze.url}/v2/images`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'imp-two-step', disk_format: 'raw', container_format: 'bare' }),
  });
  const { id } = (await res.json()) as { id: string };
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('openstack-image-import-methods'), 'glance-direct,web-download,copy-image');

  ok(await glance(['image-stage', '--file', imageFile, id]));
  const staged = await getImage(id);
  assert.equal(staged.status, 'uploading');
  assert.equal(staged.size, imageData.length);
  assert.equal(staged.checksum, null);
  assert.deepEqual(await imageTasks(id), []);
  // Default node_staging_uri: <data_dir>/staging, one file per image.
  const stagedFile = path.join(gaze.dir, 'data', 'staging', id);
  assert.ok(existsSync(stagedFile), 'the staged data is on disk');
  assert.ok(readFileSync(stagedFile).equals(imageData));

  ok(await glance(['image-import', '--import-method', 'glance-direct', id]));
  assertActive(await settled(id), imageData);
  assert.deepEqual(
    (await imageTasks(id)).map((t) => [t.input?.import_req?.method.name, t.status]),
    [['glance-direct', 'success']],
  );
  assert.ok(!existsSync(stagedFile), 'the staged data is removed after the import');

  // An active image cannot be the target of another import.
  const again = await fetch(`${gaze.url}/v2/images/${id}/import`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ method: { name: 'glance-direct' } }),
  });
  const againText = await again.text();
  assert.equal(again.status, 409, againText);
  assert.match(againText, /Image with status active cannot be target for import/);

  const download = await fetch(`${gaze.url}/v2/images/${id}/file`);
  assert.ok(Buffer.from(await download.arrayBuffer()).equals(imageData));
});
