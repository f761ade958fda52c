import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { forEachEngine } from '../helpers/databases.ts';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { openDatabase, type Db } from '../../src/db/connection.ts';

// A delete that lands while a glance-direct import starts (the race an outside test found to kill the
// process on PostgreSQL and to leave data behind): a real `gaze serve`, rounds of stage → import →
// delete 0–50 ms later, several rounds at a time. The process must survive every round, and after
// all of them (and after a restart) no store holds data of a deleted image and no location row is left.

const ROUNDS = Number(process.env.GAZE_CHAOS_ROUNDS ?? 60);
const PARALLEL = 4;
const data = randomBytes(256 * 1024);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function round(api: ReturnType<typeof client>): Promise<string> {
  const image = await api.createImage({ name: 'race' });
  const staged = await api.put(`/v2/images/${image.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(staged.status, 204, staged.text);
  const imported = api.call('POST', `/v2/images/${image.id}/import`, { json: { method: { name: 'glance-direct' } } });
  await sleep(Math.floor(Math.random() * 50));
  const deleted = await api.del(`/v2/images/${image.id}`);
  assert.equal(deleted.status, 204, deleted.text);
  // The import answers 202 (it started) or 404/409 (the delete came first); never a 5xx.
  const status = (await imported).status;
  assert.ok([202, 404, 409].includes(status), `import answered ${status}`);
  return image.id;
}

async function leftovers(db: Db, dir: string, ids: string[]) {
  // A directory that was never written to (every delete came first) does not exist.
  const list = (sub: string) => (existsSync(path.join(dir, 'data', sub)) ? readdirSync(path.join(dir, 'data', sub)) : []);
  const storeFiles = list('images').filter((name) => ids.some((id) => name.includes(id)));
  const stagingFiles = list('staging');
  const locations = await db.kysely.selectFrom('image_locations').select(['image_id', 'status']).where('image_id', 'in', ids).execute();
  return { storeFiles, stagingFiles, locations };
}

async function settledTasks(db: Db, ids: string[]) {
  for (let i = 0; i < 300; i++) {
    const open = await db.kysely.selectFrom('tasks').select('id').where('image_id', 'in', ids).where('status', 'in', ['pending', 'processing']).execute();
    if (open.length === 0) return db.kysely.selectFrom('tasks').select(['status', 'message']).where('image_id', 'in', ids).execute();
    await sleep(100);
  }
  throw new Error('import tasks did not finish');
}

forEachEngine((engine) => {
  let gaze: GazeProcess | null = null;
  let db: Db | null = null;
  let restartedDir = '';
  after(async () => {
    await gaze?.stop();
    await db?.close();
    // The restarted process was given the first one's directory, so stopping it leaves the directory.
    if (restartedDir) rmSync(restartedDir, { recursive: true, force: true });
  });

  test(`${ROUNDS} rounds of stage, import, delete: the process survives and nothing is left, even after a restart`, async () => {
    const connection = await engine.url();
    gaze = await startGazeProcess({ database: { connection } });
    db = openDatabase(connection);
    const api = client(gaze.url);
    const ids: string[] = [];
    for (let done = 0; done < ROUNDS; done += PARALLEL) {
      ids.push(...(await Promise.all(Array.from({ length: Math.min(PARALLEL, ROUNDS - done) }, () => round(api)))));
      assert.equal(gaze.child.exitCode, null, 'the service process is still running');
    }
    const tasks = await settledTasks(db, ids);
    for (const task of tasks) {
      if (task.status === 'failure') assert.equal(task.message, 'Image has been deleted, aborting import.');
    }
    for (const id of ids) assert.equal((await api.get(`/v2/images/${id}`)).status, 404);
    // The deletes removed the data; a store delete that failed would leave a pending_delete row for the sweep.
    assert.deepEqual(await leftovers(db, gaze.dir, ids), { storeFiles: [], stagingFiles: [], locations: [] });

    const dir = gaze.dir;
    restartedDir = dir;
    await gaze.kill('SIGKILL');
    gaze = await startGazeProcess({ database: { connection } }, { dir, port: gaze.port });
    await sleep(500);
    assert.deepEqual(await leftovers(db, dir, ids), { storeFiles: [], stagingFiles: [], locations: [] });
    assert.equal(gaze.child.exitCode, null);
  });
});
