import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { watchUpload } from '../../src/http/upload-watchdog.ts';

const watched = () => {
  const req = new PassThrough();
  const body = watchUpload(req as unknown as IncomingMessage, new EventEmitter() as unknown as ServerResponse, { idleMs: 0, minBytesPerSecond: 0 });
  return { req, body };
};

test('a client that hangs up: a reader of the body hears it; with no reader left, the process is not ended', async () => {
  const read = watched();
  const heard = once(read.body, 'error');
  read.req.emit('aborted');
  const [err] = (await heard) as [Error & { code?: string }];
  assert.equal(err.code, 'ECONNRESET');

  // The reader has gone (the answer was sent): the late hang-up found no listener and ended the process.
  const uncaught: unknown[] = [];
  const record = (e: unknown) => uncaught.push(e);
  process.on('uncaughtException', record);
  try {
    const left = watched();
    left.req.emit('aborted');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(left.body.destroyed, true);
    assert.deepEqual(uncaught.map(String), []);
  } finally {
    process.off('uncaughtException', record);
  }
});
