// End to end with the real OpenStack clients in no-auth mode: a `gaze serve` process, driven by Debian's
// `openstack` (python3-openstackclient 6.x / openstacksdk) and `glance` (python3-glanceclient 4.x),
// exactly as an operator would use them against Glance. What the CLI cannot do in no-auth mode (act as
// another project) is done with raw HTTP and the X-Project-Id / X-Roles headers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { failed, json, md5, noAuthOpenStack, ok, parsePropertyTable, sha512, tokenGlance, value, type ImageRow, type OpenStack } from '../helpers/cli.ts';

interface ShownImage {
  id: string;
  name: string;
  status: string;
  size?: number | null;
  virtual_size?: number | null;
  checksum?: string | null;
  disk_format: string;
  container_format: string;
  visibility: string;
  owner: string;
  tags: string[];
  properties: Record<string, unknown>;
}

interface MemberRow {
  'Image ID': string;
  'Member ID': string;
  Status: string;
}

const MiB = 1024 * 1024;

let gaze: GazeProcess;
let work: string;
let openstack: OpenStack;
let imageFile: string;
let imageData: Buffer;
let smallFile: string;
let smallData: Buffer;
let qcow2File: string;

/** The images the list tests discriminate between. */
const ids = { a: '', b: '', c: '' };
const names = { a: 'cli-a', b: 'cli-b', c: 'cli-c' };
/** A project id the CLI takes as an ID (it looks anything else up in Keystone, which is absent here). */
const memberProject = randomUUID().replace(/-/g, '');

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gaze-cli-e2e-'));
  gaze = await startGazeProcess();
  openstack = noAuthOpenStack(gaze.url);
  imageData = randomBytes(3 * MiB);
  imageFile = path.join(work, 'image.raw');
  writeFileSync(imageFile, imageData);
  smallData = randomBytes(64 * 1024 + 17);
  smallFile = path.join(work, 'small.raw');
  writeFileSync(smallFile, smallData);
  qcow2File = path.join(work, 'small.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2File, '16M']);
});

