// A guarded download body that fails before anyone reads it (its source closed while the import waited
// for a quota check) keeps the failure for its reader, and never takes the process down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { guardBody } from '../../src/net/body-guard.ts';
import { DownloadError } from '../../src/net/download-error.ts';

test('a body whose source closes short before it is read fails its later reader with CLOSED_EARLY, and no error event goes unhandled', async () => {
  const source = new PassThrough();
  const body = guardBody(source, { expectedLength: 1000, readTimeoutMs: 0, url: 'http://127.0.0.1/short' });
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    source.end(Buffer.alloc(10));
    source.destroy();
    // The wait of a quota check: nobody reads the body meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(body.destroyed, 'the guard has failed the body');
    await assert.rejects(
      pipeline(body, new Writable({ write: (_chunk, _encoding, done) => done() })),
      (err: unknown) => err instanceof DownloadError && err.code === 'CLOSED_EARLY',
    );
    assert.deepEqual(uncaught, []);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});
