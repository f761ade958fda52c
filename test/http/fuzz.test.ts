import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startGazeInProcess } from '../helpers/gaze.ts';
import type { RawSections } from '../../src/config/index.ts';
import { client, ADMIN, alice, bob, carol, rawRequest, type Caller, type Reply } from '../helpers/http.ts';
import { requestGenerator, routeMethods, STANDARD_METHODS } from '../helpers/fuzz-requests.ts';
import { forEachEngine } from '../helpers/databases.ts';

// Requests built at random from the API's own vocabulary (its routes, query parameters, body fields,
// patch paths and headers) with hostile values, against one Gaze: every answer must be a 4xx in
// Glance's error shape or a success, never a 5xx, a hang or a crash, and the service must stay whole.
// The generator is seeded: a failure names its seed and request, and GAZE_FUZZ_SEED=N replays it (in the
// same order where one request runs at a time; GAZE_FUZZ_LANES=1 makes every run do so).
//   GAZE_FUZZ_REQUESTS=20000 GAZE_FUZZ_SEED=7 GAZE_FUZZ_LANES=8 node scripts/run-tests.mjs test/http/fuzz.test.ts

const REQUESTS = Number(process.env.GAZE_FUZZ_REQUESTS ?? 2500);
// A fixed seed by default, so that a run in CI is one that can be replayed; set one to explore further.
const SEED = Number(process.env.GAZE_FUZZ_SEED ?? 20261205);
const REQUEST_TIMEOUT_MS = 15_000;

/** The headers that say who calls a Gaze without Keystone. */
function identityHeaders(caller: Caller): Record<string, string> {
  const h: Record<string, string> = {};
  if (caller.project) h['x-project-id'] = caller.project;
  if (caller.roles) h['x-roles'] = caller.roles;
  if (caller.user) h['x-user-id'] = caller.user;
  return h;
}

/** Glance's JSON error body: {"message", "code": "<status> <reason>", "title"}. */
function assertErrorShape(reply: Reply, what: string): void {
  const body = reply.json as Record<string, unknown> | null;
  assert.ok(body && typeof body === 'object', `${what}: a JSON error body, got ${reply.text.slice(0, 200)}`);
  assert.equal(typeof body.message, 'string', `${what}: message`);
  assert.match(String(body.code), new RegExp(`^${reply.status} `), `${what}: code`);
  assert.equal(typeof body.title, 'string', `${what}: title`);
}

/** Runs REQUESTS random requests against a Gaze configured with `sections`. */
async function fuzz(sections: RawSections, stores: string[], lanes = 1): Promise<void> {
  const errorLines: string[] = [];
  const log = pino(
    { level: 'error' },
    {
      write: (line: string) => {
        errorLines.push(line);
      },
    },
  );
  const gaze = await startGazeInProcess({ ...sections, DEFAULT: { image_size_cap: '1000000', ...sections.DEFAULT } }, { log });
  try {
    await fuzzOne(gaze.url, stores, errorLines, Number(process.env.GAZE_FUZZ_LANES ?? lanes));
  } finally {
    await gaze.stop();
  }
}

