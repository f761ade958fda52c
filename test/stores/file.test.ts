import { test, after } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { buffer } from 'node:stream/consumers';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FileStoreDriver } from '../../src/stores/file.ts';
import { createFileDriver, fileMode } from '../../src/stores/file-options.ts';
import { ConfigError, loadConfig, type Config } from '../../src/config/index.ts';
import { StoreRegistry } from '../../src/stores/registry.ts';
import { Store } from '../../src/stores/store.ts';
import { StoreError } from '../../src/stores/driver.ts';
import { processAlive, processTag } from '../../src/util/process.ts';
import { runStoreConformance } from './conformance.ts';
import { chunks } from './sources.ts';

const root = mkdtempSync(path.join(tmpdir(), 'gaze-filestore-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

runStoreConformance({
  name: 'file',
  make: async () => new FileStoreDriver(path.join(root, `store-${n++}`)),
  listAll: async (driver) => readdirSync((driver as FileStoreDriver).dir).sort(),
});

// Several directories (filesystem_store_datadirs): the same contract, whatever directory a write takes.
runStoreConformance({
  name: 'file (several directories)',
  make: async () => {
    const id = n++;
    return new FileStoreDriver([
      { path: path.join(root, `low-${id}`), priority: 1 },
      { path: path.join(root, `high-${id}`), priority: 9 },
    ]);
  },
  listAll: async (driver) => (driver as FileStoreDriver).dirs.flatMap((d) => (existsSync(d.path) ? readdirSync(d.path) : [])).sort(),
});

test("filesystem_store_datadirs: the highest priority takes writes; data in any directory is the store's; leftovers are swept in each", async () => {
  const [a, b, c] = ['a', 'b', 'c'].map((name) => path.join(root, `datadirs-${name}`));
  const driver = createFileDriver('fs', { filesystem_store_datadirs: `${a}:100\n${b} : 200\n${c}` }, {} as Config);
  assert.deepEqual(driver.dirs, [
    { path: b, priority: 200 },
    { path: a, priority: 100 },
    { path: c, priority: 0 },
  ]);
  const written = await driver.write('new', Readable.from([Buffer.from('new data')]));
  assert.equal(written.url, pathToFileURL(path.join(b, 'new')).href);
  // Data Glance wrote to another of the directories, when it had other priorities or free space.
  mkdirSync(c, { recursive: true });
  writeFileSync(path.join(c, 'old'), 'old data');
  const old = pathToFileURL(path.join(c, 'old')).href;
  assert.ok(driver.owns(old));
  assert.equal(await driver.stat(old), 8);
  assert.equal((await buffer(await driver.read(old, { start: 4, end: 7 }))).toString(), 'data');
  assert.deepEqual(await driver.list(''), ['new', 'old']);
  assert.ok(!driver.owns(pathToFileURL(path.join(root, 'old')).href));
  mkdirSync(a, { recursive: true });
  writeFileSync(path.join(a, '.partial-gone-1-2'), 'half');
  assert.equal(await driver.sweepPartials(), 1);
  assert.deepEqual(readdirSync(a), []);
  await driver.delete(old);
  assert.equal(await driver.stat(old), null);

  const refused = (options: Record<string, string>, pattern: RegExp) =>
    assert.throws(
      () => createFileDriver('fs', options, {} as Config),
      (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
    );
  refused({ filesystem_store_datadirs: `${a}:high` }, /the priority 'high' is not an integer/);
  refused({ filesystem_store_datadirs: ':5' }, /names no directory/);
  refused({ filesystem_store_datadirs: `${a}:1\n${a}:2` }, /names .* twice, with priorities 1 and 2/);
  refused({ filesystem_store_datadirs: a, filesystem_store_datadir: b }, /specify either filesystem_store_datadir or filesystem_store_datadirs/);
  refused({ filesystem_store_datadir: '' }, /specify at least filesystem_store_datadir or filesystem_store_datadirs/);
  assert.equal(createFileDriver('fs', { filesystem_store_datadirs: `${a}:1\n${a}:1` }, {} as Config).dirs.length, 1);
});

test('thin provisioning: 64 KiB blocks of zeros are holes, within larger chunks and at the end too; without it they are written', async () => {
  // 1 MiB chunks (as a staged file is read), each with a little data in it.
  const data = Buffer.concat([randomBytes(1000), Buffer.alloc(4 << 20), randomBytes(1000), Buffer.alloc(1 << 20)]);
  const sizes: number[] = [];
  for (const sparse of [true, false]) {
    const dir = path.join(root, `thin-${sparse}`);
    const driver = createFileDriver('fs', { filesystem_store_datadir: dir, filesystem_thin_provisioning: String(sparse) }, {} as Config);
    const { url, size } = await driver.write('img', chunks(data, 1 << 20));
    assert.equal(size, data.length);
    assert.equal(await driver.stat(url), data.length);
    assert.ok((await buffer(await driver.read(url))).equals(data));
    assert.equal(driver.properties().thin_provisioning, sparse);
    sizes.push(statSync(path.join(dir, 'img')).blocks * 512);
  }
  assert.ok(sizes[0]! < 1 << 20, `sparse: ${sizes[0]} bytes allocated`);
  assert.ok(sizes[1]! >= data.length, `dense: ${sizes[1]} bytes allocated`);
});

test('filesystem_store_datadirs in [glance_store] alone (single-store mode): the store takes them, not the default directory', async () => {
  const [a, b] = ['one', 'two'].map((name) => path.join(root, `single-${name}`));
  const config = loadConfig(
    undefined,
    {},
    { DEFAULT: { data_dir: path.join(root, 'single-data') }, glance_store: { filesystem_store_datadirs: `${a}:1\n${b}:2` } },
  );
  const store = (await StoreRegistry.create(config)).default();
  assert.deepEqual((store.driver as FileStoreDriver).dirs, [
    { path: b, priority: 2 },
    { path: a, priority: 1 },
  ]);
});

test('filesystem_store_datadirs: of one priority the directory with the most free space; one without room is passed over; none with room is FULL', async (t) => {
  // Two filesystems with different free space: the tmpfs of /dev/shm and the one of the temp directory.
  const dirs = ['/dev/shm', root].map((base) => mkdtempSync(path.join(base, 'gaze-room-')));
  t.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const free = await Promise.all(dirs.map(async (d) => ((s) => s.bavail * s.bsize)(await statfs(d))));
  if (Math.abs(free[0]! - free[1]!) < 64 * 1024 * 1024) return t.skip(`/dev/shm and ${tmpdir()} have the same free space here`);
  const [small, big] = free[0]! < free[1]! ? [dirs[0]!, dirs[1]!] : [dirs[1]!, dirs[0]!];
  const smallFree = Math.min(...free);
  const bigFree = Math.max(...free);
  const data = () => Readable.from([Buffer.from('x')]);
  const same = new FileStoreDriver([
    { path: small, priority: 1 },
    { path: big, priority: 1 },
  ]);
  assert.equal((await same.write('k1', data())).url, pathToFileURL(path.join(big, 'k1')).href);
  // The smaller filesystem first by priority, while the data fits in it; the bigger when it does not.
  const ranked = new FileStoreDriver([
    { path: small, priority: 9 },
    { path: big, priority: 1 },
  ]);
  assert.equal((await ranked.write('k2', data(), { sizeHint: 1000 })).url, pathToFileURL(path.join(small, 'k2')).href);
  // Free space moves a little as the machine writes: the hints keep well clear of both figures.
  const between = smallFree + Math.floor((bigFree - smallFree) / 2);
  assert.equal((await ranked.write('k3', data(), { sizeHint: between })).url, pathToFileURL(path.join(big, 'k3')).href);
  await assert.rejects(ranked.write('k4', data(), { sizeHint: bigFree * 2 }), (err: unknown) => err instanceof StoreError && err.code === 'FULL');
  assert.ok(!existsSync(path.join(small, 'k4')) && !existsSync(path.join(big, 'k4')));
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

test('file: a shared directory: partials of another host are judged by their changes alone, never by a local pid', async () => {
  const dir = path.join(root, 'shared');
  const driver = new FileStoreDriver(dir);
  await driver.write('kept', Readable.from([Buffer.from('whole')]));
  const deadPid = 4_194_305; // beyond the largest pid Linux gives out (2^22)
  const name = (key: string, tag: string) => `.partial-${key}-${tag}-${Date.now()}`;
  const foreignFresh = name('a', `${deadPid}.0badc0de`);
  const foreignIdle = name('b', `${process.pid}.0badc0de`); // a pid that runs here says nothing of another host
  const localDead = name('c', `${deadPid}.${processTag().split('.')[1]}`);
  const localLive = name('d', processTag());
  for (const file of [foreignFresh, foreignIdle, localDead, localLive]) writeFileSync(path.join(dir, file), 'half');
  const longAgo = new Date(Date.now() - 120_000);
  utimesSync(path.join(dir, foreignIdle), longAgo, longAgo);
  assert.equal(await driver.writeInProgress('a', 60_000), true, "another host's write that keeps changing is live");
  assert.equal(await driver.writeInProgress('c', 60_000), false, 'a write of a dead process of this host is not');
  assert.equal(await driver.sweepPartials(60_000), 2);
  assert.deepEqual(readdirSync(dir).sort(), [foreignFresh, localLive, 'kept'].sort());
});

test('file: a partial of another running process of this host is its write, however long it has been idle (an upload may pause for client_socket_timeout)', async () => {
  const dir = path.join(root, 'paused');
  const driver = new FileStoreDriver(dir);
  await driver.write('kept', Readable.from([Buffer.from('whole')]));
  const writer = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const paused = `.partial-e-${writer.pid}.${processTag().split('.')[1]}-${Date.now()}`;
    writeFileSync(path.join(dir, paused), 'half');
    const longAgo = new Date(Date.now() - 600_000);
    utimesSync(path.join(dir, paused), longAgo, longAgo);
    assert.equal(await driver.sweepPartials(60_000), 0, 'a start of another process beside it keeps it');
    assert.equal(await driver.sweepOrphans(() => false, 60_000), 0, 'so does the hourly sweep');
    assert.equal(await driver.writeInProgress('e', 60_000), true);
    // Unchanged for more than a day, it is no upload of that process's (its pid may have been reused).
    const longer = new Date(Date.now() - 25 * 3600 * 1000);
    utimesSync(path.join(dir, paused), longer, longer);
    assert.equal(await driver.writeInProgress('e', 60_000), false);
    utimesSync(path.join(dir, paused), longAgo, longAgo);
    writer.kill('SIGKILL');
    await new Promise((resolve) => writer.once('exit', resolve));
    assert.equal(await driver.sweepPartials(60_000), 1, 'once its process is gone, it goes');
    assert.deepEqual(readdirSync(dir), ['kept']);
  } finally {
    writer.kill('SIGKILL');
  }
});

test('file: sweepOrphans (run hourly) removes idle partials of keys no write is under way for, from any host', async () => {
  const dir = path.join(root, 'orphans');
  const driver = new FileStoreDriver(dir);
  await driver.write('kept', Readable.from([Buffer.from('whole')]));
  const otherHost = `${process.pid}.0badc0de`; // judged by its changes alone
  const name = (key: string, tag: string) => `.partial-${key}-${tag}-${Date.now()}`;
  const orphan = name('0c1e2d3f-aaaa-bbbb-cccc-000000000001', otherHost);
  const busy = name('0c1e2d3f-aaaa-bbbb-cccc-000000000002', otherHost);
  const fresh = name('0c1e2d3f-aaaa-bbbb-cccc-000000000003', otherHost);
  const ownLive = name('0c1e2d3f-aaaa-bbbb-cccc-000000000004', processTag());
  for (const file of [orphan, busy, fresh, ownLive]) writeFileSync(path.join(dir, file), 'half');
  const longAgo = new Date(Date.now() - 120_000);
  for (const file of [orphan, busy]) utimesSync(path.join(dir, file), longAgo, longAgo);
  const inUse = (key: string) => key === '0c1e2d3f-aaaa-bbbb-cccc-000000000002';
  assert.equal(await driver.sweepOrphans(inUse, 60_000), 1);
  assert.deepEqual(readdirSync(dir).sort(), [busy, fresh, ownLive, 'kept'].sort(), 'the image being written, the fresh one and a live local write stay');
  const store = new Store('file', driver);
  assert.equal(await store.sweepOrphans(() => false, 60_000), 1, 'through the facade, once its image is no longer written: the idle one goes');
  assert.deepEqual(readdirSync(dir).sort(), [fresh, ownLive, 'kept'].sort(), 'the fresh one and the live local write stay');
  assert.equal(await driver.writeInProgress('0c1e2d3f-aaaa-bbbb-cccc-000000000003', 60_000), true, 'the fresh write is under way');
  assert.equal(await driver.writeInProgress('0c1e2d3f-aaaa-bbbb-cccc', 60_000), false, 'a key that is the first dash-parts of another is not that write');
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

test('filesystem_store_file_perm: digits read as octal; refused where Glance refuses it, and where not octal', () => {
  assert.equal(fileMode('file', '640'), 0o640);
  assert.equal(fileMode('file', ' 0644 '), 0o644);
  for (const none of [undefined, '', '0', '-1']) assert.equal(fileMode('file', none), null, String(none));
  for (const [bad, why] of [
    ['abc', /must be an integer/],
    ['698', /octal digits/],
    ['12345', /octal digits/],
    ['200', /unreadable by the service/],
  ] as const) {
    assert.throws(
      () => fileMode('fast', bad),
      (err: unknown) => err instanceof ConfigError && why.test(err.message) && err.message.startsWith('store fast: '),
      bad,
    );
  }
});

test('filesystem_store_file_perm: each image file gets the mode, whatever the umask; the directory lets readers in', async () => {
  const umask = process.umask(0o077);
  try {
    for (const [mode, dirBits] of [
      [0o640, 0o010],
      [0o644, 0o011],
      [0o600, 0o000],
    ] as const) {
      const dir = path.join(root, `perm-${mode.toString(8)}`);
      const driver = new FileStoreDriver(dir, { fileMode: mode });
      const { url } = await driver.write('written', Readable.from([Buffer.from('data')]));
      assert.equal(statSync(new URL(url)).mode & 0o7777, mode, `write with ${mode.toString(8)}`);
      assert.equal(statSync(dir).mode & 0o011, dirBits, `directory with ${mode.toString(8)}`);
      const staged = path.join(root, `staged-${mode.toString(8)}`);
      writeFileSync(staged, 'staged', { mode: 0o600 });
      const adopted = await driver.adopt('adopted', staged);
      assert.ok(adopted);
      assert.equal(statSync(new URL(adopted.url)).mode & 0o7777, mode, `adopt with ${mode.toString(8)}`);
    }
    const plain = new FileStoreDriver(path.join(root, 'perm-default'));
    const { url } = await plain.write('written', Readable.from([Buffer.from('data')]));
    assert.equal(statSync(new URL(url)).mode & 0o777, 0o600, 'without the option, the umask decides');
  } finally {
    process.umask(umask);
  }
});

test('file: deleting data under a path that is no directory (a store that could never be written) is done, not an error retried for ever', async () => {
  const driver = new FileStoreDriver('/dev/null/gaze-never');
  await driver.delete('file:///dev/null/gaze-never/some-image');
});

test('a zombie (killed, not yet reaped) is a process that runs no more', async () => {
  // A child whose exit this process has not reaped yet: Node reaps it only when its event loop turns.
  const child = spawn('sh', ['-c', 'exit 0'], { stdio: 'ignore' });
  const pid = child.pid!;
  const deadline = Date.now() + 5000;
  let state = '';
  while (Date.now() < deadline) {
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]![0]!;
    } catch {
      state = 'gone';
    }
    if (state === 'Z' || state === 'gone') break;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5); // block, so Node cannot reap it
  }
  assert.equal(state, 'Z', 'the child is a zombie while this process blocks');
  assert.equal(processAlive(pid), false);
  await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(processAlive(pid), false);
});
