// The native swift driver (Swift API, tempauth, static large objects) against a real Swift started once
// for this file.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { SwiftStoreDriver, type SwiftStoreOptions } from '../../src/stores/swift.ts';
import { createSwiftDriver } from '../../src/stores/swift-options.ts';
import { StoreAddDisabled } from '../../src/stores/add-disabled.ts';
import { newWriteId } from '../../src/stores/swift-orphans.ts';
import type { StoreDriver } from '../../src/stores/driver.ts';
import { StoreError } from '../../src/stores/driver.ts';
import type { Config } from '../../src/config/index.ts';
import { startSwift, type RunningSwift } from '../helpers/swift.ts';
import { freePort } from '../helpers/keystone.ts';
import { startCuttingProxy } from '../helpers/cutting-proxy.ts';
import { runStoreConformance } from './conformance.ts';
import { chunks, failingAfter, stallingAfter } from './sources.ts';

const MiB = 1024 * 1024;
const config = {} as Config;
let swift: RunningSwift;
let n = 0;
const drivers: SwiftStoreDriver[] = [];

before(async () => {
  swift = await startSwift();
  console.log(`# swift started in ${swift.startMs} ms`);
});
after(async () => {
  await Promise.all(drivers.map((d) => d.close()));
  await swift?.stop();
});

function containerName(): string {
  return `gaze-${process.pid}-${n++}-${randomBytes(3).toString('hex')}`;
}

function driverFor(opts: Partial<Omit<SwiftStoreOptions, 'auth'>> & { key?: string; authUrl?: string } = {}): SwiftStoreDriver {
  const { key, authUrl, ...rest } = opts;
  const driver = new SwiftStoreDriver({
    container: containerName(),
    createContainerOnPut: true,
    ...rest,
    auth: { version: '1', url: authUrl ?? swift.swift.authUrl, user: swift.swift.user, key: key ?? swift.swift.key },
  });
  drivers.push(driver);
  return driver;
}

/** Object names in a container through the Swift API ([] when the container does not exist). */
async function listing(container: string): Promise<string[]> {
  return (await swift.listContainer(container)) ?? [];
}

/** Everything the store holds: objects and segments (of finished and unfinished writes). */
async function listAll(driver: StoreDriver): Promise<string[]> {
  const d = driver as SwiftStoreDriver;
  const objects = await listing(d.container);
  const segments = (await listing(d.segmentContainer)).map((name) => `segment:${name}`);
  return [...objects, ...segments].sort();
}

// 1 MiB segments: the conformance suite's 3 MiB object and its aborted write go through segments.
runStoreConformance({ name: 'swift', make: async () => driverFor({ segmentSize: MiB }), listAll });

// Every write with its size (below large_object_size): each is streamed as one object.
runStoreConformance({ name: 'swift (known sizes: one object each)', make: async () => driverFor({ segmentSize: MiB }), listAll, knownSizes: true });

test('swift: a large object (5 MiB segments, 12 MiB) round-trips, ranges cross segments, delete removes the segments', async () => {
  const driver = driverFor({ segmentSize: 5 * MiB });
  const data = randomBytes(12 * MiB + 123);
  const { url, size } = await driver.write('big', chunks(data, 64 * 1024));
  assert.equal(size, data.length);
  assert.equal(url, `swift://${driver.container}/big`);
  assert.equal(await driver.stat(url), data.length);
  assert.ok((await buffer(await driver.read(url))).equals(data));
  const cross = { start: 5 * MiB - 10, end: 10 * MiB + 9 };
  assert.ok((await buffer(await driver.read(url, cross))).equals(data.subarray(cross.start, cross.end + 1)));
  const listed = await listAll(driver);
  assert.equal(listed.filter((name) => name.startsWith('segment:big/')).length, 3);
  assert.deepEqual(
    listed.filter((name) => !name.startsWith('segment:')),
    ['big'],
  );
  await driver.delete(url);
  assert.deepEqual(await listAll(driver), []);
});

