// The same API calls to a real Glance (Debian's glance-api) and to Gaze, both behind one Keystone and
// with the `log` notification driver; prints the notifications each sent, in order, side by side (the
// event type, its priority, the image's status, and the payload's values where they differ), then the
// API's views of the same images, tasks and definitions where they differ. A tool for checking what a
// notification consumer (billing, search) and a client read, not a test.
//   node --import tsx scripts/notifications-against-glance.ts [multistore]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess } from '../test/helpers/gaze.ts';
import { keystoneAuthSections, freePort, startKeystone } from '../test/helpers/keystone.ts';
import { runScript } from '../test/helpers/scripts.ts';

/** `multistore`: both services with two file stores, and the calls that use them. */
const MULTISTORE = process.argv.includes('multistore');

interface Note {
  event: string;
  priority: string;
  payload: Record<string, unknown>;
}

/** Glance's log driver: `oslo.messaging.notification.<event> [<context>] <JSON>` lines. */
function glanceNotes(logFile: string): Note[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes(' oslo.messaging.notification.'))
    .map((line) => JSON.parse(line.slice(line.indexOf('{'))) as { event_type: string; priority: string; payload: Record<string, unknown> })
    .map((n) => ({ event: n.event_type, priority: n.priority, payload: n.payload }));
}

/** Gaze's log driver: one JSON line a notification, with `notification`, `priority` and `payload`. */
function gazeNotes(output: string): Note[] {
  return output
    .split('\n')
    .filter((line) => line.includes('"notification"'))
    .map((line) => JSON.parse(line) as { notification: string; priority: string; payload: Record<string, unknown> })
    .map((n) => ({ event: n.notification, priority: n.priority, payload: n.payload }));
}

interface Tokens {
  demo: string;
  alt: string;
  admin: string;
}

/** `polling`: a call repeated until something happens, as many times as it takes: its answers are not compared. */
type Call = (
  method: string,
  route: string,
  body?: unknown,
  opts?: { token?: string; type?: string; headers?: Record<string, string>; polling?: boolean },
) => Promise<Record<string, unknown>>;

