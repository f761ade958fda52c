// The repositories of src/db/repos against real databases, the same tests on SQLite, PostgreSQL and MariaDB
// (test/helpers/databases.ts): schema sync, the image aggregate's round trip, compare-and-set writes,
// list scopes/filters/sorting/keyset paging, members and tasks.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Db } from '../../src/db/connection.ts';
import { CompiledQuery, Migrator, sql } from 'kysely';
import { openDatabase, syncSchema } from '../../src/db/connection.ts';
import { migrationProvider } from '../../src/db/migrations/index.ts';
import { imageToRow } from '../../src/db/repos/image-rows.ts';
import { ImagesRepo, type ListQuery, type ListScope, type SortKey, type ColumnCondition } from '../../src/db/repos/images.ts';
import { MembersRepo } from '../../src/db/repos/members.ts';
import { UsageRepo } from '../../src/db/repos/usage.ts';
import { DelayedDeletesRepo } from '../../src/db/repos/delayed-deletes.ts';
import { TasksRepo, type TaskRow } from '../../src/db/repos/tasks.ts';
import { activation, ImageGone, moveTo, resetToQueued, type Image } from '../../src/domain/image.ts';
import { GazeError } from '../../src/domain/errors.ts';
import { addSeconds, nowTimestamp } from '../../src/domain/time.ts';
import { forEachEngine } from '../helpers/databases.ts';
import { taskRow } from '../helpers/tasks.ts';
import { imageRecord } from '../helpers/images.ts';

const TiB = 1024 ** 4;
const FIVE_TIB = 5 * TiB; // 5497558138880: above 2^32, needs BIGINT and must come back as a number