test('swift: data of exactly one segment, and of exactly two, make no empty segment', async () => {
  const driver = driverFor({ segmentSize: MiB });
  for (const [key, length] of [
    ['one', MiB],
    ['two', 2 * MiB],
  ] as const) {
    const data = randomBytes(length);
    const { url, size } = await driver.write(key, chunks(data, 100_000));
    assert.equal(size, length);
    assert.ok((await buffer(await driver.read(url))).equals(data));
  }
  const listed = await listAll(driver);
  assert.deepEqual(
    listed.filter((name) => !name.startsWith('segment:')),
    ['one', 'two'],
  );
  // One MiB fits the in-memory limit of a 1 MiB-segment store: a plain object. Two MiB: two segments.
  assert.equal(listed.filter((name) => name.startsWith('segment:one/')).length, 0);
  assert.equal(listed.filter((name) => name.startsWith('segment:two/')).length, 2);
});

test('swift: aborting a large write mid-way deletes the segments written so far', async () => {
  const driver = driverFor({ segmentSize: 5 * MiB });
  const controller = new AbortController();
  const stalling = stallingAfter(11 * MiB); // then the client stalls and never finishes
  const writing = driver.write('aborted-big', stalling, { signal: controller.signal });
  writing.catch(() => {});
  const deadline = Date.now() + 20_000;
  while ((await listing(driver.segmentContainer)).length < 2) {
    assert.ok(Date.now() < deadline, 'the segments never appeared');
    await new Promise((r) => setTimeout(r, 20));
  }
  controller.abort();
  await assert.rejects(writing, (err: unknown) => err instanceof StoreError && err.code === 'ABORTED');
  assert.ok(stalling.destroyed, 'the source is released');
  assert.deepEqual(await listAll(driver), []);
});

test('swift: a source that fails after several segments leaves nothing and its own error reaches the caller', async () => {
  const driver = driverFor({ segmentSize: 5 * MiB });
  const failing = failingAfter(randomBytes(12 * MiB), 'connection reset by peer');
  await assert.rejects(
    driver.write('cut-big', failing),
    (err: unknown) => !(err instanceof StoreError) && (err as Error).message === 'connection reset by peer',
  );
  assert.deepEqual(await listAll(driver), []);
});

test('swift: rewriting a large object deletes the old segments once the new object is in place', async () => {
  const driver = driverFor({ segmentSize: 2 * MiB });
  await driver.write('swap', chunks(randomBytes(5 * MiB), MiB));
  const second = randomBytes(3 * MiB);
  await driver.write('swap', chunks(second, MiB));
  const listed = await listAll(driver);
  assert.equal(listed.length, 3, listed.join(' '));
  assert.equal(listed.filter((name) => name.startsWith('segment:swap/')).length, 2);
  const { url } = await driver.write('swap', Readable.from([Buffer.from('small now')]));
  assert.equal((await buffer(await driver.read(url))).toString(), 'small now');
  assert.deepEqual(await listAll(driver), ['swap']);
});

test('swift: an expired or revoked token is renewed on 401', async () => {
  const driver = driverFor();
  const { url } = await driver.write('tok', Readable.from([Buffer.from('token test')]));
  // Replace the session with a token Swift does not know, as after a revocation.
  const internal = (driver as unknown as { swift: { current: Promise<{ storageUrl: string; token: string; expiresAt: number }> } }).swift;
  const session = await internal.current;
  internal.current = Promise.resolve({ ...session, token: 'AUTH_tk00000000000000000000000000000000' });
  assert.equal(await driver.stat(url), 10);
  assert.notEqual((await internal.current).token, 'AUTH_tk00000000000000000000000000000000');
});

test('swift: a token Swift no longer knows is renewed before a segmented write (its streamed segments cannot be sent twice)', async () => {
  const driver = driverFor({ segmentSize: MiB });
  await driver.write('first', Readable.from([Buffer.from('log in')]));
  const internal = (driver as unknown as { swift: { current: Promise<{ storageUrl: string; token: string; expiresAt: number }> } }).swift;
  const session = await internal.current;
  internal.current = Promise.resolve({ ...session, token: 'AUTH_tk00000000000000000000000000000000' });
  const data = randomBytes(3 * MiB + 7);
  const { url, size } = await driver.write('segmented', chunks(data, 65536));
  assert.equal(size, data.length);
  assert.ok((await buffer(await driver.read(url))).equals(data));
});

