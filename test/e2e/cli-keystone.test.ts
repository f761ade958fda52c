// End to end with the real `openstack` CLI against Gaze in Keystone mode: a real Keystone whose catalog
// names this Gaze as RegionOne's image endpoint, and users logging in with passwords, as in a cloud.
// Users (test/helpers/keystone.ts): demo (project demo, member), alt (project alt, member),
// reader (project demo, reader only).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { freePort, startKeystone, type RunningKeystone, keystoneAuthSections } from '../helpers/keystone.ts';
import { failed, json, keystoneOpenStack, md5, ok, sha512, value, type ImageRow, type OpenStack } from '../helpers/cli.ts';

interface ShownImage {
  id: string;
  name: string;
  status: string;
  size?: number | null;
  checksum?: string | null;
  visibility: string;
  owner: string;
  tags: string[];
  properties: Record<string, unknown>;
}

const MiB = 1024 * 1024;
const NAME = 'ks-cli-image';

let keystone: RunningKeystone;
let gaze: GazeProcess;
let work: string;
let imageFile: string;
let imageData: Buffer;
let demo: OpenStack;
let alt: OpenStack;
let reader: OpenStack;
let demoProject: string;
let altProject: string;
let imageId = '';

before(
  async () => {
    work = mkdtempSync(path.join(tmpdir(), 'gaze-cli-ks-e2e-'));
    imageData = randomBytes(2 * MiB + 123);
    imageFile = path.join(work, 'image.raw');
    writeFileSync(imageFile, imageData);

    const port = await freePort();
    keystone = await startKeystone({ regionOnePort: port, regionTwoPort: await freePort() });
    gaze = await startGazeProcess(
      {
        ...keystoneAuthSections(keystone.url, 'RegionOne'),
      },
      { port },
    );

    const as = (username: string, password: string, project: string) => keystoneOpenStack({ authUrl: keystone.url, username, password, project });
    demo = as('demo', 'demo-secret', 'demo');
    alt = as('alt', 'alt-secret', 'alt');
    reader = as('reader', 'reader-secret', 'demo');
    demoProject = await projectId('demo');
    altProject = await projectId('alt');
  },
  { timeout: 240_000 },
);