/** Deterministic ids, so that id order is known (and differs from insertion order where wanted). */
function uuid(n: number): string {
  return `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff`, the stored form; n seconds after a fixed instant. */
function ts(n: number): string {
  return nowTimestamp(new Date(Date.UTC(2024, 0, 1, 0, 0, 0) + n * 1000));
}

const makeImage = imageRecord;

type QueryOverrides = Omit<Partial<ListQuery>, 'scope'> & { scope?: Partial<ListScope> };

/** A list query as the service builds one: alice, non-admin, no filters, Glance's default sort. */
function query(overrides: QueryOverrides = {}): ListQuery {
  const { scope, ...rest } = overrides;
  return {
    conditions: [],
    properties: [],
    tags: [],
    osHidden: false,
    sort: [
      { key: 'created_at', dir: 'desc' },
      { key: 'id', dir: 'desc' },
    ],
    limit: 1000,
    marker: null,
    ...rest,
    scope: { isAdmin: false, projectId: 'alice', visibility: null, memberStatus: 'accepted', ...scope },
  };
}

/** Names of the listed images, sorted (for set comparisons). */
function names(images: Image[]): string[] {
  return images.map((i) => i.name ?? '<null>').sort();
}

/** The order the repository should produce: NULL is the smallest value (asc: first, desc: last). */
function compareBy(sort: SortKey[]) {
  return (a: Image, b: Image): number => {
    for (const { key, dir } of sort) {
      const av = a[key];
      const bv = b[key];
      let c = 0;
      if (av === bv) c = 0;
      else if (av === null) c = -1;
      else if (bv === null) c = 1;
      else c = av < bv ? -1 : 1;
      if (c !== 0) return dir === 'asc' ? c : -c;
    }
    return 0;
  };
}

/** Rows of one table, straight from the database (to see what the repositories left behind). */
async function count(
  db: Db,
  table: 'image_properties' | 'image_property_slots' | 'image_tags' | 'image_members' | 'image_locations',
  imageId: string,
  status?: string,
): Promise<number> {
  let q = db.kysely
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .where('image_id', '=', imageId);
  if (status !== undefined) q = q.where('status' as never, '=', status as never);
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Every migration, in the order they apply. */
const MIGRATIONS = [
  '0001_initial',
  '0002_task_attempts',
  '0003_image_reservations',
  '0004_location_lifecycle',
  '0005_metadefs',
  '0006_nodes',
  '0007_images_status',
  '0008_null_property_values',
  '0009_property_positions',
  '0010_property_slots',
  '0011_staged_bytes',
  '0012_locations_by_image_and_status',
];

forEachEngine((engine) => {
  test('schema sync applies the migrations once; a second sync applies nothing', async () => {
    const db = await engine.open({ sync: false });
    assert.deepEqual(await syncSchema(db), MIGRATIONS);
    assert.deepEqual(await syncSchema(db), []);
    // The tables are there and usable.
    const images = new ImagesRepo(db);
    assert.deepEqual(await images.list(query()), []);
  });

  test('schema sync upgrades an older schema and keeps its rows (0004 renames deleted locations; 0008 keeps the properties)', async () => {
    const db = await engine.open({ sync: false });
    const { results } = await new Migrator({ db: db.kysely, provider: migrationProvider }).migrateTo('0003_image_reservations');
    assert.deepEqual(
      results?.map((r) => r.migrationName),
      MIGRATIONS.slice(0, 3),
    );
    const image = makeImage({ status: 'active', size: FIVE_TIB });
    const now = nowTimestamp();
    await db.kysely
      .insertInto('images')
      .values({ ...imageToRow(image), deleted: 0, reserved_bytes: null })
      .execute();
    await db.kysely
      .insertInto('image_locations')
      .values({ id: uuid(1), image_id: image.id, position: 0, url: 'file:///gone', metadata: '{}', status: 'deleted', created_at: now, updated_at: now })
      .execute();
    await db.kysely.insertInto('image_properties').values({ image_id: image.id, name: 'os_distro', value: 'debian' }).execute();
    // What a rebuild cut off by a crash before this one's transaction might have left.
    if (engine.name === 'sqlite') await sql`create table image_properties_new (leftover integer)`.execute(db.kysely);
    assert.deepEqual(await syncSchema(db), MIGRATIONS.slice(3));
    const row = await db.kysely.selectFrom('image_locations').select('status').where('id', '=', uuid(1)).executeTakeFirstOrThrow();
    assert.equal(row.status, 'pending_delete');
    assert.equal((await new ImagesRepo(db).get(image.id))?.size, FIVE_TIB);
    // The rebuilt (SQLite) or altered property table kept its row and now takes a null value.
    const upgraded = await new ImagesRepo(db).require(image.id);
    assert.deepEqual(upgraded.properties, { os_distro: 'debian' });
    assert.ok(await new ImagesRepo(db).save({ ...upgraded, properties: { ...upgraded.properties, kernel_id: null } }));
    assert.deepEqual((await new ImagesRepo(db).require(image.id)).properties, { os_distro: 'debian', kernel_id: null });
    assert.deepEqual(Object.keys((await new ImagesRepo(db).require(image.id)).properties), ['os_distro', 'kernel_id'], 'an older row comes first');
    await assert.rejects(
      db.kysely.insertInto('image_properties').values({ image_id: image.id, name: 'os_distro', value: 'again' }).execute(),
      /UNIQUE|duplicate/i,
      'the primary key is still there',
    );
    await assert.rejects(
      db.kysely
        .insertInto('image_properties')
        .values({ image_id: uuid(9), name: 'orphan', value: null })
        .execute(),
      /FOREIGN KEY|foreign key/i,
      'and the reference to images',
    );
    if (engine.name === 'sqlite') {
      const indexes = await sql<{ name: string }>`pragma index_list(image_properties)`.execute(db.kysely);
      assert.ok(
        indexes.rows.some((i) => i.name === 'ix_image_properties_name'),
        JSON.stringify(indexes.rows),
      );
      assert.equal((await sql`select name from sqlite_master where name = 'image_properties_new'`.execute(db.kysely)).rows.length, 0);
    }
  });

  describe('images: aggregate round trip and writes', () => {
    let db: Db;
    let images: ImagesRepo;
    before(async () => {
      db = await engine.open();
      images = new ImagesRepo(db);
    });

    test('a NUL character never reaches the database: the query is refused with a 400 before it is sent', async () => {
      const nul = (err: unknown) => err instanceof GazeError && err.code === 'NUL_CHARACTER' && err.status === 400;
      await assert.rejects(images.get('a\0b'), nul, 'a compiled query');
      await assert.rejects(images.insert(makeImage({ name: 'x\0y' })), nul, 'an insert');
      await assert.rejects(sql`select ${'p\0q'} as v`.execute(db.kysely), nul, 'raw SQL');
      const image = makeImage({ properties: { k: 'v' } });
      await images.insert(image);
      await assert.rejects(images.setProperties(image.id, { ['k\0']: 'v' }), nul, 'a property name');
      assert.deepEqual((await images.get(image.id))?.properties, { k: 'v' }, 'nothing was written');
      // A NUL inside JSON text is its escape, which every engine stores.
      const { rows } = await sql<{ v: string }>`select ${JSON.stringify('p\0q')} as v`.execute(db.kysely);
      assert.equal(JSON.parse(rows[0]!.v), 'p\0q');
    });

    test('usage: an image active after its first store holds the bytes of the stores still to write, until they are written', async () => {
      const usage = new UsageRepo(db);
      const owner = `usage-${crypto.randomUUID()}`;
      const image = makeImage({ owner, status: 'importing', properties: { os_glance_importing_to_stores: 'b,c' } });
      await images.insert(image);
      const data = { size: 100, checksum: 'c', hashAlgo: 'sha512', hashValue: 'h', virtualSize: null };
      // Stored in `a` (its location is not active in this row-level test): two stores of 100 bytes to go.
      assert.equal(await images.updateFields(image.id, 'importing', activation(data, 200), { os_glance_importing_to_stores: 'b,c' }), true);
      assert.equal((await usage.forProject(owner)).storedBytes, 200);
      await images.setProperties(image.id, { os_glance_importing_to_stores: '' });
      assert.equal((await usage.forProject(owner)).storedBytes, 0, 'the copies are done: their locations count now, not the reservation');
      // A copy to more stores of an active image holds its bytes the same way.
      await images.updateFields(image.id, 'active', { reserved_bytes: 300 }, { os_glance_importing_to_stores: 'd' });
      assert.equal((await usage.forProject(owner)).storedBytes, 300);
      assert.equal((await usage.forProject(owner, image.id)).storedBytes, 0, 'the image being written is left out when asked');
      // Deleted with delayed_delete while it copied: its data counts until scrubbed, its copy's bytes do not.
      await db.kysely.updateTable('images').set({ status: 'pending_delete', deleted: 1 }).where('id', '=', image.id).execute();
      const pending = await usage.forProject(owner);
      assert.deepEqual([pending.storedBytes, pending.stagedBytes, pending.uploadingCount, pending.imageCount], [0, 0, 0, 1]);
    });

    test('usage: an import that staged its data and holds two stores counts the staged bytes once and the stores twice', async () => {
      const usage = new UsageRepo(db);
      const owner = `usage-${crypto.randomUUID()}`;
      const image = makeImage({ owner, status: 'importing' });
      await images.insert(image);
      assert.equal(await images.updateFields(image.id, 'importing', { staged_bytes: 100 }), true);
      assert.deepEqual([(await usage.forProject(owner)).stagedBytes, (await usage.forProject(owner)).storedBytes], [100, 0], 'downloaded into staging');
      assert.equal(await images.updateFields(image.id, 'importing', { reserved_bytes: 200 }), true);
      assert.deepEqual([(await usage.forProject(owner)).stagedBytes, (await usage.forProject(owner)).storedBytes], [100, 200], 'and held for two stores');
      const data = { size: 100, checksum: 'c', hashAlgo: 'sha512', hashValue: 'h', virtualSize: null };
      assert.equal(await images.updateFields(image.id, 'importing', activation(data)), true);
      const row = await db.kysely.selectFrom('images').select(['reserved_bytes', 'staged_bytes']).where('id', '=', image.id).executeTakeFirstOrThrow();
      assert.deepEqual(row, { reserved_bytes: null, staged_bytes: null }, 'activation ends both holds');
    });

    test('an image whose properties add up to more than MariaDB hands back in one aggregate (16 MiB) reads whole, alone and in a list', async () => {
      // 43 values of 64 KiB of a control character, each written \u0001 in JSON: 17 MB of aggregate.
      const properties = Object.fromEntries(Array.from({ length: 43 }, (_, i) => [`big_${String(i).padStart(2, '0')}`, '\x01'.repeat(65535)]));
      const image = makeImage({ properties: { ...properties, small: 'x' }, tags: ['t'] });
      await images.insert(image);
      const read = await images.require(image.id);
      assert.deepEqual(Object.keys(read.properties), [...Object.keys(properties), 'small']);
      assert.ok(Object.values(read.properties).every((v) => v === 'x' || v === '\x01'.repeat(65535)));
      assert.deepEqual(read.tags, ['t']);
      const listed = await images.list(query({ scope: { isAdmin: true }, conditions: [{ column: 'id', op: 'eq', values: [image.id] }] }));
      assert.deepEqual(
        listed.map((i) => [Object.keys(i.properties).length, i.tags]),
        [[44, ['t']]],
      );
      assert.ok(await images.markDeleted(image.id));
    });

    test("properties read back in the order they were first set, as Glance lists them (its rows' ids), whatever writes them", async () => {
      const image = makeImage({ properties: { zeta: '1', alpha: '2', mid: '3' } });
      await images.insert(image);
      const order = async () => Object.keys((await images.require(image.id)).properties);
      assert.deepEqual(await order(), ['zeta', 'alpha', 'mid'], 'as created, not by name');
      const read = await images.require(image.id);
      // An edit keeps each property's place; a new one goes last; removed and set again in one save, it keeps its place.
      delete read.properties.alpha;
      assert.ok(
        await images.save({ ...read, properties: { ...read.properties, beta: 'b', zeta: '9', alpha: 'again' } }, { original: await images.require(image.id) }),
      );
      assert.deepEqual(await order(), ['zeta', 'alpha', 'mid', 'beta']);
      assert.equal((await images.require(image.id)).properties.zeta, '9');
      await images.setProperties(image.id, { aaa: 'new', mid: 'changed', zeta: null });
      assert.deepEqual(await order(), ['alpha', 'mid', 'beta', 'aaa']);
      assert.ok(await images.takeImportLock(image.id, 'task-1'));
      assert.deepEqual(await order(), ['alpha', 'mid', 'beta', 'aaa', 'os_glance_import_task']);
      assert.equal(await images.takeImportLock(image.id, 'task-2'), false, 'still one lock');
      // Any other refused write is an error, never taken for a lock another task holds.
      await assert.rejects(images.takeImportLock('no-such-image', 'task-2'), /foreign key/i);
      // A property removed by an earlier save gets its first place back, as Glance's soft-deleted row does.
      await images.setProperties(image.id, { zeta: 'back', later: 'x' });
      assert.deepEqual(await order(), ['zeta', 'alpha', 'mid', 'beta', 'aaa', 'os_glance_import_task', 'later']);
      // So does the import lock, taken again by the next import, and a name removed twice.
      assert.equal(await images.releaseImportLock(image.id, 'task-2'), false, 'only its holder drops the lock');
      assert.ok(await images.releaseImportLock(image.id, 'task-1'));
      await images.setProperties(image.id, { zeta: null });
      await images.setProperties(image.id, { last: 'y' });
      assert.deepEqual(await order(), ['alpha', 'mid', 'beta', 'aaa', 'later', 'last']);
      assert.ok(await images.takeImportLock(image.id, 'task-3'));
      await images.setProperties(image.id, { zeta: 'again' });
      const expected = ['zeta', 'alpha', 'mid', 'beta', 'aaa', 'os_glance_import_task', 'later', 'last'];
      assert.deepEqual(await order(), expected);
      assert.deepEqual(
        (await images.list(query({ scope: { isAdmin: true }, conditions: [{ column: 'id', op: 'eq', values: [image.id] }] }))).map((i) =>
          Object.keys(i.properties),
        ),
        [expected],
        'a list reads them in the same order',
      );
    });

    test('save writes an edited location list: new ones active in order, dropped ones queued for removal, a write in progress untouched', async () => {
      const image = makeImage({ status: 'active', size: 10, disk_format: 'raw', container_format: 'bare' });
      await images.insert(image);
      const first = await images.reserveLocation(image.id, 'http://web/a', {}, ['active']);
      await images.activateLocation(image.id, first.id, ['active']);
      const writing = await images.reserveLocation(image.id, 's3://bucket/copy', { store: 'cold' }, ['active']);

      const read = (await images.get(image.id))!;
      const edited = structuredClone(read);
      const added = { id: crypto.randomUUID(), url: 'http://web/b', metadata: { region: 'two' }, status: 'active' };
      edited.locations = [added, { ...read.locations[0]!, metadata: { k: 'v' } }];
      assert.equal(await images.save(edited, { expectStatus: 'active', original: read }), true);
      assert.deepEqual(
        (await images.get(image.id))!.locations.map((l) => [l.url, l.metadata]),
        [
          ['http://web/b', { region: 'two' }],
          ['http://web/a', { k: 'v' }],
        ],
      );

      const again = (await images.get(image.id))!;
      const dropped = structuredClone(again);
      dropped.locations = [again.locations[1]!];
      assert.equal(await images.save(dropped, { expectStatus: 'active', original: again }), true);
      assert.deepEqual(
        (await images.get(image.id))!.locations.map((l) => l.url),
        ['http://web/a'],
      );
      assert.equal(await count(db, 'image_locations', image.id, 'pending_delete'), 1, 'the dropped location waits for the scrubber');
      assert.deepEqual(
        (await images.locationsOf(image.id)).filter((l) => l.status === 'pending').map((l) => l.id),
        [writing.id],
        'the write in progress keeps its row',
      );
      const holding = async (url: string) => (await images.locationsEndingAs(url)).map((l) => [l.imageId, l.url]);
      assert.deepEqual(await holding('s3://bucket/copy'), [[image.id, 's3://bucket/copy']]);
      assert.deepEqual(await holding('S3+https://key:secret@host/bucket/copy'), [[image.id, 's3://bucket/copy']], 'every spelling ends with the key');
      assert.deepEqual(await holding('s3://bucket/other-copy'), [], 'the whole last segment, not a part of it');
      assert.deepEqual(await holding('http://web/b'), [], 'a dropped location holds nothing');
    });

    test('insert then get returns the same image: booleans, null vs 0, BIGINT sizes, properties, tags', async () => {
      const image = makeImage({
        name: 'Ubuntu 24.04 ✓',
        status: 'active',
        visibility: 'public',
        protected: true,
        os_hidden: false,
        checksum: 'd41d8cd98f00b204e9800998ecf8427e',
        os_hash_algo: 'sha512',
        os_hash_value: 'ab'.repeat(64),
        size: FIVE_TIB,
        virtual_size: 0,
        container_format: 'bare',
        disk_format: 'qcow2',
        min_ram: 0,
        min_disk: 40,
        properties: { os_distro: 'ubuntu', hw_qemu_guest_agent: 'yes', empty: '', 'with space': 'a "quoted" value' },
        tags: ['lts', 'linux', 'lts'],
      });
      await images.insert(image);
      const got = await images.get(image.id);
      assert.ok(got);
      assert.equal(got.size, FIVE_TIB);
      assert.equal(typeof got.size, 'number');
      assert.equal(got.virtual_size, 0);
      assert.equal(got.protected, true);
      assert.equal(got.os_hidden, false);
      assert.deepEqual({ ...got, tags: [...got.tags].sort() }, { ...image, tags: ['linux', 'lts'] });

      const bare = makeImage({ name: null, protected: false, os_hidden: true, size: null, virtual_size: Number.MAX_SAFE_INTEGER, min_ram: 2048 });
      await images.insert(bare);
      const gotBare = await images.get(bare.id);
      assert.deepEqual(gotBare, bare);
      assert.equal(gotBare?.size, null);
      assert.equal(gotBare?.name, null);
      assert.equal(gotBare?.virtual_size, Number.MAX_SAFE_INTEGER);

      assert.equal(await images.get(crypto.randomUUID()), null);
    });

    test("min_ram/min_disk up to 2^31-1 (the INTEGER columns' limit) round-trip", async () => {
      // Larger values are the services' to refuse (checkMinimum, 400 as in Glance): SQLite would store
      // them and PostgreSQL would throw, so they must never reach the repository.
      const max = 2 ** 31 - 1;
      const atMax = makeImage({ min_ram: max, min_disk: max });
      await images.insert(atMax);
      const got = await images.get(atMax.id);
      assert.equal(got?.min_ram, max);
      assert.equal(got?.min_disk, max);
      assert.equal(await images.updateFields(atMax.id, null, { min_ram: max - 1 }), true);
      assert.equal((await images.get(atMax.id))?.min_ram, max - 1);
    });

    test('a big size is found by an equality condition and comes back as a number from list', async () => {
      const image = makeImage({ owner: 'size-owner', size: FIVE_TIB + 1, status: 'active' });
      await images.insert(image);
      const found = await images.list(
        query({
          scope: { projectId: 'size-owner' },
          conditions: [{ column: 'size', op: 'eq', values: [FIVE_TIB + 1] }],
        }),
      );
      assert.deepEqual(
        found.map((i) => i.id),
        [image.id],
      );
      assert.equal(found[0].size, FIVE_TIB + 1);
      assert.equal(typeof found[0].size, 'number');
    });

    test('idExists is true for a live image and still true after markDeleted; get then returns null', async () => {
      const members = new MembersRepo(db);
      const image = makeImage({ properties: { a: '1', b: '2' }, tags: ['t'] });
      assert.equal(await images.idExists(image.id), false);
      await images.insert(image);
      await images.setProperties(image.id, { b: null });
      assert.equal(await count(db, 'image_property_slots', image.id), 1, 'the removed property left its place');
      const location = await images.reserveLocation(image.id, 'file:///store/x', { store: 'fs' }, ['queued']);
      await images.activateLocation(image.id, location.id, ['queued']);
      assert.ok(await members.add(image.id, 'bob'));
      assert.equal(await images.idExists(image.id), true);

      const queued = await images.markDeleted(image.id);
      assert.deepEqual(
        queued?.map((l) => [l.url, l.status]),
        [['file:///store/x', 'active']],
        'the data to remove, as it was',
      );
      assert.equal(await images.idExists(image.id), true);
      assert.equal(await images.get(image.id), null);
      assert.equal(await images.markDeleted(image.id), null, 'a deleted image cannot be deleted again');
      // Its relations are gone; its location is left for the store scrubber, queued as pending_delete.
      assert.equal(await count(db, 'image_properties', image.id), 0);
      assert.equal(await count(db, 'image_property_slots', image.id), 0);
      assert.equal(await count(db, 'image_tags', image.id), 0);
      assert.equal(await count(db, 'image_members', image.id), 0);
      assert.equal(await count(db, 'image_locations', image.id, 'pending_delete'), 1);
      assert.ok((await images.locationsToScrub(1000, ts(1_000_000_000))).some((l) => l.url === 'file:///store/x'));
      assert.ok(!(await images.locationsToScrub(1000, ts(0))).some((l) => l.url === 'file:///store/x'), 'not before its grace period');
      // It cannot be saved back to life either.
      assert.equal(await images.save({ ...image, status: 'active' }), false);
      assert.equal(await images.updateFields(image.id, null, { name: 'zombie' }), false);
    });

    test('delayed delete: pending_delete hides the image but keeps its rows and data until the scrubber or a restore takes it, never both', async () => {
      const delayed = new DelayedDeletesRepo(db);
      const members = new MembersRepo(db);
      const withData = async (status: 'active' | 'deactivated', url: string) => {
        const image = makeImage({ status: 'queued', size: 5, properties: { keep: 'me' }, tags: ['t'] });
        await images.insert(image);
        const location = await images.reserveLocation(image.id, url, { store: 'fs' }, ['queued']);
        await images.activateWithData(
          image.id,
          activation({ size: 5, checksum: 'c', hashAlgo: 'sha512', hashValue: 'h', virtualSize: null }),
          location.id,
          'queued',
        );
        if (status === 'deactivated') assert.ok(await images.updateFields(image.id, 'active', moveTo('deactivated')));
        assert.ok(await members.add(image.id, 'bob'));
        return image;
      };

      // No data, or not whole yet: nothing to delay (the caller deletes at once).
      const empty = makeImage({ status: 'queued' });
      await images.insert(empty);
      assert.equal(await delayed.mark(empty.id), false);
      assert.equal((await images.get(empty.id))?.status, 'queued', 'left as it was');

      // Glance's status table has no way from deactivated to pending_delete.
      const stopped = await withData('deactivated', 'file:///store/stopped');
      assert.equal(await delayed.mark(stopped.id), false);
      assert.equal((await images.get(stopped.id))?.status, 'deactivated');

      const a = await withData('active', 'file:///store/a');
      const b = await withData('active', 'file:///store/b');
      // A copy to another store that failed before the delete: queued for removal, never to come back.
      const failedCopy = await images.reserveLocation(b.id, 'file:///store/b-copy', { store: 'other' }, ['active']);
      await images.discardLocation(failedCopy.id);
      for (const image of [a, b]) assert.equal(await delayed.mark(image.id), true);
      assert.equal(await delayed.mark(a.id), false, 'a deleted image cannot be deleted again');
      for (const image of [a, b]) {
        assert.equal(await images.get(image.id), null, 'hidden as a deleted image is');
        const found = await delayed.find(image.id);
        assert.equal(found?.status, 'pending_delete');
        assert.equal(await count(db, 'image_properties', image.id), 1, 'properties kept for a restore');
        assert.equal(await count(db, 'image_tags', image.id), 1);
        assert.equal(await count(db, 'image_members', image.id), 1);
        assert.deepEqual(
          (await delayed.keptLocations(image.id)).map((l) => l.url),
          [image === a ? 'file:///store/a' : 'file:///store/b'],
          'its data is kept, and only its data',
        );
      }
      // The ordinary scrub does not take the data of a delayed delete, however old.
      const far = addSeconds(nowTimestamp(), 3600);
      const scrubbable = (await images.locationsToScrub(1000, far)).map((l) => l.url);
      assert.ok(!scrubbable.some((url) => ['file:///store/a', 'file:///store/b'].includes(url)));
      assert.ok(scrubbable.includes('file:///store/b-copy'), 'what was queued before the delete is still removed');
      // Due once deleted before the given time.
      assert.deepEqual(
        (await delayed.due(addSeconds(nowTimestamp(), -3600), 10)).filter((id) => [a.id, b.id].includes(id)),
        [],
      );
      assert.deepEqual((await delayed.due(far, 10)).filter((id) => [a.id, b.id].includes(id)).sort(), [a.id, b.id].sort());

      // A restore and the scrubber's finish race for each image: exactly one of them wins.
      const [restoredA, finishedA] = await Promise.all([
        delayed.restore(
          a.id,
          (await delayed.keptLocations(a.id)).map((l) => l.id),
        ),
        delayed.finish(a.id),
      ]);
      assert.ok(restoredA !== (finishedA !== null), `one winner for ${a.id}: restore ${restoredA}, finish ${String(finishedA)}`);

      // b: restored whole.
      const bLocations = await delayed.keptLocations(b.id);
      assert.equal(
        await delayed.restore(
          b.id,
          bLocations.map((l) => l.id),
        ),
        true,
      );
      const back = await images.get(b.id);
      assert.equal(back?.status, 'active', "Glance's restore makes it active");
      assert.deepEqual(back?.properties, { keep: 'me' });
      assert.deepEqual(back?.tags, ['t']);
      assert.deepEqual(
        back?.locations.map((l) => [l.url, l.status]),
        [['file:///store/b', 'active']],
      );
      assert.equal(await count(db, 'image_members', b.id), 1);
      assert.equal(
        await delayed.restore(
          b.id,
          bLocations.map((l) => l.id),
        ),
        false,
        'only a pending_delete image is restored',
      );
      assert.equal(await delayed.finish(b.id), null, 'nor finished');

      // Finishing a delete: deleted for good, relations dropped, its data handed to the scrubber.
      const c = await withData('active', 'file:///store/c');
      assert.ok(await delayed.mark(c.id));
      assert.deepEqual(
        (await delayed.finish(c.id))?.map((l) => [l.url, l.status]),
        [['file:///store/c', 'pending_delete']],
      );
      assert.equal((await delayed.find(c.id))?.status, 'deleted');
      assert.equal(await count(db, 'image_properties', c.id), 0);
      assert.equal(await count(db, 'image_members', c.id), 0);
      assert.equal(await delayed.restore(c.id, ['x']), false, 'a finished delete cannot be restored');
      assert.ok(
        (await images.locationsToScrub(1000, far)).some((l) => l.url === 'file:///store/c'),
        'now the scrubber takes its data',
      );
    });

    test('save with expectStatus is compare-and-set', async () => {
      const image = makeImage({ status: 'queued', properties: { a: '1', b: '2' }, tags: ['x'] });
      await images.insert(image);

      const mine = structuredClone(image);
      const stale = structuredClone(image);
      mine.status = 'saving';
      mine.properties = { a: '1', c: '3' };
      mine.tags = ['y', 'z'];
      assert.equal(await images.save(mine, { expectStatus: 'queued' }), true);

      stale.status = 'active';
      stale.name = 'stale';
      stale.properties = { stale: 'yes' };
      assert.equal(await images.save(stale, { expectStatus: 'queued' }), false, 'the status is no longer queued');

      const got = await images.get(image.id);
      assert.equal(got?.status, 'saving');
      assert.equal(got?.name, 'image');
      assert.deepEqual(got?.properties, { a: '1', c: '3' }, 'properties replaced by the winning save only');
      assert.deepEqual([...(got?.tags ?? [])].sort(), ['y', 'z']);

      // Without expectStatus the save is unconditional; touch: false keeps updated_at.
      const plain = structuredClone(got!);
      plain.name = 'renamed';
      const before = plain.updated_at;
      assert.equal(await images.save(plain, { touch: false }), true);
      assert.equal((await images.get(image.id))?.updated_at, before);
      assert.equal((await images.get(image.id))?.name, 'renamed');
      plain.updated_at = ts(0);
      assert.equal(await images.save(plain), true);
      assert.notEqual((await images.get(image.id))?.updated_at, ts(0), 'a save touches updated_at');
    });

    test('updateFields is compare-and-set on one status or a list of them', async () => {
      const image = makeImage({ status: 'queued' });
      await images.insert(image);
      assert.equal(await images.updateFields(image.id, 'active', moveTo('deactivated')), false);
      assert.equal(await images.updateFields(image.id, ['importing', 'queued'], { ...moveTo('importing'), min_ram: 128 }), true);
      const got = await images.get(image.id);
      assert.equal(got?.status, 'importing');
      assert.equal(got?.min_ram, 128);
      assert.deepEqual(await images.idsInStatus('importing'), [image.id]);
    });

    test('a status change outside the state machine, or one that does not name what it leaves, is refused before any write', async () => {
      const image = makeImage({ status: 'queued' });
      await images.insert(image);
      await assert.rejects(images.updateFields(image.id, 'queued', moveTo('deactivated')), /image status queued -> deactivated is not in the state machine/);
      await assert.rejects(
        images.updateFields(image.id, ['importing', 'active'], resetToQueued()),
        /image status active -> queued is not in the state machine/,
      );
      await assert.rejects(images.updateFields(image.id, null, moveTo('saving')), /must name the status it leaves/);
      assert.equal((await images.get(image.id))?.status, 'queued', 'nothing was written');
    });

    test('updateFields with properties writes both in one step, or neither when the status has moved on', async () => {
      const image = makeImage({ status: 'uploading', properties: { keep: 'k', drop: 'd' } });
      await images.insert(image);
      assert.equal(await images.updateFields(image.id, 'queued', moveTo('importing'), { added: 'a', drop: null }), false);
      assert.deepEqual((await images.get(image.id))?.properties, { keep: 'k', drop: 'd' }, 'a failed compare-and-set writes no property');
      assert.equal(await images.updateFields(image.id, 'uploading', moveTo('importing'), { added: 'a', drop: null }), true);
      const got = await images.get(image.id);
      assert.equal(got?.status, 'importing');
      assert.deepEqual(got?.properties, { keep: 'k', added: 'a' });
      await images.markDeleted(image.id);
      assert.equal(await images.updateFields(image.id, null, {}, { late: 'x' }), false, 'a deleted image takes no property');
    });

    test('requireUpdate writes like updateFields, and refuses with ImageGone when the image moved on or went', async () => {
      const image = makeImage({ status: 'importing', properties: { a: '1' } });
      await images.insert(image);
      await images.requireUpdate(image.id, 'importing', { disk_format: 'qcow2' }, { b: '2' });
      const got = await images.get(image.id);
      assert.equal(got?.disk_format, 'qcow2');
      assert.deepEqual(got?.properties, { a: '1', b: '2' });
      await assert.rejects(images.requireUpdate(image.id, 'queued', { disk_format: 'raw' }), ImageGone);
      assert.equal((await images.get(image.id))?.disk_format, 'qcow2', 'a refused update writes nothing');
      await images.markDeleted(image.id);
      await assert.rejects(images.requireUpdate(image.id, 'importing', {}, { late: 'x' }), ImageGone);
    });

    test('updateFields with an expected property: only while the image still has that value', async () => {
      const image = makeImage({ status: 'saving', properties: { os_glance_upload_node: 'node-c' } });
      await images.insert(image);
      const byDeadWriter = { name: 'os_glance_upload_node', value: 'node-w' };
      assert.equal(await images.updateFields(image.id, 'saving', resetToQueued(), { os_glance_upload_node: null }, { expectProperty: byDeadWriter }), false);
      const untouched = await images.get(image.id);
      assert.equal(untouched?.status, 'saving', 'another writer holds the image now');
      assert.equal(untouched?.properties.os_glance_upload_node, 'node-c');
      assert.equal(
        await images.updateFields(
          image.id,
          'saving',
          resetToQueued(),
          { os_glance_upload_node: null },
          { expectProperty: { ...byDeadWriter, value: 'node-c' } },
        ),
        true,
      );
      const reverted = await images.get(image.id);
      assert.equal(reverted?.status, 'queued');
      assert.equal(reverted?.properties.os_glance_upload_node, undefined);
    });

    test("a status change that ends a write removes the writer's property with it; one that goes on writing keeps it", async () => {
      const writer = { os_glance_upload_node: 'node-w', other: 'kept' };
      const failed = makeImage({ status: 'saving', properties: writer });
      const staged = makeImage({ status: 'uploading', properties: writer });
      const starting = makeImage({ status: 'queued', properties: { other: 'kept' } });
      for (const image of [failed, staged, starting]) await images.insert(image);
      assert.equal(await images.updateFields(failed.id, 'saving', resetToQueued()), true);
      assert.equal(await images.updateFields(staged.id, 'uploading', { size: 3 }), true);
      assert.equal(await images.updateFields(starting.id, 'queued', moveTo('saving'), { os_glance_upload_node: 'node-s' }), true);
      assert.deepEqual((await images.get(failed.id))?.properties, { other: 'kept' });
      assert.deepEqual((await images.get(staged.id))?.properties, writer, 'no status change: still being written');
      assert.deepEqual((await images.get(starting.id))?.properties, { other: 'kept', os_glance_upload_node: 'node-s' });
      assert.equal(await images.updateFields(staged.id, 'uploading', moveTo('importing')), true);
      assert.deepEqual((await images.get(staged.id))?.properties, { other: 'kept' });

      // The node holding staged data matters only while the image is uploading: a cancelled import
      // that puts the image back forgets it (a later delete or import is not sent there).
      const hosted = makeImage({ status: 'uploading', properties: { os_glance_stage_host: 'http://n1:9292', other: 'kept' } });
      await images.insert(hosted);
      assert.equal(await images.updateFields(hosted.id, ['importing', 'uploading'], resetToQueued()), true);
      assert.deepEqual((await images.get(hosted.id))?.properties, { other: 'kept' });
    });

    test('writesInStatuses: the images of some statuses with their status, writer, stage host and owner, in one query', async () => {
      const marker = `node-${crypto.randomUUID()}`;
      const named = makeImage({ status: 'saving', owner: 'project-a', properties: { os_glance_upload_node: marker, other: 'x' } });
      const unnamed = makeImage({ status: 'saving', owner: null, properties: { other: 'x' } });
      const staged = makeImage({ status: 'uploading', properties: { os_glance_upload_node: marker, os_glance_stage_host: 'http://n1:9292' } });
      const active = makeImage({ status: 'active', properties: { os_glance_upload_node: marker } });
      const deleted = makeImage({ status: 'saving', properties: { os_glance_upload_node: marker } });
      for (const image of [named, unnamed, staged, active, deleted]) await images.insert(image);
      await images.markDeleted(deleted.id);
      const mine = (rows: Array<{ id: string }>) => rows.filter((row) => [named, unnamed, staged, active, deleted].some((i) => i.id === row.id));
      const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
      assert.deepEqual(
        mine(await images.writesInStatuses(['saving', 'uploading'])).sort(byId),
        [
          { id: named.id, status: 'saving', writer: marker, stageHost: null, owner: 'project-a' },
          { id: unnamed.id, status: 'saving', writer: null, stageHost: null, owner: null },
          { id: staged.id, status: 'uploading', writer: marker, stageHost: 'http://n1:9292', owner: staged.owner },
        ].sort(byId),
      );
      assert.deepEqual(mine(await images.writesInStatuses(['uploading'])), [
        { id: staged.id, status: 'uploading', writer: marker, stageHost: 'http://n1:9292', owner: staged.owner },
      ]);
    });

    test('a read of the images in one status goes through an index (the recovery passes make it every few seconds)', async () => {
      const query = db.kysely.selectFrom('images').select('id').where('status', '=', 'saving').where('deleted', '=', 0).compile();
      const plan = await db.kysely.connection().execute(async (conn) => {
        // PostgreSQL scans a small table whole whatever its indexes; forbidding that shows whether one fits.
        if (db.engine === 'postgresql') await sql`set enable_seqscan = off`.execute(conn);
        try {
          const explain = db.engine === 'sqlite' ? 'explain query plan ' : 'explain ';
          return JSON.stringify((await conn.executeQuery(CompiledQuery.raw(explain + query.sql, [...query.parameters]))).rows);
        } finally {
          if (db.engine === 'postgresql') await sql`reset enable_seqscan`.execute(conn);
        }
      });
      // MariaDB's plan names the index it may use (possible_keys) and the one it chose (key): the chosen one counts.
      if (db.engine === 'mysql') assert.equal((JSON.parse(plan) as Array<{ key: string | null }>)[0]?.key, 'ix_images_status');
      else assert.match(plan, /ix_images_status/);
    });

    test('locksOfFinishedTasks: locks of tasks that ended before the given time, on images not importing', async () => {
      const tasks = new TasksRepo(db);
      const longAgo = ts(0);
      const cases = {
        succeededLongAgo: { image: 'active', task: 'success', updated: longAgo, listed: true },
        failedLongAgo: { image: 'queued', task: 'failure', updated: longAgo, listed: true },
        succeededJustNow: { image: 'active', task: 'success', updated: nowTimestamp(), listed: false },
        stillRunning: { image: 'active', task: 'processing', updated: longAgo, listed: false },
        importingAfterFailure: { image: 'importing', task: 'failure', updated: longAgo, listed: false },
      } as const;
      const expected: Array<{ imageId: string; taskId: string }> = [];
      const mine = new Set<string>();
      for (const c of Object.values(cases)) {
        const image = makeImage({ status: c.image });
        await images.insert(image);
        const task = taskRow({ status: c.task, image_id: image.id, updated_at: c.updated });
        await tasks.insert(task);
        assert.ok(await images.takeImportLock(image.id, task.id));
        mine.add(image.id);
        if (c.listed) expected.push({ imageId: image.id, taskId: task.id });
      }
      const found = (await images.locksOfFinishedTasks(addSeconds(nowTimestamp(), -60), 1000)).filter((l) => mine.has(l.imageId));
      const byImage = (a: { imageId: string }, b: { imageId: string }) => a.imageId.localeCompare(b.imageId);
      assert.deepEqual(found.sort(byImage), expected.sort(byImage));
    });

    test('updateFields with an empty list of expected statuses matches nothing', async () => {
      const image = makeImage({ status: 'queued' });
      await images.insert(image);
      assert.equal(await images.updateFields(image.id, [], { name: 'changed' }), false);
      assert.equal((await images.get(image.id))?.name, 'image');
    });

    test('concurrent compare-and-set saves: exactly one wins', async () => {
      const image = makeImage({ status: 'queued' });
      await images.insert(image);
      const results = await Promise.all(
        [1, 2, 3, 4, 5].map((n) =>
          images.save({ ...structuredClone(image), status: 'saving', name: `writer-${n}`, properties: { writer: String(n) } }, { expectStatus: 'queued' }),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const winner = results.indexOf(true) + 1;
      const got = await images.get(image.id);
      assert.equal(got?.name, `writer-${winner}`);
      assert.deepEqual(got?.properties, { writer: String(winner) });
    });

    test('activateWithData only activates a saving image, and makes its reserved location visible', async () => {
      const image = makeImage({ status: 'queued', disk_format: 'raw', container_format: 'bare' });
      await images.insert(image);
      const data = activation({ size: FIVE_TIB, checksum: 'c'.repeat(32), hashAlgo: 'sha512', hashValue: 'f'.repeat(128), virtualSize: FIVE_TIB });
      const metadata = { store: 'fs', nested: { n: 1 } };

      await assert.rejects(images.reserveLocation(image.id, 'file:///store/data', metadata, ['saving']), ImageGone, 'queued is not saving');
      assert.equal(await count(db, 'image_locations', image.id), 0);
      assert.equal(await images.updateFields(image.id, 'queued', moveTo('saving')), true);
      const location = await images.reserveLocation(image.id, 'file:///store/data', metadata, ['saving']);
      assert.equal(location.status, 'pending');
      assert.deepEqual((await images.get(image.id))?.locations, [], 'a pending location is not shown');
      assert.deepEqual(
        (await images.locationsOf(image.id)).map((l) => l.id),
        [location.id],
        'but known to the clean-up',
      );

      await assert.rejects(images.activateWithData(image.id, data, location.id, 'queued'), ImageGone, 'the image is saving, not queued');
      await images.activateWithData(image.id, data, location.id);
      const got = await images.get(image.id);
      assert.equal(got?.status, 'active');
      assert.equal(got?.size, FIVE_TIB);
      assert.equal(got?.virtual_size, FIVE_TIB);
      assert.equal(got?.checksum, data.checksum);
      assert.equal(got?.os_hash_value, data.os_hash_value);
      assert.equal(got?.locations.length, 1);
      assert.equal(got?.locations[0].url, 'file:///store/data');
      assert.deepEqual(got?.locations[0].metadata, metadata);
      assert.equal(got?.locations[0].status, 'active');
      await assert.rejects(images.activateWithData(image.id, data, location.id), ImageGone, 'active is not saving');
      assert.equal(await count(db, 'image_locations', image.id), 1);

      // A saving image deleted meanwhile is not activated, and its reserved location is queued for removal.
      const gone = makeImage({ status: 'saving' });
      await images.insert(gone);
      const reserved = await images.reserveLocation(gone.id, 'file:///store/gone', {}, ['saving']);
      assert.deepEqual(
        (await images.markDeleted(gone.id))?.map((l) => l.status),
        ['pending'],
      );
      await assert.rejects(images.activateWithData(gone.id, data, reserved.id), ImageGone);
      await assert.rejects(images.activateLocation(gone.id, reserved.id, ['saving']), ImageGone);
      await assert.rejects(images.reserveLocation(gone.id, 'file:///store/gone2', {}, ['saving']), ImageGone);
      assert.equal(await count(db, 'image_locations', gone.id, 'pending_delete'), 1);
      assert.equal(await count(db, 'image_locations', gone.id), 1);
    });

    test('reserveLocation appends positions and reuses the row of the same url; discard hides one; purge deletes it', async () => {
      const image = makeImage({ status: 'active' });
      await images.insert(image);
      const first = await images.reserveLocation(image.id, 'file:///a', {}, ['active']);
      const second = await images.reserveLocation(image.id, 'file:///b', { k: 'v' }, ['active']);
      assert.equal((await images.reserveLocation(image.id, 'file:///a', {}, ['active'])).id, first.id, 'a resumed write reuses its row');
      for (const l of [first, second]) await images.activateLocation(image.id, l.id, ['active']);
      assert.deepEqual(
        (await images.get(image.id))?.locations.map((l) => l.url),
        ['file:///a', 'file:///b'],
      );
      await images.discardLocation(first.id);
      assert.deepEqual((await images.get(image.id))?.locations, [{ id: second.id, url: 'file:///b', metadata: { k: 'v' }, status: 'active' }]);
      assert.ok((await images.locationsToScrub(1000, ts(1_000_000_000))).some((l) => l.id === first.id));
      await images.purgeLocation(first.id);
      assert.ok(!(await images.locationsToScrub(1000, ts(1_000_000_000))).some((l) => l.id === first.id));
    });

    test('a delete racing with location activations: each location is either visible on a live image or queued for removal', async () => {
      for (let round = 0; round < 10; round++) {
        const image = makeImage({ status: 'importing' });
        await images.insert(image);
        const reserved = await Promise.all([0, 1, 2, 3].map((n) => images.reserveLocation(image.id, `file:///race/${n}`, {}, ['importing'])));
        const [activated, queued] = await Promise.all([
          Promise.all(
            reserved.map((l) =>
              images.activateLocation(image.id, l.id, ['importing']).then(
                () => true,
                (err: unknown) => (err instanceof ImageGone ? false : Promise.reject(err)),
              ),
            ),
          ),
          images.markDeleted(image.id),
        ]);
        const rows = await db.kysely.selectFrom('image_locations').select(['id', 'status']).where('image_id', '=', image.id).execute();
        assert.equal(rows.length, 4);
        assert.ok(
          rows.every((r) => r.status === 'pending_delete'),
          'the image is deleted: all its data is queued',
        );
        assert.equal(queued?.length, 4);
        // What the delete saw as active had been activated before it; the rest is for their writers to remove.
        for (const [n, l] of reserved.entries()) {
          const seen = queued!.find((q) => q.id === l.id)!;
          if (seen.status === 'active') assert.equal(activated[n], true);
          else assert.equal(activated[n], false);
        }
      }
    });

    test('setProperty sets, replaces and removes one property', async () => {
      const image = makeImage({ properties: { a: '1' } });
      await images.insert(image);
      await images.setProperty(image.id, 'b', '2');
      await images.setProperty(image.id, 'a', 'one');
      assert.deepEqual((await images.get(image.id))?.properties, { a: 'one', b: '2' });
      await images.setProperty(image.id, 'a', null);
      assert.deepEqual((await images.get(image.id))?.properties, { b: '2' });
    });
  });

  describe('images.list: visibility scopes and os_hidden', () => {
    let images: ImagesRepo;
    before(async () => {
      const db = await engine.open();
      images = new ImagesRepo(db);
      const members = new MembersRepo(db);
      const add = async (name: string, visibility: Image['visibility'], owner: string | null, extra: Partial<Image> = {}) => {
        const image = makeImage({ name, visibility, owner, status: 'active', ...extra });
        await images.insert(image);
        return image;
      };
      await add('pub-bob', 'public', 'bob');
      await add('priv-alice', 'private', 'alice');
      await add('priv-bob', 'private', 'bob');
      const sharedAlice = await add('shared-alice', 'shared', 'alice');
      const accepted = await add('shared-bob-accepted', 'shared', 'bob');
      const pending = await add('shared-bob-pending', 'shared', 'bob');
      const rejected = await add('shared-bob-rejected', 'shared', 'bob');
      const notMine = await add('shared-bob-carol', 'shared', 'bob');
      await add('comm-bob', 'community', 'bob');
      await add('comm-alice', 'community', 'alice');
      await add('hidden-pub-bob', 'public', 'bob', { os_hidden: true });
      await add('hidden-priv-alice', 'private', 'alice', { os_hidden: true });
      await add('pub-noowner', 'public', null);
      const deleted = await add('pub-deleted', 'public', 'bob');
      await images.markDeleted(deleted.id);
      await add('pub-killed', 'public', 'bob', { status: 'killed' });

      await members.add(accepted.id, 'alice');
      await members.setStatus(accepted.id, 'alice', 'accepted');
      await members.add(pending.id, 'alice');
      await members.add(rejected.id, 'alice');
      await members.setStatus(rejected.id, 'alice', 'rejected');
      await members.add(notMine.id, 'carol');
      await members.setStatus(notMine.id, 'carol', 'accepted');
      // Memberships of other projects change nothing for alice: bob on alice's own shared image, carol
      // (pending) on the one shared with alice.
      await members.add(sharedAlice.id, 'bob');
      await members.setStatus(sharedAlice.id, 'bob', 'accepted');
      await members.add(accepted.id, 'carol');
    });

    const nonAdmin: Array<[string, Partial<ListScope>, string[]]> = [
      [
        'no filter: public, own (any visibility), shared with me and accepted',
        {},
        ['comm-alice', 'priv-alice', 'pub-bob', 'pub-noowner', 'shared-alice', 'shared-bob-accepted'],
      ],
      ['member_status=pending', { memberStatus: 'pending' }, ['comm-alice', 'priv-alice', 'pub-bob', 'pub-noowner', 'shared-alice', 'shared-bob-pending']],
      ['member_status=rejected', { memberStatus: 'rejected' }, ['comm-alice', 'priv-alice', 'pub-bob', 'pub-noowner', 'shared-alice', 'shared-bob-rejected']],
      [
        'member_status=all',
        { memberStatus: 'all' },
        ['comm-alice', 'priv-alice', 'pub-bob', 'pub-noowner', 'shared-alice', 'shared-bob-accepted', 'shared-bob-pending', 'shared-bob-rejected'],
      ],
      ['visibility=public', { visibility: 'public' }, ['pub-bob', 'pub-noowner']],
      ['visibility=private: only own', { visibility: 'private' }, ['priv-alice']],
      ['visibility=shared: own shared and accepted shares', { visibility: 'shared' }, ['shared-alice', 'shared-bob-accepted']],
      [
        'visibility=shared&member_status=all',
        { visibility: 'shared', memberStatus: 'all' },
        ['shared-alice', 'shared-bob-accepted', 'shared-bob-pending', 'shared-bob-rejected'],
      ],
      ["visibility=community: everyone's community images", { visibility: 'community' }, ['comm-alice', 'comm-bob']],
      [
        "visibility=all: adds others' community images",
        { visibility: 'all' },
        ['comm-alice', 'comm-bob', 'priv-alice', 'pub-bob', 'pub-noowner', 'shared-alice', 'shared-bob-accepted'],
      ],
      ['no project (unscoped): public only', { projectId: null }, ['pub-bob', 'pub-noowner']],
      ['carol: her accepted share only', { projectId: 'carol' }, ['pub-bob', 'pub-noowner', 'shared-bob-carol']],
      ['carol, member_status=pending', { projectId: 'carol', memberStatus: 'pending' }, ['pub-bob', 'pub-noowner', 'shared-bob-accepted']],
      [
        "bob: his own images and his accepted share of alice's",
        { projectId: 'bob' },
        [
          'comm-bob',
          'priv-bob',
          'pub-bob',
          'pub-noowner',
          'shared-alice',
          'shared-bob-accepted',
          'shared-bob-carol',
          'shared-bob-pending',
          'shared-bob-rejected',
        ],
      ],
    ];
    for (const [title, scope, expected] of nonAdmin) {
      test(`non-admin ${title}`, async () => {
        assert.deepEqual(names(await images.list(query({ scope }))), expected);
      });
    }

    const admin: Array<[string, Partial<ListScope>, string[]]> = [
      [
        "no filter: everything but others' community images",
        {},
        [
          'priv-alice',
          'priv-bob',
          'pub-bob',
          'pub-noowner',
          'shared-alice',
          'shared-bob-accepted',
          'shared-bob-carol',
          'shared-bob-pending',
          'shared-bob-rejected',
        ],
      ],
      [
        'visibility=all: everything',
        { visibility: 'all' },
        [
          'comm-alice',
          'comm-bob',
          'priv-alice',
          'priv-bob',
          'pub-bob',
          'pub-noowner',
          'shared-alice',
          'shared-bob-accepted',
          'shared-bob-carol',
          'shared-bob-pending',
          'shared-bob-rejected',
        ],
      ],
      ['visibility=community', { visibility: 'community' }, ['comm-alice', 'comm-bob']],
      ["visibility=private: everyone's", { visibility: 'private' }, ['priv-alice', 'priv-bob']],
      [
        "visibility=shared: everyone's",
        { visibility: 'shared' },
        ['shared-alice', 'shared-bob-accepted', 'shared-bob-carol', 'shared-bob-pending', 'shared-bob-rejected'],
      ],
    ];
    for (const [title, scope, expected] of admin) {
      test(`admin ${title}`, async () => {
        assert.deepEqual(names(await images.list(query({ scope: { isAdmin: true, projectId: 'admin', ...scope } }))), expected);
      });
    }

    test('admin owning a community image sees it without a visibility filter', async () => {
      const listed = await images.list(query({ scope: { isAdmin: true, projectId: 'bob' } }));
      assert.ok(names(listed).includes('comm-bob'));
      assert.ok(!names(listed).includes('comm-alice'));
    });

    test('os_hidden: hidden images are left out by default; osHidden lists only them (same scopes)', async () => {
      assert.ok(!names(await images.list(query({ scope: { visibility: 'all' } }))).some((n) => n.startsWith('hidden')));
      assert.deepEqual(names(await images.list(query({ osHidden: true }))), ['hidden-priv-alice', 'hidden-pub-bob']);
      assert.deepEqual(names(await images.list(query({ osHidden: true, scope: { projectId: 'carol' } }))), ['hidden-pub-bob']);
    });

    test('deleted and killed images are never listed, not even for an admin with visibility=all', async () => {
      const all = names(await images.list(query({ scope: { isAdmin: true, visibility: 'all' } })));
      assert.ok(!all.includes('pub-deleted'));
      assert.ok(!all.includes('pub-killed'));
    });
  });

  describe('images.list: column conditions, properties, tags, sorting', () => {
    let images: ImagesRepo;
    before(async () => {
      images = new ImagesRepo(await engine.open());
      const rows: Array<Partial<Image>> = [
        {
          id: uuid(1),
          name: 'alpha',
          status: 'active',
          size: 100,
          disk_format: 'qcow2',
          container_format: 'bare',
          min_ram: 0,
          protected: true,
          created_at: ts(10),
          properties: { os_distro: 'ubuntu', arch: 'x86_64' },
          tags: ['linux', 'lts'],
        },
        {
          id: uuid(2),
          name: 'beta',
          status: 'active',
          size: 2000,
          disk_format: 'raw',
          container_format: 'bare',
          min_ram: 512,
          created_at: ts(20),
          properties: { os_distro: 'ubuntu', arch: 'aarch64' },
          tags: ['linux'],
        },
        { id: uuid(3), name: null, status: 'queued', size: null, disk_format: null, container_format: null, min_ram: 0, created_at: ts(30) },
        {
          id: uuid(4),
          name: 'gamma',
          status: 'active',
          size: FIVE_TIB,
          disk_format: 'qcow2',
          container_format: 'ovf',
          min_ram: 1024,
          created_at: ts(30),
          properties: { os_distro: 'debian' },
          tags: ['linux', 'lts', 'gpu'],
        },
        {
          id: uuid(5),
          name: 'delta',
          status: 'saving',
          size: 0,
          disk_format: 'iso',
          container_format: 'bare',
          min_ram: 2048,
          created_at: ts(40),
          properties: { arch: 'x86_64' },
          tags: ['lts'],
        },
        { id: uuid(6), name: null, status: 'active', size: 50, disk_format: 'raw', container_format: 'bare', min_ram: 0, created_at: ts(50) },
        { id: uuid(7), name: 'beta', status: 'deactivated', size: 2000, disk_format: 'vmdk', container_format: 'bare', min_ram: 0, created_at: ts(5) },
      ];
      for (const r of rows) await images.insert(makeImage({ visibility: 'public', owner: 'alice', updated_at: r.created_at, ...r }));
    });

    const ids = async (q: QueryOverrides) => (await images.list(query(q))).map((i) => i.id).sort();
    const where = async (...conditions: ColumnCondition[]) => ids({ conditions });
    const u = (...ns: number[]) => ns.map(uuid).sort();

    test('eq: a value, NULL (IS NULL), a boolean column given true/"true"/false', async () => {
      assert.deepEqual(await where({ column: 'disk_format', op: 'eq', values: ['qcow2'] }), u(1, 4));
      assert.deepEqual(await where({ column: 'name', op: 'eq', values: [null] }), u(3, 6));
      assert.deepEqual(await where({ column: 'status', op: 'eq', values: ['active'] }), u(1, 2, 4, 6));
      assert.deepEqual(await where({ column: 'protected', op: 'eq', values: [true] }), u(1));
      assert.deepEqual(await where({ column: 'protected', op: 'eq', values: ['true'] }), u(1));
      assert.deepEqual(await where({ column: 'protected', op: 'eq', values: [false] }), u(2, 3, 4, 5, 6, 7));
      assert.deepEqual(await where({ column: 'size', op: 'eq', values: [FIVE_TIB] }), u(4));
      assert.deepEqual(await where({ column: 'size', op: 'eq', values: [0] }), u(5), '0 is not NULL');
      assert.deepEqual(await where({ column: 'name', op: 'eq', values: ['nope'] }), []);
    });

    test('neq: NULLs count as different', async () => {
      assert.deepEqual(await where({ column: 'disk_format', op: 'neq', values: ['raw'] }), u(1, 3, 4, 5, 7));
      assert.deepEqual(await where({ column: 'name', op: 'neq', values: [null] }), u(1, 2, 4, 5, 7));
    });

    test('in: any of the values; an empty list matches nothing', async () => {
      assert.deepEqual(await where({ column: 'disk_format', op: 'in', values: ['raw', 'iso'] }), u(2, 5, 6));
      assert.deepEqual(await where({ column: 'id', op: 'in', values: [uuid(3), uuid(7), uuid(99)] }), u(3, 7));
      assert.deepEqual(await where({ column: 'disk_format', op: 'in', values: [] }), []);
    });

    test('gt/gte/lt/lte on numbers (NULL never matches) and on timestamps', async () => {
      assert.deepEqual(await where({ column: 'size', op: 'gte', values: [2000] }), u(2, 4, 7));
      assert.deepEqual(await where({ column: 'size', op: 'gt', values: [2000] }), u(4));
      assert.deepEqual(await where({ column: 'size', op: 'gt', values: [4 * TiB] }), u(4));
      assert.deepEqual(await where({ column: 'size', op: 'lt', values: [100] }), u(5, 6));
      assert.deepEqual(await where({ column: 'size', op: 'lte', values: [100] }), u(1, 5, 6));
      assert.deepEqual(await where({ column: 'min_ram', op: 'gte', values: [1024] }), u(4, 5));
      // The lowest bounds the image list passes (a filter below what a column holds) are taken by every engine.
      assert.deepEqual(await where({ column: 'size', op: 'gte', values: [-Number.MAX_SAFE_INTEGER] }), await where({ column: 'size', op: 'gte', values: [0] }));
      assert.deepEqual(await where({ column: 'min_ram', op: 'gte', values: [-2147483647] }), await where({ column: 'min_ram', op: 'gte', values: [0] }));
      assert.deepEqual(await where({ column: 'min_disk', op: 'lte', values: [-2147483647] }), []);
      assert.deepEqual(await where({ column: 'created_at', op: 'gte', values: [ts(30)] }), u(3, 4, 5, 6));
      assert.deepEqual(await where({ column: 'created_at', op: 'lt', values: [ts(20)] }), u(1, 7));
      // Several conditions are ANDed.
      assert.deepEqual(
        await where(
          { column: 'created_at', op: 'gte', values: [ts(10)] },
          { column: 'created_at', op: 'lt', values: [ts(40)] },
          { column: 'status', op: 'eq', values: ['active'] },
        ),
        u(1, 2, 4),
      );
    });

    test('conditions on 32-bit columns (min_ram/min_disk) with values beyond 32 bits just compare', async () => {
      // GET /v2/images?min_ram=3000000000 (or min_disk_max=…) reaches the repository as is.
      assert.deepEqual(await where({ column: 'min_ram', op: 'eq', values: [3_000_000_000] }), []);
      assert.deepEqual(await where({ column: 'min_ram', op: 'gte', values: [2 ** 31] }), []);
      assert.deepEqual(await where({ column: 'min_disk', op: 'lte', values: [2 ** 31] }), u(1, 2, 3, 4, 5, 6, 7));
    });

    test('outside [low, high): below low or at/above high', async () => {
      assert.deepEqual(await where({ column: 'size', op: 'outside', values: [100, 2000] }), u(2, 4, 5, 6, 7));
      assert.deepEqual(await where({ column: 'created_at', op: 'outside', values: [ts(10), ts(40)] }), u(5, 6, 7));
    });

    test('property filters: every given name=value must match', async () => {
      assert.deepEqual(await ids({ properties: [{ name: 'os_distro', value: 'ubuntu' }] }), u(1, 2));
      assert.deepEqual(
        await ids({
          properties: [
            { name: 'os_distro', value: 'ubuntu' },
            { name: 'arch', value: 'x86_64' },
          ],
        }),
        u(1),
      );
      assert.deepEqual(await ids({ properties: [{ name: 'arch', value: 'x86_64' }] }), u(1, 5));
      assert.deepEqual(await ids({ properties: [{ name: 'os_distro', value: 'Ubuntu' }] }), [], 'values match exactly');
      assert.deepEqual(await ids({ properties: [{ name: 'nope', value: 'x' }] }), []);
    });

    test('tag filters: all given tags (AND)', async () => {
      assert.deepEqual(await ids({ tags: ['linux'] }), u(1, 2, 4));
      assert.deepEqual(await ids({ tags: ['linux', 'lts'] }), u(1, 4));
      assert.deepEqual(await ids({ tags: ['linux', 'lts', 'gpu'] }), u(4));
      assert.deepEqual(await ids({ tags: ['lts', 'nope'] }), []);
      assert.deepEqual(await ids({ tags: ['lts'], conditions: [{ column: 'disk_format', op: 'eq', values: ['iso'] }] }), u(5));
    });

    const ordered = async (sort: SortKey[]) => (await images.list(query({ sort }))).map((i) => i.id);

    test('sort by name asc: NULL names first; desc: NULL names last', async () => {
      assert.deepEqual(
        await ordered([
          { key: 'name', dir: 'asc' },
          { key: 'id', dir: 'asc' },
        ]),
        [3, 6, 1, 2, 7, 5, 4].map(uuid),
      );
      assert.deepEqual(
        await ordered([
          { key: 'name', dir: 'desc' },
          { key: 'id', dir: 'desc' },
        ]),
        [4, 5, 7, 2, 1, 6, 3].map(uuid),
      );
    });

    test('multi-key sort: each key breaks the ties of the ones before it', async () => {
      assert.deepEqual(
        await ordered([
          { key: 'disk_format', dir: 'asc' },
          { key: 'size', dir: 'desc' },
          { key: 'id', dir: 'asc' },
        ]),
        [3, 5, 4, 1, 2, 6, 7].map(uuid),
      );
      assert.deepEqual(
        await ordered([
          { key: 'created_at', dir: 'desc' },
          { key: 'id', dir: 'desc' },
        ]),
        [6, 5, 4, 3, 2, 1, 7].map(uuid),
      );
      assert.deepEqual(
        await ordered([
          { key: 'size', dir: 'asc' },
          { key: 'name', dir: 'desc' },
          { key: 'created_at', dir: 'asc' },
          { key: 'id', dir: 'asc' },
        ]),
        [3, 5, 6, 1, 7, 2, 4].map(uuid),
      );
    });

    test('limit', async () => {
      assert.equal((await images.list(query({ limit: 3 }))).length, 3);
      assert.equal((await images.list(query({ limit: 0 }))).length, 0);
    });
  });

  describe('images.list: keyset paging with a marker', () => {
    let images: ImagesRepo;
    let all: Image[];
    before(async () => {
      images = new ImagesRepo(await engine.open());
      for (let i = 0; i < 30; i++) {
        await images.insert(
          makeImage({
            // Ids in an order unrelated to creation; 3 images share each created_at.
            id: uuid(((i * 7) % 30) + 1),
            name: i % 5 === 0 ? null : `img-${i % 7}`,
            size: i % 4 === 0 ? null : (i % 6) * TiB,
            disk_format: i % 3 === 0 ? 'raw' : 'qcow2',
            status: i % 8 === 0 ? 'queued' : 'active',
            visibility: 'public',
            created_at: ts(Math.floor(i / 3)),
            updated_at: ts(Math.floor(i / 3)),
          }),
        );
      }
      all = await images.list(query({ sort: [{ key: 'id', dir: 'asc' }] }));
      assert.equal(all.length, 30);
    });

    const sorts: SortKey[][] = [
      [
        { key: 'created_at', dir: 'desc' },
        { key: 'id', dir: 'desc' },
      ],
      [
        { key: 'created_at', dir: 'asc' },
        { key: 'id', dir: 'asc' },
      ],
      [
        { key: 'name', dir: 'asc' },
        { key: 'created_at', dir: 'asc' },
        { key: 'id', dir: 'asc' },
      ],
      [
        { key: 'name', dir: 'desc' },
        { key: 'created_at', dir: 'asc' },
        { key: 'id', dir: 'desc' },
      ],
      [
        { key: 'size', dir: 'desc' },
        { key: 'name', dir: 'asc' },
        { key: 'created_at', dir: 'desc' },
        { key: 'id', dir: 'asc' },
      ],
      [
        { key: 'size', dir: 'asc' },
        { key: 'name', dir: 'desc' },
        { key: 'created_at', dir: 'desc' },
        { key: 'id', dir: 'desc' },
      ],
      [
        { key: 'status', dir: 'asc' },
        { key: 'disk_format', dir: 'desc' },
        { key: 'created_at', dir: 'desc' },
        { key: 'id', dir: 'desc' },
      ],
    ];
    for (const sort of sorts) {
      const label = sort.map((s) => `${s.key}:${s.dir}`).join(',');
      test(`sort ${label}: one query gives the expected order; pages of 1, 4, 7 and 30 walk it exactly`, async () => {
        const expected = [...all].sort(compareBy(sort)).map((i) => i.id);
        const full = (await images.list(query({ sort }))).map((i) => i.id);
        assert.deepEqual(full, expected, 'unpaged order');
        for (const limit of [1, 4, 7, 30]) {
          const walked: string[] = [];
          let marker: Image | null = null;
          for (let pages = 0; ; pages++) {
            assert.ok(pages <= 31, `limit ${limit}: paging does not end`);
            const page: Image[] = await images.list(query({ sort, limit, marker }));
            assert.ok(page.length <= limit);
            walked.push(...page.map((i) => i.id));
            if (page.length < limit) break;
            // The service looks the marker up by id, as here.
            marker = await images.get(page[page.length - 1].id);
            assert.ok(marker);
          }
          assert.equal(new Set(walked).size, walked.length, `limit ${limit}: duplicates`);
          assert.deepEqual(walked, expected, `limit ${limit}: pages differ from the unpaged order`);
        }
      });
    }

    test('paging composes with filters', async () => {
      const sort: SortKey[] = [
        { key: 'name', dir: 'asc' },
        { key: 'created_at', dir: 'desc' },
        { key: 'id', dir: 'desc' },
      ];
      const conditions: ColumnCondition[] = [{ column: 'disk_format', op: 'eq', values: ['qcow2'] }];
      const expected = all
        .filter((i) => i.disk_format === 'qcow2')
        .sort(compareBy(sort))
        .map((i) => i.id);
      const walked: string[] = [];
      let marker: Image | null = null;
      for (;;) {
        const page: Image[] = await images.list(query({ sort, conditions, limit: 3, marker }));
        walked.push(...page.map((i) => i.id));
        if (page.length < 3) break;
        marker = page[page.length - 1];
      }
      assert.deepEqual(walked, expected);
    });
  });

  describe('members', () => {
    let db: Db;
    let members: MembersRepo;
    let imageId: string;
    before(async () => {
      db = await engine.open();
      members = new MembersRepo(db);
      const image = makeImage({ visibility: 'shared' });
      await new ImagesRepo(db).insert(image);
      imageId = image.id;
    });

    test('add, duplicate add (null), get, list, setStatus, count, remove', async () => {
      assert.equal(await members.count(imageId), 0);
      const bob = await members.add(imageId, 'bob');
      assert.ok(bob);
      assert.equal(bob.status, 'pending');
      assert.equal(bob.image_id, imageId);
      assert.equal(bob.member, 'bob');
      assert.deepEqual(await members.get(imageId, 'bob'), bob);

      assert.equal(await members.add(imageId, 'bob'), null, 'a duplicate member');
      assert.equal(await members.count(imageId), 1);
      assert.equal(typeof (await members.count(imageId)), 'number');

      const carol = await members.add(imageId, 'carol');
      assert.ok(carol);
      assert.equal(await members.count(imageId), 2);
      assert.deepEqual((await members.list(imageId)).map((m) => m.member).sort(), ['bob', 'carol']);

      const accepted = await members.setStatus(imageId, 'bob', 'accepted');
      assert.equal(accepted?.status, 'accepted');
      assert.equal((await members.get(imageId, 'bob'))?.status, 'accepted');
      assert.equal((await members.get(imageId, 'carol'))?.status, 'pending');
      assert.equal(await members.setStatus(imageId, 'nobody', 'accepted'), null);
      assert.equal(await members.get(imageId, 'nobody'), null);

      assert.equal(await members.remove(imageId, 'bob'), true);
      assert.equal(await members.remove(imageId, 'bob'), false);
      assert.equal(await members.count(imageId), 1);
      assert.equal(await members.get(imageId, 'bob'), null);
      // After removal the same member can be added again.
      assert.ok(await members.add(imageId, 'bob'));
      assert.equal(await members.count(imageId), 2);
    });

    test('concurrent adds of the same member: one row, the others get null', async () => {
      const results = await Promise.all([1, 2, 3, 4, 5].map(() => members.add(imageId, 'dave')));
      assert.equal(results.filter((r) => r !== null).length, 1);
      assert.equal((await members.list(imageId)).filter((m) => m.member === 'dave').length, 1);
    });

    test('adding a member to an image that does not exist fails (foreign key), it is not a duplicate', async () => {
      await assert.rejects(members.add(crypto.randomUUID(), 'bob'));
    });
  });

  describe('tasks', () => {
    let tasks: TasksRepo;
    before(async () => {
      tasks = new TasksRepo(await engine.open());
    });

    const task = (overrides: Partial<TaskRow> = {}): TaskRow =>
      taskRow({
        owner: 'alice',
        input: JSON.stringify({ image_id: 'x', import_req: { method: { name: 'web-download' } } }),
        request_id: 'req-1',
        user_id: 'u-1',
        ...overrides,
      });

    test('insert then get returns the same row; unknown and deleted tasks are null', async () => {
      const future = nowTimestamp(new Date(Date.now() + 3600_000));
      const row = task({ result: JSON.stringify({ ok: true }), message: 'done', expires_at: future, lease_owner: 'host-1', lease_expires_at: ts(200) });
      await tasks.insert(row);
      assert.deepEqual(await tasks.get(row.id), row);
      const expired = task({ status: 'success', expires_at: ts(100) });
      await tasks.insert(expired);
      assert.equal(await tasks.get(expired.id), null, 'an expired task is gone from the API');
      assert.deepEqual(await tasks.getRaw(expired.id), expired, 'but its row is still there for lock checks');
      assert.equal(await tasks.get(crypto.randomUUID()), null);
      const gone = task({ deleted: 1, deleted_at: ts(5) });
      await tasks.insert(gone);
      assert.equal(await tasks.get(gone.id), null);
    });

    test("listForImage: the image's live tasks, oldest first", async () => {
      const imageId = crypto.randomUUID();
      const second = task({ image_id: imageId, created_at: ts(20) });
      const first = task({ image_id: imageId, created_at: ts(10) });
      const third = task({ image_id: imageId, created_at: ts(30), status: 'success' });
      await tasks.insert(second);
      await tasks.insert(first);
      await tasks.insert(third);
      await tasks.insert(task({ image_id: imageId, created_at: ts(15), deleted: 1, deleted_at: ts(16) }));
      await tasks.insert(task({ image_id: crypto.randomUUID(), created_at: ts(12) }));
      assert.deepEqual(await tasks.listForImage(imageId), [first, second, third]);
      assert.deepEqual(await tasks.listForImage(crypto.randomUUID()), []);
    });

    test('list: sorted by the given key, then created_at and id; a marker pages on all three', async () => {
      const owner = `sorter-${crypto.randomUUID()}`;
      const rows = [
        task({ owner, status: 'success', created_at: ts(1) }),
        task({ owner, status: 'failure', created_at: ts(2) }),
        task({ owner, status: 'success', created_at: ts(3) }),
        task({ owner, status: 'pending', created_at: ts(3) }),
        task({ owner, status: 'failure', created_at: ts(5) }),
      ];
      for (const row of rows) await tasks.insert(row);
      const byStatus = [...rows].sort((a, b) => a.status.localeCompare(b.status) || a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
      const all = await tasks.list({ owner, sortKey: 'status', sortDir: 'asc', limit: 10 });
      assert.deepEqual(
        all.map((t) => t.id),
        byStatus.map((t) => t.id),
      );
      // Two at a time, each page after the last one's row: every task once, in the same order.
      const paged: string[] = [];
      let marker: TaskRow | undefined;
      for (;;) {
        const page = await tasks.list({ owner, sortKey: 'status', sortDir: 'asc', limit: 2, marker });
        paged.push(...page.map((t) => t.id));
        if (page.length < 2) break;
        marker = page.at(-1);
      }
      assert.deepEqual(
        paged,
        byStatus.map((t) => t.id),
      );
      const desc = await tasks.list({ owner, sortKey: 'status', sortDir: 'desc', limit: 10, marker: byStatus[2] });
      assert.deepEqual(
        desc.map((t) => t.id),
        byStatus
          .slice(0, 2)
          .reverse()
          .map((t) => t.id),
      );
      // A nullable key (image_id): null sorts lowest on every engine, and paging walks across it both ways.
      const imaged = `imaged-${crypto.randomUUID()}`;
      const withNulls = [
        task({ owner: imaged, image_id: null, created_at: ts(1) }),
        task({ owner: imaged, image_id: 'b-image', created_at: ts(2) }),
        task({ owner: imaged, image_id: null, created_at: ts(3) }),
        task({ owner: imaged, image_id: 'a-image', created_at: ts(4) }),
      ];
      for (const row of withNulls) await tasks.insert(row);
      const [n1, b, n3, a] = withNulls.map((t) => t.id);
      for (const [dir, order] of [
        ['asc', [n1, n3, a, b]],
        ['desc', [b, a, n3, n1]],
      ] as const) {
        const walked: string[] = [];
        let at: TaskRow | undefined;
        for (;;) {
          const page = await tasks.list({ owner: imaged, sortKey: 'image_id', sortDir: dir, limit: 1, marker: at });
          walked.push(...page.map((t) => t.id));
          if (page.length < 1) break;
          at = page.at(-1);
        }
        assert.deepEqual(walked, order, dir);
      }
    });
  });
});

test("SQLite finds an image's active locations through the image's own index, not by scanning every active location", async () => {
  const db = openDatabase('sqlite://');
  try {
    await syncSchema(db);
    const plan = await sql<{
      detail: string;
    }>`explain query plan select id from image_locations l where l.image_id = ${'x'} and l.status = ${'active'} order by l.position`.execute(db.kysely);
    assert.deepEqual(
      plan.rows.map((row) => row.detail),
      ['SEARCH l USING INDEX ix_image_locations_image_status (image_id=? AND status=?)'],
    );
  } finally {
    await db.close();
  }
});
