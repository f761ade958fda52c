// SQLite's failures say what they are and which file. A transaction that SQLite ends itself (a full disk: here its page limit) fails with SQLite's own
// reason, not with the error of a rollback that had nothing left to undo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase } from '../../src/db/connection.ts';

test('a SQLite file that is full: the transaction fails with "database or disk is full", and the file is usable after', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-sqlite-full-'));
  const db = openDatabase(`sqlite:///${path.join(dir, 'full.db')}`);
  try {
    await sql`create table filler (v text)`.execute(db.kysely);
    const { page_count: pages } = (await sql<{ page_count: number }>`pragma page_count`.execute(db.kysely)).rows[0]!;
    await sql.raw(`pragma max_page_count = ${pages + 2}`).execute(db.kysely);
    await assert.rejects(
      db.kysely.transaction().execute(async (trx) => {
        for (let i = 0; i < 20; i++) await sql`insert into filler (v) values (${'x'.repeat(100_000)})`.execute(trx);
      }),
      (err: Error) => err.message === 'database or disk is full',
    );
    // Nothing of it was kept, and the next transaction runs.
    await db.kysely.transaction().execute((trx) => sql`insert into filler (v) values ('small')`.execute(trx));
    assert.deepEqual((await sql<{ n: number }>`select count(*) as n from filler`.execute(db.kysely)).rows, [{ n: 1 }]);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that is no SQLite database, or a directory: the error names the file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-sqlite-open-'));
  try {
    const notDb = path.join(dir, 'not.db');
    writeFileSync(notDb, 'x'.repeat(200));
    assert.throws(
      () => openDatabase(`sqlite:///${notDb}`),
      (err: Error) => err.message === `the SQLite database ${notDb}: file is not a database`,
    );
    assert.throws(
      () => openDatabase(`sqlite:///${dir}`),
      (err: Error) => err.message === `the SQLite database ${dir}: unable to open database file`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
