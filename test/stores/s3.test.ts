// The s3 driver against a real Swift with its S3 API (s3api), started once for this file.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3StoreDriver } from '../../src/stores/s3.ts';
import { createS3Driver } from '../../src/stores/s3-options.ts';
import type { StoreDriver } from '../../src/stores/driver.ts';
import { StoreError } from '../../src/stores/driver.ts';
import { ConfigError, type Config } from '../../src/config/index.ts';
import { StoreAddDisabled } from '../../src/stores/add-disabled.ts';
import { startSwift, type RunningSwift } from '../helpers/swift.ts';
import { freePort } from '../helpers/keystone.ts';
import { runStoreConformance } from './conformance.ts';
import { Store } from '../../src/stores/store.ts';
import { FileStoreDriver } from '../../src/stores/file.ts';
import { StagingArea } from '../../src/import/staging-area.ts';
import { ImagesRepo } from '../../src/db/repos/images.ts';
import { TasksRepo } from '../../src/db/repos/tasks.ts';
import { sweepOrphanedParts } from '../../src/services/upload-recovery.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { createTestEngine } from '../helpers/databases.ts';
import { imageRecord } from '../helpers/images.ts';
import { taskRow } from '../helpers/tasks.ts';
import { chunks, failingAfter, stallingAfter } from './sources.ts';
import { startCuttingProxy } from '../helpers/cutting-proxy.ts';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT } from '../helpers/http.ts';
import { pino } from 'pino';

const MiB = 1024 * 1024;
let swift: RunningSwift;
let admin: S3Client;
let n = 0;

before(async () => {
  swift = await startSwift();
  console.log(`# swift started in ${swift.startMs} ms`);
  admin = new S3Client({
    endpoint: swift.s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: swift.s3.accessKey, secretAccessKey: swift.s3.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});
after(async () => {
  admin?.destroy();
  await swift?.stop();
});

function bucketName(): string {
  return `gaze-${process.pid}-${n++}-${randomBytes(3).toString('hex')}`;
}

async function freshDriver(opts: { partSize?: number; queueSize?: number; largeObjectSize?: number } = {}): Promise<S3StoreDriver> {
  const bucket = bucketName();
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  return new S3StoreDriver({ endpoint: swift.s3.endpoint, accessKey: swift.s3.accessKey, secretKey: swift.s3.secretKey, bucket, ...opts });
}

/**
 * Everything the bucket holds: objects, multipart uploads in progress, and the segments s3api keeps in
 * the hidden `<bucket>+segments` container (parts of unfinished uploads and of multipart objects).
 */
async function listAll(driver: StoreDriver): Promise<string[]> {
  const bucket = (driver as S3StoreDriver).bucket;
  const found: string[] = [];
  let token: string | undefined;
  do {
    const page = await admin.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) found.push(o.Key!);
    token = page.NextContinuationToken;
  } while (token);
  const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of uploads.Uploads ?? []) found.push(`upload:${u.Key}:${u.UploadId}`);
  for (const segment of (await swift.listContainer(`${bucket}+segments`)) ?? []) found.push(`segment:${segment}`);
  return found.sort();
}

async function uploadsInProgress(driver: S3StoreDriver): Promise<number> {
  const res = await admin.send(new ListMultipartUploadsCommand({ Bucket: driver.bucket }));
  return res.Uploads?.length ?? 0;
}

/** The keys of the multipart uploads in progress in the driver's bucket, sorted. */
async function pendingUploads(driver: S3StoreDriver): Promise<string[]> {
  const res = await admin.send(new ListMultipartUploadsCommand({ Bucket: driver.bucket }));
  return (res.Uploads ?? []).map((u) => u.Key!).sort();
}

const config = {} as Config;

runStoreConformance({ name: 's3', make: () => freshDriver(), listAll });
// Every write with its size (below large_object_size): each is one streamed PUT.
runStoreConformance({ name: 's3 (known sizes: one PUT each)', make: () => freshDriver(), listAll, knownSizes: true });

test('s3: a multi-part object (5 MiB parts, 12 MiB) round-trips, ranges cross part boundaries, delete removes its segments', async () => {
  const driver = await freshDriver({ partSize: 5 * MiB });
  const data = randomBytes(12 * MiB + 123);
  const { url, size } = await driver.write('big', chunks(data, 64 * 1024));
  assert.equal(size, data.length);
  assert.equal(url, `s3://${driver.bucket}/big`);
  assert.equal(await driver.stat(url), data.length);
  assert.ok((await buffer(await driver.read(url))).equals(data));
  const cross = { start: 5 * MiB - 10, end: 10 * MiB + 9 };
  assert.ok((await buffer(await driver.read(url, cross))).equals(data.subarray(cross.start, cross.end + 1)));
  // s3api stores the three parts as segments of a static large object.
  const listed = await listAll(driver);
  assert.equal(listed.filter((name) => name.startsWith('segment:')).length, 3);
  assert.equal(await uploadsInProgress(driver), 0);
  await driver.delete(url);
  assert.deepEqual(await listAll(driver), []);
});

