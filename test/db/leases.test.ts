// The task lease SQL the import engine relies on to survive restarts, on SQLite and PostgreSQL: claim,
// renew, expiry, takeover from a dead holder, which tasks count as orphaned, and one winner among
// parallel claims.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { TasksRepo, type TaskRow } from '../../src/db/repos/tasks.ts';
import { addSeconds, nowTimestamp } from '../../src/domain/time.ts';
import { forEachEngine } from '../helpers/databases.ts';
import { taskRow as sharedTaskRow } from '../helpers/tasks.ts';

/** A pending import task of its own image. */
const taskRow = (overrides: Partial<TaskRow> = {}) => sharedTaskRow({ image_id: randomUUID(), ...overrides });

const inSeconds = (n: number) => addSeconds(nowTimestamp(), n);

forEachEngine((engine) => {
  describe('task leases', () => {
    let tasks: TasksRepo;
    before(async () => {
      tasks = new TasksRepo(await engine.open());
    });

    test('claim: the first owner takes it, another is refused while the lease lives, the holder renews', async () => {
      const row = taskRow();
      await tasks.insert(row);
      assert.equal(await tasks.claim(row.id, 'node-a', inSeconds(10)), true);
      assert.equal(await tasks.claim(row.id, 'node-b', inSeconds(10)), false, 'a live lease keeps others out');
      const renewedUntil = inSeconds(20);
      assert.equal(await tasks.claim(row.id, 'node-a', renewedUntil), true, 'the holder renews');
      const held = await tasks.getRaw(row.id);
      assert.equal(held?.lease_owner, 'node-a');
      assert.equal(held?.lease_expires_at, renewedUntil);
    });

    test('claim after expiry: another owner takes the task over, and the old holder can no longer renew', async () => {
      const row = taskRow({ status: 'processing', lease_owner: 'node-a', lease_expires_at: inSeconds(-1) });
      await tasks.insert(row);
      assert.equal(await tasks.claim(row.id, 'node-b', inSeconds(10)), true);
      assert.equal(await tasks.claim(row.id, 'node-a', inSeconds(10)), false, 'the previous holder lost it');
      assert.equal((await tasks.getRaw(row.id))?.lease_owner, 'node-b');
    });

    test('finished tasks are never claimed, whatever their lease', async () => {
      for (const status of ['success', 'failure']) {
        const row = taskRow({ status });
        await tasks.insert(row);
        assert.equal(await tasks.claim(row.id, 'node-a', inSeconds(10)), false, status);
        assert.equal(await tasks.claimFrom(row.id, 'nobody', 'node-a', inSeconds(10)), false, status);
      }
    });

    test('claimFrom takes a live lease from a holder known to be dead, and only from that holder', async () => {
      const row = taskRow({ status: 'processing', lease_owner: 'host:1:dead', lease_expires_at: inSeconds(10) });
      await tasks.insert(row);
      assert.equal(await tasks.claimFrom(row.id, 'host:2:other', 'node-b', inSeconds(10)), false, 'not the holder named');
      assert.equal(await tasks.claimFrom(row.id, 'host:1:dead', 'node-b', inSeconds(10)), true);
      assert.equal(await tasks.claimFrom(row.id, 'host:1:dead', 'node-c', inSeconds(10)), false, 'a second taker finds it taken');
      assert.equal((await tasks.getRaw(row.id))?.lease_owner, 'node-b');
    });

    test('orphaned: unfinished, not deleted, with no lease or an expired one; heldWithPrefix: by holder name', async () => {
      const marker = randomUUID();
      const rows = {
        noLease: taskRow({ owner: marker }),
        expired: taskRow({ owner: marker, status: 'processing', lease_owner: `h1:10:${marker}`, lease_expires_at: inSeconds(-5) }),
        live: taskRow({ owner: marker, status: 'processing', lease_owner: `h1:11:${marker}`, lease_expires_at: inSeconds(30) }),
        otherHost: taskRow({ owner: marker, status: 'processing', lease_owner: `h2:12:${marker}`, lease_expires_at: inSeconds(30) }),
        finished: taskRow({ owner: marker, status: 'success' }),
        deleted: taskRow({ owner: marker, deleted: 1, deleted_at: nowTimestamp() }),
      };
      for (const row of Object.values(rows)) await tasks.insert(row);
      const mine = (list: TaskRow[]) =>
        list
          .filter((t) => t.owner === marker)
          .map((t) => t.id)
          .sort();
      assert.deepEqual(mine(await tasks.orphaned(1000)), [rows.noLease.id, rows.expired.id].sort());
      assert.deepEqual(mine(await tasks.heldWithPrefix('h1:', 1000)), [rows.expired.id, rows.live.id].sort());
    });

    test('a task status write outside the state machine is refused before it reaches the database', async () => {
      const row = taskRow({ status: 'success' });
      await tasks.insert(row);
      await assert.rejects(tasks.transition(row.id, ['success'], { status: 'processing' }), /task status success -> processing is not in the state machine/);
      await assert.rejects(tasks.transition(row.id, ['pending', 'failure'], { status: 'success' }), /task status pending -> success/);
      assert.equal(await tasks.transition(row.id, ['pending', 'processing'], { status: 'failure' }), false, 'allowed, but the row is not in those states');
      assert.equal((await tasks.getRaw(row.id))?.status, 'success');
    });

    test('parallel claims by ten owners: exactly one wins', async () => {
      for (let round = 0; round < 5; round++) {
        const row = taskRow();
        await tasks.insert(row);
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => tasks.claim(row.id, `node-${i}`, inSeconds(10))));
        assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
        const winner = results.indexOf(true);
        assert.equal((await tasks.getRaw(row.id))?.lease_owner, `node-${winner}`);
      }
    });

    test('parallel takeovers of an expired lease: exactly one wins', async () => {
      for (let round = 0; round < 5; round++) {
        const row = taskRow({ status: 'processing', lease_owner: 'gone', lease_expires_at: inSeconds(-1) });
        await tasks.insert(row);
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => tasks.claim(row.id, `node-${i}`, inSeconds(10))));
        assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
      }
    });
  });
});
