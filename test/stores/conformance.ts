// The contract every store driver must keep. Each driver's test file calls runStoreConformance().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { StoreDriver } from '../../src/stores/driver.ts';
import { StoreError } from '../../src/stores/driver.ts';
import { Store } from '../../src/stores/store.ts';

export interface ConformanceTarget {
  name: string;
  /** A fresh, empty driver for one test. */
  make(): Promise<StoreDriver>;
  /** Every object the backend holds, temporary ones included (to prove nothing is left behind). */
  listAll(driver: StoreDriver): Promise<string[]>;
  /**
   * Every write announces its size, as uploads with a Content-Length and staged data do (a source that
   * fails or never ends announces more than it sends): drivers that write such data another way (one
   * object instead of parts) are held to the same contract.
   */
  knownSizes?: boolean;
}

function chunks(data: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts);
}

/** A source that yields some bytes and then fails, as a client connection that breaks. */
function failingSource(good: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(good);
        return;
      }
      setTimeout(() => this.destroy(new Error('connection reset by peer')), 10);
    },
  });
}

export function runStoreConformance(target: ConformanceTarget): void {
  const sized = (bytes: number) => (target.knownSizes ? { sizeHint: bytes } : {});
  test(`${target.name}: write then read returns the same bytes and the size`, async () => {
    const driver = await target.make();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const written = await driver.write('image-1', chunks(data, 65536), sized(data.length));
    assert.equal(written.size, data.length);
    assert.ok(driver.owns(written.url));
    assert.equal(await driver.stat(written.url), data.length);
    assert.ok((await buffer(await driver.read(written.url))).equals(data));
  });

  test(`${target.name}: range reads return exactly the inclusive range`, async () => {
    const driver = await target.make();
    const data = randomBytes(100_000);
    const { url } = await driver.write('image-2', chunks(data, 7000), sized(data.length));
    assert.ok((await buffer(await driver.read(url, { start: 10, end: 19 }))).equals(data.subarray(10, 20)));
    assert.ok((await buffer(await driver.read(url, { start: 99_990, end: 99_999 }))).equals(data.subarray(99_990)));
  });

  test(`${target.name}: an empty object can be written and read`, async () => {
    const driver = await target.make();
    const { url, size } = await driver.write('empty', Readable.from([]), sized(0));
    assert.equal(size, 0);
    assert.equal((await buffer(await driver.read(url))).length, 0);
  });

  test(`${target.name}: a source that fails mid-way leaves nothing behind`, async () => {
    const driver = await target.make();
    // The source's own error reaches the caller (possibly as a StoreError's cause).
    await assert.rejects(driver.write('cut', failingSource(randomBytes(200_000)), sized(400_000)), (err: unknown) =>
      [err, (err as Error).cause].some((e) => e instanceof Error && e.message.includes('connection reset by peer')),
    );
    assert.deepEqual(await target.listAll(driver), []);
  });

  test(`${target.name}: an aborted write leaves nothing behind`, async () => {
    const driver = await target.make();
    const controller = new AbortController();
    const endless = new Readable({
      read() {
        setTimeout(() => this.push(randomBytes(65536)), 1);
      },
    });
    const writing = driver.write('aborted', endless, { signal: controller.signal, ...sized(64 * 1024 * 1024) });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(
      writing,
      (err: unknown) =>
        err === controller.signal.reason ||
        (err as Error).name === 'AbortError' ||
        (err as Error).cause === controller.signal.reason ||
        (err instanceof StoreError && err.code === 'ABORTED'),
    );
    assert.deepEqual(await target.listAll(driver), []);
  });

  test(`${target.name}: rewriting a key replaces the object whole`, async () => {
    const driver = await target.make();
    await driver.write('again', Readable.from([Buffer.from('first version')]), sized(13));
    const { url } = await driver.write('again', Readable.from([Buffer.from('second')]), sized(6));
    assert.equal((await buffer(await driver.read(url))).toString(), 'second');
  });

  test(`${target.name}: delete removes the data and is idempotent; missing data reads as NOT_FOUND`, async () => {
    const driver = await target.make();
    const { url } = await driver.write('gone', Readable.from([Buffer.from('x')]), sized(1));
    await driver.delete(url);
    await driver.delete(url);
    assert.equal(await driver.stat(url), null);
    const store = new Store('s', driver);
    await assert.rejects(store.read(url), (err: unknown) => err instanceof StoreError && err.code === 'NOT_FOUND');
    assert.deepEqual(await target.listAll(driver), []);
  });

  test(`${target.name}: the facade refuses unsafe keys and writes to read-only stores`, async () => {
    const driver = await target.make();
    const store = new Store('s', driver);
    for (const key of ['../escape', 'a/b', '', '.hidden']) {
      await assert.rejects(store.write(key, Readable.from([Buffer.from('x')])), (err: unknown) => err instanceof StoreError && err.code === 'INVALID_KEY');
    }
    const readOnly = new Store('ro', driver, { readOnly: true });
    await assert.rejects(readOnly.write('k', Readable.from([Buffer.from('x')])), (err: unknown) => err instanceof StoreError && err.code === 'READ_ONLY');
  });

  test(`${target.name}: adopt, where the driver has it, takes a local file without changing it; otherwise the facade answers null`, async () => {
    const driver = await target.make();
    const store = new Store('s', driver);
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-adopt-'));
    try {
      const file = path.join(dir, 'staged');
      const data = randomBytes(256 * 1024 + 3);
      writeFileSync(file, data);
      const adopted = await store.adopt('adopted', file);
      if (!driver.capabilities.adopt) {
        assert.equal(adopted, null);
        return;
      }
      // A driver may still decline (another filesystem): then nothing may be left behind.
      if (adopted === null) {
        assert.deepEqual(await target.listAll(driver), []);
        return;
      }
      assert.equal(adopted.size, data.length);
      assert.ok((await buffer(await driver.read(adopted.url))).equals(data));
      assert.ok(readFileSync(file).equals(data), 'the file is left where it was');
      assert.deepEqual(await target.listAll(driver), ['adopted']);
      const readOnly = new Store('ro', driver, { readOnly: true });
      await assert.rejects(readOnly.adopt('k', file), (err: unknown) => err instanceof StoreError && err.code === 'READ_ONLY');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${target.name}: list, where the driver has it, names the whole objects with a prefix; otherwise the facade answers null`, async () => {
    const driver = await target.make();
    const store = new Store('s', driver);
    if (!driver.capabilities.list) {
      assert.equal(await store.list(''), null);
      return;
    }
    assert.deepEqual(await store.list('staged-'), [], 'an empty (or not yet created) container lists nothing');
    const big = randomBytes(3 * 1024 * 1024 + 5); // a segmented object where the driver segments, listed once
    await store.write('staged-b', Readable.from([big]), sized(big.length));
    await store.write('staged-a', Readable.from([Buffer.from('a')]), sized(1));
    await store.write('other', Readable.from([Buffer.from('o')]), sized(1));
    // A write that failed mid-way is no object.
    await assert.rejects(store.write('staged-c', failingSource(randomBytes(1000)), sized(2000)));
    assert.deepEqual((await store.list('staged-'))!.sort(), ['staged-a', 'staged-b']);
    assert.deepEqual((await store.list(''))!.sort(), ['other', 'staged-a', 'staged-b']);
    assert.deepEqual(await store.list('nothing-'), []);
  });

  test(`${target.name}: abilities are declared as data and honoured: a write in progress is seen where the driver keeps local partials`, async () => {
    const driver = await target.make();
    const store = new Store('s', driver); // refuses a driver that declares an ability without its method
    const controller = new AbortController();
    const endless = new Readable({
      read() {
        setTimeout(() => this.push(randomBytes(65536)), 2);
      },
    });
    const writing = store.write('growing', endless, { signal: controller.signal, ...sized(64 * 1024 * 1024) });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(await store.writeInProgress('growing', 60_000), driver.capabilities.localPartials, 'seen while it runs');
    assert.equal(await store.writeInProgress('other', 60_000), false);
    controller.abort();
    await assert.rejects(writing, (err: unknown) => (err instanceof StoreError && err.code === 'ABORTED') || (err as Error).name === 'AbortError');
    assert.equal(await store.writeInProgress('growing', 60_000), false, 'not after the abort');
    assert.equal(await store.sweepPartials(0), 0, 'an aborted write left nothing to sweep');
    await store.close();
  });
}