after(async () => {
  await gaze?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Raw HTTP to Gaze, optionally as another project (no-auth mode trusts these headers). */
async function api(method: string, url: string, opts: { project?: string; roles?: string; body?: unknown } = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (opts.project) headers['X-Project-Id'] = opts.project;
  if (opts.roles) headers['X-Roles'] = opts.roles;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(`${gaze.url}${url}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
}

async function listIds(url: string, project?: string, roles = 'member,reader'): Promise<string[]> {
  const res = await api('GET', url, project ? { project, roles } : {});
  const body = await res.text();
  assert.equal(res.status, 200, `GET ${url} as ${project ?? 'admin'}: ${body}`);
  return (JSON.parse(body) as { images: { id: string }[] }).images.map((i) => i.id);
}

async function show(image: string): Promise<ShownImage> {
  return json<ShownImage>(await openstack(['image', 'show', image, '-f', 'json']));
}

async function status(image: string): Promise<string> {
  return value(await openstack(['image', 'show', image, '-f', 'value', '-c', 'status']));
}

async function list(...args: string[]): Promise<ImageRow[]> {
  return json<ImageRow[]>(await openstack(['image', 'list', ...args, '-f', 'json']));
}

/** Asserts that of our three images exactly `expected` are in `rows` (others may be too). */
function assertOurs(rows: ImageRow[], expected: (keyof typeof ids)[], what: string): void {
  const got = new Set(rows.map((r) => r.ID));
  for (const key of ['a', 'b', 'c'] as const) {
    assert.equal(
      got.has(ids[key]),
      expected.includes(key),
      `${what}: ${names[key]} should ${expected.includes(key) ? '' : 'not '}be listed; got ${rows.map((r) => r.Name).join(', ')}`,
    );
  }
}

test('image create --file uploads; image show reports status, size, checksums, property and tag', { timeout: 120_000 }, async () => {
  const created = json<ShownImage>(
    await openstack([
      'image',
      'create',
      '--file',
      imageFile,
      '--disk-format',
      'raw',
      '--container-format',
      'bare',
      '--property',
      'os_distro=gazeos',
      '--tag',
      't1',
      names.a,
      '-f',
      'json',
    ]),
  );
  assert.match(created.id, /^[0-9a-f-]{36}$/);
  assert.equal(created.name, names.a);
  ids.a = created.id;

  const image = await show(names.a);
  assert.equal(image.id, ids.a);
  assert.equal(image.status, 'active');
  assert.equal(image.size, 3 * MiB);
  assert.equal(image.checksum, md5(imageData));
  assert.equal(image.properties.os_hash_algo, 'sha512');
  assert.equal(image.properties.os_hash_value, sha512(imageData));
  assert.equal(image.properties.os_distro, 'gazeos');
  assert.deepEqual(image.tags, ['t1']);
  assert.equal(image.disk_format, 'raw');
  assert.equal(image.container_format, 'bare');
  // Glance's default visibility for a new image (since Ocata) and the no-auth default project.
  assert.equal(image.visibility, 'shared');
  assert.equal(image.owner, 'admin');
});

test('image list filters: --property, --tag, --status, --name, --long, --limit/--marker paging', { timeout: 180_000 }, async () => {
  assert.ok(ids.a, 'needs the image of the first test');
  // B: active, another distro, same tag. C: queued (no data), same distro, another tag.
  const b = json<ShownImage>(
    await openstack([
      'image',
      'create',
      '--file',
      qcow2File,
      '--disk-format',
      'qcow2',
      '--container-format',
      'bare',
      '--property',
      'os_distro=otheros',
      '--tag',
      't1',
      names.b,
      '-f',
      'json',
    ]),
  );
  ids.b = b.id;
  // The CLI always uploads something (stdin when there is no --file), so the queued one is made raw.
  const res = await api('POST', '/v2/images', {
    body: { name: names.c, disk_format: 'raw', container_format: 'bare', os_distro: 'gazeos', tags: ['t3'] },
  });
  const c = (await res.json()) as { id: string; status: string };
  assert.equal(res.status, 201);
  assert.equal(c.status, 'queued');
  ids.c = c.id;

  assertOurs(await list(), ['a', 'b', 'c'], 'no filter');
  // openstackclient 6 filters --property on the client, but on the properties Gaze returns.
  assertOurs(await list('--property', 'os_distro=gazeos'), ['a', 'c'], '--property os_distro=gazeos');
  assertOurs(await list('--tag', 't1'), ['a', 'b'], '--tag t1');
  assertOurs(await list('--status', 'active'), ['a', 'b'], '--status active');
  assertOurs(await list('--status', 'queued'), ['c'], '--status queued');
  const byName = await list('--name', names.b);
  assert.deepEqual(
    byName.map((r) => [r.ID, r.Name, r.Status]),
    [[ids.b, names.b, 'active']],
  );
  assertOurs(await list('--tag', 't1', '--property', 'os_distro=gazeos', '--status', 'active'), ['a'], 'tag + property + status');

  const long = await list('--long', '--name', names.a);
  assert.equal(long.length, 1);
  assert.deepEqual(long[0], {
    ID: ids.a,
    Name: names.a,
    'Disk Format': 'raw',
    'Container Format': 'bare',
    Size: 3 * MiB,
    Checksum: md5(imageData),
    Status: 'active',
    Visibility: 'shared',
    Protected: false,
    Project: 'admin',
    Tags: ['t1'],
  });

  // Paging: the client sends limit and marker to the server (and sorts each page by name itself), so
  // compare with the server's own default order (created_at desc, id desc).
  const order = await listIds('/v2/images');
  assert.deepEqual(new Set(order), new Set([ids.a, ids.b, ids.c]));
  const page1 = await list('--limit', '2');
  assert.deepEqual(new Set(page1.map((r) => r.ID)), new Set(order.slice(0, 2)));
  const page2 = await list('--limit', '2', '--marker', order[1]);
  assert.deepEqual(
    page2.map((r) => r.ID),
    [order[2]],
  );
  const page3 = await list('--limit', '2', '--marker', order[2]);
  assert.deepEqual(page3, []);
});

test('image set --property/--tag, --deactivate, --activate; a deactivated image cannot be downloaded by others', { timeout: 180_000 }, async () => {
  assert.ok(ids.a, 'needs the image of the first test');
  ok(await openstack(['image', 'set', '--property', 'k=v', '--tag', 't2', names.a]));
  const image = await show(ids.a);
  assert.equal(image.properties.k, 'v');
  assert.equal(image.properties.os_distro, 'gazeos');
  assert.deepEqual([...image.tags].sort(), ['t1', 't2']);

  // Public, so that another project may download it until it is deactivated (a private or unshared
  // image would be a 404 for them either way).
  ok(await openstack(['image', 'set', '--public', names.a]));
  const other = { project: 'other', roles: 'member' };
  let res = await api('GET', `/v2/images/${ids.a}/file`, other);
  assert.equal(res.status, 200);
  assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(imageData));

  ok(await openstack(['image', 'set', '--deactivate', names.a]));
  assert.equal(await status(ids.a), 'deactivated');
  res = await api('GET', `/v2/images/${ids.a}/file`, other);
  const text = await res.text();
  assert.equal(res.status, 403, text);
  assert.match(text, /deactivated/);
  // Glance lets an admin still download a deactivated image.
  res = await api('GET', `/v2/images/${ids.a}/file`);
  assert.equal(res.status, 200);
  assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(imageData));
  // Deactivation hides nothing else: the other project still sees the image (showing one needs the
  // reader role, which Keystone implies from member; downloading needs member).
  res = await api('GET', `/v2/images/${ids.a}`, { project: 'other', roles: 'member,reader' });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { status: string }).status, 'deactivated');

  ok(await openstack(['image', 'set', '--activate', names.a]));
  assert.equal(await status(ids.a), 'active');
  res = await api('GET', `/v2/images/${ids.a}/file`, other);
  assert.equal(res.status, 200);
  assert.equal(md5(Buffer.from(await res.arrayBuffer())), md5(imageData));
});

test('sharing: image set --shared, image add project, acceptance by the member, image member list', { timeout: 180_000 }, async () => {
  assert.ok(ids.a, 'needs the image of the first test');
  ok(await openstack(['image', 'set', '--shared', names.a]));
  assert.equal(value(await openstack(['image', 'show', ids.a, '-f', 'value', '-c', 'visibility'])), 'shared');

  const member = json<Record<string, string>>(await openstack(['image', 'add', 'project', names.a, memberProject, '-f', 'json']));
  assert.equal(member.image_id, ids.a);
  assert.equal(member.member_id, memberProject);
  assert.equal(member.status, 'pending');

  // Pending: the member may see the image but does not get it in its default list.
  assert.ok(!(await listIds('/v2/images', memberProject)).includes(ids.a), 'a pending share is not in the default list');
  assert.ok((await listIds('/v2/images?member_status=pending', memberProject)).includes(ids.a), 'but in ?member_status=pending');
  let res = await api('GET', `/v2/images/${ids.a}`, { project: memberProject, roles: 'member,reader' });
  assert.equal(res.status, 200);
  // A project it is not shared with does not see it at all.
  res = await api('GET', `/v2/images/${ids.a}`, { project: 'stranger', roles: 'member,reader' });
  assert.equal(res.status, 404);
  assert.ok(!(await listIds('/v2/images', 'stranger')).includes(ids.a));

  res = await api('PUT', `/v2/images/${ids.a}/members/${memberProject}`, {
    project: memberProject,
    roles: 'member,reader',
    body: { status: 'accepted' },
  });
  const accepted = (await res.json()) as Record<string, string>;
  assert.equal(res.status, 200, JSON.stringify(accepted));
  assert.equal(accepted.status, 'accepted');
  assert.equal(accepted.member_id, memberProject);
  assert.equal(accepted.image_id, ids.a);

  assert.ok((await listIds('/v2/images', memberProject)).includes(ids.a), 'an accepted share is in the default list');
  assert.ok(!(await listIds('/v2/images?member_status=pending', memberProject)).includes(ids.a));
  assert.ok(!(await listIds('/v2/images', 'stranger')).includes(ids.a));

  const members = json<MemberRow[]>(await openstack(['image', 'member', 'list', names.a, '-f', 'json']));
  assert.deepEqual(members, [{ 'Image ID': ids.a, 'Member ID': memberProject, Status: 'accepted' }]);
});

test('image save --file round trip', { timeout: 120_000 }, async () => {
  assert.ok(ids.a, 'needs the image of the first test');
  const out = path.join(work, 'saved.raw');
  ok(await openstack(['image', 'save', '--file', out, names.a]));
  const saved = readFileSync(out);
  assert.equal(saved.length, imageData.length);
  assert.equal(md5(saved), md5(imageData));
  assert.ok(saved.equals(imageData), 'the saved bytes are the uploaded bytes');
});

test('image delete; image show then fails', { timeout: 120_000 }, async () => {
  assert.ok(ids.a, 'needs the image of the first test');
  ok(await openstack(['image', 'delete', names.a]));

  const shown = await openstack(['image', 'show', ids.a]);
  assert.equal(shown.code, 1);
  assert.match(failed(shown), new RegExp(`No Image found for ${ids.a}`));
  assert.equal((await api('GET', `/v2/images/${ids.a}`)).status, 404);

  const again = await openstack(['image', 'delete', ids.a]);
  assert.equal(again.code, 1);
  assert.match(failed(again), /Failed to delete 1 of 1 images/);

  assertOurs(await list(), ['b', 'c'], 'after the delete');
});

test('glance CLI: image-create --file, image-download, image-show, image-delete', { timeout: 180_000 }, async () => {
  const glance = tokenGlance(gaze.url);
  const created = parsePropertyTable(
    ok(await glance(['image-create', '--name', 'glance-x', '--disk-format', 'raw', '--container-format', 'bare', '--file', smallFile])),
  );
  const id = created.id;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(created.name, 'glance-x');
  assert.equal(created.status, 'active');
  assert.equal(created.size, String(smallData.length));
  assert.equal(created.checksum, md5(smallData));
  assert.equal(created.os_hash_algo, 'sha512');
  assert.equal(created.os_hash_value, sha512(smallData));

  const out = path.join(work, 'glance-out.raw');
  ok(await glance(['image-download', '--file', out, id]));
  const downloaded = readFileSync(out);
  assert.equal(md5(downloaded), md5(smallData));
  assert.ok(downloaded.equals(smallData));

  const shown = parsePropertyTable(ok(await glance(['image-show', id])));
  assert.equal(shown.id, id);
  assert.equal(shown.name, 'glance-x');
  assert.equal(shown.status, 'active');
  assert.equal(shown.disk_format, 'raw');
  assert.equal(shown.container_format, 'bare');
  assert.equal(shown.checksum, md5(smallData));
  assert.equal(shown.visibility, 'shared');

  ok(await glance(['image-delete', id]));
  const gone = await glance(['image-show', id]);
  assert.equal(gone.code, 1);
  assert.match(failed(gone), new RegExp(`HTTP 404 Not Found: No image found with ID ${id}`));
});

test(
  'glance CLI in token mode, runs sharing one HOME: its cached image schema (no stores with one store) keeps later runs working',
  { timeout: 120_000 },
  async () => {
    const home = mkdtempSync(path.join(tmpdir(), 'gaze-cli-shared-home-'));
    try {
      const glance = tokenGlance(gaze.url);
      ok(await glance(['image-list'], { env: { HOME: home } }));
      // Debian's glanceclient 4.1 builds its options from this file from now on: a `stores` in it would
      // clash with image-create-via-import's own --stores, and every run would fail.
      const cached = JSON.parse(readFileSync(path.join(home, '.glanceclient', 'image_schema.json'), 'utf8')) as { properties: Record<string, unknown> };
      assert.ok('name' in cached.properties && !('stores' in cached.properties));
      ok(await glance(['image-list'], { env: { HOME: home } }));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  },
);

test('data that is not what its disk_format claims is refused: the CLI shows the 415 and its reason', { timeout: 120_000 }, async () => {
  const name = `gaze-liar-${randomUUID()}`;
  const liar = await openstack(['image', 'create', '--file', smallFile, '--disk-format', 'qcow2', '--container-format', 'bare', name, '-f', 'json']);
  assert.match(failed(liar), /415: Client Error .*Unsupported Media Type/);
  // The glance CLI prints the reason the service gave.
  const viaGlance = await tokenGlance(gaze.url)(['image-create', '--name', name, '--disk-format', 'qcow2', '--container-format', 'bare', '--file', smallFile]);
  assert.match(failed(viaGlance), /Image disk_format qcow2 does not match stream data raw/);
  // The record stays queued without data (openstackclient may also delete it after the failed upload).
  const res = await api('GET', `/v2/images?name=${name}`);
  const left = ((await res.json()) as { images: ShownImage[] }).images;
  assert.ok(
    left.every((image) => image.status === 'queued' && image.size === null),
    JSON.stringify(left),
  );
  const good = json<ShownImage>(await openstack(['image', 'show', ids.b, '-f', 'json']));
  assert.equal(good.virtual_size, 16 * MiB);
});
