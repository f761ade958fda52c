// End to end across two regions: one real Keystone whose catalog names an image endpoint in RegionOne
// and one in RegionTwo, and two `gaze serve` processes in Keystone mode on exactly those ports, each
// with its own database and store. demo uploads an image in RegionOne with the `openstack` CLI, then
// RegionTwo imports it with glance-download (spec import.md §5.3): RegionTwo finds RegionOne's endpoint
// in demo's catalog and reads the image there with demo's own token.
//
// Debian's glanceclient 4.1 CLI loses the remote region and image id of glance-download, so the import
// call goes through glanceclient's Python library (test/helpers/glance_download.py). The remote
// endpoint must pass the URI filter like any download, so both region ports are allowed.
// Users (test/helpers/keystone.ts): demo (project demo, member), alt (project alt, member).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import type { ApiImage, RawTask } from '../helpers/api-shapes.ts';
import { freePort, startKeystone, type RunningKeystone, keystoneAuthSections } from '../helpers/keystone.ts';
import {
  describeRun,
  glanceDownloadImport,
  json,
  keystoneGlance,
  keystoneOpenStack,
  md5,
  ok,
  parsePropertyTable,
  sha512,
  type GlanceDownloadAnswer,
  type KeystoneUser,
  type OpenStack,
} from '../helpers/cli.ts';

const IMPORT_LOCK = 'os_glance_import_task';
const REGIONS = ['RegionOne', 'RegionTwo'] as const;
type Region = (typeof REGIONS)[number];

let keystone: RunningKeystone;
const gaze = {} as Record<Region, GazeProcess>;
let work: string;
let imageFile: string;
let imageData: Buffer;
let demoProject: string;
const tokens: Record<string, string> = {};
/** demo's image in RegionOne (made by the first test). */
let sourceId = '';
/** demo's copy of it in RegionTwo (made by the second test). */
let copyId = '';

const passwords: Record<string, [string, string]> = { demo: ['demo-secret', 'demo'], alt: ['alt-secret', 'alt'], admin: ['admin-secret', 'admin'] };

function user(name: string, region: Region | string): KeystoneUser {
  const [password, project] = passwords[name];
  return { authUrl: keystone.url, username: name, password, project, region };
}

const openstack = (name: string, region: Region): OpenStack => keystoneOpenStack(user(name, region));

before(
  async () => {
    work = mkdtempSync(path.join(tmpdir(), 'gaze-multi-region-e2e-'));
    imageData = randomBytes(2 * 1024 * 1024 + 4321);
    imageFile = path.join(work, 'image.raw');
    writeFileSync(imageFile, imageData);

    const ports: Record<Region, number> = { RegionOne: await freePort(), RegionTwo: await freePort() };
    keystone = await startKeystone({ regionOnePort: ports.RegionOne, regionTwoPort: ports.RegionTwo });
    const started = await Promise.all(
      REGIONS.map((region) =>
        startGazeProcess(
          {
            DEFAULT: {
              enabled_import_methods: 'glance-direct,web-download,copy-image,glance-download',
              // RegionTwo takes fewer formats and properties than RegionOne has: what it copies must keep to them.
              ...(region === 'RegionTwo' ? { image_property_quota: '5' } : {}),
            },
            ...(region === 'RegionTwo' ? { image_format: { disk_formats: 'ami,ari,aki,vhd,vmdk,raw,qcow2,vdi,iso,ploop' } } : {}),
            ...keystoneAuthSections(keystone.url, region),
            // glance-download's remote endpoint passes the web-download URI filter (spec import.md §5.3 step 4).
            import_filtering_opts: { allowed_ports: `80,443,${ports.RegionOne},${ports.RegionTwo}` },
          },
          { port: ports[region] },
        ),
      ),
    );
    REGIONS.forEach((region, i) => (gaze[region] = started[i]));

    for (const name of Object.keys(passwords)) tokens[name] = await keystone.token(name, ...passwords[name]);
    demoProject = await projectId('demo');
  },
  { timeout: 240_000 },
);