after(async () => {
  await gaze?.stop();
  await keystone?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A project's id from the Keystone API (as the cloud admin). */
async function projectId(name: string): Promise<string> {
  const token = await keystone.token('admin', 'admin-secret', 'admin');
  const res = await fetch(`${keystone.url}/v3/projects?name=${encodeURIComponent(name)}&domain_id=default`, {
    headers: { 'X-Auth-Token': token },
  });
  const body = (await res.json()) as { projects: { id: string; name: string }[] };
  assert.equal(res.status, 200);
  assert.equal(body.projects.length, 1, `project ${name}`);
  return body.projects[0].id;
}

async function show(os: OpenStack, image: string): Promise<ShownImage> {
  return json<ShownImage>(await os(['image', 'show', image, '-f', 'json']));
}

async function status(image: string): Promise<string> {
  return value(await demo(['image', 'show', image, '-f', 'value', '-c', 'status']));
}

async function listIds(os: OpenStack, ...args: string[]): Promise<string[]> {
  return json<ImageRow[]>(await os(['image', 'list', ...args, '-f', 'json'])).map((r) => r.ID);
}

test('demo: image create --file through the catalog endpoint, image show', { timeout: 120_000 }, async () => {
  const created = json<ShownImage>(
    await demo([
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
      NAME,
      '-f',
      'json',
    ]),
  );
  imageId = created.id;
  assert.match(imageId, /^[0-9a-f-]{36}$/);

  const image = await show(demo, NAME);
  assert.equal(image.id, imageId);
  assert.equal(image.status, 'active');
  assert.equal(image.size, imageData.length);
  assert.equal(image.checksum, md5(imageData));
  assert.equal(image.properties.os_hash_algo, 'sha512');
  assert.equal(image.properties.os_hash_value, sha512(imageData));
  assert.equal(image.properties.os_distro, 'gazeos');
  assert.deepEqual(image.tags, ['t1']);
  assert.equal(image.owner, demoProject);
  assert.equal(image.visibility, 'shared');
});

test('demo: image list with filters', { timeout: 120_000 }, async () => {
  assert.ok(imageId, 'needs the image of the first test');
  assert.ok((await listIds(demo)).includes(imageId));
  assert.deepEqual(await listIds(demo, '--tag', 't1', '--status', 'active'), [imageId]);
  assert.deepEqual(await listIds(demo, '--status', 'queued'), []);
  assert.deepEqual(await listIds(demo, '--name', 'no-such-image'), []);
  // Not shared with alt yet: alt does not see it.
  assert.ok(!(await listIds(alt)).includes(imageId));
});

test('demo: image set --property/--tag, --deactivate, --activate', { timeout: 180_000 }, async () => {
  assert.ok(imageId, 'needs the image of the first test');
  ok(await demo(['image', 'set', '--property', 'k=v', '--tag', 't2', NAME]));
  const image = await show(demo, imageId);
  assert.equal(image.properties.k, 'v');
  assert.deepEqual([...image.tags].sort(), ['t1', 't2']);

  ok(await demo(['image', 'set', '--deactivate', NAME]));
  assert.equal(await status(imageId), 'deactivated');
  // The owner is no admin: Glance forbids the download of a deactivated image.
  const token = await keystone.token('demo', 'demo-secret', 'demo');
  const res = await fetch(`${gaze.url}/v2/images/${imageId}/file`, { headers: { 'X-Auth-Token': token } });
  const text = await res.text();
  assert.equal(res.status, 403, text);
  assert.match(text, /deactivated/);

  ok(await demo(['image', 'set', '--activate', NAME]));
  assert.equal(await status(imageId), 'active');
});

test('demo: image save --file round trip', { timeout: 120_000 }, async () => {
  assert.ok(imageId, 'needs the image of the first test');
  const out = path.join(work, 'saved.raw');
  ok(await demo(['image', 'save', '--file', out, NAME]));
  const saved = readFileSync(out);
  assert.equal(md5(saved), md5(imageData));
  assert.ok(saved.equals(imageData));
});

test('sharing with the alt project: add project, accept as alt, alt lists and downloads it', { timeout: 240_000 }, async () => {
  assert.ok(imageId, 'needs the image of the first test');
  ok(await demo(['image', 'set', '--shared', NAME]));
  const member = json<Record<string, string>>(await demo(['image', 'add', 'project', NAME, altProject, '-f', 'json']));
  assert.equal(member.image_id, imageId);
  assert.equal(member.member_id, altProject);
  assert.equal(member.status, 'pending');

  assert.ok(!(await listIds(alt)).includes(imageId), "a pending share is not in alt's list");
  ok(await alt(['image', 'set', '--accept', imageId]));
  assert.ok((await listIds(alt)).includes(imageId), "an accepted share is in alt's list");

  const members = json<Record<string, string>[]>(await demo(['image', 'member', 'list', NAME, '-f', 'json']));
  assert.deepEqual(members, [{ 'Image ID': imageId, 'Member ID': altProject, Status: 'accepted' }]);

  const out = path.join(work, 'alt-saved.raw');
  ok(await alt(['image', 'save', '--file', out, imageId]));
  assert.equal(md5(readFileSync(out)), md5(imageData));

  // A member may use the image but not delete it.
  const del = await alt(['image', 'delete', imageId]);
  assert.match(failed(del), /403 Forbidden|HTTP 403|403:/);
  assert.match(failed(del), /delete_image/);
});

test('reader: can list but cannot create (403)', { timeout: 120_000 }, async () => {
  assert.ok(imageId, 'needs the image of the first test');
  assert.ok((await listIds(reader)).includes(imageId));
  const created = await reader(['image', 'create', '--file', imageFile, '--disk-format', 'raw', '--container-format', 'bare', 'reader-image']);
  const text = failed(created);
  assert.equal(created.code, 1);
  assert.match(text, /403/);
  assert.match(text, /You are not authorized to complete add_image action/);
  assert.ok(!(await listIds(demo)).some((id) => id !== imageId), 'no image was created');
});

test('demo: image delete; image show then fails', { timeout: 120_000 }, async () => {
  assert.ok(imageId, 'needs the image of the first test');
  ok(await demo(['image', 'delete', NAME]));
  const shown = await demo(['image', 'show', imageId]);
  assert.equal(shown.code, 1);
  assert.match(failed(shown), new RegExp(`No Image found for ${imageId}`));
});

test('a bad password fails to authenticate', { timeout: 120_000 }, async () => {
  const bad = keystoneOpenStack({ authUrl: keystone.url, username: 'demo', password: 'not-the-password', project: 'demo' });
  const res = await bad(['image', 'list']);
  assert.equal(res.code, 1);
  assert.match(failed(res), /requires authentication.*\(HTTP 401\)/);
});

test('raw requests without a valid token get 401 with the Keystone WWW-Authenticate header', async () => {
  for (const headers of [{ 'X-Auth-Token': 'bogus-token' }, {}] as Record<string, string>[]) {
    const res = await fetch(`${gaze.url}/v2/images`, { headers });
    await res.arrayBuffer();
    assert.equal(res.status, 401, JSON.stringify(headers));
    assert.equal(res.headers.get('www-authenticate'), `Keystone uri="${keystone.url}"`);
  }
  // The version document needs no token (as with keystonemiddleware in Glance's pipeline).
  const versions = await fetch(`${gaze.url}/versions`);
  assert.equal(versions.status, 200);
  await versions.arrayBuffer();
});
