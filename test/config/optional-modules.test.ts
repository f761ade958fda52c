import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startGazeInProcess } from '../helpers/gaze.ts';

const loaded = () => Object.keys(createRequire(import.meta.url).cache);
const OPTIONAL = /node_modules\/(pg|mysql2|amqplib|yaml|@aws-sdk\/[^/]+)\//;

// Each test file runs in a process of its own: what is cached here was loaded by this Gaze.
test('a Gaze on the embedded defaults (SQLite, a file store, no notifications, no policy file) loads no client of an engine, broker or store it does not use', async () => {
  const gaze = await startGazeInProcess();
  try {
    const res = await fetch(`${gaze.url}/v2/images`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"m"}' });
    assert.equal(res.status, 201);
    const optional = loaded().filter((file) => OPTIONAL.test(file));
    assert.deepEqual(optional, []);
    assert.ok(
      loaded().some((file) => /node_modules\/better-sqlite3\//.test(file)),
      'the SQLite client is loaded (the check sees CommonJS modules)',
    );
  } finally {
    await gaze.stop();
  }
});
