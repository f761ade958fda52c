import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UploadRegistry } from '../../src/services/uploads.ts';
import { silentLogger } from '../../src/util/logger.ts';

// A reset to queued that failed with its write is tried again by the periodic pass, never while this
// process writes the image again, and a new write waits for a retry under way (whose compare-and-set
// must not meet the new write's claim).

test('a failed reset is retried, not while the image is being written again, and a new write waits for a retry under way', async () => {
  const log = silentLogger();
  const uploads = new UploadRegistry();
  const calls: string[] = [];
  let fail = true;
  let release: () => void = () => {};
  let hold = false;
  const reset = async () => {
    calls.push('reset');
    if (hold) await new Promise<void>((resolve) => (release = resolve));
    if (fail) throw new Error('the database is away');
  };
  await uploads.putBack('img', reset, log);
  assert.deepEqual(calls, ['reset']);

  // Written again on this process: the retry waits.
  const writing = uploads.begin('img');
  await uploads.retryResets(log);
  assert.deepEqual(calls, ['reset']);
  uploads.end('img', writing);

  // Still failing: kept for the next pass.
  await uploads.retryResets(log);
  assert.deepEqual(calls, ['reset', 'reset']);

  // A retry under way holds back a new write's claim until it ends; done, it is not tried again.
  fail = false;
  hold = true;
  const pass = uploads.retryResets(log);
  let claimed = false;
  const write = uploads.writing('img', async () => {
    claimed = true;
    assert.ok(uploads.has('img'), 'registered while it writes');
    return 'written';
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(claimed, false, 'the claim waits for the retry');
  assert.ok(uploads.has('img'), 'registered from the start');
  release();
  const [, written] = await Promise.all([pass, write]);
  assert.equal(claimed, true);
  assert.equal(written, 'written');
  assert.ok(!uploads.has('img'), 'no longer registered once written');
  await uploads.retryResets(log);
  assert.deepEqual(calls, ['reset', 'reset', 'reset']);
});
