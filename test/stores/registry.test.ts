// Single-store mode as glance_store reads [glance_store]: a store is found by any of its location
// schemes (default_store = filesystem is the file store) and every store `stores` lists is loaded
// (entry-point names included), so that locations written there stay readable.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { StoreRegistry } from '../../src/stores/registry.ts';
import { StoreError } from '../../src/stores/driver.ts';
import { Readable } from 'node:stream';

const root = mkdtempSync(path.join(tmpdir(), 'gaze-registry-'));
after(() => rmSync(root, { recursive: true, force: true }));

function registry(glanceStore: Record<string, string>, lines: Array<Record<string, unknown>> = []): Promise<StoreRegistry> {
  const config = loadConfig(undefined, {}, { DEFAULT: { data_dir: root }, glance_store: glanceStore });
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return StoreRegistry.create(config, { log });
}

test("default_store by any of the store's schemes, and `stores` by Glance's old entry-point names", async () => {
  const stores = await registry({ default_store: 'filesystem', stores: 'glance.store.filesystem.Store, glance.store.http.Store' });
  assert.equal(stores.default().driver.type, 'file');
  assert.deepEqual(
    stores
      .all()
      .map((s) => s.driver.type)
      .sort(),
    ['file', 'http'],
  );
  const viaHttps = await registry({ default_store: 'file', stores: 'file, https' });
  assert.deepEqual(
    viaHttps
      .all()
      .map((s) => s.driver.type)
      .sort(),
    ['file', 'http'],
  );
  await assert.rejects(
    registry({ default_store: 'rbd' }),
    (err: unknown) => err instanceof ConfigError && /default_store: unknown store type 'rbd'/.test(err.message),
  );
});

test('every store `stores` lists is loaded with [glance_store] options; one that cannot be set up, or that Gaze lacks, is left out and said', async () => {
  const lines: Array<Record<string, unknown>> = [];
  // The usual set-up while moving off Swift: file by default, Swift still listed for its old locations.
  const stores = await registry(
    {
      default_store: 'file',
      stores: 'file, swift, http, rbd',
      swift_store_auth_address: 'http://127.0.0.1:1/auth/v1.0',
      swift_store_user: 'test:tester',
      swift_store_key: 'testing',
    },
    lines,
  );
  assert.deepEqual(
    stores
      .all()
      .map((s) => s.driver.type)
      .sort(),
    ['file', 'http', 'swift'],
  );
  assert.ok(
    stores
      .all()
      .find((s) => s.driver.type === 'swift')!
      .driver.owns('swift+config://ref1/glance/abc'),
  );
  assert.ok(
    lines.some((l) => /stores lists 'rbd', a store Gaze has no driver for/.test(String(l.msg))),
    JSON.stringify(lines),
  );
  const unset = await registry({ default_store: 'file', stores: 'file, swift' }, lines);
  assert.deepEqual(
    unset.all().map((s) => s.driver.type),
    ['file'],
  );
  assert.ok(
    lines.some((l) =>
      /the swift store that \[glance_store\] stores lists is left out, its locations unread: store swift: swift_store_auth_address is required/.test(
        String(l.msg),
      ),
    ),
    JSON.stringify(lines),
  );
});

test('enabled_backends naming one store twice stops start-up, as the dict option stops Glance', async () => {
  const config = loadConfig(
    undefined,
    {},
    { DEFAULT: { data_dir: root, enabled_backends: 'fast:file, fast:http' }, glance_store: { default_backend: 'fast' } },
  );
  await assert.rejects(
    StoreRegistry.create(config),
    (err: unknown) => err instanceof ConfigError && /enabled_backends names store fast twice/.test(err.message),
  );
});

test('a store whose address or credentials are missing is kept with adding disabled, as glance_store keeps it; writes are refused as read-only', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const config = loadConfig(
    undefined,
    {},
    {
      DEFAULT: { data_dir: root, enabled_backends: 'fast:file, objects:swift, default:swift' },
      glance_store: { default_backend: 'default' },
      objects: { swift_store_auth_address: 'http://127.0.0.1:1/v3' },
      default: {},
    },
  );
  const stores = await StoreRegistry.create(config, { log });
  assert.deepEqual(
    stores.all().map((s) => [s.id, s.type, s.options.addDisabled ?? null]),
    [
      ['fast', 'file', null],
      ['objects', 'swift', 'store objects: swift_store_user is required for a swift store'],
      ['default', 'swift', 'store default: swift_store_auth_address is required for a swift store'],
    ],
  );
  // Still the default, still offered (Glance lists it as writable); it owns no location.
  assert.equal(stores.default().id, 'default');
  assert.equal(stores.default().writable, true);
  assert.equal(stores.forLocation({ url: 'swift+https://127.0.0.1/v1/AUTH_x/glance/abc', metadata: {} }), undefined);
  await assert.rejects(
    stores.default().write('abc', Readable.from([Buffer.from('x')])),
    (err: unknown) =>
      err instanceof StoreError &&
      err.code === 'READ_ONLY' &&
      /adding images is disabled: store default: swift_store_auth_address is required/.test(err.message),
  );
  assert.throws(
    () => stores.get('objects')!.urlFor('abc'),
    (err: unknown) => err instanceof StoreError && err.code === 'READ_ONLY',
  );
  assert.deepEqual(
    lines.filter((l) => l.level === 40).map((l) => [l.store, l.msg]),
    [
      ['objects', 'Failed to configure store correctly: store objects: swift_store_user is required for a swift store. Disabling add method.'],
      ['default', 'Failed to configure store correctly: store default: swift_store_auth_address is required for a swift store. Disabling add method.'],
    ],
  );
});

test('a swift store whose glance-swift.conf is missing is left out of the stores, as glance_store leaves it out; as the default store it stops the start', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const sections = (defaultBackend: string) => ({
    DEFAULT: { data_dir: root, enabled_backends: 'fast:file, objects:swift' },
    glance_store: { default_backend: defaultBackend },
    objects: { swift_store_config_file: path.join(root, 'no-such-swift.conf') },
  });
  const stores = await StoreRegistry.create(loadConfig(undefined, {}, sections('fast')), { log });
  assert.deepEqual(
    stores.all().map((s) => s.id),
    ['fast'],
  );
  assert.equal(stores.get('objects'), undefined);
  assert.deepEqual(
    lines.filter((l) => l.level === 40).map((l) => [l.store, l.msg]),
    [['objects', `the store is left out, its locations unread: swift config file ${path.join(root, 'no-such-swift.conf')} cannot be read: it does not exist`]],
  );
  await assert.rejects(
    StoreRegistry.create(loadConfig(undefined, {}, sections('objects'))),
    (err: unknown) =>
      err instanceof ConfigError &&
      /\[glance_store\] default_backend objects cannot be set up: swift config file .*no-such-swift.conf cannot be read/.test(err.message),
  );
});
