// kill -9 of a `gaze serve` process right after a delayed delete (delayed_delete = True): the restarted
// service, and its scrubber's first pass at start, keep the image pending_delete with its data until
// scrub_time has passed, and the operator's `gaze scrub --restore` still brings it back whole. And
// `gaze scrub` run once, as an operator's cron runs glance-scrubber.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startGazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import Database from 'better-sqlite3';

const run = promisify(execFile);
const gazeBin = fileURLToPath(new URL('../../bin/gaze.js', import.meta.url));
const sections = { DEFAULT: { delayed_delete: 'True', scrub_time: '3600' } };
/** Two hours ago, as the service writes times in the database: past scrub_time (an hour) and the minute of grace. */
const twoHoursAgo = () => new Date(Date.now() - 7_200_000).toISOString().replace('T', ' ').replace('Z', '000');

/** Waits until every process holds `file` open (Linux's /proc), then a moment for each to reach its first write. */
async function untilOpenedBy(pids: number[], file: string): Promise<void> {
  const target = realpathSync(file);
  const holds = (pid: number) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === target;
        } catch {
          return false;
        }
      });
    } catch {
      return true; // ended already: nothing to wait for (its outcome is checked by the caller)
    }
  };
  for (const deadline = Date.now() + 30_000; !pids.every(holds);) {
    assert.ok(Date.now() < deadline, 'both scrub runs open the database within 30 s');
    await setTimeout(20);
  }
  await setTimeout(500);
}