after(async () => {
  await Promise.all(REGIONS.map((region) => gaze[region]?.stop()));
  await keystone?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function projectId(name: string): Promise<string> {
  const res = await fetch(`${keystone.url}/v3/projects?name=${encodeURIComponent(name)}&domain_id=default`, {
    headers: { 'X-Auth-Token': tokens.admin },
  });
  const body = (await res.json()) as { projects: { id: string }[] };
  assert.equal(res.status, 200);
  assert.equal(body.projects.length, 1, `project ${name}`);
  return body.projects[0].id;
}

/** Raw HTTP to a region's Gaze with a user's token. */
function api(region: Region, name: string, method: string, url: string, body?: unknown, contentType = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { 'X-Auth-Token': tokens[name] };
  if (body !== undefined) headers['Content-Type'] = contentType;
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body);
  return fetch(`${gaze[region].url}${url}`, { method, headers, body: payload });
}

async function getJson<T>(region: Region, name: string, url: string): Promise<T> {
  const res = await api(region, name, 'GET', url);
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${region}${url} as ${name}: ${text}`);
  return JSON.parse(text) as T;
}

const imageTasks = async (region: Region, name: string, id: string) => (await getJson<{ tasks: RawTask[] }>(region, name, `/v2/images/${id}/tasks`)).tasks;

/** Polls an image until the import lock is gone and the status is not a transient one. */
async function settled(region: Region, name: string, id: string, timeoutMs = 60_000): Promise<ApiImage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const image = await getJson<ApiImage>(region, name, `/v2/images/${id}`);
    if (!(IMPORT_LOCK in image) && !['importing', 'saving'].includes(image.status)) return image;
    if (Date.now() > deadline) throw new Error(`image ${id} in ${region} did not settle: ${JSON.stringify(image)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A queued image record (raw HTTP). */
async function createRecord(region: Region, name: string, fields: Record<string, unknown>): Promise<ApiImage> {
  const res = await api(region, name, 'POST', '/v2/images', fields);
  const text = await res.text();
  assert.equal(res.status, 201, `POST /v2/images in ${region} as ${name}: ${text}`);
  return JSON.parse(text) as ApiImage;
}

/** Asks RegionTwo, as `name`, to glance-download `remoteImageId` from `remoteRegion` into `id`. */
async function importFrom(name: string, id: string, remoteRegion: string, remoteImageId: string): Promise<GlanceDownloadAnswer> {
  return glanceDownloadImport(user(name, 'RegionTwo'), { imageId: id, remoteRegion, remoteImageId });
}

function accepted(answer: GlanceDownloadAnswer): void {
  assert.ok(answer.accepted, `import was not accepted: ${describeRun(answer.run)}`);
}

/**
 * A glance-download into a fresh qcow2/ovf record of demo's in RegionTwo that must fail in the task:
 * the task says why, and the image is queued again with its own formats and nothing of the remote's.
 */
async function expectFailedImport(remoteRegion: string, remoteImageId: string, message: RegExp): Promise<RawTask> {
  const target = await createRecord('RegionTwo', 'demo', { name: 'mr-failing', disk_format: 'qcow2', container_format: 'ovf' });
  accepted(await importFrom('demo', target.id, remoteRegion, remoteImageId));
  const image = await settled('RegionTwo', 'demo', target.id);
  assert.equal(image.status, 'queued', JSON.stringify(image));
  assert.equal(image.disk_format, 'qcow2');
  assert.equal(image.container_format, 'ovf');
  assert.equal(image.size, null);
  assert.equal(image.checksum, null);
  assert.ok(!('hw_disk_bus' in image) && !('os_distro' in image), JSON.stringify(image));
  const tasks = await imageTasks('RegionTwo', 'demo', target.id);
  assert.equal(tasks.length, 1, JSON.stringify(tasks));
  assert.equal(tasks[0].status, 'failure', JSON.stringify(tasks[0]));
  assert.equal(tasks[0].type, 'api_image_import');
  assert.match(tasks[0].message, message);
  // The failed record can still be deleted.
  const res = await api('RegionTwo', 'demo', 'DELETE', `/v2/images/${target.id}`);
  assert.equal(res.status, 204, await res.text());
  return tasks[0];
}

test('demo: openstack image create --file in RegionOne (catalog endpoint of RegionOne)', { timeout: 120_000 }, async () => {
  const created = json<{ id: string }>(
    await openstack(
      'demo',
      'RegionOne',
    )([
      'image',
      'create',
      '--file',
      imageFile,
      '--disk-format',
      'raw',
      '--container-format',
      'bare',
      '--property',
      'hw_disk_bus=scsi',
      '--property',
      'os_distro=debian',
      '--property',
      'unrelated=x',
      '--tag',
      'src-tag',
      '--min-ram',
      '64',
      'mr-source',
      '-f',
      'json',
    ]),
  );
  sourceId = created.id;
  assert.match(sourceId, /^[0-9a-f-]{36}$/);
  const image = await getJson<ApiImage>('RegionOne', 'demo', `/v2/images/${sourceId}`);
  assert.equal(image.status, 'active');
  assert.equal(image.size, imageData.length);
  assert.equal(image.checksum, md5(imageData));
  assert.equal(image.os_hash_value, sha512(imageData));
  assert.equal(image.hw_disk_bus, 'scsi');
  assert.equal(image.unrelated, 'x');
  // Each region has its own database: RegionTwo knows nothing of it.
  const res = await api('RegionTwo', 'demo', 'GET', `/v2/images/${sourceId}`);
  await res.arrayBuffer();
  assert.equal(res.status, 404);
});

test('demo: glance-download from RegionOne into a RegionTwo record, image save from RegionTwo', { timeout: 180_000 }, async () => {
  assert.ok(sourceId, 'needs the image of the first test');
  const r2 = openstack('demo', 'RegionTwo');
  // The record is made with the glance CLI through RegionTwo's catalog endpoint, with formats of its own.
  // (Standard input closed: glanceclient, like openstackclient, uploads any non-TTY stdin as image data;
  // openstackclient 6 cannot run with stdin closed at all.)
  const record = parsePropertyTable(
    ok(
      await keystoneGlance(user('demo', 'RegionTwo'))(
        ['image-create', '--disk-format', 'qcow2', '--container-format', 'ovf', '--property', 'local=kept', '--name', 'mr-copy'],
        { stdin: 'closed' },
      ),
    ),
  );
  assert.equal(record.status, 'queued');
  assert.notEqual(record.id, sourceId);
  copyId = record.id;

  accepted(await importFrom('demo', record.id, 'RegionOne', sourceId));
  const image = await settled('RegionTwo', 'demo', record.id);
  assert.equal(image.status, 'active', JSON.stringify(image));
  assert.equal(image.name, 'mr-copy');
  assert.equal(image.owner, demoProject);
  assert.equal(image.size, imageData.length);
  assert.equal(image.checksum, md5(imageData));
  assert.equal(image.os_hash_algo, 'sha512');
  assert.equal(image.os_hash_value, sha512(imageData));
  // Formats and the configured properties come from the remote image; other properties do not.
  assert.equal(image.disk_format, 'raw');
  assert.equal(image.container_format, 'bare');
  assert.equal(image.hw_disk_bus, 'scsi');
  assert.equal(image.os_distro, 'debian');
  assert.ok(!('unrelated' in image), JSON.stringify(image));
  assert.equal(image.local, 'kept');
  // Name, tags, min_ram are the local record's own (spec import.md §5.3).
  assert.deepEqual(image.tags, []);
  assert.equal(image.min_ram, 0);
  assert.equal(image.os_glance_importing_to_stores, '');
  assert.equal(image.os_glance_failed_import, '');

  const tasks = await imageTasks('RegionTwo', 'demo', record.id);
  assert.equal(tasks.length, 1);
  assert.equal(tasks[0].status, 'success', JSON.stringify(tasks[0]));
  assert.equal(tasks[0].owner, demoProject);
  assert.deepEqual(tasks[0].result, { image_id: record.id });
  assert.deepEqual(tasks[0].input?.import_req?.method, {
    name: 'glance-download',
    glance_region: 'RegionOne',
    glance_image_id: sourceId,
    glance_service_interface: 'public',
  });

  const out = path.join(work, 'from-region-two.raw');
  ok(await r2(['image', 'save', '--file', out, record.id]));
  assert.ok(readFileSync(out).equals(imageData), 'RegionTwo serves the bytes uploaded in RegionOne');

  // The source is untouched, and still only in RegionOne.
  const source = await getJson<ApiImage>('RegionOne', 'demo', `/v2/images/${sourceId}`);
  assert.equal(source.status, 'active');
  assert.equal(source.disk_format, 'raw');
  const res = await api('RegionOne', 'demo', 'GET', `/v2/images/${record.id}`);
  await res.arrayBuffer();
  assert.equal(res.status, 404);
});

test('glance-download: a raw image gets its virtual_size as an upload would', { timeout: 120_000 }, async () => {
  assert.ok(sourceId, 'needs the image of the first test');
  const source = await getJson<ApiImage>('RegionOne', 'demo', `/v2/images/${sourceId}`);
  assert.equal(source.virtual_size, imageData.length, 'an uploaded raw/bare image has virtual_size = size');
  // Into a record that already says raw/bare: nothing about the formats changes during the import.
  const target = await createRecord('RegionTwo', 'demo', { name: 'mr-raw', disk_format: 'raw', container_format: 'bare' });
  accepted(await importFrom('demo', target.id, 'RegionOne', sourceId));
  const image = await settled('RegionTwo', 'demo', target.id);
  assert.equal(image.status, 'active', JSON.stringify(image));
  assert.equal(image.virtual_size, imageData.length);
});

// The store step inspects the data with the formats glance-download copied (as Glance's ImportToStore
// re-reads the image after ImportMetadata): raw/bare data gets virtual_size = size.
test(
  'glance-download into a qcow2/ovf record: the data is raw, virtual_size as for a raw upload',
  {
    timeout: 30_000,
  },
  async () => {
    assert.ok(copyId, 'needs the image of the second test');
    const image = await getJson<ApiImage>('RegionTwo', 'demo', `/v2/images/${copyId}`);
    assert.equal(image.disk_format, 'raw');
    assert.equal(image.container_format, 'bare');
    assert.equal(image.virtual_size, imageData.length);
  },
);

test('glance-download: a remote image id RegionOne does not have fails the task, image queued again', { timeout: 120_000 }, async () => {
  const missing = randomUUID();
  const task = await expectFailedImport('RegionOne', missing, new RegExp(`${missing}.*not found|not found.*${missing}`, 'i'));
  assert.match(task.message, /404/);
});

test('glance-download: a region the catalog does not have fails the task, image queued again', { timeout: 120_000 }, async () => {
  assert.ok(sourceId, 'needs the image of the first test');
  await expectFailedImport('RegionNine', sourceId, /public glance endpoint not found for region RegionNine/);
});

test('glance-download: a remote image that is not active fails the task, image queued again', { timeout: 120_000 }, async () => {
  const remote = await createRecord('RegionOne', 'demo', { name: 'mr-deactivated', disk_format: 'raw', container_format: 'bare' });
  let res = await api('RegionOne', 'demo', 'PUT', `/v2/images/${remote.id}/file`, randomBytes(4096), 'application/octet-stream');
  assert.equal(res.status, 204, await res.text());
  res = await api('RegionOne', 'demo', 'POST', `/v2/images/${remote.id}/actions/deactivate`);
  assert.equal(res.status, 204, await res.text());
  await expectFailedImport('RegionOne', remote.id, /^Source image status should be active instead of deactivated$/);
  // And a queued one (no data yet).
  const queued = await createRecord('RegionOne', 'demo', { name: 'mr-queued', disk_format: 'raw', container_format: 'bare' });
  await expectFailedImport('RegionOne', queued.id, /^Source image status should be active instead of queued$/);
});

test(
  'glance-download: a remote image whose format this region does not take, or whose properties exceed its quota, fails the task',
  { timeout: 120_000 },
  async () => {
    const vhdx = await createRecord('RegionOne', 'demo', { name: 'mr-vhdx', disk_format: 'vhdx', container_format: 'ovf' });
    let res = await api('RegionOne', 'demo', 'PUT', `/v2/images/${vhdx.id}/file`, randomBytes(4096), 'application/octet-stream');
    assert.equal(res.status, 204, await res.text());
    await expectFailedImport(
      'RegionOne',
      vhdx.id,
      /^The remote image's disk_format 'vhdx' is not one of this cloud's: ami, ari, aki, vhd, vmdk, raw, qcow2, vdi, iso, ploop\.$/,
    );

    const hw = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((x) => [`hw_${x}`, x]));
    const many = await createRecord('RegionOne', 'demo', { name: 'mr-many', disk_format: 'raw', container_format: 'bare', ...hw });
    res = await api('RegionOne', 'demo', 'PUT', `/v2/images/${many.id}/file`, randomBytes(4096), 'application/octet-stream');
    assert.equal(res.status, 204, await res.text());
    await expectFailedImport('RegionOne', many.id, /^The limit has been exceeded on the number of allowed image properties\. Attempted: 6, Maximum: 5$/);
  },
);

test("glance-download: alt's private image in RegionOne is not demo's to copy; alt may copy it", { timeout: 180_000 }, async () => {
  const altData = randomBytes(64 * 1024 + 5);
  const created = await createRecord('RegionOne', 'alt', {
    name: 'mr-alt-private',
    disk_format: 'raw',
    container_format: 'bare',
    visibility: 'private',
    os_distro: 'altos',
  });
  let res = await api('RegionOne', 'alt', 'PUT', `/v2/images/${created.id}/file`, altData, 'application/octet-stream');
  assert.equal(res.status, 204, await res.text());
  res = await api('RegionOne', 'demo', 'GET', `/v2/images/${created.id}`);
  await res.arrayBuffer();
  assert.equal(res.status, 404, "demo cannot see alt's private image");

  const task = await expectFailedImport('RegionOne', created.id, /not found|refused/i);
  assert.ok(task.message.includes(created.id), task.message);

  // The same import by its owner works: the failure above was about who asked.
  const target = await createRecord('RegionTwo', 'alt', { name: 'mr-alt-copy', disk_format: 'qcow2', container_format: 'ovf' });
  accepted(await importFrom('alt', target.id, 'RegionOne', created.id));
  const image = await settled('RegionTwo', 'alt', target.id);
  assert.equal(image.status, 'active', JSON.stringify(image));
  assert.equal(image.checksum, md5(altData));
  assert.equal(image.os_distro, 'altos');
  assert.equal(image.visibility, 'shared', 'the local record keeps its own visibility');
  res = await api('RegionTwo', 'alt', 'GET', `/v2/images/${target.id}/file`);
  assert.equal(res.status, 200);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(altData));
});

test('glance-download: synchronous checks of the request (400/409, no task)', { timeout: 60_000 }, async () => {
  assert.ok(sourceId, 'needs the image of the first test');
  const target = await createRecord('RegionTwo', 'demo', { name: 'mr-checks', disk_format: 'raw', container_format: 'bare' });
  const cases: Array<[Record<string, unknown>, number, string]> = [
    [{ name: 'glance-download', glance_region: 'RegionOne' }, 400, "'glance_image_id' needs to be set for glance-download import method"],
    [{ name: 'glance-download', glance_image_id: sourceId }, 400, "'glance_region' needs to be set for glance-download import method"],
    [{ name: 'glance-download', glance_region: 'RegionOne', glance_image_id: 'not-a-uuid' }, 400, 'Remote image id does not look like a UUID: not-a-uuid'],
  ];
  for (const [method, status, message] of cases) {
    const res = await fetch(`${gaze.RegionTwo.url}/v2/images/${target.id}/import`, {
      method: 'POST',
      headers: { 'X-Auth-Token': tokens.demo, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ method }),
    });
    const text = await res.text();
    assert.equal(res.status, status, `${JSON.stringify(method)}: ${text}`);
    assert.ok((JSON.parse(text) as { message: string }).message.startsWith(message), text);
  }
  // Through the client library: an active image is no target (409), an unknown one is 404.
  assert.ok(copyId, 'needs the image of the second test');
  let answer = await importFrom('demo', copyId, 'RegionOne', sourceId);
  assert.equal(answer.accepted, false);
  assert.equal(answer.status, 409, describeRun(answer.run));
  assert.match(answer.error ?? '', /Image with status active cannot be target for import/);
  answer = await importFrom('demo', randomUUID(), 'RegionOne', sourceId);
  assert.equal(answer.accepted, false);
  assert.equal(answer.status, 404, describeRun(answer.run));
  assert.deepEqual(await imageTasks('RegionTwo', 'demo', target.id), []);
  const image = await getJson<ApiImage>('RegionTwo', 'demo', `/v2/images/${target.id}`);
  assert.equal(image.status, 'queued');
});
