import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Db } from '../../src/db/connection.ts';
import { databaseClockOffset } from '../../src/db/clock.ts';
import { nowTimestamp, setClockOffset } from '../../src/domain/time.ts';
import { forEachEngine } from '../helpers/databases.ts';

forEachEngine((engine) => {
  let db: Db;
  before(async () => {
    db = await engine.open();
  });

  test('the database server’s clock offset is measured, with its sign (zero for SQLite, which is this host’s clock)', async () => {
    const offset = await databaseClockOffset(db);
    if (engine.name === 'sqlite') return assert.equal(offset, 0);
    // A server on this host shares its clock: what is left is the query's own timing.
    assert.ok(offset !== null && Math.abs(offset) < 1000, `offset ${offset} ms`);
    // This process a minute ahead: the server is a minute behind it.
    const realNow = Date.now;
    Date.now = () => realNow() + 60_000;
    try {
      const behind = await databaseClockOffset(db);
      assert.ok(behind !== null && Math.abs(behind + 60_000) < 1000, `offset ${behind} ms, not about -60000`);
    } finally {
      Date.now = realNow;
    }
  });
});

test('timestamps follow the clock offset; an explicit date does not', () => {
  const real = Date.now();
  setClockOffset(-3_600_000);
  try {
    const shifted = Date.parse(`${nowTimestamp().replace(' ', 'T')}Z`);
    assert.ok(Math.abs(shifted - (real - 3_600_000)) < 5000, `${nowTimestamp()} is not an hour back`);
    assert.equal(nowTimestamp(new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 6))), '2020-01-02 03:04:05.006000');
  } finally {
    setClockOffset(0);
  }
});