test('s3: aborting a multi-part write mid-way leaves no multipart upload or segment behind', async () => {
  const driver = await freshDriver({ partSize: 5 * MiB });
  const controller = new AbortController();
  // 11 MiB quickly (two whole parts go out), then the client stalls and never finishes.
  const stalling = stallingAfter(11 * MiB);
  const writing = driver.write('aborted-big', stalling, { signal: controller.signal });
  writing.catch(() => {});
  // Wait until the multipart upload really exists, so the abort has something to clean up.
  const deadline = Date.now() + 20_000;
  while ((await uploadsInProgress(driver)) === 0) {
    assert.ok(Date.now() < deadline, 'the multipart upload never started');
    await new Promise((r) => setTimeout(r, 20));
  }
  controller.abort();
  await assert.rejects(writing, (err: unknown) => err instanceof StoreError && err.code === 'ABORTED');
  assert.ok(stalling.destroyed, 'the source is released');
  assert.deepEqual(await listAll(driver), []);
});

test('s3: an abort while the server still finishes a part it got whole leaves no segment behind', async () => {
  // A part whose body the server has whole is stored even if its client stops waiting; an abort of the
  // multipart upload made before that part is stored does not remove it. Each part's last byte is held
  // back here, as a busy server would finish it late.
  const proxy = await startCuttingProxy(swift.s3.endpoint, { keepHost: true });
  try {
    const bucket = bucketName();
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    const driver = new S3StoreDriver({ endpoint: proxy.url, accessKey: swift.s3.accessKey, secretKey: swift.s3.secretKey, bucket, partSize: 5 * MiB });
    proxy.holdBodyEnds(2, 'PUT', /[?&]partNumber=/, 1_000);
    const controller = new AbortController();
    const stalling = stallingAfter(11 * MiB); // two whole parts, then nothing
    const writing = driver.write('finished-late', stalling, { signal: controller.signal });
    writing.catch(() => {});
    const deadline = Date.now() + 20_000;
    while (proxy.holding < 2) {
      assert.ok(Date.now() < deadline, 'the two parts never reached the server');
      await new Promise((r) => setTimeout(r, 10));
    }
    controller.abort();
    await assert.rejects(writing, (err: unknown) => err instanceof StoreError && err.code === 'ABORTED');
    await proxy.settled();
    assert.deepEqual(await listAll(driver), []);
    await driver.close();
  } finally {
    await proxy.close();
  }
});

test('s3: a source that fails after several parts leaves nothing and its own error reaches the caller', async () => {
  const driver = await freshDriver({ partSize: 5 * MiB });
  const failing = failingAfter(randomBytes(12 * MiB), 'connection reset by peer');
  await assert.rejects(
    driver.write('cut-big', failing),
    (err: unknown) => !(err instanceof StoreError) && (err as Error).message === 'connection reset by peer',
  );
  assert.deepEqual(await listAll(driver), []);
});

test('s3: data of a known size below s3_store_large_object_size is one PUT; from that size on, parts', async () => {
  const driver = await freshDriver({ partSize: 5 * MiB, largeObjectSize: 12 * MiB + 1 });
  const data = randomBytes(12 * MiB);
  const { url, size } = await driver.write('one-put', chunks(data, 64 * 1024), { sizeHint: data.length });
  assert.equal(size, data.length);
  assert.ok((await buffer(await driver.read(url))).equals(data));
  const small = randomBytes(3 * MiB); // within one part
  await driver.write('small', chunks(small, 64 * 1024), { sizeHint: small.length });
  assert.ok((await buffer(await driver.read(driver.urlFor('small')))).equals(small));
  assert.deepEqual(await listAll(driver), ['one-put', 'small'], 'one object each, no segments of a multipart upload');
  await driver.write('in-parts', chunks(Buffer.concat([data, Buffer.from('!')]), 64 * 1024), { sizeHint: data.length + 1 });
  assert.equal((await listAll(driver)).filter((name) => name.startsWith('segment:in-parts/')).length, 3);
  assert.equal(await uploadsInProgress(driver), 0);
});

