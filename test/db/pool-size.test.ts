// oslo.db's pool options as Gaze reads them: the most connections a process opens to the database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, ConfigError } from '../../src/config/index.ts';
import { databasePoolSize } from '../../src/configured-parts.ts';
import { openDatabase } from '../../src/db/connection.ts';
import { forEachEngine } from '../helpers/databases.ts';

function poolSizeOf(lines: string): number | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-pool-'));
  try {
    writeFileSync(path.join(dir, 'gaze.conf'), `[database]\n${lines}\n`);
    return databasePoolSize(loadConfig(path.join(dir, 'gaze.conf'), {}));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('max_pool_size and max_overflow: their sum, with oslo.db defaults for the one not set; 10 when neither is', () => {
  assert.equal(poolSizeOf(''), undefined);
  assert.equal(poolSizeOf('max_pool_size = 3\nmax_overflow = 2'), 5);
  assert.equal(poolSizeOf('max_pool_size = 3'), 53);
  assert.equal(poolSizeOf('max_overflow = 0'), 5);
  assert.equal(poolSizeOf('max_pool_size = 0'), Infinity, "oslo.db's 0: no limit");
  assert.equal(poolSizeOf('max_pool_size = 3\nmax_overflow = -1'), Infinity, "SQLAlchemy's -1: no limit to the overflow");
  assert.throws(
    () => poolSizeOf('max_pool_size = -1'),
    (err: unknown) => err instanceof ConfigError && /max_pool_size: must be 0 \(no limit\) or more/.test(err.message),
  );
});

forEachEngine((engine) => {
  if (engine.name === 'sqlite') return; // one connection, whatever the options
  test('a pool of 3 opens no more than 3 connections for 8 queries at once, and all of them run', async () => {
    const db = openDatabase(await engine.url(), { maxConnections: 3 });
    try {
      const sleep = engine.name === 'postgresql' ? sql`select pg_sleep(0.2)` : sql`select sleep(0.2)`;
      let peak = 0;
      let queued = 0;
      const sampler = setInterval(() => {
        const usage = db.poolUsage();
        peak = Math.max(peak, usage.total);
        queued = Math.max(queued, usage.waiting);
      }, 5);
      const results = await Promise.all(Array.from({ length: 8 }, () => sleep.execute(db.kysely)));
      clearInterval(sampler);
      assert.equal(results.length, 8);
      assert.equal(db.poolUsage().max, 3);
      assert.ok(peak <= 3 && peak >= 2, `connections open at once: ${peak}`);
      assert.ok(queued >= 1, 'the other queries waited for a connection');
    } finally {
      await db.close();
    }
  });
});

forEachEngine((engine) => {
  if (engine.name === 'sqlite') return;
  test('idle connections the server ends (a DBA, a restart, an idle timeout) are dropped, and the next query opens another', async () => {
    const url = await engine.url();
    const db = openDatabase(url, { maxConnections: 3 });
    const admin = openDatabase(url, { maxConnections: 1 });
    try {
      const idle = sql<{ n: number }>`select 1 as n`;
      await Promise.all(Array.from({ length: 3 }, () => idle.execute(db.kysely)));
      // Every other session of this database is ended by the server.
      if (engine.name === 'postgresql') {
        await sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`.execute(admin.kysely);
      } else {
        const { rows } = await sql<{ id: number }>`select id from information_schema.processlist where db = database() and id <> connection_id()`.execute(
          admin.kysely,
        );
        assert.ok(rows.length >= 1);
        for (const { id } of rows) await sql.raw(`kill ${Number(id)}`).execute(admin.kysely);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      // A query that meets a dead connection may fail; one after it runs on a new one.
      const results = await Promise.allSettled(Array.from({ length: 3 }, () => idle.execute(db.kysely)));
      assert.ok(results.length === 3);
      const again = await idle.execute(db.kysely);
      assert.equal(Number(again.rows[0]!.n), 1);
    } finally {
      await db.close();
      await admin.close();
    }
  });
});
