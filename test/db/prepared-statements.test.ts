import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { HotStatements } from '../../src/db/prepared-statements.ts';
import { openDatabase, syncSchema } from '../../src/db/connection.ts';
import { ImagesRepo } from '../../src/db/repos/images.ts';
import { imageRecord } from '../helpers/images.ts';
import { createTestEngine, testEngines } from '../helpers/databases.ts';

// PostgreSQL parses and plans every unnamed statement; the statements Gaze runs often are prepared once
// per connection instead (src/db/prepared-statements.ts).

test('a statement is named from its third run on, the same name every time; at most 200 are named', () => {
  const hot = new HotStatements();
  assert.equal(hot.nameFor('select 1'), undefined);
  assert.equal(hot.nameFor('select 1'), undefined);
  const name = hot.nameFor('select 1');
  assert.match(name ?? '', /^gaze_[0-9a-f]{20}$/);
  assert.equal(hot.nameFor('select 1'), name);
  assert.equal(hot.nameFor('select 2'), undefined, 'another text is counted on its own');
  for (let i = 0; i < 250; i++) for (let n = 0; n < 3; n++) hot.nameFor(`select ${i} + 1000`);
  assert.equal(hot.nameFor('select 249 + 1000'), undefined, 'past 200 named statements the rest run unnamed');
  assert.equal(hot.nameFor('select 1'), name, 'those named stay named');
  hot.retire('select 1');
  assert.equal(hot.nameFor('select 1'), undefined);
});

if (testEngines().includes('postgresql')) {
  describe('postgresql', () => {
    const engine = createTestEngine('postgresql');
    after(() => engine.cleanup());

    test('an image read run often is prepared on its connection, and still answers after a column is added under its select *', async () => {
      const db = await engine.open();
      const now = '2026-01-01 00:00:00.000000';
      await db.kysely
        .insertInto('images')
        .values({
          id: 'img-1',
          name: 'one',
          status: 'queued',
          visibility: 'private',
          protected: 0,
          os_hidden: 0,
          min_ram: 0,
          min_disk: 0,
          deleted: 0,
          created_at: now,
          updated_at: now,
        })
        .execute();
      await db.kysely.connection().execute(async (conn) => {
        const read = () => conn.selectFrom('images').selectAll().where('id', '=', 'img-1').executeTakeFirstOrThrow();
        for (let i = 0; i < 4; i++) assert.equal((await read()).name, 'one');
        const prepared = await sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`.execute(conn);
        const reads = prepared.rows.filter((r) => /from "images" where "id" = \$1/.test(r.statement));
        assert.equal(reads.length, 1, JSON.stringify(prepared.rows));
        assert.match(reads[0]!.name, /^gaze_/);

        // Another node upgrades the schema: the prepared `select *` is refused by the server, and the read
        // runs unnamed instead, with the new column.
        await sql`alter table images add column added_later integer`.execute(db.kysely);
        const after = (await read()) as Record<string, unknown>;
        assert.equal(after.name, 'one');
        assert.ok('added_later' in after);
      });
    });

    test('a save whose transaction meets a statement made stale by a schema upgrade runs again and is kept', async () => {
      // One connection: every save runs on the one that prepared its statements.
      const db = openDatabase(await engine.url(), { maxConnections: 1 });
      after(() => db.close());
      await syncSchema(db);
      const images = new ImagesRepo(db);
      await images.insert(imageRecord({ id: 'img-2', name: 'two' }));
      // The save's read-back (verify) is a select * in its transaction, prepared after a few saves.
      const rename = async (name: string) => {
        const original = await images.require('img-2');
        return images.save({ ...original, name }, { original, verify: (saved) => assert.equal(saved.name, name) });
      };
      for (let i = 0; i < 4; i++) assert.ok(await rename(`name ${i}`));
      await sql`alter table images add column added_by_sync integer`.execute(db.kysely);
      assert.ok(await rename('after the upgrade'));
      assert.equal((await images.require('img-2')).name, 'after the upgrade');
    });
  });
}
