// A transaction chosen as a deadlock's victim runs again; any other failure is the caller's at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeadlock, retryOnDeadlock } from '../../src/db/deadlock.ts';

const deadlock = (code: string) => Object.assign(new Error('Deadlock found when trying to get lock; try restarting transaction'), { code });

test('a deadlock victim (MariaDB ER_LOCK_DEADLOCK, PostgreSQL 40P01) is run again until it succeeds', async () => {
  for (const code of ['ER_LOCK_DEADLOCK', '40P01']) {
    let calls = 0;
    const result = await retryOnDeadlock(async () => {
      calls++;
      if (calls < 3) throw deadlock(code);
      return 'done';
    });
    assert.deepEqual([result, calls], ['done', 3]);
  }
});

test('other failures are not retried, and a deadlock that keeps coming ends after the attempts given', async () => {
  let calls = 0;
  await assert.rejects(
    retryOnDeadlock(async () => {
      calls++;
      throw Object.assign(new Error('duplicate'), { code: 'ER_DUP_ENTRY' });
    }),
    /duplicate/,
  );
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    retryOnDeadlock(async () => {
      calls++;
      throw deadlock('ER_LOCK_DEADLOCK');
    }, 3),
    (err: unknown) => isDeadlock(err),
  );
  assert.equal(calls, 3);
  assert.equal(isDeadlock(new Error('plain')), false);
});
