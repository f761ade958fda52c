import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ingest, IngestAborted } from '../../src/ingest/pipeline.ts';
import { closeHashWorkers } from '../../src/ingest/hashing.ts';
import { Store } from '../../src/stores/store.ts';
import { FileStoreDriver } from '../../src/stores/file.ts';
import { StoreError } from '../../src/stores/driver.ts';
import { GazeError } from '../../src/domain/errors.ts';

const POLICY = {
  requireFormatMatch: true,
  gptSafetyChecksNonfatal: [],
  vmdkAllowedTypes: ['streamOptimized', 'monolithicSparse'],
  requireRawFormatMatch: true,
  virtualSizeCap: 64 * 2 ** 40,
};

const root = mkdtempSync(path.join(tmpdir(), 'gaze-ingest-'));
after(() => rmSync(root, { recursive: true, force: true }));

function endless(): Readable {
  return new Readable({
    read() {
      this.push(Buffer.alloc(1 << 20, 1));
    },
  });
}

test('bytes, size, md5 and sha512 come out of one pass', async () => {
  const data = Buffer.from('x'.repeat(3_000_001));
  const store = new Store('s', new FileStoreDriver(path.join(root, 'ok')));
  const result = await ingest({
    source: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
    key: 'k',
    store,
    sizeCap: 1e9,
    hashAlgo: 'sha512',
    formatCheck: { diskFormat: 'raw', policy: POLICY },
  });
  assert.equal(result.size, data.length);
  assert.equal(result.digests!.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(result.digests!.hashValue, createHash('sha512').update(data).digest('hex'));
  assert.deepEqual(result.inspection, { format: 'raw', virtualSize: data.length });
});

test('chunks of every size (one byte, a slot and a half, more than all the slots) arrive whole, in order, with their digests', async () => {
  const sizes = [1, 7, 65_536, 1_572_864, 3, 9_437_184, 1 << 20, 12_345];
  const chunks = sizes.map((n, i) => randomBytes(n).fill(i, 0, 1));
  const data = Buffer.concat(chunks);
  const dir = path.join(root, 'chunks');
  const store = new Store('s', new FileStoreDriver(dir));
  const result = await ingest({ source: Readable.from(chunks), key: 'k', store, sizeCap: 1e9, hashAlgo: 'sha512', formatCheck: null });
  assert.equal(result.size, data.length);
  assert.ok(readFileSync(path.join(dir, 'k')).equals(data));
  assert.equal(result.digests!.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(result.digests!.hashValue, createHash('sha512').update(data).digest('hex'));
});

test('data whose format contradicts the claim is refused after the last byte, and nothing is left in the store', async () => {
  const dir = path.join(root, 'refused');
  const store = new Store('s', new FileStoreDriver(dir));
  await assert.rejects(
    ingest({
      source: Readable.from([Buffer.alloc(3 << 20, 7)]),
      key: 'k',
      store,
      sizeCap: 1e9,
      hashAlgo: 'sha512',
      formatCheck: { diskFormat: 'qcow2', policy: POLICY },
    }),
    (err: unknown) => err instanceof GazeError && err.code === 'IMAGE_FORMAT_REJECTED',
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('a source that closes before its end, without an error, is a cut-off source (not a store failure), and nothing is stored', async () => {
  const dir = path.join(root, 'closed-early');
  const store = new Store('s', new FileStoreDriver(dir));
  let pushed = 0;
  const source = new Readable({
    read() {
      if (pushed++ < 8) this.push(Buffer.alloc(64 * 1024, 5));
      else this.destroy();
    },
  });
  await assert.rejects(
    ingest({ source, key: 'k', store, sizeCap: 1e9, hashAlgo: 'sha512', formatCheck: null }),
    (err: unknown) => err instanceof IngestAborted,
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('a source that failed before the ingest began (a client gone while the stage waited) is a cut-off source, not a store failure', async () => {
  const dir = path.join(root, 'failed-before');
  const store = new Store('s', new FileStoreDriver(dir));
  const failed = new Readable({ read() {} });
  failed.on('error', () => {}); // the request's own listener, as the upload watchdog's
  failed.destroy(Object.assign(new Error('the client closed the connection'), { code: 'ECONNRESET' }));
  await new Promise((r) => setImmediate(r)); // its 'error' and 'close' are over before ingest listens
  await assert.rejects(
    ingest({ source: failed, key: 'k', store, sizeCap: 1e9, hashAlgo: 'sha512', formatCheck: null }),
    (err: unknown) => err instanceof IngestAborted,
  );
  const closed = new Readable({ read() {} });
  closed.destroy();
  await new Promise((r) => setImmediate(r));
  await assert.rejects(
    ingest({ source: closed, key: 'k2', store, sizeCap: 1e9, hashAlgo: 'sha512', formatCheck: null }),
    (err: unknown) => err instanceof IngestAborted,
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('a store that fails before reading stops an endless source at once, with the store error', async () => {
  const store = new Store('broken', new FileStoreDriver('/dev/null/gaze-never'));
  const started = Date.now();
  await assert.rejects(
    ingest({ source: endless(), key: 'k', store, sizeCap: 1e12, hashAlgo: 'sha512', formatCheck: null }),
    (err: unknown) => err instanceof StoreError && /ENOTDIR/.test(err.message),
  );
  assert.ok(Date.now() - started < 5000);
});

test('a driver that stops reading its input (destroyed without an error) and then fails: the store error, not a cut-off source', async () => {
  // As the Swift and S3 drivers stop reading when their service fails mid-write.
  class FailingMidWay extends FileStoreDriver {
    override async write(_key: string, source: Readable): Promise<never> {
      await new Promise((resolve) => source.once('readable', resolve));
      source.read(); // some data taken, then the service "fails"
      source.destroy();
      throw new StoreError('UNAVAILABLE', 'the storage went away');
    }
  }
  for (const chunkCount of [1, 50]) {
    const store = new Store('s', new FailingMidWay(path.join(root, 'failing')));
    const source = Readable.from(Array.from({ length: chunkCount }, () => Buffer.alloc(64 * 1024, 1)));
    await assert.rejects(
      ingest({ source, key: 'k', store, sizeCap: 1e12, hashAlgo: 'sha512', formatCheck: null }),
      (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE',
    );
  }
  await assert.rejects(
    ingest({
      source: endless(),
      key: 'k',
      store: new Store('s', new FailingMidWay(path.join(root, 'failing'))),
      sizeCap: 1e12,
      hashAlgo: 'sha512',
      formatCheck: null,
    }),
    (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE',
  );
});

test('the size cap cuts an endless source, and nothing is left in the store', async () => {
  const dir = path.join(root, 'capped');
  const store = new Store('s', new FileStoreDriver(dir));
  await assert.rejects(
    ingest({ source: endless(), key: 'k', store, sizeCap: 5 << 20, hashAlgo: 'sha512', formatCheck: null }),
    (err: unknown) => err instanceof GazeError && err.status === 413,
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('a hash worker that dies mid-stream fails that ingest (no hang, nothing stored); the next one gets a new worker', async () => {
  const dir = path.join(root, 'worker-loss');
  const store = new Store('s', new FileStoreDriver(dir));
  const running = ingest({ source: endless(), key: 'lost', store, sizeCap: 1e12, hashAlgo: 'sha512', formatCheck: null });
  const outcome = running.then(
    () => null,
    (err: Error) => err,
  );
  await new Promise((r) => setTimeout(r, 200));
  await closeHashWorkers(); // terminates the workers under the running job
  assert.match(String(await outcome), /hash worker was lost/);
  assert.deepEqual(readdirSync(dir), []);
  const data = Buffer.alloc(5_000_000, 3);
  const result = await ingest({ source: Readable.from([data]), key: 'after', store, sizeCap: 1e9, hashAlgo: 'sha512', formatCheck: null });
  assert.equal(result.digests!.hashValue, createHash('sha512').update(data).digest('hex'));
});
