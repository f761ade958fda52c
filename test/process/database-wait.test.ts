// A `gaze serve` started before its PostgreSQL is up (a host booting, containers started together)
// waits for it as Glance does through oslo.db ([database] max_retries, retry_interval), instead of
// exiting; one told not to wait stops at once, naming the failure.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type RunningPostgres } from '../helpers/postgres.ts';
import { runScript } from '../helpers/scripts.ts';
import { startGazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

let pg: RunningPostgres;
let url: string;

before(async () => {
  pg = await startPostgres();
  url = await pg.freshDatabase();
});
after(async () => {
  await pg?.stop();
});

for (const workers of ['1', '2']) {
  test(`the database comes up seconds after the service (workers = ${workers}): the service waits, then serves`, { timeout: 120_000 }, async () => {
    await runScript('stop-postgres.sh', [pg.dir], 60_000);
    const started = Date.now();
    let upAt = 0;
    // The server comes back 4 s into the service's start, on its port, with its data.
    const comingBack = new Promise((resolve) => setTimeout(resolve, 4_000)).then(async () => {
      await runScript('start-postgres.sh', [pg.dir, String(pg.port)], 120_000);
      upAt = Date.now();
    });
    const gaze = await startGazeProcess({ DEFAULT: { workers }, database: { connection: url, max_retries: '-1', retry_interval: '1' } });
    try {
      await comingBack;
      assert.ok(upAt - started >= 4_000);
      assert.match(gaze.output(), /the database cannot be reached; trying again in 1 s \(unlimited attempts left\)/);
      const api = client(gaze.url);
      const image = await api.createImage({ name: 'after the wait' });
      assert.equal((await api.upload(image.id, 'data')).status, 204);
      assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'active');
    } finally {
      await gaze.stop();
    }
  });
}

test('max_retries = 1: one attempt, then the service stops with the connection failure', { timeout: 60_000 }, async () => {
  await runScript('stop-postgres.sh', [pg.dir], 60_000);
  try {
    await assert.rejects(
      startGazeProcess({ database: { connection: url, max_retries: '1', retry_interval: '1' } }),
      (err: Error) => /gaze serve exited with [1-9]/.test(err.message) && /ECONNREFUSED/.test(err.message) && !/trying again/.test(err.message),
    );
  } finally {
    await runScript('start-postgres.sh', [pg.dir, String(pg.port)], 120_000);
  }
});

test('max_retries = 3: three attempts, so two warnings that it tries again (the last one written out too), then the stop', { timeout: 60_000 }, async () => {
  await runScript('stop-postgres.sh', [pg.dir], 60_000);
  try {
    await assert.rejects(startGazeProcess({ database: { connection: url, max_retries: '3', retry_interval: '1' } }), (err: Error) => {
      assert.match(err.message, /gaze serve exited with [1-9]/);
      const waits = err.message.match(/trying again in 1 s \(\d+ attempts? left\)/g) ?? [];
      assert.deepEqual(
        waits.map((line) => line.replace(/.*\((\d+).*/, '$1')),
        ['2', '1'],
      );
      return true;
    });
  } finally {
    await runScript('start-postgres.sh', [pg.dir, String(pg.port)], 120_000);
  }
});
