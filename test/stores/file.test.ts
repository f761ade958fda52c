import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FileStoreDriver } from '../../src/stores/file.ts';
import { Store } from '../../src/stores/store.ts';
import { StoreError } from '../../src/stores/driver.ts';
import { runStoreConformance } from './conformance.ts';

const root = mkdtempSync(path.join(tmpdir(), 'gaze-filestore-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

runStoreConformance({
  name: 'file',
  make: async () => new FileStoreDriver(path.join(root, `store-${n++}`)),
  listAll: async (driver) => readdirSync((driver as FileStoreDriver).dir).sort(),
});

test('file: a location outside the store directory is refused', async () => {
  const driver = new FileStoreDriver(path.join(root, 'guarded'));
  writeFileSync(path.join(root, 'secret'), 'do not serve');
  const store = new Store('file', driver);
  for (const url of [`file://${path.join(root, 'secret')}`, `file://${path.join(root, 'guarded', '..', 'secret')}`, 'http://example.com/x']) {
    await assert.rejects(store.read(url), (err: unknown) => err instanceof StoreError && err.code === 'INVALID_URL', url);
    assert.equal(driver.owns(url), false);
  }
});

test('file: sweepPartials removes temporary files left by a crash', async () => {
  const dir = path.join(root, 'crashed');
  const driver = new FileStoreDriver(dir);
  await driver.write('kept', Readable.from([Buffer.from('whole')]));
  writeFileSync(path.join(dir, '.partial-dead-1-2'), 'half');
  assert.equal(await driver.sweepPartials(), 1);
  assert.deepEqual(readdirSync(dir), ['kept']);
});

test('the facade refuses a driver that declares an ability without its method, and asks nothing of abilities not declared', async () => {
  const driver = new FileStoreDriver(path.join(root, 'abilities'));
  const lying = Object.assign(Object.create(driver) as FileStoreDriver, {
    capabilities: { ...driver.capabilities, closable: true },
  });
  assert.throws(() => new Store('liar', lying), /store driver file declares closable but has no close\(\)/);
  const modest = Object.assign(Object.create(driver) as FileStoreDriver, {
    capabilities: { ...driver.capabilities, adopt: false, localPartials: false },
  });
  const store = new Store('modest', modest);
  writeFileSync(path.join(root, 'staged-file'), 'bytes');
  assert.equal(await store.adopt('k', path.join(root, 'staged-file')), null, 'no adopt without the ability');
  assert.equal(await store.sweepPartials(0), 0);
  assert.equal(await store.writeInProgress('k', 1000), false);
  await store.close(); // nothing to close
});
