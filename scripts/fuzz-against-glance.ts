// The same random requests to a real Glance (Debian's glance-api) and to Gaze, in turn, both behind one
// Keystone with the same tokens and the same fixtures; prints where their status codes differ, grouped by
// method, route and the pair of codes, with one example each. A tool for finding where Gaze is not yet
// a drop-in, not a test: some differences are Glance's own faults (its 500s) or newer API versions.
//   [GAZE_FUZZ_WORDS=1] [GAZE_FUZZ_BODIES=1] [GAZE_FUZZ_LEGACY=1] node --import tsx scripts/fuzz-against-glance.ts [REQUESTS] [SEED]

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess } from '../test/helpers/gaze.ts';
import { rawRequest, type Reply } from '../test/helpers/http.ts';
import { keystoneAuthSections, freePort, startKeystone } from '../test/helpers/keystone.ts';
import { runScript } from '../test/helpers/scripts.ts';
import { requestGenerator, routeMethods } from '../test/helpers/fuzz-requests.ts';

const REQUESTS = Number(process.argv[2] ?? 3000);
const SEED = Number(process.argv[3] ?? 1);
/** GAZE_FUZZ_WORDS=1: also list the errors both answer with one status but word differently. */
const SAME_STATUS_WORDS = process.env.GAZE_FUZZ_WORDS === '1';
/** GAZE_FUZZ_BODIES=1: also list the successes whose bodies differ (ids, times and addresses put back as references). */
const SAME_STATUS_BODIES = process.env.GAZE_FUZZ_BODIES === '1';

interface Target {
  name: 'Glance' | 'Gaze';
  url: string;
  /** Placeholder → this service's id (images, tasks and projects are named alike in both). */
  refs: Map<string, string>;
}

/** Ids are written as `fuzzref-KIND-N-` in requests (encodeURIComponent keeps them whole) and replaced per service. */
const ref = (kind: string, n: number) => `fuzzref-${kind}-${n}-`;
const resolve = (t: Target, text: string) => text.replace(/fuzzref-\w+-\d+-/g, (r) => t.refs.get(r) ?? r);

/** A success's body with this service's ids, times and address written alike for both. */
function comparableBody(t: Target, text: string): string {
  for (const [placeholder, id] of t.refs) text = text.replaceAll(id, placeholder);
  return text
    .replaceAll(t.url, 'BASE')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?/g, 'TIME')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'UUID');
}

/** Where two texts first part, with some of each around it. */
function firstDifference(a: string, b: string): string {
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  const from = Math.max(0, at - 60);
  return `at ${at}: Glance …${a.slice(from, at + 100)}… | Gaze …${b.slice(from, at + 100)}…`;
}