test('swift: createSwiftDriver reads Glance option names; the containers are created on the first write', async () => {
  const container = containerName();
  const driver = createSwiftDriver(
    'images',
    {
      swift_store_auth_address: swift.swift.authUrl,
      swift_store_user: swift.swift.user,
      swift_store_key: swift.swift.key,
      swift_store_container: container,
      swift_store_create_container_on_put: 'True',
      swift_store_large_object_chunk_size: '1',
    },
    config,
  );
  drivers.push(driver);
  assert.equal(driver.type, 'swift');
  assert.equal(driver.segmentSize, 1_024_000);
  assert.equal(driver.segmentContainer, `${container}_segments`);
  const data = randomBytes(2 * MiB + 5);
  const { url } = await driver.write('first', chunks(data, 65536));
  assert.ok((await buffer(await driver.read(url))).equals(data));
  assert.equal((await listing(`${container}_segments`)).length, 3);

  // Missing credentials disable adding (the registry keeps the store, as glance_store does); the rest stops the start.
  assert.throws(
    () => createSwiftDriver('x', { swift_store_auth_address: swift.swift.authUrl }, config),
    (err: unknown) => err instanceof StoreAddDisabled && /swift_store_user is required/.test(err.message),
  );
  const v3 = { swift_store_auth_address: 'http://127.0.0.1:5000/v3', swift_store_user: 'demo:demo', swift_store_key: 'k' };
  // Glance 25's default version, 2, is Keystone's v2.0 API, which Keystone no longer has.
  assert.throws(() => createSwiftDriver('x', { ...v3, swift_store_auth_version: '2' }, config), /auth_version 2 \(Keystone v2.0\) is not supported/);
  assert.throws(() => createSwiftDriver('x', { ...v3, swift_store_user: 'demo' }, config), /user 'demo' must be project:user/);
  assert.throws(() => createSwiftDriver('x', { ...v3, swift_store_multi_tenant: 'True' }, config), /swift_store_multi_tenant is not supported/);
});

test('swift: a missing container without create_container_on_put fails the write clearly', async () => {
  const driver = driverFor({ createContainerOnPut: false });
  await assert.rejects(
    driver.write('k', Readable.from([Buffer.from('x')])),
    (err: unknown) => err instanceof StoreError && err.code === 'FAILED' && /create_container_on_put/.test(err.message),
  );
});

test('swift: owns() matches its container only; urls carry no credentials; Glance-style urls are read', async () => {
  const driver = driverFor();
  const { url } = await driver.write('img', Readable.from([Buffer.from('data')]));
  assert.equal(url, `swift://${driver.container}/img`);
  assert.ok(driver.owns(url));
  assert.ok(!driver.owns('swift://other/img'));
  assert.ok(!driver.owns(`s3://${driver.container}/img`));
  assert.ok(!driver.owns(`swift://${driver.container}/`));
  const host = new URL(swift.url).host;
  const glance = `swift+http://test%3Atester:testing@${host}/auth/v1.0/${driver.container}/img`;
  assert.ok(driver.owns(glance));
  assert.equal((await buffer(await driver.read(glance))).toString(), 'data');
  assert.equal(await driver.stat(`swift+config://ref1/${driver.container}/img`), 4);
  await assert.rejects(driver.read('swift://other/img'), (err: unknown) => err instanceof StoreError && err.code === 'INVALID_URL');
});

/** A PUT straight to the Swift API (as Glance wrote its objects), in account AUTH_test. */
async function swiftPut(objectPath: string, body: string, headers: Record<string, string> = {}): Promise<void> {
  const auth = await fetch(swift.swift.authUrl, { headers: { 'X-Storage-User': swift.swift.user, 'X-Storage-Pass': swift.swift.key } });
  await auth.arrayBuffer();
  const res = await fetch(`${swift.url}/v1/AUTH_test${objectPath}`, {
    method: 'PUT',
    body,
    headers: { ...headers, 'X-Auth-Token': auth.headers.get('x-auth-token') ?? '' },
  });
  await res.arrayBuffer();
  assert.ok(res.status === 201 || res.status === 202, `PUT ${objectPath}: HTTP ${res.status}`);
}

