// The same calls to Debian's Glance 25 and to Gaze, both behind one real Keystone with the same tokens:
// each answer's status, Content-Type and body text must be the same bytes, once each service's ids, times
// and address are written alike. What it pins: Python's JSON separators, the key order of each view, an
// image's properties in the order they were first set, a namespace's contents by name, the error shapes
// and their escaping of characters beyond ASCII.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess } from '../helpers/gaze.ts';
import { rawRequest, type Reply } from '../helpers/http.ts';
import { freePort, keystoneAuthSections, startKeystone, type RunningKeystone } from '../helpers/keystone.ts';
import { runScript } from '../helpers/scripts.ts';

interface Service {
  name: 'Glance' | 'Gaze';
  url: string;
  /** Each id this service made, in the order first seen, named as the other service's is. */
  ids: Map<string, string>;
  /** The ids a call kept (`keep`), by name, for the paths of later calls (`{name}`). */
  kept: Map<string, string>;
}

let work: string;
let keystone: RunningKeystone;
let glanceDir: string;
let stopGaze: (() => Promise<void>) | null = null;
const services: Service[] = [];
const tokens: Record<'admin' | 'demo' | 'alt', string> = { admin: '', demo: '', alt: '' };
let altProject = '';

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gaze-bytes-'));
  keystone = await startKeystone();
  tokens.admin = await keystone.token('admin', 'admin-secret', 'admin');
  tokens.demo = await keystone.token('demo', 'demo-secret', 'demo');
  tokens.alt = await keystone.token('alt', 'alt-secret', 'alt');
  altProject = await projectOf(tokens.alt);
  glanceDir = path.join(work, 'glance');
  const glancePort = await freePort();
  await runScript('start-glance.sh', [glanceDir, String(glancePort)], 600_000, { GLANCE_KEYSTONE: keystone.url, GLANCE_WORKERS: '1' });
  // Zed's default rules, as this Glance runs them.
  const gaze = await startGazeProcess({ ...keystoneAuthSections(keystone.url), oslo_policy: { enforce_new_defaults: 'False' } });
  stopGaze = () => gaze.stop();
  services.push(
    { name: 'Glance', url: `http://127.0.0.1:${glancePort}`, ids: new Map(), kept: new Map() },
    { name: 'Gaze', url: gaze.url, ids: new Map(), kept: new Map() },
  );
});