async function fuzzOne(url: string, stores: string[], errorLines: string[], lanes: number): Promise<void> {
  const api = client(url);
  const image = await api.createImage({ name: 'fuzz-active' });
  assert.equal((await api.upload(image.id, 'fuzz data')).status, 204);
  const queued = await api.createImage({ name: 'fuzz-queued', visibility: 'shared' });
  const aliceImage = await api.createImage({ name: 'fuzz-alice' }, alice);
  assert.equal((await api.post(`/v2/images/${queued.id}/members`, { member: 'alice-project' })).status, 200);
  assert.equal((await api.post('/v2/metadefs/namespaces', { namespace: 'Fuzz::NS', properties: { p: { type: 'string', title: 'p' } } })).status, 201);
  const ids: Record<string, string[]> = {
    id: [image.id, queued.id, aliceImage.id],
    image: [image.id, queued.id, aliceImage.id],
    task: ['00000000-0000-4000-8000-000000000000'],
    project: ['alice-project', 'bob-project', 'admin'],
    store: stores,
    ns: ['Fuzz::NS', 'OS::Compute::Hypervisor'],
    name: ['p', 'o', 't', 'OS::Glance::Image'],
    tag: ['t', 'x'.repeat(300)],
  };
  const allows = await routeMethods(ids, async (path) => (await api.call('OPTIONS', path)).headers.get('allow'));
  const gen = requestGenerator(SEED, ids, allows, [ADMIN, ADMIN, alice, bob, carol].map(identityHeaders));
  const statuses = new Map<number, number>();
  let sent = 0;
  const lane = async () => {
    while (sent < REQUESTS) {
      const i = sent++;
      const r = gen.request();
      const what = `request ${i} of seed ${SEED}: ${r.method} ${r.path} ${JSON.stringify(r.headers)} ${typeof r.body === 'string' ? r.body.slice(0, 300) : r.body ? '<bytes>' : ''}`;
      const reply = await Promise.race([
        rawRequest(url, r.method, r.path, r.body === undefined ? r.headers : { ...r.headers, 'content-length': Buffer.byteLength(r.body) }, r.body),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS).unref()),
      ]);
      statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
      if (reply.status === 501) assert.ok(!STANDARD_METHODS.has(r.method), `${what}: 501 for a standard method`);
      else assert.ok(reply.status < 500, `${what}: answered ${reply.status} ${reply.text.slice(0, 500)}`);
      if (reply.status >= 400 && r.method !== 'HEAD') assertErrorShape(reply, what);
      // Newly made images and tasks join the pool, so later requests reach them too.
      const made = reply.json as { id?: unknown } | null;
      if (reply.status === 201 && typeof made?.id === 'string' && /^[0-9a-f-]{36}$/.test(made.id))
        (r.path.startsWith('/v2/tasks') ? ids.task! : ids.image!).push(made.id);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  if (process.env.GAZE_FUZZ_VERBOSE) console.log(JSON.stringify(Object.fromEntries(statuses)));
  assert.deepEqual(errorLines, [], 'nothing was logged at error level');
  // The service is whole: it answers, and every image it lists is in a status of the API.
  const list = await api.get('/v2/images?limit=1000');
  assert.equal(list.status, 200);
  for (const img of (list.json as { images: Array<{ status: string }> }).images) {
    assert.ok(['queued', 'saving', 'uploading', 'importing', 'active', 'deactivated', 'killed', 'pending_delete'].includes(img.status), img.status);
  }
  // At least some requests got past validation: the fuzz reaches the handlers, not only the parsers.
  assert.ok(
    [...statuses.keys()].some((s) => s < 300),
    `successes among ${JSON.stringify(Object.fromEntries(statuses))}`,
  );
}

test(`random hostile requests, default configuration: a 4xx in Glance's shape or a success, never a 5xx or a hang (seed ${SEED})`, async () => {
  await fuzz({}, ['file1', 'x']);
});

// Four requests at a time race on the database: this configuration runs on every engine.
forEachEngine((engine) => {
  test(`random hostile requests, four at a time, with several stores, locations shown, cache, plugins and a storage quota (seed ${SEED})`, async () => {
    await fuzz(
      {
        DEFAULT: {
          enabled_backends: 'fast:file, cheap:file, archive:file',
          show_multiple_locations: 'True',
          show_image_direct_url: 'True',
          image_location_quota: '3',
          image_cache_dir: '__DIR__/cache',
          user_storage_quota: '2MB',
          enabled_import_methods: 'glance-direct,web-download,copy-image,glance-download',
        },
        database: { connection: await engine.url() },
        glance_store: { default_backend: 'fast' },
        fast: { filesystem_store_datadir: '__DIR__/stores/fast' },
        cheap: { filesystem_store_datadir: '__DIR__/stores/cheap' },
        archive: { filesystem_store_datadir: '__DIR__/stores/archive', read_only: 'true' },
        image_import_opts: { image_import_plugins: 'image_decompression,inject_image_metadata' },
        inject_metadata_properties: { inject: 'fuzz_injected:yes' },
      },
      ['fast', 'cheap', 'archive', 'x'],
      4,
    );
  });
});