test('s3: a one-PUT write whose data is not the size announced fails cleanly and leaves nothing', { timeout: 60_000 }, async () => {
  // 3 MiB within a part of 5 (sent from memory), 6 MiB above it (streamed): the same rule for both.
  const driver = await freshDriver({ partSize: 5 * MiB, largeObjectSize: 100 * MiB });
  for (const data of [randomBytes(3 * MiB), randomBytes(6 * MiB)]) {
    const wrongLength = (err: unknown) => err instanceof StoreError && err.code === 'FAILED' && /not the \d+ bytes announced/.test(err.message);
    await assert.rejects(driver.write('short', chunks(data, 64 * 1024), { sizeHint: data.length + 1 }), wrongLength);
    await assert.rejects(driver.write('long', chunks(data, 64 * 1024), { sizeHint: data.length - 1 }), wrongLength);
    // More data after exactly the announced bytes: the PUT must not have been completed meanwhile.
    await assert.rejects(driver.write('longer', Readable.from([data, Buffer.from('more')]), { sizeHint: data.length }), wrongLength);
    await assert.rejects(
      driver.write('cut', failingAfter(data, 'connection reset by peer'), { sizeHint: 2 * data.length }),
      (err: unknown) => !(err instanceof StoreError) && (err as Error).message === 'connection reset by peer',
    );
    assert.deepEqual(await listAll(driver), []);
    // An empty chunk after the last bytes (an object-mode source) is no data: the write is whole.
    await driver.write('trailing-empty', Readable.from([data, Buffer.alloc(0)]), { sizeHint: data.length });
    assert.ok((await buffer(await driver.read(driver.urlFor('trailing-empty')))).equals(data));
    await driver.delete(driver.urlFor('trailing-empty'));
  }
  const controller = new AbortController();
  const stalling = stallingAfter(MiB);
  const writing = driver.write('aborted', stalling, { signal: controller.signal, sizeHint: 10 * MiB });
  writing.catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  controller.abort();
  await assert.rejects(writing, (err: unknown) => err instanceof StoreError && err.code === 'ABORTED');
  assert.deepEqual(await listAll(driver), []);
});