after(async () => {
  await stopGaze?.();
  if (glanceDir) await runScript('stop-glance.sh', [glanceDir], 60_000);
  await keystone?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The project a token is scoped to (Keystone answers its own token's details). */
async function projectOf(token: string): Promise<string> {
  const reply = await rawRequest(keystone.url, 'GET', '/v3/auth/tokens', { 'x-auth-token': token, 'x-subject-token': token });
  return (reply.json as { token: { project: { id: string } } }).token.project.id;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** The body with this service's ids named by order of first sight, times as TIME and its address as BASE. */
function comparable(service: Service, text: string): string {
  return (
    text
      .replaceAll(service.url, 'BASE')
      .replace(UUID, (id) => {
        if (!service.ids.has(id)) service.ids.set(id, `ID${service.ids.size}`);
        return service.ids.get(id)!;
      })
      // The raw task rows of an image's tasks carry the database's fraction: whole seconds in Gaze, as
      // Glance's MySQL DATETIME keeps them; the SQLite this Glance runs on keeps microseconds.
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|\.\d{6})/g, 'TIME')
  );
}

interface Call {
  label: string;
  method: string;
  path: string;
  as?: 'admin' | 'demo' | 'alt';
  body?: unknown;
  contentType?: string;
  accept?: string;
  /** Keeps the answer's `id` (or, for a list, its first item's) under this name. */
  keep?: string;
  /** The status both must answer. */
  status: number;
}

/** One call to one service; `{name}` in the path is the id this service's answer kept under that name. */
async function send(service: Service, call: Omit<Call, 'status'>): Promise<Reply> {
  const urlPath = call.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const id = service.kept.get(name);
    assert.ok(id, `${call.label}: no id kept as ${name}`);
    return id;
  });
  const headers: Record<string, string> = { 'x-auth-token': tokens[call.as ?? 'demo'], accept: call.accept ?? 'application/json' };
  let body: string | Buffer | undefined;
  if (call.body !== undefined) {
    headers['content-type'] = call.contentType ?? 'application/json';
    body = Buffer.isBuffer(call.body) ? call.body : typeof call.body === 'string' ? call.body : JSON.stringify(call.body);
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  return rawRequest(service.url, call.method, urlPath, headers, body);
}

/** A JSON-patch (Glance's v2.1 media type) of the image kept under `image`. */
function patch(label: string, image: string, body: unknown[], status: number, as?: Call['as']): Call {
  return { label, method: 'PATCH', path: `/v2/images/{${image}}`, contentType: 'application/openstack-images-v2.1-json-patch', body, status, as };
}

/** Sends the call to both services in turn and asserts the same answer, byte for byte once normalised. */
async function same(call: Call): Promise<void> {
  const [glance, gaze] = [await send(services[0]!, call), await send(services[1]!, call)];
  assert.equal(glance.status, call.status, `${call.label}: Glance's status (${glance.text.slice(0, 300)})`);
  assert.equal(gaze.status, glance.status, `${call.label}: status (Glance ${glance.text.slice(0, 300)})`);
  if (call.keep) {
    for (const [service, reply] of [
      [services[0]!, glance],
      [services[1]!, gaze],
    ] as const) {
      const body = reply.json as { id?: string; tasks?: Array<{ id: string }> };
      service.kept.set(call.keep, body.id ?? body.tasks?.[0]?.id ?? '');
    }
  }
  assert.equal(gaze.headers.get('content-type'), glance.headers.get('content-type'), `${call.label}: Content-Type`);
  assert.equal(comparable(services[1]!, gaze.text), comparable(services[0]!, glance.text), `${call.label}: body`);
}

/** Polls both services until the image's import has ended (no lock), so that their next answers compare. */
async function importEnded(name: string): Promise<void> {
  for (const service of services) {
    const id = service.kept.get(name)!;
    for (let i = 0; i < 150; i++) {
      const shown = (await send(service, { label: 'poll', method: 'GET', path: `/v2/images/${id}` })).json as Record<string, unknown>;
      if (!('os_glance_import_task' in shown) && (shown.status === 'active' || shown.status === 'queued')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

test("images, members, imports and tasks: Glance 25's bytes", async () => {
  await same({
    label: 'create',
    method: 'POST',
    path: '/v2/images',
    body: { name: 'café, "quoted": ☃', zeta: '1', alpha: '2', os_note: 'a:b, c', disk_format: 'raw', container_format: 'bare', visibility: 'shared' },
    keep: 'image',
    status: 201,
  });
  await same({ label: 'show', method: 'GET', path: '/v2/images/{image}', status: 200 });
  await same(
    patch(
      'patch',
      'image',
      [
        { op: 'replace', path: '/zeta', value: '9' },
        { op: 'add', path: '/beta', value: 'é' },
        { op: 'replace', path: '/min_ram', value: 64 },
      ],
      200,
    ),
  );
  await same({ label: 'show after patch', method: 'GET', path: '/v2/images/{image}', status: 200 });
  await same({ label: 'member', method: 'POST', path: '/v2/images/{image}/members', body: { member: 'some-project' }, status: 200 });
  await same({ label: 'members', method: 'GET', path: '/v2/images/{image}/members', status: 200 });
  await same({
    label: 'upload',
    method: 'PUT',
    path: '/v2/images/{image}/file',
    contentType: 'application/octet-stream',
    body: Buffer.from('ten bytes!'),
    status: 204,
  });
  await same({ label: 'show active', method: 'GET', path: '/v2/images/{image}', status: 200 });
  await same({ label: 'list', method: 'GET', path: '/v2/images?limit=1&sort=name:asc', status: 200 });

  await same({
    label: 'create for import',
    method: 'POST',
    path: '/v2/images',
    body: { name: 'imported', disk_format: 'raw', container_format: 'bare' },
    keep: 'imported',
    status: 201,
  });
  await same({
    label: 'stage',
    method: 'PUT',
    path: '/v2/images/{imported}/stage',
    contentType: 'application/octet-stream',
    body: Buffer.from('staged'),
    status: 204,
  });
  await same({ label: 'import', method: 'POST', path: '/v2/images/{imported}/import', body: { method: { name: 'glance-direct' } }, status: 202 });
  await importEnded('imported');
  await same({ label: 'imported', method: 'GET', path: '/v2/images/{imported}', status: 200 });
  await same({ label: 'image tasks', method: 'GET', path: '/v2/images/{imported}/tasks', as: 'admin', keep: 'task', status: 200 });
  await same({ label: 'task', method: 'GET', path: '/v2/tasks/{task}', as: 'admin', status: 200 });
  await same({ label: 'import info', method: 'GET', path: '/v2/info/import', status: 200 });
});

test("tags, sharing, deactivation and refusals: Glance 25's bytes", async () => {
  await same({
    label: 'create',
    method: 'POST',
    path: '/v2/images',
    body: { name: 'shared one', visibility: 'shared', tags: ['x'], disk_format: 'raw', container_format: 'bare' },
    keep: 'image',
    status: 201,
  });
  await same({ label: 'tag', method: 'PUT', path: '/v2/images/{image}/tags/y', status: 204 });
  await same({ label: 'untag', method: 'DELETE', path: '/v2/images/{image}/tags/x', status: 204 });
  await same({ label: 'untag missing', method: 'DELETE', path: '/v2/images/{image}/tags/x', status: 404 });
  await same({ label: 'share', method: 'POST', path: '/v2/images/{image}/members', body: { member: altProject }, status: 200 });
  await same({ label: 'member sees it pending', method: 'GET', path: `/v2/images/{image}/members/${altProject}`, as: 'alt', status: 200 });
  await same({
    label: 'member accepts',
    method: 'PUT',
    path: `/v2/images/{image}/members/${altProject}`,
    as: 'alt',
    body: { status: 'accepted' },
    status: 200,
  });
  await same({ label: 'member lists it', method: 'GET', path: '/v2/images?visibility=shared&member_status=accepted', as: 'alt', status: 200 });
  await same(patch('member may not patch', 'image', [{ op: 'replace', path: '/name', value: 'n' }], 403, 'alt'));
  await same({
    label: 'upload',
    method: 'PUT',
    path: '/v2/images/{image}/file',
    contentType: 'application/octet-stream',
    body: Buffer.from('0123456789'),
    status: 204,
  });
  await same({ label: 'deactivate', method: 'POST', path: '/v2/images/{image}/actions/deactivate', status: 204 });
  await same({ label: 'download deactivated', method: 'GET', path: '/v2/images/{image}/file', as: 'alt', status: 403 });
  await same({ label: 'reactivate', method: 'POST', path: '/v2/images/{image}/actions/reactivate', status: 204 });
  await same(patch('bad op', 'image', [{ op: 'move', path: '/name', from: '/x' }], 400));
  await same(patch('bad path', 'image', [{ op: 'add', path: 'name', value: 'n' }], 400));
  await same({ label: 'bad limit', method: 'GET', path: '/v2/images?limit=-1', status: 400 });
  await same({ label: 'bad sort', method: 'GET', path: '/v2/images?sort_key=bogus', status: 400 });
  await same(patch('protected', 'image', [{ op: 'replace', path: '/protected', value: true }], 200));
  await same({ label: 'delete protected', method: 'DELETE', path: '/v2/images/{image}', status: 403 });
});

test("errors and metadata definitions: Glance 25's bytes", async () => {
  await same({
    label: 'namespace',
    method: 'POST',
    path: '/v2/metadefs/namespaces',
    as: 'admin',
    body: {
      namespace: 'Bytes::Test',
      display_name: 'Ç',
      visibility: 'public',
      properties: { zz: { type: 'string', title: 'z' }, aa: { type: 'integer', title: 'a', minimum: 1 } },
      objects: [{ name: 'zo', properties: { z2: { type: 'string', title: 'z2' }, a2: { type: 'string', title: 'a2' } } }, { name: 'ao' }],
      tags: [{ name: 't2' }, { name: 't1' }],
    },
    status: 201,
  });
  await same({ label: 'namespace shown', method: 'GET', path: '/v2/metadefs/namespaces/Bytes::Test', status: 200 });
  await same({ label: 'properties', method: 'GET', path: '/v2/metadefs/namespaces/Bytes::Test/properties', status: 200 });
  await same({ label: 'objects', method: 'GET', path: '/v2/metadefs/namespaces/Bytes::Test/objects', status: 200 });
  await same({ label: 'namespace deleted', method: 'DELETE', path: '/v2/metadefs/namespaces/Bytes::Test', as: 'admin', status: 204 });

  await same({ label: 'missing image', method: 'GET', path: '/v2/images/00000000-0000-4000-8000-000000000000', status: 404 });
  await same({ label: 'missing image, HTML', method: 'GET', path: '/v2/images/00000000-0000-4000-8000-000000000000', accept: '*/*', status: 404 });
  await same({ label: 'create for members', method: 'POST', path: '/v2/images', body: { name: 'm', visibility: 'shared' }, keep: 'shared', status: 201 });
  await same({ label: 'member é', method: 'POST', path: '/v2/images/{shared}/members', body: { member: 'é' }, status: 200 });
  for (const accept of ['application/json', 'text/html', 'text/plain']) {
    await same({ label: `member é again (${accept})`, method: 'POST', path: '/v2/images/{shared}/members', body: { member: 'é' }, accept, status: 409 });
    await same({ label: `member 💥 (${accept})`, method: 'POST', path: '/v2/images/{shared}/members', body: { member: 'é💥' }, accept, status: 400 });
  }
  await same(patch('bad patch', 'shared', [{ op: 'replace', path: '/status', value: 'x' }], 403));
});

test("repeated query parameters, properties set again and list filters: Glance 25's bytes", async () => {
  const image = (name: string, keep: string, extra: Record<string, unknown>): Call => ({
    label: `create ${name}`,
    method: 'POST',
    path: '/v2/images',
    body: { name, tags: ['rep'], disk_format: 'raw', container_format: 'bare', ...extra },
    keep,
    status: 201,
  });
  await same(image('rep-a', 'a', { p1: 'a', p2: 'b', p3: 'c' }));
  await same(image('rep-b', 'b', { visibility: 'private' }));
  // A property removed and set again gets its first place back (Glance's soft-deleted row).
  await same(patch('remove p1', 'a', [{ op: 'remove', path: '/p1' }], 200));
  await same(patch('add p4', 'a', [{ op: 'add', path: '/p4', value: 'd' }], 200));
  await same(patch('p1 again', 'a', [{ op: 'add', path: '/p1', value: 'again' }], 200));
  await same({ label: 'show a', method: 'GET', path: '/v2/images/{a}', status: 200 });
  // Repeats: some by their first value, some by their last, some both.
  for (const query of [
    'visibility=private&visibility=shared',
    'visibility=shared&visibility=shared',
    'sort=name:asc&sort=name:desc',
    'limit=1&limit=2&sort=name:asc',
    'deleted=true&sort=name:desc',
    'name=rep-a&name=rep-b',
  ]) {
    await same({ label: `list ${query}`, method: 'GET', path: `/v2/images?tag=rep&${query}`, status: 200 });
  }
  // A name that does not resolve is refused before any task exists.
  await same({
    label: 'web-download from nowhere',
    method: 'POST',
    path: '/v2/images/{b}/import',
    body: { method: { name: 'web-download', uri: 'http://nonexistent.invalid/x' } },
    status: 400,
  });
  for (const query of ['status=&type=', 'limit=1&limit=3', 'type=import&type=import', 'sort_key=status&sort_dir=asc&sort_dir=x']) {
    await same({ label: `tasks ${query}`, method: 'GET', path: `/v2/tasks?${query}`, as: 'admin', status: 200 });
  }

  for (const [namespace, visibility] of [
    ['Rep::A', 'public'],
    ['Rep::B', 'private'],
  ]) {
    await same({
      label: `namespace ${namespace}`,
      method: 'POST',
      path: '/v2/metadefs/namespaces',
      as: 'admin',
      body: { namespace, visibility, tags: [{ name: 'b' }, { name: 'a' }, { name: 'c' }] },
      status: 201,
    });
  }
  for (const query of [
    'visibility=&limit=5',
    'visibility=private&visibility=public',
    'sort_key=namespace&sort_key=created_at&sort_dir=asc&sort_dir=desc',
    'limit=1&limit=5&sort_key=namespace',
  ]) {
    await same({ label: `namespaces ${query}`, method: 'GET', path: `/v2/metadefs/namespaces?${query}`, as: 'admin', status: 200 });
  }
  await same({ label: 'namespaces marker=', method: 'GET', path: '/v2/metadefs/namespaces?marker=&limit=2', as: 'admin', status: 404 });
  for (const query of [
    'sort_key=name&sort_key=created_at&sort_dir=asc&sort_dir=desc&limit=2&limit=5',
    'marker=&sort_key=name&sort_dir=asc',
    'marker=b&marker=a&sort_key=name&sort_dir=asc',
  ]) {
    await same({ label: `tags ${query}`, method: 'GET', path: `/v2/metadefs/namespaces/Rep::A/tags?${query}`, as: 'admin', status: 200 });
  }
  for (const namespace of ['Rep::A', 'Rep::B']) {
    await same({ label: `${namespace} deleted`, method: 'DELETE', path: `/v2/metadefs/namespaces/${namespace}`, as: 'admin', status: 204 });
  }
});
