// A node paused past its import lease (a frozen VM) while it writes an image's data, and woken after
// another node took the task over, reused its reserved location (the same url) and finished: the woken
// writer's cleanup leaves its successor's data and location alone. Two in-process nodes on one SQLite
// database and one file store directory (as two API nodes on shared storage).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { startFileServer } from '../helpers/file-server.ts';
import type { App } from '../../src/app.ts';
import type { StoreDriver } from '../../src/stores/driver.ts';

const shared = mkdtempSync(path.join(tmpdir(), 'gaze-stale-writer-'));
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(shared, { recursive: true, force: true });
});

test("a writer woken after its successor finished leaves the successor's data and location", { timeout: 120_000 }, async () => {
  const web = await startFileServer();
  cleanups.push(() => web.close());
  const data = randomBytes(2 * 1024 * 1024);
  web.routes.set('/image.raw', data);
  const sections = {
    database: { connection: `sqlite:///${shared}/gaze.db` },
    glance_store: { filesystem_store_datadir: path.join(shared, 'images') },
    import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
  };
  const nodes: Array<RunningGaze & { app: App }> = [];
  for (let i = 0; i < 2; i++) {
    const node = await startGazeInProcess(sections);
    cleanups.push(() => node.stop());
    nodes.push(node);
  }
  const [frozen, successor] = nodes as [RunningGaze & { app: App }, RunningGaze & { app: App }];

  // The first node freezes as it begins to put the data into the store: its store call waits, and its
  // lease renewals fail as a frozen process's would.
  const driver = frozen.app.deps.stores.get(frozen.app.deps.stores.defaultId)!.driver as StoreDriver;
  const tasks = frozen.app.deps.tasks;
  const claim = tasks.claim.bind(tasks);
  let wake!: () => void;
  const woken = new Promise<void>((r) => (wake = r));
  cleanups.push(() => wake());
  let frozenIn!: (method: string) => void;
  const froze = new Promise<string>((r) => (frozenIn = r));
  for (const method of ['adopt', 'write'] as const) {
    const original = driver[method]!.bind(driver) as (...args: unknown[]) => Promise<unknown>;
    (driver as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      tasks.claim = async () => {
        throw new Error('frozen');
      };
      frozenIn(method);
      await woken;
      return original(...args);
    };
  }
  const image = await client(frozen.url).createImage({ name: 'written by two nodes' });
  const started = await client(frozen.url).call('POST', `/v2/images/${image.id}/import`, {
    json: { method: { name: 'web-download', uri: web.url('/image.raw') } },
  });
  assert.equal(started.status, 202, started.text);
  await froze;

  // The lease (10 s) runs out; the second node takes the task over and finishes it.
  await new Promise((r) => setTimeout(r, 11_500));
  await successor.app.recoverImports();
  const api = client(successor.url);
  for (let i = 0; ; i++) {
    const task = (await api.get(`/v2/images/${image.id}/tasks`)).json.tasks[0];
    if (task?.status === 'success') break;
    assert.ok(i < 300, `the successor did not finish: ${JSON.stringify(task)}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // The first node wakes: its write ends, its lease is gone, and it cleans up what it reserved.
  tasks.claim = claim;
  wake();
  await new Promise((r) => setTimeout(r, 3000));
  const rows = await successor.app.db.kysely.selectFrom('image_locations').select('status').where('image_id', '=', image.id).execute();
  assert.deepEqual(
    rows.map((r) => r.status),
    ['active'],
  );
  const shown = (await api.get(`/v2/images/${image.id}`)).json;
  assert.equal(shown.status, 'active');
  const downloaded = await fetch(`${successor.url}/v2/images/${image.id}/file`);
  assert.equal(downloaded.status, 200);
  assert.deepEqual(Buffer.from(await downloaded.arrayBuffer()), data);
});
