// Schema migrations on SQLite: each applies whole or not at all (a `db sync` stopped half-way is
// completed by the next), and `gaze db sync` run by several processes at once on one new file succeeds
// in each of them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase, syncSchema } from '../../src/db/connection.ts';
import { runGaze } from '../helpers/gaze.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'gaze-migrations-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a migration that fails half-way leaves nothing of itself, and the next sync applies it', async () => {
  const db = openDatabase(`sqlite:///${path.join(dir, 'half.db')}`);
  try {
    // A table in the way of one the first migration creates after several others.
    await sql`create table tasks (in_the_way integer)`.execute(db.kysely);
    await assert.rejects(syncSchema(db), /tasks/);
    const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name = 'images'`.execute(db.kysely);
    assert.deepEqual(tables.rows, [], 'the images table the migration had created went with it');
    await sql`drop table tasks`.execute(db.kysely);
    assert.ok((await syncSchema(db)).includes('0001_initial'));
    assert.deepEqual(await syncSchema(db), [], 'up to date');
  } finally {
    await db.close();
  }
});

test('three `gaze db sync` at once on one new SQLite file: each succeeds, the schema is applied once', { timeout: 120_000 }, async () => {
  for (let round = 0; round < 3; round++) {
    const file = path.join(dir, `race-${round}.db`);
    const env = { GAZE__database__connection: `sqlite:///${file}` };
    const runs = await Promise.all(Array.from({ length: 3 }, () => runGaze(['db', 'sync'], { cwd: dir, env })));
    for (const run of runs) assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(runs.filter((r) => /applied 0001_initial/.test(r.stdout)).length, 1, runs.map((r) => r.stdout).join('\n'));
  }
});

test('a database a newer Gaze upgraded: the sync says so, not "corrupted migrations"', async () => {
  const db = openDatabase(`sqlite:///${path.join(dir, 'newer.db')}`);
  try {
    await syncSchema(db);
    await sql`insert into kysely_migration (name, timestamp) values ('9999_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(db.kysely);
    await assert.rejects(
      syncSchema(db),
      /the database has schema migration 9999_from_the_future, which this Gaze does not know: a newer Gaze upgraded it; run that version or a newer one/,
    );
  } finally {
    await db.close();
  }
});