/** A JSON API client of one service, as `token` unless a call names another; an error answer throws. */
function caller(url: string, token: string, answers?: Map<string, unknown>): Call {
  return async (method, route, body, opts = {}) => {
    const headers: Record<string, string> = { 'x-auth-token': opts.token ?? token, ...opts.headers };
    if (body !== undefined) headers['content-type'] = opts.type ?? 'application/json';
    const data = body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body);
    const res = await fetch(`${url}${route}`, { method, headers, body: data });
    const text = await res.text();
    if (!opts.polling) answers?.set(`answer ${answers.size + 1}: ${method} ${plain(route).slice(1, -1)}`, answerOf(res));
    if (res.status >= 400) throw new Error(`${method} ${route}: ${res.status} ${text}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
}

/** What clients read of an answer besides its body: the status and the headers that are not per request or per byte. */
function answerOf(res: Response): Record<string, unknown> {
  const varying = new Set(['date', 'x-openstack-request-id', 'content-length', 'connection', 'keep-alive']);
  const headers = Object.fromEntries([...res.headers].filter(([name]) => !varying.has(name)));
  return { status: res.status, ...headers };
}

/** Until the image's import is over (no lock, no store left to write), and a second for the last events. */
async function settled(call: Call, imageId: string, as?: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const now = await call('GET', `/v2/images/${imageId}`, undefined, { token: as, polling: true });
    if (!['importing', 'saving', 'uploading'].includes(String(now.status)) && !('os_glance_import_task' in now) && !now.os_glance_importing_to_stores) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1000));
}

/** With several stores: uploads to one, copy-image to another, imports to all or to one, a delete from one store. */
async function exerciseStores(url: string, tokens: Tokens, webSource: string): Promise<Map<string, unknown>> {
  const snapshots = new Map<string, unknown>();
  const call = caller(url, tokens.demo, snapshots);
  const admin = { token: tokens.admin };
  const octets = 'application/octet-stream';
  snapshots.set('stores', await call('GET', '/v2/info/stores'));
  const snapshot = async (label: string, imageId: string) => {
    snapshots.set(`${label}: image`, await call('GET', `/v2/images/${imageId}`, undefined, admin));
    snapshots.set(`${label}: its tasks`, await call('GET', `/v2/images/${imageId}/tasks`, undefined, admin));
  };
  const uploaded = String((await call('POST', '/v2/images', { name: 'uploaded', disk_format: 'raw', container_format: 'bare' })).id);
  await call('PUT', `/v2/images/${uploaded}/file`, Buffer.from('ten bytes!'), { type: octets, headers: { 'x-image-meta-store': 'cheap' } });
  await snapshot('uploaded to cheap', uploaded);
  await call('POST', `/v2/images/${uploaded}/import`, { method: { name: 'copy-image' }, stores: ['fast'] }, admin);
  await settled(call, uploaded, tokens.admin);
  await snapshot('copied to fast', uploaded);
  await call('DELETE', `/v2/stores/cheap/${uploaded}`, undefined, admin);
  await snapshot('deleted from cheap', uploaded);

  const everywhere = String((await call('POST', '/v2/images', { name: 'everywhere', disk_format: 'raw', container_format: 'bare' })).id);
  await call('PUT', `/v2/images/${everywhere}/stage`, Buffer.from('staged bytes'), { type: octets });
  await call('POST', `/v2/images/${everywhere}/import`, { method: { name: 'glance-direct' }, all_stores: true });
  await settled(call, everywhere);
  await snapshot('glance-direct to all stores', everywhere);

  const fetched = String((await call('POST', '/v2/images', { name: 'fetched', disk_format: 'raw', container_format: 'bare' })).id);
  await call('POST', `/v2/images/${fetched}/import`, { method: { name: 'web-download', uri: webSource }, stores: ['cheap'] });
  await settled(call, fetched);
  await snapshot('web-download to cheap', fetched);

  for (const id of [fetched, everywhere, uploaded]) await call('DELETE', `/v2/images/${id}`);
  return snapshots;
}

/** The calls of one run, in order: an upload, a download, changes, sharing, imports, deletions, an admin's tasks and definitions. */
async function exercise(url: string, tokens: Tokens, altProject: string, webSource: string): Promise<Map<string, unknown>> {
  const token = tokens.demo;
  const altToken = tokens.alt;
  const snapshots = new Map<string, unknown>();
  const call = caller(url, token, snapshots);
  const octets = 'application/octet-stream';
  const patch = 'application/openstack-images-v2.1-json-patch';
  // The image and its tasks as the API shows them, to compare after the run.
  const snapshot = async (label: string, imageId: string) => {
    snapshots.set(`${label}: image`, await call('GET', `/v2/images/${imageId}`));
    snapshots.set(`${label}: its tasks`, await call('GET', `/v2/images/${imageId}/tasks`));
  };
  const image = await call('POST', '/v2/images', { name: 'noticed', disk_format: 'raw', container_format: 'bare', visibility: 'shared' });
  const id = String(image.id);
  await call('PUT', `/v2/images/${id}/file`, Buffer.from('ten bytes!'), { type: octets });
  await snapshot('uploaded', id);
  await fetch(`${url}/v2/images/${id}/file`, { headers: { 'x-auth-token': token } }).then((r) => r.arrayBuffer());
  await call('PATCH', `/v2/images/${id}`, [{ op: 'add', path: '/k', value: 'v' }], { type: patch });
  await call('PUT', `/v2/images/${id}/tags/t`);
  await call('DELETE', `/v2/images/${id}/tags/t`);
  await call('POST', `/v2/images/${id}/actions/deactivate`);
  await call('POST', `/v2/images/${id}/actions/reactivate`);
  await call('POST', `/v2/images/${id}/members`, { member: altProject });
  snapshots.set('members', await call('GET', `/v2/images/${id}/members`));
  snapshots.set('a list page', await call('GET', '/v2/images?limit=1&sort_key=name&sort_dir=asc'));
  snapshots.set("the member's view of the list", await call('GET', '/v2/images?member_status=pending&visibility=shared', undefined, { token: altToken }));
  await call('PUT', `/v2/images/${id}/members/${altProject}`, { status: 'accepted' }, { token: altToken });
  await call('DELETE', `/v2/images/${id}/members/${altProject}`);
  await snapshot('changed', id);

  const staged = await call('POST', '/v2/images', { name: 'imported', disk_format: 'raw', container_format: 'bare' });
  const stagedId = String(staged.id);
  await call('PUT', `/v2/images/${stagedId}/stage`, Buffer.from('staged bytes'), { type: octets });
  await snapshot('staged', stagedId);
  await call('POST', `/v2/images/${stagedId}/import`, { method: { name: 'glance-direct' } });
  await settled(call, stagedId);
  await snapshot('glance-direct', stagedId);

  const fetched = await call('POST', '/v2/images', { name: 'fetched', disk_format: 'raw', container_format: 'bare' });
  const fetchedId = String(fetched.id);
  await call('POST', `/v2/images/${fetchedId}/import`, { method: { name: 'web-download', uri: webSource } });
  await settled(call, fetchedId);
  await snapshot('web-download', fetchedId);

  // An import that fails: the source answers 404, and the image goes back to queued.
  const failing = await call('POST', '/v2/images', { name: 'not fetched', disk_format: 'raw', container_format: 'bare' });
  const failingId = String(failing.id);
  await call('POST', `/v2/images/${failingId}/import`, { method: { name: 'web-download', uri: `${webSource}?missing` } });
  await settled(call, failingId);
  await snapshot('failed web-download', failingId);
  await call('DELETE', `/v2/images/${failingId}`);
  await call('DELETE', `/v2/images/${fetchedId}`);
  await call('DELETE', `/v2/images/${stagedId}`);
  await call('DELETE', `/v2/images/${id}`);

  // The tasks API's own import (an admin's: tasks_api_access), which makes its image from a URL.
  const admin = { token: tokens.admin };
  const task = await call(
    'POST',
    '/v2/tasks',
    {
      type: 'import',
      input: { import_from: webSource, import_from_format: 'raw', image_properties: { name: 'by task', disk_format: 'raw', container_format: 'bare' } },
    },
    admin,
  );
  let taskView: Record<string, unknown> = task;
  for (let i = 0; i < 200 && ['pending', 'processing'].includes(String(taskView.status)); i++) {
    await new Promise((r) => setTimeout(r, 100));
    taskView = await call('GET', `/v2/tasks/${String(task.id)}`, undefined, { ...admin, polling: true });
  }
  await new Promise((r) => setTimeout(r, 1000));
  snapshots.set('tasks API import: task', await call('GET', `/v2/tasks/${String(task.id)}`, undefined, admin));
  snapshots.set('a task list page', await call('GET', '/v2/tasks?limit=2&sort_dir=asc', undefined, admin));
  const madeId = (taskView.result as { image_id?: string } | null)?.image_id;
  if (madeId) {
    snapshots.set('tasks API import: image', await call('GET', `/v2/images/${madeId}`, undefined, admin));
    await call('DELETE', `/v2/images/${madeId}`, undefined, admin);
  }

  // Metadata definitions, as an admin writes them and Horizon reads them.
  const ns = 'Compare::Definitions';
  const nsPath = `/v2/metadefs/namespaces/${encodeURIComponent(ns)}`;
  await call(
    'POST',
    '/v2/metadefs/namespaces',
    {
      namespace: ns,
      display_name: 'Compared',
      description: 'Written alike to both services',
      visibility: 'public',
      protected: false,
      resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'cmp_' }],
    },
    admin,
  );
  await call(
    'POST',
    `${nsPath}/objects`,
    { name: 'machine', required: ['cores'], properties: { cores: { type: 'integer', title: 'Cores', minimum: 0 } } },
    admin,
  );
  await call('POST', `${nsPath}/properties`, { name: 'mode', type: 'string', title: 'Mode', enum: ['a', 'b'], default: 'a' }, admin);
  await call('POST', `${nsPath}/tags`, { tags: [{ name: 'first' }, { name: 'second' }] }, admin);
  await call('PUT', `${nsPath}/tags/first`, { name: 'renamed' }, admin);
  await call(
    'PUT',
    `${nsPath}/objects/machine`,
    { name: 'machine', description: 'Changed', properties: { cores: { type: 'integer', title: 'Cores', maximum: 64 } } },
    admin,
  );
  await call('PUT', `${nsPath}/properties/mode`, { name: 'mode', type: 'string', title: 'Mode', enum: ['a', 'b', 'c'] }, admin);
  await call('PUT', nsPath, { namespace: ns, display_name: 'Compared again', visibility: 'public' }, admin);
  snapshots.set('metadefs: namespace', await call('GET', nsPath, undefined, admin));
  snapshots.set('metadefs: objects', await call('GET', `${nsPath}/objects`, undefined, admin));
  snapshots.set('metadefs: properties', await call('GET', `${nsPath}/properties`, undefined, admin));
  snapshots.set('metadefs: tags', await call('GET', `${nsPath}/tags`, undefined, admin));
  snapshots.set('metadefs: its resource types', await call('GET', `${nsPath}/resource_types`, undefined, admin));
  await call('DELETE', `${nsPath}/objects/machine`, undefined, admin);
  await call('DELETE', `${nsPath}/resource_types/OS::Glance::Image`, undefined, admin);
  await call('DELETE', `${nsPath}/tags`, undefined, admin);
  await call('DELETE', nsPath, undefined, admin);
  return snapshots;
}

function describe(n: Note, other: Note | undefined): string {
  const status = typeof n.payload.status === 'string' ? ` ${n.payload.status}` : '';
  let text = `${n.event} (${n.priority}${status})`;
  if (other && other.event === n.event) {
    const mine = Object.keys(n.payload);
    const theirs = new Set(Object.keys(other.payload));
    const extra = mine.filter((k) => !theirs.has(k));
    if (extra.length) text += ` +${extra.join(',')}`;
  }
  return text;
}

/** A value as text with its keys in one order (a consumer reads a JSON object by name), ids and times made alike. */
function plain(value: unknown): string {
  const sorted = (v: unknown): unknown =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([k, inner]) => [k, sorted(inner)]),
        )
      : v;
  return JSON.stringify(sorted(value) ?? null)
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>')
    .replace(/[0-9a-f]{32}/g, '<project>')
    .replace(/127\.0\.0\.1:\d+/g, '<host>')
    .replace(/\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?/g, '<time>');
}

/** The keys whose values differ between two objects, with both values. */
function differences(glance: Record<string, unknown> | undefined, gaze: Record<string, unknown> | undefined): string[] {
  const keys = new Set([...Object.keys(glance ?? {}), ...Object.keys(gaze ?? {})]);
  return [...keys].filter((k) => plain(glance?.[k]) !== plain(gaze?.[k])).map((k) => `${k}: ${plain(glance?.[k])} / ${plain(gaze?.[k])}`);
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'gaze-notes-glance-'));
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const keystone = await startKeystone();
    stops.push(() => keystone.stop());
    // The web-download source: a server on loopback that both services are allowed to fetch from.
    const source = http.createServer((req, res) => {
      if (req.url?.includes('missing')) res.writeHead(404);
      res.end('web bytes!');
    });
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    stops.push(() => new Promise((resolve) => source.close(resolve)));
    const sourcePort = (source.address() as AddressInfo).port;
    const webSource = `http://127.0.0.1:${sourcePort}/image.raw`;
    const glancePort = await freePort();
    const glanceDir = path.join(work, 'glance');
    stops.push(() => runScript('stop-glance.sh', [glanceDir], 60_000));
    await runScript('start-glance.sh', [glanceDir, String(glancePort)], 600_000, {
      ...(MULTISTORE ? { GLANCE_BACKENDS: 'fast,cheap' } : {}),
      GLANCE_KEYSTONE: keystone.url,
      GLANCE_WORKERS: '1',
      GLANCE_NOTIFICATIONS: 'log',
      GLANCE_ALLOWED_HOSTS: '127.0.0.1',
      GLANCE_ALLOWED_PORTS: String(sourcePort),
    });
    const gaze = await startGazeProcess({
      ...keystoneAuthSections(keystone.url),
      DEFAULT: { enabled_import_methods: 'glance-direct,web-download,copy-image', ...(MULTISTORE ? { enabled_backends: 'fast:file, cheap:file' } : {}) },
      ...(MULTISTORE
        ? {
            glance_store: { default_backend: 'fast' },
            fast: { filesystem_store_datadir: '__DIR__/stores/fast' },
            cheap: { filesystem_store_datadir: '__DIR__/stores/cheap' },
          }
        : {}),
      oslo_messaging_notifications: { driver: 'log' },
      import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(sourcePort) },
    });
    stops.push(() => gaze.stop());

    const tokens: Tokens = {
      demo: await keystone.token('demo', 'demo-secret', 'demo'),
      alt: await keystone.token('alt', 'alt-secret', 'alt'),
      admin: await keystone.token('admin', 'admin-secret', 'admin'),
    };
    const projects = (await (await fetch(`${keystone.url}/v3/projects`, { headers: { 'x-auth-token': tokens.admin } })).json()) as {
      projects: Array<{ id: string; name: string }>;
    };
    const alt = projects.projects.find((p) => p.name === 'alt')!.id;

    const run = (url: string) => (MULTISTORE ? exerciseStores(url, tokens, webSource) : exercise(url, tokens, alt, webSource));
    const glanceState = await run(`http://127.0.0.1:${glancePort}`);
    const gazeState = await run(gaze.url);
    await new Promise((r) => setTimeout(r, 500));

    const glance = glanceNotes(path.join(glanceDir, 'glance-api.log'));
    const ours = gazeNotes(gaze.output());
    const rows = Math.max(glance.length, ours.length);
    const width = 64;
    console.log(`${'Glance'.padEnd(width)} Gaze`);
    for (let i = 0; i < rows; i++) {
      const left = glance[i] ? describe(glance[i]!, ours[i]) : '';
      const right = ours[i] ? describe(ours[i]!, glance[i]) : '';
      const mark = glance[i]?.event === ours[i]?.event ? ' ' : '≠';
      console.log(`${mark} ${left.padEnd(width)} ${right}`);
      if (glance[i] && ours[i] && glance[i]!.event === ours[i]!.event) {
        for (const line of differences(glance[i]!.payload, ours[i]!.payload)) console.log(`      ${line}`);
      }
    }

    // What the API showed of the images and their tasks at the same points.
    console.log('\nThe API at the same points (Glance / Gaze), where they differ:');
    for (const [label, glanceView] of glanceState) {
      const gazeView = gazeState.get(label);
      // A list of tasks is compared task by task, then the rest of the page.
      const glanceTasks = (glanceView as { tasks?: unknown }).tasks;
      const lines = Array.isArray(glanceTasks)
        ? [
            ...(glanceTasks as Record<string, unknown>[]).flatMap((task, n) =>
              differences(task, ((gazeView as { tasks?: Record<string, unknown>[] }).tasks ?? [])[n]),
            ),
            ...differences({ ...(glanceView as object), tasks: null }, { ...(gazeView as object), tasks: null }),
          ]
        : differences(glanceView as Record<string, unknown>, gazeView as Record<string, unknown>);
      console.log(`${lines.length ? '≠' : ' '} ${label}`);
      for (const line of lines) console.log(`      ${line}`);
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => console.error(err));
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