async function call(t: Target, method: string, urlPath: string, headers: Record<string, string>, body?: string | Buffer): Promise<Reply> {
  const resolvedBody = typeof body === 'string' ? resolve(t, body) : body;
  const h = resolvedBody === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(resolvedBody)) };
  return rawRequest(t.url, method, resolve(t, urlPath), h, resolvedBody);
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'gaze-fuzz-glance-'));
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const keystone = await startKeystone();
    stops.push(() => keystone.stop());
    const glancePort = await freePort();
    const glanceDir = path.join(work, 'glance');
    stops.push(() => runScript('stop-glance.sh', [glanceDir], 60_000));
    await runScript('start-glance.sh', [glanceDir, String(glancePort)], 600_000, { GLANCE_KEYSTONE: keystone.url, GLANCE_WORKERS: '1' });
    const gaze = await startGazeProcess({
      ...keystoneAuthSections(keystone.url),
      DEFAULT: { enabled_import_methods: 'glance-direct,web-download,copy-image', image_cache_dir: '__DIR__/cache' },
      glance_store: { stores: 'file,http', default_store: 'file' },
      // Zed's own default is the deprecated rules: GAZE_FUZZ_LEGACY=1 gives Gaze the same.
      ...(process.env.GAZE_FUZZ_LEGACY === '1' ? { oslo_policy: { enforce_new_defaults: 'False' } } : {}),
    });
    stops.push(() => gaze.stop());

    const tokens = {
      admin: await keystone.token('admin', 'admin-secret', 'admin'),
      demo: await keystone.token('demo', 'demo-secret', 'demo'),
      alt: await keystone.token('alt', 'alt-secret', 'alt'),
      reader: await keystone.token('reader', 'reader-secret', 'demo'),
    };
    const projects = (await (await fetch(`${keystone.url}/v3/projects`, { headers: { 'x-auth-token': tokens.admin } })).json()) as {
      projects: Array<{ id: string; name: string }>;
    };
    const projectId = (name: string) => projects.projects.find((p) => p.name === name)!.id;

    const targets: Target[] = [
      { name: 'Glance', url: `http://127.0.0.1:${glancePort}`, refs: new Map() },
      { name: 'Gaze', url: gaze.url, refs: new Map() },
    ];
    const json = { accept: 'application/json', 'content-type': 'application/json' };
    // The same fixtures in both: an active image, a shared queued one with a member, one of demo's, a namespace.
    for (const t of targets) {
      const create = async (token: string, body: Record<string, unknown>) => {
        const r = await call(
          t,
          'POST',
          '/v2/images',
          { ...json, 'x-auth-token': token },
          JSON.stringify({ disk_format: 'raw', container_format: 'bare', ...body }),
        );
        if (r.status !== 201) throw new Error(`${t.name}: create ${r.status} ${r.text}`);
        return (r.json as { id: string }).id;
      };
      const active = await create(tokens.admin, { name: 'fuzz-active' });
      const up = await call(t, 'PUT', `/v2/images/${active}/file`, { 'x-auth-token': tokens.admin, 'content-type': 'application/octet-stream' }, 'fuzz data');
      if (up.status !== 204) throw new Error(`${t.name}: upload ${up.status}`);
      const queued = await create(tokens.admin, { name: 'fuzz-queued', visibility: 'shared' });
      const demoImage = await create(tokens.demo, { name: 'fuzz-demo' });
      t.refs.set(ref('image', 0), active).set(ref('image', 1), queued).set(ref('image', 2), demoImage);
      t.refs.set(ref('project', 0), projectId('demo')).set(ref('project', 1), projectId('alt')).set(ref('project', 2), projectId('admin'));
      await call(t, 'POST', `/v2/images/${queued}/members`, { ...json, 'x-auth-token': tokens.admin }, JSON.stringify({ member: projectId('demo') }));
      const ns = await call(
        t,
        'POST',
        '/v2/metadefs/namespaces',
        { ...json, 'x-auth-token': tokens.admin },
        JSON.stringify({ namespace: 'Fuzz::NS', properties: { p: { type: 'string', title: 'p' } } }),
      );
      if (ns.status !== 201) throw new Error(`${t.name}: namespace ${ns.status} ${ns.text}`);
    }
    let images = 3;
    let tasks = 0;
    const ids: Record<string, string[]> = {
      id: [ref('image', 0), ref('image', 1), ref('image', 2)],
      image: [ref('image', 0), ref('image', 1), ref('image', 2)],
      task: ['00000000-0000-4000-8000-000000000000'],
      project: [ref('project', 0), ref('project', 1), ref('project', 2)],
      store: ['file', 'http', 'x'],
      ns: ['Fuzz::NS', 'OS::Compute::Hypervisor'],
      name: ['p', 'o', 't', 'OS::Glance::Image'],
      tag: ['t', 'x'.repeat(300)],
    };
    const allows = await routeMethods(ids, async (p) => (await call(targets[1]!, 'OPTIONS', p, { 'x-auth-token': tokens.admin })).headers.get('allow'));
    const callers = [tokens.admin, tokens.admin, tokens.demo, tokens.alt, tokens.reader].map((token) => ({ 'x-auth-token': token }));
    const gen = requestGenerator(SEED, ids, allows, callers);

    const groups = new Map<string, { count: number; example: string }>();
    const bodyDifferences = new Map<string, string>();
    let same = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const r = gen.request();
      const replies: Reply[] = [];
      for (const t of targets) replies.push(await call(t, r.method, r.path, r.headers, r.body));
      const [glance, ours] = replies as [Reply, Reply];
      const made = [glance, ours].map((reply) => (reply.json as { id?: unknown } | null)?.id);
      if (glance.status === 201 && ours.status === 201 && typeof made[0] === 'string' && typeof made[1] === 'string') {
        const kind = r.path.startsWith('/v2/tasks') ? 'task' : 'image';
        const n = kind === 'task' ? tasks++ : images++;
        targets[0]!.refs.set(ref(kind, n), made[0]);
        targets[1]!.refs.set(ref(kind, n), made[1]);
        ids[kind]!.push(ref(kind, n));
      }
      const route = r.path.split('?')[0]!.replace(/fuzzref-(\w+)-\d+-/g, '{$1}');
      let key: string;
      if (glance.status === ours.status) {
        // The same error with other words: the messages, with each service's ids put back as references.
        const words = (t: Target, reply: Reply) => {
          let text = String((reply.json as { message?: unknown } | null)?.message ?? '');
          for (const [placeholder, id] of t.refs) text = text.replaceAll(id, placeholder);
          return text;
        };
        same++;
        if (glance.status < 400) {
          if (!SAME_STATUS_BODIES) continue;
          const [a, b] = [comparableBody(targets[0]!, glance.text), comparableBody(targets[1]!, ours.text)];
          if (a === b) continue;
          key = `${r.method} ${route.length > 90 ? `${route.slice(0, 90)}…` : route}: both ${glance.status}, other body`;
          bodyDifferences.set(key, bodyDifferences.get(key) ?? firstDifference(a, b));
        } else {
          if (!SAME_STATUS_WORDS || words(targets[0]!, glance) === words(targets[1]!, ours)) continue;
          key = `${r.method} ${route.length > 90 ? `${route.slice(0, 90)}…` : route}: both ${glance.status}, other words`;
        }
      } else {
        key = `${r.method} ${route.length > 90 ? `${route.slice(0, 90)}…` : route}: Glance ${glance.status}, Gaze ${ours.status}`;
      }
      const group = groups.get(key) ?? { count: 0, example: '' };
      group.count++;
      if (!group.example) {
        const body = typeof r.body === 'string' ? r.body.slice(0, 240) : r.body ? '<bytes>' : '';
        const caller = callers.findIndex((c) => c['x-auth-token'] === r.headers['x-auth-token']);
        const headers = Object.entries(r.headers)
          .filter(([k]) => k !== 'x-auth-token' && k !== 'accept')
          .map(([k, v]) => `${k}: ${v.slice(0, 60)}`)
          .join('; ');
        group.example =
          `request ${i}: ${r.method} ${r.path.slice(0, 200)} [caller ${['admin', 'admin', 'demo', 'alt', 'reader'][caller] ?? '?'}; ${headers}] ${body}\n` +
          `      Glance: ${glance.text.replace(/\s+/g, ' ').slice(0, 240)}\n` +
          `      Gaze:   ${ours.text.replace(/\s+/g, ' ').slice(0, 240)}` +
          (bodyDifferences.has(key) ? `\n      ${bodyDifferences.get(key)!.replace(/\s+/g, ' ')}` : '');
      }
      groups.set(key, group);
    }
    console.log(`${REQUESTS} requests (seed ${SEED}): the same status ${same} times, different ${REQUESTS - same} times; ${groups.size} groups\n`);
    for (const [key, g] of [...groups].sort((a, b) => b[1].count - a[1].count)) console.log(`${String(g.count).padStart(5)}  ${key}\n      ${g.example}\n`);
    const glanceLog = readFileSync(path.join(glanceDir, 'glance-api.log'), 'utf8');
    console.log(`Glance logged ${(glanceLog.match(/ ERROR /g) ?? []).length} ERROR lines`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => console.error(err));
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
