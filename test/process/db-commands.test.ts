// glance-manage's db commands an operator runs from cron or a deployment tool: version, check, purge,
// purge_images_table, and the metadefs commands under glance-manage's spellings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { openDatabase } from '../../src/db/connection.ts';
import { ImagesRepo } from '../../src/db/repos/images.ts';
import { TasksRepo } from '../../src/db/repos/tasks.ts';
import { addSeconds, nowTimestamp } from '../../src/domain/time.ts';
import { imageRecord } from '../helpers/images.ts';
import { taskRow } from '../helpers/tasks.ts';

const run = promisify(execFile);
const gazeBin = fileURLToPath(new URL('../../bin/gaze.js', import.meta.url));
const DAY = 86_400;

type Gaze = (...args: string[]) => Promise<{ stdout: string; stderr: string }>;

async function withConfig(work: (gaze: Gaze, dir: string, dbFile: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-db-commands-'));
  try {
    const conf = path.join(dir, 'gaze.conf');
    const dbFile = path.join(dir, 'gaze.db');
    writeFileSync(conf, `[database]\nconnection = sqlite:///${dbFile}\n`);
    await work((...args) => run(process.execPath, [gazeBin, ...args, '--config', conf], { encoding: 'utf8' }), dir, dbFile);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('db check says whether db sync has work to do (exit 3 when it has); db version names the last migration applied', async () => {
  await withConfig(async (gaze, dir, dbFile) => {
    // No file yet: db sync has all of its work to do (and check makes nothing).
    await assert.rejects(gaze('db', 'check'), (err: any) => err.code === 3 && /Your database is not up to date \(\d+ migrations to apply\)/.test(err.stdout));
    assert.match((await gaze('db', 'version')).stdout, /none of Gaze's schema yet/);
    assert.equal(existsSync(dbFile), false);
    writeFileSync(dbFile, ''); // a database without Gaze's schema
    await assert.rejects(
      gaze('db', 'check'),
      (err: any) =>
        err.code === 3 && /Your database is not up to date \(\d+ migrations to apply\)\. Your next step is to run `gaze db sync`\./.test(err.stdout),
    );
    assert.match((await gaze('db', 'version')).stdout, /none of Gaze's schema yet/);
    await gaze('db', 'sync');
    assert.equal((await gaze('db', 'check')).stdout, 'Database is up to date. No upgrades needed.\n');
    const version = (await gaze('db', 'version')).stdout.trim();
    assert.match(version, /^\d{4}/, 'a migration name');

    // A newer Gaze upgraded it: version names its newest migration, check says so and fails, as serve and sync refuse it.
    const db = openDatabase(`sqlite:///${dbFile}`);
    try {
      await sql`insert into kysely_migration (name, timestamp) values ('9999_from_a_newer_gaze', '2030-01-01T00:00:00.000Z')`.execute(db.kysely);
    } finally {
      await db.close();
    }
    assert.equal((await gaze('db', 'version')).stdout, '9999_from_a_newer_gaze\n');
    await assert.rejects(gaze('db', 'check'), (err: any) => {
      assert.equal(err.code, 1);
      assert.equal(
        err.stdout,
        'The database has schema migration 9999_from_a_newer_gaze, which this Gaze does not know: a newer Gaze upgraded it; run that version or a newer one.\n',
      );
      return true;
    });
    await assert.rejects(gaze('db', 'sync'), (err: any) => /which this Gaze does not know/.test(err.stderr));
    // Nor do this Gaze's other commands act on it.
    for (const command of [['db', 'purge'], ['scrub'], ['db', 'export-metadefs', dir]]) {
      await assert.rejects(
        gaze(...command),
        (err: any) => err.code === 1 && /has schema migration 9999_from_a_newer_gaze, which this Gaze does not know/.test(err.stderr),
        command.join(' '),
      );
    }
  });
});

test("db purge's arguments are checked as glance-manage checks them", async () => {
  await withConfig(async (gaze) => {
    await gaze('db', 'sync');
    const refused = async (args: string[], code: number, message: RegExp) =>
      assert.rejects(gaze('db', 'purge', ...args), (err: any) => err.code === code && message.test(err.stderr), args.join(' '));
    await refused(['--age_in_days', '-1'], 1, /Must supply a non-negative value for age\./);
    await refused(['--age_in_days', '99999'], 1, /Maximal age is count of days since epoch\./);
    await refused(['--max_rows', '-2'], 1, /Minimal rows limit is -1\./);
    await refused(['--max_rows', 'abc'], 2, /argument --max_rows: invalid int value: 'abc'/);
    await refused(['--age-in-days', '1.5'], 2, /argument --age_in_days: invalid int value: '1\.5'/);
    assert.match((await gaze('db', 'purge', '--max_rows', '0')).stdout, /purged 0 row\(s\)/);
  });
});

test('db purge removes tasks expired longer ago than the age, at most max_rows; purge_images_table removes old deleted images whose data is gone', async () => {
  await withConfig(async (gaze, _dir, dbFile) => {
    await gaze('db', 'sync');
    const db = openDatabase(`sqlite:///${dbFile}`);
    const now = nowTimestamp();
    const longAgo = addSeconds(now, -40 * DAY);
    const tasks = new TasksRepo(db);
    const old = [taskRow({ expires_at: longAgo }), taskRow({ expires_at: addSeconds(now, -35 * DAY) })];
    const recent = taskRow({ expires_at: addSeconds(now, -1 * DAY) });
    const unfinished = taskRow({ status: 'processing' });
    for (const row of [...old, recent, unfinished]) await tasks.insert(row);

    const images = new ImagesRepo(db);
    const gone = imageRecord();
    const scrubbing = imageRecord({ status: 'active', size: 4 });
    const lately = imageRecord();
    for (const image of [gone, scrubbing, lately]) await images.insert(image);
    await db.kysely
      .insertInto('image_locations')
      .values({
        id: crypto.randomUUID(),
        image_id: scrubbing.id,
        url: 'file:///nowhere/x',
        metadata: '{}',
        status: 'active',
        position: 1,
        created_at: now,
        updated_at: now,
      })
      .execute();
    for (const image of [gone, scrubbing, lately]) await images.markDeleted(image.id);
    // Deleted long ago, but for `lately`; `scrubbing` still has data queued for the scrubber.
    await db.kysely
      .updateTable('images')
      .set({ deleted_at: addSeconds(now, -200 * DAY) })
      .where('id', 'in', [gone.id, scrubbing.id])
      .execute();
    await db.close();

    assert.match((await gaze('db', 'purge', '--max_rows', '1')).stdout, /purged 1 row\(s\) from tasks/);
    assert.match((await gaze('db', 'purge', '--age_in_days', '30', '--max_rows', '-1')).stdout, /purged 1 row\(s\) from tasks/);
    assert.match((await gaze('db', 'purge_images_table')).stdout, /purged 1 row\(s\) from images/);

    const after = openDatabase(`sqlite:///${dbFile}`);
    try {
      const taskIds = (await after.kysely.selectFrom('tasks').select('id').execute()).map((r) => r.id).sort();
      assert.deepEqual(taskIds, [recent.id, unfinished.id].sort());
      const imageIds = (await after.kysely.selectFrom('images').select('id').execute()).map((r) => r.id).sort();
      assert.deepEqual(imageIds, [scrubbing.id, lately.id].sort());
      // The purged image's id may be used again.
      assert.equal(await new ImagesRepo(after).idExists(gone.id), false);
    } finally {
      await after.close();
    }
  });
});

test("glance-manage's spellings of the metadefs commands and options are Gaze's", async () => {
  await withConfig(async (gaze, dir, dbFile) => {
    await gaze('db', 'sync');
    const source = path.join(dir, 'metadefs');
    mkdirSync(source);
    const write = (displayName: string) =>
      writeFileSync(
        path.join(source, 'one.json'),
        JSON.stringify({ namespace: 'OS::Test', display_name: displayName, visibility: 'public', protected: false }),
      );
    const shown = async () => {
      const db = openDatabase(`sqlite:///${dbFile}`);
      try {
        return (await db.kysely.selectFrom('metadef_namespaces').select('display_name').where('namespace', '=', 'OS::Test').executeTakeFirst())?.display_name;
      } finally {
        await db.close();
      }
    };
    write('Café Größe 1');
    assert.match((await gaze('db', 'load_metadefs', '--path', source)).stdout, /1 namespaces loaded/);
    // The file is named by the display name's letters and digits, of any script (as glance-manage's).
    await gaze('db', 'export_metadefs', '--path', path.join(dir, 'first'));
    assert.deepEqual(readdirSync(path.join(dir, 'first')), ['CaféGröße1.json']);
    write('Second');
    await gaze('db', 'load_metadefs', '--path', source, '--merge');
    assert.equal(await shown(), 'Café Größe 1', '--merge alone keeps what exists');
    await gaze('db', 'load_metadefs', '--path', source, '--merge', '--prefer_new');
    assert.equal(await shown(), 'Second', '--prefer_new overwrites it');
    assert.match((await gaze('db', 'export_metadefs', '--path', path.join(dir, 'out'))).stdout, /1 namespaces written/);
    assert.match((await gaze('db', 'unload_metadefs')).stdout, /every metadata definition was removed/);
    assert.equal(await shown(), undefined);
  });
});