test('s3: a one-PUT write within a part is sent again after a 503; a streamed one is not, fails cleanly, and the SDK stays out of the console', async () => {
  const bucket = bucketName();
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  const proxy = await startCuttingProxy(swift.s3.endpoint, { keepHost: true });
  const warnings: string[] = [];
  const driver = new S3StoreDriver({
    endpoint: proxy.url,
    accessKey: swift.s3.accessKey,
    secretKey: swift.s3.secretKey,
    bucket,
    partSize: 5 * MiB,
    warn: (message) => void warnings.push(message),
  });
  const slowDown = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
  const puts = (key: string) => proxy.requests.filter((r) => r.method === 'PUT' && new RegExp(`/${key}(\\?|$)`).test(r.path)).length;
  try {
    const small = randomBytes(MiB);
    proxy.refuse(1, 'PUT', /\/small(\?|$)/, 503, slowDown);
    await driver.write('small', chunks(small, 64 * 1024), { sizeHint: small.length });
    assert.equal(puts('small'), 2, 'refused once, then sent again');
    assert.ok((await buffer(await driver.read(driver.urlFor('small')))).equals(small));

    const big = randomBytes(6 * MiB);
    proxy.refuse(1, 'PUT', /\/big(\?|$)/, 503, slowDown);
    await assert.rejects(
      driver.write('big', chunks(big, 64 * 1024), { sizeHint: big.length }),
      (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE' && /SlowDown/.test(err.message),
    );
    assert.equal(puts('big'), 1, 'a stream is sent once');
    assert.deepEqual(warnings, []);
    assert.equal(await driver.stat(driver.urlFor('big')), null);
  } finally {
    await driver.close();
    await proxy.close();
  }
});

test('s3: rewriting a multi-part object with a small one replaces it (Swift keeps the old segments)', async () => {
  const driver = await freshDriver({ partSize: 5 * MiB });
  await driver.write('swap', chunks(randomBytes(11 * MiB), MiB));
  const { url } = await driver.write('swap', Readable.from([Buffer.from('small now')]));
  assert.equal((await buffer(await driver.read(url))).toString(), 'small now');
  const listed = await listAll(driver);
  assert.deepEqual(
    listed.filter((name) => !name.startsWith('segment:')),
    ['swap'],
  );
  // Swift's s3api (2.30) does not delete the segments of a multipart object that a PUT overwrites
  // (a DELETE does): a known Swift limitation that AWS S3, Ceph and MinIO do not have. The driver cannot
  // reach the hidden `<bucket>+segments` container through the S3 API. If Swift fixes this, this
  // assertion fails and can become deepEqual(listed, ['swap']).
  assert.equal(listed.filter((name) => name.startsWith('segment:swap/')).length, 3);
});

test('s3: createS3Driver reads Glance option names and creates the bucket on the first write', async () => {
  const bucket = bucketName();
  const driver = createS3Driver(
    'images',
    {
      s3_store_host: swift.s3.endpoint,
      s3_store_access_key: swift.s3.accessKey,
      s3_store_secret_key: swift.s3.secretKey,
      s3_store_bucket: bucket,
      s3_store_create_bucket_on_put: 'True',
      s3_store_large_object_chunk_size: '8',
      s3_store_large_object_size: '50',
      s3_store_thread_pools: '3',
    },
    config,
  );
  assert.equal(driver.type, 's3');
  assert.equal(driver.partSize, 8 * MiB);
  assert.equal(driver.queueSize, 3);
  // Discovery (/v2/info/stores/detail) shows sizes in bytes, as Glance's does.
  assert.equal(driver.largeObjectSize, 50 * MiB);
  assert.deepEqual(driver.properties(), { s3_store_large_object_size: 50 * MiB, s3_store_large_object_chunk_size: 8 * MiB, s3_store_thread_pools: 3 });
  await assert.rejects(admin.send(new HeadBucketCommand({ Bucket: bucket })));
  const { url } = await driver.write('first', Readable.from([Buffer.from('hello')]));
  await admin.send(new HeadBucketCommand({ Bucket: bucket }));
  assert.equal((await buffer(await driver.read(url))).toString(), 'hello');

  // Values oslo.config cannot read stop the start, as they stop Glance's.
  const base = { s3_store_host: swift.s3.endpoint, s3_store_access_key: 'a', s3_store_secret_key: 'b', s3_store_bucket: 'c' };
  assert.throws(
    () => createS3Driver('x', { ...base, s3_store_large_object_chunk_size: '8M' }, config),
    (err: unknown) =>
      err instanceof ConfigError && !(err instanceof StoreAddDisabled) && /s3_store_large_object_chunk_size: '8M' is not an integer/.test(err.message),
  );
});

test("s3: options glance_store refuses (missing, out of range) disable adding, in glance_store's words; sizes out of range still read", async () => {
  const base = { s3_store_host: swift.s3.endpoint, s3_store_access_key: swift.s3.accessKey, s3_store_secret_key: swift.s3.secretKey, s3_store_bucket: 'c' };
  const disabled = (options: Record<string, string>): StoreAddDisabled => {
    try {
      createS3Driver('x', options, config);
    } catch (err) {
      if (err instanceof StoreAddDisabled) return err;
      throw err;
    }
    assert.fail(`created a driver from ${JSON.stringify(options)}`);
  };
  for (const option of ['s3_store_host', 's3_store_access_key', 's3_store_secret_key', 's3_store_bucket']) {
    for (const value of [undefined, ' ']) {
      const options: Record<string, string> = { ...base };
      if (value === undefined) delete options[option];
      else options[option] = value;
      const err = disabled(options);
      assert.equal(err.reason, `Could not find ${option} in configuration options.`);
      assert.equal(err.readable, null, 'no place to read from');
    }
  }
  const cases: Array<[Record<string, string>, string]> = [
    [{ s3_store_large_object_size: '0' }, 'Could not find s3_store_large_object_size in configuration options.'],
    [{ s3_store_large_object_size: '-3' }, 's3_store_large_object_size must be positive. -3'],
    [{ s3_store_large_object_chunk_size: '0' }, 'Could not find s3_store_large_object_chunk_size in configuration options.'],
    [{ s3_store_large_object_chunk_size: '4' }, 's3_store_large_object_chunk_size must be at least 5 MB.'],
    [{ s3_store_large_object_chunk_size: '5121' }, 's3_store_large_object_chunk_size must be at most 5120 MB (S3 takes no larger part).'],
    [{ s3_store_thread_pools: '0' }, 'Could not find s3_store_thread_pools in configuration options.'],
    [{ s3_store_thread_pools: '-2' }, 's3_store_thread_pools must be a positive integer. -2'],
  ];
  const source = await freshDriver();
  const { url } = await source.write('kept', Readable.from([Buffer.from('still readable')]));
  for (const [sizes, reason] of cases) {
    const err = disabled({ ...base, s3_store_bucket: source.bucket, ...sizes });
    assert.equal(err.reason, reason);
    assert.ok(err.readable instanceof S3StoreDriver);
    assert.equal(err.readable.partSize, 64 * MiB, 'the default sizes stand in');
    assert.equal((await buffer(await err.readable.read(url))).toString(), 'still readable');
  }
  // Within range, at the bounds: a driver.
  assert.equal(createS3Driver('x', { ...base, s3_store_large_object_chunk_size: '5', s3_store_thread_pools: '1' }, config).partSize, 5 * MiB);
});

test("s3: the signing region is an AWS host's own (s3-<region>.amazonaws.com) unless s3_store_region_name says, as glance_store reads it", async () => {
  const keys = { s3_store_access_key: 'a', s3_store_secret_key: 'b', s3_store_bucket: 'c' };
  const regionOf = (options: Record<string, string>) => createS3Driver('x', { ...keys, ...options }, config).client.config.region();
  assert.equal(await regionOf({ s3_store_host: 's3-eu-west-1.amazonaws.com' }), 'eu-west-1');
  assert.equal(await regionOf({ s3_store_host: 'https://s3-ap-northeast-2.amazonaws.com:443/' }), 'ap-northeast-2');
  assert.equal(await regionOf({ s3_store_host: 's3-cn-north-1.amazonaws.com.cn' }), 'cn-north-1');
  assert.equal(await regionOf({ s3_store_host: 's3.amazonaws.com' }), 'us-east-1');
  assert.equal(await regionOf({ s3_store_host: swift.s3.endpoint }), 'us-east-1');
  assert.equal(await regionOf({ s3_store_host: 'other.s3-eu-west-1.amazonaws.com' }), 'us-east-1');
  assert.equal(await regionOf({ s3_store_host: 's3-eu-west-1.amazonaws.com', s3_store_region_name: 'eu-central-1' }), 'eu-central-1');
});

test('s3: a host without a scheme is reached over plain HTTP, as glance_store reaches it', async () => {
  const bucket = bucketName();
  const schemeless = swift.s3.endpoint.replace(/^http:\/\//, '');
  assert.notEqual(schemeless, swift.s3.endpoint);
  const driver = createS3Driver(
    'x',
    {
      s3_store_host: schemeless,
      s3_store_access_key: swift.s3.accessKey,
      s3_store_secret_key: swift.s3.secretKey,
      s3_store_bucket: bucket,
      s3_store_create_bucket_on_put: 'true',
    },
    config,
  );
  const { url } = await driver.write('plain', Readable.from([Buffer.from('over http')]));
  assert.equal((await buffer(await driver.read(url))).toString(), 'over http');
  await driver.close();
});

test('s3: a missing bucket without create_bucket_on_put fails the write clearly', async () => {
  const driver = new S3StoreDriver({ endpoint: swift.s3.endpoint, accessKey: swift.s3.accessKey, secretKey: swift.s3.secretKey, bucket: bucketName() });
  await assert.rejects(
    driver.write('k', Readable.from([Buffer.from('x')])),
    (err: unknown) => err instanceof StoreError && err.code === 'FAILED' && /create_bucket_on_put/.test(err.message),
  );
});

test('s3: owns() matches its bucket only; urls carry no credentials; Glance-style urls of this host are read', async () => {
  const driver = await freshDriver();
  const { url } = await driver.write('img', Readable.from([Buffer.from('data')]));
  assert.equal(url, `s3://${driver.bucket}/img`);
  assert.ok(!url.includes(swift.s3.secretKey));
  assert.ok(driver.owns(url));
  assert.ok(!driver.owns('s3://other-bucket/img'));
  assert.ok(!driver.owns(`file:///${driver.bucket}/img`));
  assert.ok(!driver.owns(`s3://${driver.bucket}/`));
  assert.ok(!driver.owns(`s3://${driver.bucket}/../img`));
  const host = new URL(swift.url).host;
  const glance = `s3://test%3Atester:wrong/secret@${host}/${driver.bucket}/img`;
  assert.ok(driver.owns(glance));
  assert.ok(!driver.owns(`s3://a:b@elsewhere.example:80/${driver.bucket}/img`));
  assert.equal((await buffer(await driver.read(glance))).toString(), 'data');
  assert.equal(await driver.stat(`s3+http://${host}/${driver.bucket}/img`), 4);
  await assert.rejects(driver.read('s3://other-bucket/img'), (err: unknown) => err instanceof StoreError && err.code === 'INVALID_URL');
});

test('s3: errors map to StoreError codes (NOT_FOUND, PERMISSION, UNAVAILABLE)', async () => {
  const driver = await freshDriver();
  await assert.rejects(driver.read(`s3://${driver.bucket}/absent`), (err: unknown) => err instanceof StoreError && err.code === 'NOT_FOUND');
  assert.equal(await driver.stat(`s3://${driver.bucket}/absent`), null);
  await driver.delete(`s3://${driver.bucket}/absent`);

  const wrong = new S3StoreDriver({ endpoint: swift.s3.endpoint, accessKey: swift.s3.accessKey, secretKey: 'not-the-secret', bucket: driver.bucket });
  await assert.rejects(wrong.read(`s3://${driver.bucket}/x`), (err: unknown) => err instanceof StoreError && err.code === 'PERMISSION');
  await assert.rejects(wrong.write('x', Readable.from([Buffer.from('x')])), (err: unknown) => err instanceof StoreError && err.code === 'PERMISSION');

  const closed = await freePort();
  const down = new S3StoreDriver({ endpoint: `http://127.0.0.1:${closed}`, accessKey: 'a', secretKey: 'b', bucket: 'b', maxAttempts: 1 });
  await assert.rejects(down.stat('s3://b/x'), (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE');
  await assert.rejects(down.write('x', Readable.from([Buffer.from('x')])), (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE');
});

test('s3: a server that accepts connections and never answers fails requests after the timeout (UNAVAILABLE), not never', async () => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as AddressInfo;
  const driver = new S3StoreDriver({ endpoint: `http://127.0.0.1:${port}`, accessKey: 'a', secretKey: 'b', bucket: 'b', maxAttempts: 1, timeoutMs: 300 });
  try {
    const unavailable = (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE';
    await assert.rejects(driver.stat('s3://b/x'), unavailable);
    await assert.rejects(driver.read('s3://b/x'), unavailable);
    await assert.rejects(driver.write('x', Readable.from([Buffer.from('x')]), { sizeHint: 1 }), unavailable);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('s3: a download read slowly is not cut by the timeout: only the wait for the answer is bounded', async () => {
  const size = 8 * MiB;
  const data = randomBytes(size);
  // A server that answers every GET with the data at once (no S3 semantics needed for this).
  const server = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream', etag: '"x"' });
    res.end(req.method === 'HEAD' ? undefined : data);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const driver = new S3StoreDriver({ endpoint: `http://127.0.0.1:${port}`, accessKey: 'a', secretKey: 'b', bucket: 'b', maxAttempts: 1, timeoutMs: 300 });
  try {
    const body = await driver.read('s3://b/x');
    const chunks: Buffer[] = [];
    const iterator = body[Symbol.asyncIterator]();
    chunks.push((await iterator.next()).value as Buffer);
    // The reader stops for three timeouts' worth, as a slow client does (the socket idles meanwhile).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) chunks.push(next.value as Buffer);
    assert.ok(Buffer.concat(chunks).equals(data));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('s3: with a known size the part is the smallest that fits 10,000 parts (8 MiB at least, beyond the configured size when needed); unknown: the configured size', () => {
  const driver = new S3StoreDriver({ endpoint: 'http://127.0.0.1:1', accessKey: 'a', secretKey: 'b', bucket: 'x', partSize: 64 * 1048576 });
  const MiB = 1048576;
  assert.equal(driver.partSizeFor(undefined), 64 * MiB);
  assert.equal(driver.partSizeFor(512 * MiB), 8 * MiB);
  assert.equal(driver.partSizeFor(100 * 1024 * MiB), 12 * MiB, '100 GiB in at most 9,000 parts of 12 MiB');
  // Beyond 64 MiB × 10,000, the part grows: S3 refuses the 10,001st part after all the others were sent.
  assert.equal(driver.partSizeFor(900 * 1024 * MiB), 103 * MiB);
  for (const gib of [60, 100, 700, 900, 4096]) assert.ok(Math.ceil((gib * 1024 * MiB) / driver.partSizeFor(gib * 1024 * MiB)) <= 10_000, `${gib} GiB`);
});

test("s3: the multipart uploads of writes that died are aborted; those of images being written, new ones, and another service's, stay", async () => {
  const driver = await freshDriver();
  const store = new Store('objects', driver);
  const staging = StagingArea.inStore(store, { workDir: path.join(tmpdir(), `gaze-s3-work-${process.pid}`), hashAlgo: 'sha512', dedicated: false });
  const engine = createTestEngine('sqlite');
  try {
    const db = await engine.open();
    const images = new ImagesRepo(db);
    const tasks = new TasksRepo(db);
    const saving = imageRecord({ status: 'saving' });
    const staged = imageRecord({ status: 'uploading' });
    const copying = imageRecord({ status: 'active' });
    const idle = imageRecord({ status: 'queued' });
    for (const image of [saving, staged, copying, idle]) await images.insert(image);
    await tasks.insert(taskRow({ status: 'processing', image_id: copying.id }));
    const begin = (key: string) => admin.send(new CreateMultipartUploadCommand({ Bucket: driver.bucket, Key: key }));
    // `theirs`: no image of this service's (a Glance writing into a shared bucket).
    const theirs = crypto.randomUUID();
    const keys = [saving.id, `os_glance_staging-${staged.id}`, copying.id, idle.id, `os_glance_staging-${idle.id}`, theirs];
    for (const key of keys) await begin(key);
    await new Promise((r) => setTimeout(r, 1100)); // Swift's s3api gives Initiated in whole seconds, rounded up

    await sweepOrphanedParts({ images, tasks, log: silentLogger() }, [store, staging.store], staging, 0);
    assert.deepEqual(await pendingUploads(driver), [saving.id, copying.id, `os_glance_staging-${staged.id}`, theirs].sort());

    await begin('just-begun');
    await sweepOrphanedParts({ images, tasks, log: silentLogger() }, [store], staging, 60_000);
    assert.ok((await pendingUploads(driver)).includes('just-begun'), 'a write begun a moment ago may not show on its image yet');

    // A file store shared by several hosts: a dead host's temporary files, judged by the same rule.
    const filesDir = path.join(tmpdir(), `gaze-s3-files-${process.pid}`);
    const files = new Store('files', new FileStoreDriver(filesDir));
    await files.write('kept', Readable.from([Buffer.from('whole')]));
    const longAgo = new Date(Date.now() - 120_000);
    for (const key of [saving.id, idle.id]) {
      const partial = path.join(filesDir, `.partial-${key}-1.0badc0de-${Date.now()}`); // another host's
      writeFileSync(partial, 'half');
      utimesSync(partial, longAgo, longAgo);
    }
    await sweepOrphanedParts({ images, tasks, log: silentLogger() }, [files], staging, 60_000);
    assert.deepEqual(
      readdirSync(filesDir)
        .map((name) => name.split('-1.0badc0de-')[0])
        .sort(),
      [`.partial-${saving.id}`, 'kept'].sort(),
      'the image still saving keeps its file',
    );
    rmSync(filesDir, { recursive: true, force: true });
  } finally {
    await engine.cleanup();
  }
});

test("s3: another image's staged data, in the store staging shares with images, is never taken as a location", async () => {
  const bucket = bucketName();
  const gaze = await startGazeInProcess({
    DEFAULT: { enabled_backends: 'objects:s3', staging_store: 'objects', show_multiple_locations: 'True' },
    glance_store: { default_backend: 'objects' },
    objects: {
      s3_store_host: swift.s3.endpoint,
      s3_store_access_key: swift.s3.accessKey,
      s3_store_secret_key: swift.s3.secretKey,
      s3_store_bucket: bucket,
      s3_store_create_bucket_on_put: 'True',
    },
  });
  try {
    const api = client(gaze.url);
    const owner = { project: 'owner-project', roles: 'member,reader', user: 'owner' };
    const other = { project: 'other-project', roles: 'member,reader', user: 'other' };
    const staged = await api.createImage({ name: 'staged', visibility: 'public' }, { ...owner, roles: 'admin,member,reader' });
    const secret = Buffer.from('staged bytes nobody else may read');
    const stage = await api.put(`/v2/images/${staged.id}/stage`, { body: secret, as: owner, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(stage.status, 204, stage.text);
    // The staged object is there, under the staging prefix.
    const objects = await admin.send(new ListObjectsV2Command({ Bucket: bucket }));
    assert.deepEqual(
      (objects.Contents ?? []).map((o) => o.Key),
      [`os_glance_staging-${staged.id}`],
    );

    const mine = await api.createImage({ name: 'thief' }, other);
    const add = await api.patch(
      `/v2/images/${mine.id}`,
      [{ op: 'add', path: '/locations/-', value: { url: `s3://${bucket}/os_glance_staging-${staged.id}`, metadata: {} } }],
      {
        as: other,
      },
    );
    assert.equal(add.status, 400, add.text);
    assert.equal((await api.get(`/v2/images/${mine.id}`, { as: other })).json.status, 'queued');
    // The staged data is intact: its own import still makes the image.
    assert.equal((await api.post(`/v2/images/${staged.id}/import`, { method: { name: 'glance-direct' } }, { as: owner })).status, 202);
    for (let i = 0; i < 100 && (await api.get(`/v2/images/${staged.id}`, { as: owner })).json.status !== 'active'; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal((await api.get(`/v2/images/${staged.id}/file`, { as: owner })).text, secret.toString());
  } finally {
    await gaze.stop();
  }
});

test(
  's3: stores whose options glance_store refuses are kept as Glance keeps them: said at start, listed, writes refused with 410, imports fail that store, locations read',
  { timeout: 60_000 },
  async () => {
    const held = bucketName();
    await admin.send(new CreateBucketCommand({ Bucket: held }));
    await admin.send(new PutObjectCommand({ Bucket: held, Key: 'before', Body: 'written before the options changed' }));
    const credentials = { s3_store_access_key: swift.s3.accessKey, s3_store_secret_key: swift.s3.secretKey };
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const gaze = await startGazeInProcess(
      {
        DEFAULT: { enabled_backends: 'good:s3, nohost:s3, small:s3', show_multiple_locations: 'True' },
        glance_store: { default_backend: 'good' },
        good: {
          s3_store_host: swift.s3.endpoint.replace(/^http:\/\//, ''),
          ...credentials,
          s3_store_bucket: bucketName(),
          s3_store_create_bucket_on_put: 'True',
        },
        nohost: { ...credentials, s3_store_bucket: bucketName() },
        small: { s3_store_host: swift.s3.endpoint, ...credentials, s3_store_bucket: held, s3_store_large_object_chunk_size: '4' },
        os_glance_staging_store: { filesystem_store_datadir: '__DIR__/staging' },
      },
      { log },
    );
    try {
      const said = (store: string) => lines.filter((l) => l.store === store && l.level === 40).map((l) => l.msg);
      assert.deepEqual(said('nohost'), ['Failed to configure store correctly: Could not find s3_store_host in configuration options. Disabling add method.']);
      assert.deepEqual(said('small'), ['Failed to configure store correctly: s3_store_large_object_chunk_size must be at least 5 MB. Disabling add method.']);
      assert.deepEqual(said('good'), [
        `s3_store_host ${swift.s3.endpoint.replace(/^http:\/\//, '')} names no scheme: it is reached over plain HTTP, as glance_store reaches it (write https:// for TLS)`,
      ]);
      const api = client(gaze.url);
      // Listed as Glance lists them: not read-only.
      assert.deepEqual((await api.get('/v2/info/stores')).json.stores, [{ id: 'good', default: 'true' }, { id: 'nohost' }, { id: 'small' }]);

      const image = await api.createImage();
      for (const store of ['nohost', 'small']) {
        const refused = await api.put(`/v2/images/${image.id}/file`, {
          body: 'x',
          headers: { 'content-type': 'application/octet-stream', 'x-image-meta-store': store, ...JSON_ACCEPT },
        });
        expectError(refused, 410, 'Error in store configuration. Adding images to store is disabled.');
        assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'queued');
      }
      // The default store, its host given without a scheme, takes the data over plain HTTP.
      const data = randomBytes(32 * 1024).toString('hex');
      assert.equal((await api.upload(image.id, data)).status, 204);
      assert.equal((await api.get(`/v2/images/${image.id}/file`)).text, data);

      // A copy to the disabled store is taken and fails that store, as in Glance.
      const copy = await api.post(`/v2/images/${image.id}/import`, { method: { name: 'copy-image' }, stores: ['small'], all_stores_must_succeed: false });
      assert.equal(copy.status, 202, copy.text);
      let after = (await api.get(`/v2/images/${image.id}`)).json;
      for (let i = 0; i < 100 && after.os_glance_failed_import !== 'small'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = (await api.get(`/v2/images/${image.id}`)).json;
      }
      assert.equal(after.os_glance_failed_import, 'small');
      assert.equal(after.stores, 'good');
      assert.equal(after.status, 'active');

      // Data the store held before is still read, with the default sizes.
      const located = await api.createImage();
      const add = await api.patch(`/v2/images/${located.id}`, [{ op: 'add', path: '/locations/-', value: { url: `s3://${held}/before`, metadata: {} } }]);
      assert.equal(add.status, 200, add.text);
      assert.equal(add.json.stores, 'small');
      assert.equal((await api.get(`/v2/images/${located.id}/file`)).text, 'written before the options changed');
    } finally {
      await gaze.stop();
    }
  },
);
