import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { announcedPut, client, expectError, alice, bob, ADMIN, type Caller } from '../helpers/http.ts';
import { startFileServer } from '../helpers/file-server.ts';
import { testCorpus } from '../helpers/corpus.ts';
import type { QuotaService } from '../../src/quota/quotas.ts';
import { IMPORT_LOCK } from '../../src/domain/image.ts';
import { FAILED_IMPORT, IMPORTING_TO_STORES } from '../../src/domain/import-progress.ts';

const MiB = 1 << 20;
const running: RunningGaze[] = [];
after(async () => {
  for (const g of running) await g.stop();
});

async function start(sections: Record<string, Record<string, string>>) {
  const gaze = await startGazeInProcess(sections);
  running.push(gaze);
  return { gaze, api: client(gaze.url) };
}

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
const OVER_LIMIT = (project: string, detail: string) =>
  'The request returned a 413 Request Entity Too Large. This generally means that rate limiting or a quota threshold was breached.' +
  `\n\nThe response body:\nProject ${project} is over a limit for [${detail}]`;

test('image_count_total: the next create is refused with 413; usage shows count and limit', async () => {
  const { api } = await start({ project_limits: { image_count_total: '2' } });
  await api.createImage({}, alice);
  await api.createImage({}, alice);
  const third = await api.post('/v2/images', { disk_format: 'raw', container_format: 'bare' }, { as: alice, headers: { accept: 'application/json' } });
  expectError(third, 413, OVER_LIMIT('alice-project', 'Resource image_count_total is over limit of 2 due to current usage 2 and delta 1'));
  // Another project has its own count.
  await api.createImage({}, bob);
  const usage = await api.get('/v2/info/usage', { as: alice });
  assert.equal(usage.status, 200);
  assert.deepEqual(usage.json, {
    usage: {
      image_size_total: { limit: -1, usage: 0 },
      image_stage_total: { limit: -1, usage: 0 },
      image_count_total: { limit: 2, usage: 2 },
      image_count_uploading: { limit: -1, usage: 0 },
    },
  });
});

test('without unified limits /v2/info/usage is empty, as in Glance', async () => {
  const { api } = await start({});
  const usage = await api.get('/v2/info/usage', { as: alice });
  assert.deepEqual(usage.json, { usage: {} });
});

test('user_storage_quota: an announced size over the quota is refused before any byte is read; a chunked one is cut', async () => {
  const { gaze, api } = await start({ DEFAULT: { user_storage_quota: '1MB' } });
  const stored = path.join(gaze.dir, 'data', 'images');
  const first = await api.createImage({}, alice);
  assert.equal((await api.upload(first.id, Buffer.alloc(700 * 1024, 1), alice)).status, 204);

  const second = await api.createImage({}, alice);
  const refused = await announcedPut(`${gaze.url}/v2/images/${second.id}/file`, { declared: 2 * MiB, caller: alice });
  assert.equal(refused.status, 413, refused.body);
  assert.equal(
    JSON.parse(refused.body).message.replace(/<br \/>.*$/s, ''),
    `Image exceeds the storage quota: The size of the data ${2 * MiB} will exceed the limit. ${MiB - 700 * 1024} bytes remaining.`,
  );
  assert.equal((await api.get(`/v2/images/${second.id}`, { as: alice })).json.status, 'queued');

  // No Content-Length: the stream is cut as soon as it passes what remains.
  const body = new ReadableStream({
    start(c) {
      for (let i = 0; i < 8; i++) c.enqueue(new Uint8Array(256 * 1024));
      c.close();
    },
  });
  const chunked = await api.put(`/v2/images/${second.id}/file`, {
    body,
    as: alice,
    headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
  });
  assert.equal(chunked.status, 413, chunked.text);
  assert.equal((await api.get(`/v2/images/${second.id}`, { as: alice })).json.status, 'queued');
  assert.deepEqual(filesIn(stored), [first.id], 'nothing of the refused data stays in the store');

  // Quotas are per project: bob still has room.
  const bobs = await api.createImage({}, bob);
  assert.equal((await api.upload(bobs.id, Buffer.alloc(900 * 1024, 2), bob)).status, 204);
});