test("swift: Glance's locations of another reference or auth address are not this store's, even with the same container", async () => {
  const driver = driverFor({ reference: 'ref1' });
  const { url } = await driver.write('img', Readable.from([Buffer.from('data')]));
  assert.ok(driver.owns(url));
  assert.ok(driver.owns(`swift+config://ref1/${driver.container}/img`));
  assert.ok(driver.owns(`swift+config://REF1/${driver.container}/img`), 'configparser-style references are found in any case here');
  assert.ok(!driver.owns(`swift+config://ref2/${driver.container}/img`));
  const host = new URL(swift.url).host;
  assert.ok(driver.owns(`swift+http://test%3Atester:testing@${host}/auth/v1.0/${driver.container}/img`));
  assert.ok(!driver.owns(`swift+http://test%3Atester:testing@other.example:8080/auth/v1.0/${driver.container}/img`));
  assert.ok(!driver.owns(`swift+http://test%3Atester:testing@${host}/v3/${driver.container}/img`));
  // Glance's oldest form, swift://user:key@auth/…, names its account by the auth address too.
  assert.ok(driver.owns(`swift://test%3Atester:testing@${host}/auth/v1.0/${driver.container}/img`));
  assert.ok(!driver.owns(`swift://test%3Atester:testing@other.example/auth/v1.0/${driver.container}/img`));
  // A default port written or not is the same auth address.
  const onDefaultPort = driverFor({ authUrl: 'https://keystone.example:443/v3', container: driver.container });
  assert.ok(onDefaultPort.owns(`swift+https://u:k@keystone.example:443/v3/${driver.container}/img`));
  assert.ok(onDefaultPort.owns(`swift+https://u:k@keystone.example/v3/${driver.container}/img`));
  assert.ok(onDefaultPort.owns(`swift+https://u:k@KEYSTONE.example/v3/${driver.container}/img`));
});

test("swift: with Glance's swift_store_multiple_containers_seed, its images in <container>_<id prefix> are read and deleted, their DLO segments with them", async () => {
  const driver = driverFor({ containerSeed: 3, reference: 'ref1' });
  const id = 'a-bcdef01-2345-6789-abcd-ef0123456789';
  const seeded = `${driver.container}_a-bc`; // three characters of the id, its dash not counted
  await swiftPut(`/${seeded}`, '');
  // A dynamic large object as Glance writes one: <id>-00001… beside a manifest naming <container>/<id>-.
  await swiftPut(`/${seeded}/${id}-00001`, 'first half, ');
  await swiftPut(`/${seeded}/${id}-00002`, 'second half');
  await swiftPut(`/${seeded}/${id}`, '', { 'X-Object-Manifest': `${seeded}/${id}-` });
  await swiftPut(`/${seeded}/unrelated`, 'stays');
  const location = `swift+config://ref1/${seeded}/${id}`;
  assert.ok(driver.owns(location));
  assert.ok(!driver.owns(`swift+config://ref1/${driver.container}_zz/${id}`), 'not the container of that id');
  assert.equal((await buffer(await driver.read(location))).toString(), 'first half, second half');
  assert.equal(await driver.stat(location), 23);
  await driver.delete(location);
  assert.deepEqual(await listing(seeded), ['unrelated']);
  assert.equal(await driver.stat(location), null);
  assert.throws(
    () =>
      createSwiftDriver(
        'x',
        { swift_store_auth_address: swift.swift.authUrl, swift_store_user: 'a:b', swift_store_key: 'k', swift_store_multiple_containers_seed: '33' },
        config,
      ),
    /swift_store_multiple_containers_seed: 33 is greater than the maximum of 32/,
  );
});

test('swift: a dynamic large object whose manifest names other segments: the manifest goes, the segments are left to their owner', async () => {
  const driver = driverFor();
  await swiftPut(`/${driver.container}`, '');
  await swiftPut(`/${driver.container}/shared-1`, 'not ours');
  await swiftPut(`/${driver.container}/odd`, '', { 'X-Object-Manifest': `${driver.container}/shared-` });
  await driver.delete(`swift://${driver.container}/odd`);
  assert.deepEqual(await listing(driver.container), ['shared-1']);
});