test('kill -9 after a delayed delete: after the restart the data is kept, hidden, and restorable', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-delayed-crash-'));
  try {
    const first = await startGazeProcess(sections, { dir });
    const api = client(first.url);
    const image = await api.createImage({ name: 'deleted, then a crash' });
    const data = randomBytes(1 << 20);
    assert.equal((await api.upload(image.id, data)).status, 204);
    assert.equal((await api.del(`/v2/images/${image.id}`)).status, 204);
    await first.kill('SIGKILL');

    const second = await startGazeProcess(sections, { dir, port: first.port });
    try {
      const after = client(second.url);
      assert.equal((await after.get(`/v2/images/${image.id}`)).status, 404);
      // The scrubber ran at start: the data is not yet due, and stays.
      assert.ok(existsSync(path.join(dir, 'data', 'images', image.id)));
      const { stdout } = await run(process.execPath, [gazeBin, 'scrub', '--restore', image.id, '--config', path.join(dir, 'gaze.conf')]);
      assert.match(stdout, /is active again/);
      assert.equal((await after.get(`/v2/images/${image.id}`)).json.status, 'active');
      const download = await fetch(`${second.url}/v2/images/${image.id}/file`);
      assert.ok(Buffer.from(await download.arrayBuffer()).equals(data));
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'gaze scrub, as glance-scrubber run once (from cron): a delayed delete that is due loses its data, one not yet due keeps it',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-scrub-once-'));
    const file = (id: string) => path.join(dir, 'data', 'images', id);
    const scrub = (...args: string[]) => run(process.execPath, [gazeBin, 'scrub', ...args, '--config', path.join(dir, 'gaze.conf')]);
    try {
      const gaze = await startGazeProcess(sections, { dir });
      const api = client(gaze.url);
      const [due, kept] = [await api.createImage({ name: 'due' }), await api.createImage({ name: 'not yet due' })];
      for (const image of [due, kept]) {
        assert.equal((await api.upload(image.id, randomBytes(1000))).status, 204);
        assert.equal((await api.del(`/v2/images/${image.id}`)).status, 204);
      }
      await gaze.stop();
      // As if `due` had been deleted two hours ago: past scrub_time (an hour).
      const db = new Database(path.join(dir, 'data', 'gaze.db'));
      assert.equal(db.prepare('UPDATE images SET deleted_at = ? WHERE id = ?').run(twoHoursAgo(), due.id).changes, 1);
      db.close();

      const { stdout } = await scrub();
      assert.match(stdout, /^gaze: 1 deleted images ended, 1 locations' data removed, 0 kept for a later pass$/m);
      assert.ok(!existsSync(file(due.id)), 'the due image has no data left');
      assert.ok(existsSync(file(kept.id)), 'the other keeps its data');
      await assert.rejects(scrub('--restore', due.id), (err: { stderr: string }) => /cannot restore the image from deleted to active/.test(err.stderr));
      assert.match((await scrub('--restore', kept.id)).stdout, /is active again/);
      assert.match((await scrub()).stdout, /^gaze: 0 deleted images ended, 0 locations' data removed, 0 kept for a later pass$/m);
      // A scrub_time the service refuses, `gaze scrub` refuses too.
      const negative = path.join(dir, 'negative.conf');
      writeFileSync(negative, '[DEFAULT]\nscrub_time = -1\n');
      const refused = run(process.execPath, [gazeBin, 'scrub', '--config', path.join(dir, 'gaze.conf'), '--config', negative]);
      await assert.rejects(refused, (err: { stderr: string }) => /scrub_time/.test(err.stderr) && /must be 0 or more/.test(err.stderr));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'two gaze scrub runs at once (overlapping cron runs, or cron on two hosts) on SQLite: each image is ended and its data removed once',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-scrub-twice-'));
    const file = (id: string) => path.join(dir, 'data', 'images', id);
    const scrub = () => run(process.execPath, [gazeBin, 'scrub', '--config', path.join(dir, 'gaze.conf')]);
    try {
      const gaze = await startGazeProcess(sections, { dir });
      const api = client(gaze.url);
      const ids: string[] = [];
      for (let i = 0; i < 16; i++) {
        const image = await api.createImage({ name: `due-${i}` });
        assert.equal((await api.upload(image.id, randomBytes(5000 + i))).status, 204);
        assert.equal((await api.del(`/v2/images/${image.id}`)).status, 204);
        ids.push(image.id);
      }
      await gaze.stop();
      const db = new Database(path.join(dir, 'data', 'gaze.db'));
      const longAgo = twoHoursAgo();
      assert.equal(db.prepare('UPDATE images SET deleted_at = ? WHERE status = ?').run(longAgo, 'pending_delete').changes, ids.length);
      // Half of the data queued for removal long ago (a store that was down then): both runs list those
      // locations, past gaze scrub's minute of grace, and race for each.
      const half = ids.slice(0, 8);
      const queued = db
        .prepare(`UPDATE image_locations SET status = 'pending_delete', updated_at = ? WHERE image_id IN (${half.map(() => '?').join(',')})`)
        .run(longAgo, ...half);
      assert.equal(queued.changes, half.length);
      // And many more of them (copies that failed long ago), so that the two runs' passes overlap.
      const insert = db.prepare(
        "INSERT INTO image_locations (id, image_id, position, url, metadata, status, created_at, updated_at) VALUES (?, ?, ?, ?, '{}', 'pending_delete', ?, ?)",
      );
      for (let i = 0; i < 400; i++) {
        const leftover = path.join(dir, 'data', 'images', `leftover-${i}`);
        writeFileSync(leftover, 'x');
        insert.run(randomUUID(), ids[i % ids.length], 100 + i, pathToFileURL(leftover).href, longAgo, longAgo);
      }
      db.close();

      // Both runs start in step: a write lock held here until both have the database open and have
      // listed the same work, so that each image and location is raced for (the busy timeout is 5 s).
      // Which run wins each write is SQLite's: its busy handler polls, and one run may take them all.
      const lock = new Database(path.join(dir, 'data', 'gaze.db'));
      lock.exec('BEGIN IMMEDIATE');
      const started = [scrub(), scrub()];
      try {
        await untilOpenedBy(
          started.map(({ child }) => child.pid!),
          path.join(dir, 'data', 'gaze.db'),
        );
        // Both still there when the lock goes: they run side by side from here, not one after the other.
        assert.deepEqual(
          started.map(({ child }) => child.exitCode),
          [null, null],
        );
      } catch (err) {
        for (const { child } of started) child.kill();
        await Promise.allSettled(started);
        throw err;
      } finally {
        lock.exec('COMMIT');
        lock.close();
      }
      const runs = await Promise.all(started);
      const counts = runs.map(({ stdout, stderr }) => {
        assert.equal(stderr, '');
        const m = /^gaze: (\d+) deleted images ended, (\d+) locations' data removed, 0 kept for a later pass$/m.exec(stdout);
        assert.ok(m, stdout);
        return [Number(m[1]), Number(m[2])];
      });
      assert.equal(counts[0]![0]! + counts[1]![0]!, ids.length, JSON.stringify(counts));
      assert.equal(counts[0]![1]! + counts[1]![1]!, ids.length + 400, JSON.stringify(counts));
      assert.deepEqual(readdirSync(path.join(dir, 'data', 'images')), []);
      for (const id of ids) assert.ok(!existsSync(file(id)), `no data left for ${id}`);
      const after = new Database(path.join(dir, 'data', 'gaze.db'), { readonly: true });
      try {
        const placeholders = ids.map(() => '?').join(',');
        assert.deepEqual(after.prepare(`SELECT DISTINCT status FROM images WHERE id IN (${placeholders})`).all(...ids), [{ status: 'deleted' }]);
        assert.equal((after.prepare(`SELECT count(*) AS n FROM image_locations WHERE image_id IN (${placeholders})`).get(...ids) as { n: number }).n, 0);
      } finally {
        after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