test('image_size_total: refused up front with the unified-limits 413; within the limit uploads pass', async () => {
  const { gaze, api } = await start({ project_limits: { image_size_total: '1' } });
  const a = await api.createImage({}, alice);
  assert.equal((await api.upload(a.id, Buffer.alloc(600 * 1024, 1), alice)).status, 204);
  const b = await api.createImage({}, alice);
  const refused = await announcedPut(`${gaze.url}/v2/images/${b.id}/file`, { declared: 600 * 1024, caller: alice });
  assert.equal(refused.status, 413, refused.body);
  // 600 KiB used and 600 KiB more: bytes decide, and the sentence adds up (0 MiB used, as the usage says, and 2 started)
  assert.match(JSON.parse(refused.body).message, /Resource image_size_total is over limit of 1 due to current usage 0 and delta 2\]/);
  assert.deepEqual(filesIn(path.join(gaze.dir, 'data', 'images')), [a.id]);
  const usage = await api.get('/v2/info/usage', { as: alice });
  assert.deepEqual(usage.json.usage.image_size_total, { limit: 1, usage: 0 }); // 600 KiB: 0 whole MiB, as Glance counts
});

test('image_stage_total and image_count_uploading guard staging; a refused stage leaves the image queued and staging empty', async () => {
  const { gaze, api } = await start({ project_limits: { image_stage_total: '1', image_count_uploading: '1' } });
  const staging = path.join(gaze.dir, 'data', 'staging');
  const big = await api.createImage({}, alice);
  const refused = await announcedPut(`${gaze.url}/v2/images/${big.id}/stage`, { declared: 2 * MiB, caller: alice });
  assert.equal(refused.status, 413, refused.body);
  assert.match(JSON.parse(refused.body).message, /Resource image_stage_total is over limit of 1 due to current usage 0 and delta 2/);
  assert.equal((await api.get(`/v2/images/${big.id}`, { as: alice })).json.status, 'queued');
  assert.deepEqual(filesIn(staging), []);

  // One image may be uploading at a time: a second stage is refused while the first waits for its import.
  const one = await api.createImage({}, alice);
  const staged = await api.put(`/v2/images/${one.id}/stage`, { body: Buffer.alloc(1024), as: alice, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(staged.status, 204, staged.text);
  const two = await api.createImage({}, alice);
  const second = await api.put(`/v2/images/${two.id}/stage`, {
    body: Buffer.alloc(1024),
    as: alice,
    headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
  });
  // Counted as Glance counts it, once the image is marked: the image itself in the usage, delta 0.
  expectError(second, 413, /Resource image_count_uploading is over limit of 1 due to current usage 2 and delta 0/);
  assert.equal((await api.get(`/v2/images/${two.id}`, { as: alice })).json.status, 'queued');
  assert.deepEqual(filesIn(staging), [one.id]);
});

test('imports that take data count against image_count_uploading as they start, one start at a time: those over the limit fail their task, as in Glance', async () => {
  const files = await startFileServer();
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  files.routes.set('/slow.img', (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(64 * 1024, 1));
    void released.then(() => res.end(Buffer.alloc(64 * 1024, 2)));
  });
  try {
    const { gaze, api } = await start({
      project_limits: { image_count_uploading: '2' },
      import_filtering_opts: { allowed_ports: String(files.port), allowed_hosts: '127.0.0.1' },
    });
    const images = await Promise.all(Array.from({ length: 6 }, () => api.createImage({}, alice)));
    const answers = await Promise.all(
      images.map((img) => api.post(`/v2/images/${img.id}/import`, { method: { name: 'web-download', uri: files.url('/slow.img') } }, { as: alice })),
    );
    // Asked for while under the limit: accepted, as Glance accepts them; the count is the tasks' to check.
    assert.deepEqual(
      answers.map((r) => r.status),
      images.map(() => 202),
    );
    // Every task either downloads (and waits for the rest of its source) or has failed.
    const task = async (id: string) => (await api.get(`/v2/images/${id}/tasks`, { as: alice })).json.tasks[0];
    for (let i = 0; ; i++) {
      const failed = (await Promise.all(images.map((img) => task(img.id)))).filter((t) => t?.status === 'failure').length;
      if (failed + files.requests.length >= images.length) break;
      assert.ok(i < 400, `tasks stuck: ${failed} failed, ${files.requests.length} downloading`);
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(files.requests.length, 2, 'two downloads at a time');
    release();
    const outcomes = await Promise.all(images.map((img) => taskOutcome(api, img.id)));
    assert.deepEqual(outcomes.map((t) => t.status).sort(), ['failure', 'failure', 'failure', 'failure', 'success', 'success']);
    for (const failed of outcomes.filter((t) => t.status === 'failure')) {
      assert.match(failed.message, /Resource image_count_uploading is over limit of 2 due to current usage 3 and delta 0/);
    }
    const shown = await Promise.all(images.map(async (img) => (await api.get(`/v2/images/${img.id}`, { as: alice })).json.status as string));
    assert.deepEqual(shown.sort(), ['active', 'active', 'queued', 'queued', 'queued', 'queued']);
    // The refused ones are as they were: no import lock left, no store listed as being imported to or failed.
    for (const img of images) {
      const now = await gaze.app.deps.images.get(img.id);
      if (now?.status !== 'queued') continue;
      assert.equal(now.properties[IMPORT_LOCK], undefined);
      assert.equal(now.properties[IMPORTING_TO_STORES] ?? '', '');
      assert.equal(now.properties[FAILED_IMPORT] ?? '', '');
    }
  } finally {
    release();
    await files.close();
  }
});

test('web-download: a remote size over the stage limit fails the task before anything is downloaded', async () => {
  const files = await startFileServer();
  files.routes.set('/big.img', Buffer.alloc(3 * MiB, 7));
  try {
    const { gaze, api } = await start({
      project_limits: { image_stage_total: '2' },
      import_filtering_opts: { allowed_ports: String(files.port), allowed_hosts: '127.0.0.1' },
    });
    const img = await api.createImage({}, alice);
    const started = await api.post(`/v2/images/${img.id}/import`, { method: { name: 'web-download', uri: files.url('/big.img') } }, { as: alice });
    assert.equal(started.status, 202, started.text);
    let task: any;
    for (let i = 0; i < 200; i++) {
      const tasks = await api.get(`/v2/images/${img.id}/tasks`, { as: alice });
      task = tasks.json.tasks[0];
      if (task?.status === 'failure' || task?.status === 'success') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(task.status, 'failure');
    assert.match(task.message, /Resource image_stage_total is over limit of 2 due to current usage 0 and delta 3/);
    assert.equal((await api.get(`/v2/images/${img.id}`, { as: alice })).json.status, 'queued');
    assert.deepEqual(filesIn(path.join(gaze.dir, 'data', 'staging')), []);
  } finally {
    await files.close();
  }
});

test('glance-download: a remote image that cannot fit is refused with 413 at POST /import, before any task runs', async () => {
  const { gaze: remote, api: r1 } = await start({});
  const src = await r1.createImage({ disk_format: 'raw', container_format: 'bare' }, alice);
  assert.equal((await r1.upload(src.id, Buffer.alloc(3 * MiB, 5), alice)).status, 204);
  const { gaze, api } = await start({
    DEFAULT: { enabled_import_methods: 'glance-direct,web-download,glance-download', user_storage_quota: '2MB' },
    glance_download_opts: { region_endpoints: `RegionOne:${remote.url}` },
    import_filtering_opts: { allowed_ports: String(remote.port) },
  });
  const img = await api.createImage({ disk_format: 'raw', container_format: 'bare' }, alice);
  const refused = await api.post(
    `/v2/images/${img.id}/import`,
    { method: { name: 'glance-download', glance_image_id: src.id, glance_region: 'RegionOne' } },
    { as: alice, headers: { accept: 'application/json' } },
  );
  expectError(refused, 413, `Image exceeds the storage quota: The size of the data ${3 * MiB} will exceed the limit. ${2 * MiB} bytes remaining.`);
  assert.deepEqual((await api.get(`/v2/images/${img.id}/tasks`, { as: alice })).json.tasks, []);
  const after = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
  assert.equal(after.status, 'queued');
  assert.equal(after.os_glance_import_task, undefined);
  assert.deepEqual(filesIn(path.join(gaze.dir, 'data', 'staging')), []);
});

test('uploads running side by side cannot together go over the quota', async () => {
  const { gaze, api } = await start({ DEFAULT: { user_storage_quota: '1MB' } });
  const images = [await api.createImage({}, alice), await api.createImage({}, alice)];
  // Both streams are under way before either finishes: each alone would fit.
  const paced = () =>
    new ReadableStream({
      async start(c) {
        c.enqueue(new Uint8Array(350 * 1024));
        await new Promise((r) => setTimeout(r, 300));
        c.enqueue(new Uint8Array(350 * 1024));
        c.close();
      },
    });
  const results = await Promise.all(
    images.map((img) =>
      api.put(`/v2/images/${img.id}/file`, {
        body: paced(),
        as: alice,
        headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
      }),
    ),
  );
  const statuses = results.map((r) => r.status).sort();
  assert.ok(!statuses.every((s) => s === 204), `both uploads passed: ${statuses}`);
  assert.ok(
    statuses.every((s) => s === 204 || s === 413),
    statuses.join(),
  );
  const stored = filesIn(path.join(gaze.dir, 'data', 'images')).length;
  assert.equal(stored, statuses.filter((s) => s === 204).length);
  for (const img of images) {
    const now = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
    assert.ok(now.status === 'active' || (now.status === 'queued' && now.size === null), JSON.stringify(now));
  }
});

/** Polls an image's one task until it ends; its status and message. */
async function taskOutcome(api: ReturnType<typeof client>, id: string, as: Caller = alice): Promise<{ status: string; message: string }> {
  for (let i = 0; i < 400; i++) {
    const task = (await api.get(`/v2/images/${id}/tasks`, { as })).json.tasks[0];
    if (task?.status === 'failure' || task?.status === 'success') return task;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the task of ${id} did not end`);
}

test('web-downloads running side by side cannot together stage more than image_stage_total', async () => {
  const files = await startFileServer();
  // Two sources of 1.5 MiB, sent without a length: the first MiB, then the rest once both downloads run.
  let release!: () => void;
  const bothRunning = new Promise<void>((r) => (release = r));
  const source = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(MiB, 1));
    void bothRunning.then(() => res.end(Buffer.alloc(MiB / 2, 2)));
  };
  files.routes.set('/one.img', source);
  files.routes.set('/two.img', source);
  let restore = () => {};
  try {
    const { gaze, api } = await start({
      project_limits: { image_stage_total: '2' },
      import_filtering_opts: { allowed_ports: String(files.port), allowed_hosts: '127.0.0.1' },
    });
    // Each download's size is held (and checked) once it has ended. Both are checked only once both
    // have ended: otherwise the first could finish its import, and leave staging, before the second's
    // check, and both would rightly pass, one after the other.
    const { quotas } = gaze.app.deps;
    const hold = quotas.hold;
    let stagedHolds = 0;
    let bothEnded!: () => void;
    const ended = new Promise<void>((r) => (bothEnded = r));
    const failSafe = setTimeout(bothEnded, 20_000);
    quotas.hold = async (...args: Parameters<QuotaService['hold']>) => {
      if (args[4].staged !== undefined) {
        if (++stagedHolds === 2) bothEnded();
        await ended;
      }
      return hold.apply(quotas, args);
    };
    restore = () => {
      clearTimeout(failSafe);
      quotas.hold = hold;
    };
    const images = [await api.createImage({}, alice), await api.createImage({}, alice)];
    for (const [i, img] of images.entries()) {
      const started = await api.post(
        `/v2/images/${img.id}/import`,
        { method: { name: 'web-download', uri: files.url(i ? '/two.img' : '/one.img') } },
        { as: alice },
      );
      assert.equal(started.status, 202, started.text);
    }
    for (let i = 0; files.requests.length < 2; i++) {
      assert.ok(i < 400, 'both downloads started');
      await new Promise((r) => setTimeout(r, 25));
    }
    release();
    const outcomes = await Promise.all(images.map((img) => taskOutcome(api, img.id)));
    assert.equal(stagedHolds, 2);
    assert.equal(outcomes.filter((t) => t.status === 'success').length, 1, `not exactly one download was kept: ${JSON.stringify(outcomes)}`);
    for (const failed of outcomes.filter((t) => t.status === 'failure')) assert.match(failed.message, /Resource image_stage_total is over limit of 2/);
    for (const img of images) {
      const now = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
      assert.ok(now.status === 'active' || now.status === 'queued', now.status);
    }
    assert.ok(filesIn(path.join(gaze.dir, 'data', 'staging')).length === 0, 'staging is empty afterwards');
  } finally {
    restore();
    await files.close();
  }
});

test('a web-download writing to several stores counts its staged data once against image_stage_total, not once per store', async () => {
  const files = await startFileServer();
  files.routes.set('/one.img', Buffer.alloc(1.5 * MiB, 1));
  let restore = () => {};
  try {
    const { gaze, api } = await start({
      DEFAULT: { enabled_backends: 'a:file, b:file' },
      glance_store: { default_backend: 'a' },
      a: { filesystem_store_datadir: '__DIR__/stores/a' },
      b: { filesystem_store_datadir: '__DIR__/stores/b' },
      os_glance_staging_store: { filesystem_store_datadir: '__DIR__/staging' },
      project_limits: { image_stage_total: '2', image_size_total: '10' },
      import_filtering_opts: { allowed_ports: String(files.port), allowed_hosts: '127.0.0.1' },
    });
    const img = await api.createImage({}, alice);
    const other = await api.createImage({}, alice);
    // Once the import holds its two stores' bytes, and before it writes them: 1.5 MiB staged, 3 MiB to store.
    const { quotas } = gaze.app.deps;
    const hold = quotas.hold;
    let during: { usage: any; stage: number } | null = null;
    quotas.hold = async (...args: Parameters<QuotaService['hold']>) => {
      const held = await hold.apply(quotas, args);
      if (args[1] === img.id && args[4].stored !== undefined && !during) {
        const usage = (await api.get('/v2/info/usage', { as: alice })).json.usage;
        const stage = await api.put(`/v2/images/${other.id}/stage`, {
          body: Buffer.alloc(MiB / 4, 2),
          as: alice,
          headers: { 'content-type': 'application/octet-stream' },
        });
        during = { usage, stage: stage.status };
      }
      return held;
    };
    restore = () => (quotas.hold = hold);
    const started = await api.post(
      `/v2/images/${img.id}/import`,
      { method: { name: 'web-download', uri: files.url('/one.img') }, stores: ['a', 'b'] },
      { as: alice },
    );
    assert.equal(started.status, 202, started.text);
    const outcome = await taskOutcome(api, img.id);
    assert.equal(outcome.status, 'success', outcome.message);
    assert.ok(during, 'the fan-out held its bytes');
    const seen = during as { usage: any; stage: number };
    assert.deepEqual(seen.usage.image_stage_total, { limit: 2, usage: 1 }, 'the staged 1.5 MiB, once');
    assert.deepEqual(seen.usage.image_size_total, { limit: 10, usage: 3 }, 'two stores of 1.5 MiB to write');
    assert.equal(seen.stage, 204, 'a quarter MiB more fits beside the 1.5 MiB staged');
    assert.equal((await api.get(`/v2/info/usage`, { as: alice })).json.usage.image_stage_total.usage, 0, 'the import left staging');
  } finally {
    restore();
    await files.close();
  }
});

test('copy-image runs side by side cannot together store more than image_size_total', async () => {
  const { api } = await start({
    DEFAULT: { enabled_backends: 'a:file, b:file' },
    glance_store: { default_backend: 'a' },
    a: { filesystem_store_datadir: '__DIR__/stores/a' },
    b: { filesystem_store_datadir: '__DIR__/stores/b' },
    os_glance_staging_store: { filesystem_store_datadir: '__DIR__/staging' },
    project_limits: { image_size_total: '24' },
  });
  // 16 MiB stored; one more copy of 8 MiB fits exactly, two do not.
  const images = [await api.createImage({}, alice), await api.createImage({}, alice)];
  for (const img of images) assert.equal((await api.upload(img.id, Buffer.alloc(8 * MiB, 3), alice)).status, 204);
  const answers = await Promise.all(images.map((img) => api.post(`/v2/images/${img.id}/import`, { method: { name: 'copy-image' }, stores: ['b'] })));
  for (const answer of answers) assert.equal(answer.status, 202, answer.text);
  const outcomes = await Promise.all(images.map((img) => taskOutcome(api, img.id, ADMIN)));
  assert.ok(outcomes.filter((t) => t.status === 'success').length <= 1, `both copies were made: ${JSON.stringify(outcomes)}`);
  for (const failed of outcomes.filter((t) => t.status === 'failure')) assert.match(failed.message, /Resource image_size_total is over limit of 24/);
  const usage = (await api.get('/v2/info/usage', { as: alice })).json.usage.image_size_total;
  assert.ok(usage.usage <= 24, JSON.stringify(usage));
});

test('an import refused by a quota after image_conversion puts the claimed formats back', async () => {
  const corpus = await testCorpus();
  const { gaze, api } = await start({
    project_limits: { image_size_total: '20' },
    image_import_opts: { image_import_plugins: 'image_conversion' },
  });
  const img = await api.createImage({ disk_format: 'qcow2', container_format: 'bare' }, alice);
  const staged = await api.put(`/v2/images/${img.id}/stage`, {
    body: readFileSync(path.join(corpus, 'qcow2-v3.qcow2')),
    as: alice,
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(staged.status, 204, staged.text);
  assert.equal((await api.post(`/v2/images/${img.id}/import`, { method: { name: 'glance-direct' } }, { as: alice })).status, 202);
  let task: any;
  for (let i = 0; i < 400 && !['success', 'failure'].includes(task?.status); i++) {
    await new Promise((r) => setTimeout(r, 50));
    task = (await api.get(`/v2/images/${img.id}/tasks`, { as: alice })).json.tasks[0];
  }
  assert.equal(task.status, 'failure');
  // The qcow2 became a 32 MiB raw image, over the 20 MiB limit.
  assert.match(task.message, /Resource image_size_total is over limit of 20 due to current usage 0 and delta 32/);
  assert.equal(task.input.previous, undefined, 'kept for the revert, not shown');
  const after = (await api.get(`/v2/images/${img.id}`, { as: alice })).json;
  assert.equal(after.status, 'queued');
  assert.equal(after.disk_format, 'qcow2');
  assert.equal(after.container_format, 'bare');
  assert.deepEqual(filesIn(path.join(gaze.dir, 'data', 'staging')), []);
});