test('swift: errors map to StoreError codes (NOT_FOUND, PERMISSION, UNAVAILABLE)', async () => {
  const driver = driverFor();
  await assert.rejects(driver.read(`swift://${driver.container}/absent`), (err: unknown) => err instanceof StoreError && err.code === 'NOT_FOUND');
  assert.equal(await driver.stat(`swift://${driver.container}/absent`), null);
  await driver.delete(`swift://${driver.container}/absent`);

  const wrong = driverFor({ key: 'not-the-key', container: driver.container });
  await assert.rejects(wrong.stat(`swift://${driver.container}/x`), (err: unknown) => err instanceof StoreError && err.code === 'PERMISSION');
  await assert.rejects(wrong.write('x', Readable.from([Buffer.from('x')])), (err: unknown) => err instanceof StoreError && err.code === 'PERMISSION');

  const down = driverFor({ authUrl: `http://127.0.0.1:${await freePort()}/auth/v1.0` });
  await assert.rejects(down.stat(`swift://${down.container}/x`), (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE');
  await assert.rejects(down.write('x', Readable.from([Buffer.from('x')])), (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE');
});

test('swift: the segments of writes that died are deleted; those of objects, of keys in use and of new writes stay', async () => {
  const driver = driverFor({ segmentSize: MiB });
  const whole = randomBytes(3 * MiB);
  await driver.write('whole', Readable.from([whole]));
  const ownSegments = await listing(driver.segmentContainer);
  assert.equal(ownSegments.length, 3);

  // What a process killed mid-write leaves: segments and no object naming them.
  const auth = await fetch(swift.swift.authUrl, { headers: { 'x-storage-user': swift.swift.user, 'x-storage-pass': swift.swift.key } });
  const storage = auth.headers.get('x-storage-url')!;
  const token = auth.headers.get('x-auth-token')!;
  const putSegment = async (name: string) => {
    const res = await fetch(`${storage}/${driver.segmentContainer}/${name}`, { method: 'PUT', headers: { 'x-auth-token': token }, body: 'part' });
    assert.equal(res.status, 201);
  };
  const longAgo = newWriteId(Date.now() - 120_000);
  const dead = [`dead/${longAgo}/00000001`, `dead/${longAgo}/00000002`, `whole/${longAgo}/00000001`];
  const kept = [`busy/${longAgo}/00000001`, `fresh/${newWriteId()}/00000001`];
  for (const name of [...dead, ...kept]) await putSegment(name);

  assert.equal(await driver.sweepOrphans((key: string) => key === 'busy', 60_000), 2, 'two dead writes');
  assert.deepEqual((await listing(driver.segmentContainer)).sort(), [...ownSegments, ...kept].sort());
  assert.ok((await buffer(await driver.read(driver.urlFor('whole')))).equals(whole), 'the object that was whole still is');
});

test('swift: data of a known size below swift_store_large_object_size is one object; at or above it, and of unknown size, segments', async () => {
  const driver = driverFor({ segmentSize: MiB, largeObjectSize: 6 * MiB });
  const data = randomBytes(5 * MiB + 7);
  const below = await driver.write('below', chunks(data, 65536), { sizeHint: data.length });
  assert.equal(below.size, data.length);
  assert.ok((await buffer(await driver.read(below.url))).equals(data));
  const range = { start: MiB - 3, end: 4 * MiB };
  assert.ok((await buffer(await driver.read(below.url, range))).equals(data.subarray(range.start, range.end + 1)));
  await driver.write('unknown', chunks(data, 65536));
  await driver.write('at', chunks(randomBytes(6 * MiB), 65536), { sizeHint: 6 * MiB });
  const listed = await listAll(driver);
  assert.deepEqual(
    listed.filter((name) => !name.startsWith('segment:')),
    ['at', 'below', 'unknown'],
  );
  assert.equal(listed.filter((name) => name.startsWith('segment:below/')).length, 0, 'one plain object');
  assert.equal(listed.filter((name) => name.startsWith('segment:unknown/')).length, 6);
  assert.equal(listed.filter((name) => name.startsWith('segment:at/')).length, 6);

  // Data of unknown size that ends within the in-memory limit (4 MiB) is one object only below
  // large_object_size: 3 MiB against a 2 MiB threshold is a segmented object.
  const bigSegments = driverFor({ segmentSize: 5 * MiB, largeObjectSize: 2 * MiB });
  const threeMiB = randomBytes(3 * MiB);
  await bigSegments.write('small-but-large', chunks(threeMiB, 65536));
  assert.ok((await buffer(await bigSegments.read(bigSegments.urlFor('small-but-large')))).equals(threeMiB));
  assert.equal((await listAll(bigSegments)).filter((name) => name.startsWith('segment:small-but-large/')).length, 1);

  // Replacing a segmented object with one of known size removes the old segments.
  const smaller = randomBytes(2 * MiB);
  await driver.write('unknown', chunks(smaller, 65536), { sizeHint: smaller.length });
  assert.ok((await buffer(await driver.read(driver.urlFor('unknown')))).equals(smaller));
  assert.equal((await listAll(driver)).filter((name) => name.startsWith('segment:unknown/')).length, 0);
});

test('swift: a one-object write is sent with its Content-Length; data not of that length fails the write and leaves nothing', async () => {
  const driver = driverFor({ segmentSize: MiB });
  const data = randomBytes(2 * MiB + 5);
  const wrongLength = (err: unknown) => err instanceof StoreError && err.code === 'FAILED' && /not the \d+ bytes announced/.test(err.message);
  await assert.rejects(driver.write('short', chunks(data, 65536), { sizeHint: data.length + 1 }), wrongLength);
  await assert.rejects(driver.write('long', chunks(data, 65536), { sizeHint: data.length - 1 }), wrongLength);
  // More data after exactly the announced bytes: the PUT must not have been completed meanwhile.
  await assert.rejects(driver.write('longer', Readable.from([data, Buffer.from('more')]), { sizeHint: data.length }), wrongLength);
  assert.deepEqual(await listAll(driver), []);
  const { size } = await driver.write('exact', chunks(data, 65536), { sizeHint: data.length });
  assert.equal(size, data.length);
  // An empty chunk after the last bytes (an object-mode source) is no data: the write is whole.
  await driver.write('trailing-empty', Readable.from([data, Buffer.alloc(0)]), { sizeHint: data.length });
  assert.ok((await buffer(await driver.read(driver.urlFor('trailing-empty')))).equals(data));
  assert.deepEqual(await listAll(driver), ['exact', 'trailing-empty']);
});

test('swift: a streamed one-object write whose source fails or is aborted leaves no object and keeps the old one', async () => {
  const driver = driverFor({ segmentSize: MiB });
  const old = randomBytes(1000);
  const { url } = await driver.write('kept', Readable.from([old]));
  await assert.rejects(
    driver.write('kept', failingAfter(randomBytes(3 * MiB), 'connection reset by peer'), { sizeHint: 3 * MiB }),
    (err: unknown) => (err as Error).message === 'connection reset by peer',
  );
  assert.ok((await buffer(await driver.read(url))).equals(old), 'a broken write does not replace the object');
  const controller = new AbortController();
  const writing = driver.write('never', stallingAfter(2 * MiB), { signal: controller.signal, sizeHint: 10 * MiB });
  writing.catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  controller.abort();
  await assert.rejects(writing, (err: unknown) => err instanceof StoreError && err.code === 'ABORTED');
  assert.deepEqual(await listAll(driver), ['kept']);
});

test('swift: swift_store_retry_get_count resumes a read that breaks off with a Range request; past it the read fails', async () => {
  const proxy = await startCuttingProxy(swift.url);
  try {
    const login = await fetch(swift.swift.authUrl, { headers: { 'x-storage-user': swift.swift.user, 'x-storage-pass': swift.swift.key } });
    const account = new URL(login.headers.get('x-storage-url')!).pathname;
    const container = containerName();
    const through = (retryGetCount: number) => driverFor({ container, segmentSize: MiB, retryGetCount, endpoint: `${proxy.url}${account}` });
    const driver = through(2);
    const data = randomBytes(3 * MiB + 11);
    const { url } = await driver.write('flaky', chunks(data, 65536));
    const gets = () => proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/flaky'));

    proxy.cutGets(2, 700_000, /\/flaky$/);
    assert.ok((await buffer(await driver.read(url))).equals(data), 'the whole data, resumed twice');
    const ranges = gets().map((r) => r.headers.range);
    assert.equal(ranges.length, 3);
    assert.equal(ranges[0], undefined);
    const resumedAt = Number(/^bytes=(\d+)-(\d+)$/.exec(ranges[1] ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 700_000, `resumed where it stopped: ${ranges[1]}`);
    assert.match(ranges[1]!, new RegExp(`-${data.length - 1}$`));

    // A range read resumes within its range.
    proxy.cutGets(1, 100_000, /\/flaky$/);
    const range = { start: MiB, end: 2 * MiB + 500_000 };
    assert.ok((await buffer(await driver.read(url, range))).equals(data.subarray(range.start, range.end + 1)));
    assert.match(gets().at(-1)!.headers.range!, new RegExp(`^bytes=\\d+-${range.end}$`));

    // A resumed read asks for the same object (If-Match the first answer's etag).
    const firstEtag = gets()[0]!.headers['if-match'];
    assert.equal(firstEtag, undefined);
    assert.ok(gets().at(-1)!.headers['if-match'], 'the resumed GET names the etag it continues');

    // More breaks than retries: the read fails rather than handing out fewer bytes.
    // The broken connection's own error, as the last attempt met it.
    const cutOff = (err: unknown) => err instanceof Error && err.message === 'aborted';
    proxy.cutGets(2, 300_000, /\/flaky$/);
    await assert.rejects(buffer(await through(1).read(url)), cutOff);
    proxy.cutGets(1, 300_000, /\/flaky$/);
    await assert.rejects(buffer(await through(0).read(url)), cutOff);

    // A read given up before it is read lets go of its connection.
    const idle = through(2);
    (await idle.read(url)).destroy();
    await new Promise((r) => setTimeout(r, 100));
    const sockets = (idle as unknown as { swift: { agents: { http: { sockets: Record<string, unknown[]> } } } }).swift.agents.http.sockets;
    assert.equal(Object.values(sockets).flat().length, 0, 'no socket is held busy');
  } finally {
    await proxy.close();
  }
});

test('swift: swift_store_expire_soon_interval renews a token that expires within it before each request', async () => {
  const proxy = await startCuttingProxy(swift.url);
  try {
    const authUrl = `${proxy.url}/auth/v1.0`;
    const logins = () => proxy.requests.filter((r) => r.path === '/auth/v1.0').length;
    // tempauth's tokens live a day: a window of two days renews before every request, one second never.
    const eager = driverFor({ authUrl, expireSoonMs: 2 * 86_400_000 });
    const { url } = await eager.write('tok', Readable.from([Buffer.from('x')]));
    const before = logins();
    await eager.stat(url);
    await eager.stat(url);
    assert.equal(logins(), before + 2);
    const lazy = driverFor({ authUrl, container: eager.container, expireSoonMs: 1000 });
    await lazy.stat(url);
    const once = logins();
    await lazy.stat(url);
    await lazy.stat(url);
    assert.equal(logins(), once);
  } finally {
    await proxy.close();
  }
});

test("swift: createSwiftDriver reads the size, retry and token options in Glance's units and refuses bad values; discovery shows bytes", () => {
  const base = { swift_store_auth_address: swift.swift.authUrl, swift_store_user: swift.swift.user, swift_store_key: swift.swift.key };
  const defaults = createSwiftDriver('d', base, config);
  drivers.push(defaults);
  // glance_store's swift "MB" is 1000 KiB.
  assert.deepEqual(defaults.properties(), { container: 'glance', large_object_size: 5120 * 1_024_000, large_object_chunk_size: 200 * 1_024_000 });
  const set = createSwiftDriver('s', { ...base, swift_store_large_object_size: '10', swift_store_large_object_chunk_size: '2' }, config);
  drivers.push(set);
  assert.equal(set.largeObjectSize, 10_240_000);
  assert.equal(set.segmentSize, 2_048_000);
  for (const [option, value, message] of [
    ['swift_store_large_object_size', '0', /swift_store_large_object_size: 0 is less than the minimum of 1/],
    ['swift_store_large_object_chunk_size', 'big', /swift_store_large_object_chunk_size: 'big' is not an integer/],
    ['swift_store_retry_get_count', '-1', /swift_store_retry_get_count: -1 is less than the minimum of 0/],
    ['swift_store_expire_soon_interval', '1.5', /swift_store_expire_soon_interval: '1.5' is not an integer/],
  ] as const) {
    assert.throws(() => createSwiftDriver('x', { ...base, [option]: value }, config), message);
  }
});
