// [DEFAULT] delayed_delete (Glance's scrubber options): a deleted image with data becomes pending_delete,
// hidden from the API but with its data and rows kept for scrub_time; the scrubber then removes it, and
// until then a restore makes it active again. On every test engine: restores race the scrubber for real.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { UsageRepo } from '../../src/db/repos/usage.ts';
import { alice, bob, client } from '../helpers/http.ts';
import { forEachEngine } from '../helpers/databases.ts';
import { DataScrubber } from '../../src/services/scrubber.ts';
import { openDatabase } from '../../src/db/connection.ts';
import { ImagesRepo } from '../../src/db/repos/images.ts';
import { DelayedDeletesRepo } from '../../src/db/repos/delayed-deletes.ts';
import { pino } from 'pino';
import { addSeconds, nowTimestamp } from '../../src/domain/time.ts';
import { restoreDeletedImage } from '../../src/services/delayed-delete.ts';
import { GazeError } from '../../src/domain/errors.ts';
import { scrubLocation } from '../../src/ingest/store-data.ts';
import type { Store } from '../../src/stores/store.ts';

const SCRUB_TIME = 2;

/** The file a file store keeps an image's data in (found on disk, not through the service). */
function dataFile(root: string, id: string): string | null {
  for (const entry of readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name === id) return path.join(entry.parentPath, entry.name);
  }
  return null;
}

forEachEngine((engine) => {
  let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
  let api: ReturnType<typeof client>;
  let databaseUrl: string;
  before(async () => {
    databaseUrl = await engine.url();
    gaze = await startGazeInProcess({
      DEFAULT: { delayed_delete: 'True', scrub_time: String(SCRUB_TIME) },
      database: { connection: databaseUrl },
    });
    api = client(gaze.url);
  });
  after(() => gaze?.stop());

  const dataRoot = () => path.join(gaze.dir, 'data');
  /** One pass of the scrubber as every node runs it, without the minute of grace (nothing is being written here). */
  const scrubPass = () => new DataScrubber(gaze.app.deps, { intervalSeconds: 3600, graceSeconds: 0, scrubTimeSeconds: SCRUB_TIME }).run();
  const restore = (id: string) => restoreDeletedImage(gaze.app.deps, id);
  const refusal = (code: string) => (err: unknown) => err instanceof GazeError && err.code === code;

  async function imageWithData(name: string, data: Buffer): Promise<string> {
    const image = await api.createImage({ name, visibility: 'shared', tags: ['kept'], os_distro: 'demo' }, alice);
    assert.equal((await api.upload(image.id, data, alice)).status, 204);
    assert.equal((await api.post(`/v2/images/${image.id}/members`, { member: bob.project }, { as: alice })).status, 200);
    return image.id;
  }

  test("a pending_delete image still counts against its project's storage and image count until it is scrubbed, as in Glance", async () => {
    const usage = new UsageRepo(gaze.app.db);
    const project = alice.project!;
    const before = await usage.forProject(project);
    const data = randomBytes(64 * 1024);
    const id = await imageWithData('counted', data);
    assert.equal((await api.del(`/v2/images/${id}`, { as: alice })).status, 204);
    const pending = await usage.forProject(project);
    assert.equal(pending.storedBytes - before.storedBytes, data.length, 'its data is still kept');
    assert.equal(pending.imageCount - before.imageCount, 1);
    await new Promise((r) => setTimeout(r, (SCRUB_TIME + 1) * 1000));
    await scrubPass();
    const scrubbed = await usage.forProject(project);
    assert.deepEqual([scrubbed.storedBytes, scrubbed.imageCount], [before.storedBytes, before.imageCount]);
  });

  test('DELETE of an image with data: gone from the API, its data kept; a restore brings it back whole', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 11);
    const id = await imageWithData('kept', data);
    const file = dataFile(dataRoot(), id);
    assert.ok(file, 'the upload wrote its file');

    assert.equal((await api.del(`/v2/images/${id}`, { as: alice })).status, 204);
    assert.equal((await api.get(`/v2/images/${id}`, { as: alice })).status, 404);
    assert.equal((await api.del(`/v2/images/${id}`, { as: alice })).status, 404, 'a second delete finds nothing');
    assert.ok(!((await api.get('/v2/images', { as: alice })).json.images as Array<{ id: string }>).some((i) => i.id === id));
    assert.equal((await api.get(`/v2/images/${id}/file`, { as: alice })).status, 404);
    const reused = await api.call('POST', '/v2/images', { json: { id, disk_format: 'raw', container_format: 'bare' } });
    assert.equal(reused.status, 409, 'the id of a pending_delete image is not given out again');
    assert.ok(existsSync(file), 'the data waits for scrub_time');

    await scrubPass();
    assert.ok(existsSync(file), 'not removed before scrub_time has passed');

    const restored = await restore(id);
    assert.equal(restored.length, 1);
    const image = (await api.get(`/v2/images/${id}`, { as: alice })).json as Record<string, unknown>;
    assert.equal(image.status, 'active');
    assert.equal(image.checksum, createHash('md5').update(data).digest('hex'));
    assert.deepEqual(image.tags, ['kept']);
    assert.equal(image.os_distro, 'demo');
    const members = (await api.get(`/v2/images/${id}/members`, { as: alice })).json.members as Array<{ member_id: string }>;
    assert.deepEqual(
      members.map((m) => m.member_id),
      [bob.project],
    );
    const download = await fetch(`${gaze.url}/v2/images/${id}/file`, { headers: { 'x-project-id': alice.project!, 'x-roles': alice.roles! } });
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(data));
    await assert.rejects(restore(id), refusal('RESTORE_NOT_PENDING_DELETE'), 'an active image is not restored');
  });

  test('once scrub_time has passed the scrubber removes the data and ends the delete: no restore then', async () => {
    const id = await imageWithData('scrubbed', randomBytes(100_000));
    const file = dataFile(dataRoot(), id)!;
    assert.equal((await api.del(`/v2/images/${id}`, { as: alice })).status, 204);
    await new Promise((r) => setTimeout(r, (SCRUB_TIME + 1) * 1000));
    await scrubPass();
    assert.ok(!existsSync(file), 'the data is gone');
    await assert.rejects(restore(id), (err: unknown) => refusal('RESTORE_NOT_PENDING_DELETE')(err) && /from deleted to active/.test((err as Error).message));
    await assert.rejects(restore('00000000-0000-4000-8000-000000000000'), refusal('RESTORE_IMAGE_NOT_FOUND'));
  });

  test("a deactivated image is not deleted: Glance's status table has no way from there to pending_delete", async () => {
    const id = await imageWithData('stopped', randomBytes(1000));
    assert.equal((await api.post(`/v2/images/${id}/actions/deactivate`, undefined)).status, 204);
    const refused = await api.del(`/v2/images/${id}`, { as: alice, headers: { accept: 'application/json' } });
    assert.equal(refused.status, 400);
    // Glance 25's body, byte for byte.
    assert.equal(
      refused.text,
      '{"message": "Image status transition from deactivated to pending_delete is not allowed<br /><br />\\n\\n\\n", "code": "400 Bad Request", "title": "Bad Request"}',
    );
    assert.equal((await api.get(`/v2/images/${id}`, { as: alice })).json.status, 'deactivated');
    assert.ok(dataFile(dataRoot(), id));
  });

  test('an image without data is deleted at once; a restore of it is refused', async () => {
    const image = await api.createImage({ name: 'empty' }, alice);
    assert.equal((await api.del(`/v2/images/${image.id}`, { as: alice })).status, 204);
    await assert.rejects(restore(image.id), refusal('RESTORE_NOT_PENDING_DELETE'));
  });

  test('a restore refuses an image whose data is no longer whole, which stays pending_delete', async () => {
    const id = await imageWithData('lost', randomBytes(50_000));
    assert.equal((await api.del(`/v2/images/${id}`, { as: alice })).status, 204);
    rmSync(dataFile(dataRoot(), id)!);
    await assert.rejects(restore(id), refusal('RESTORE_NO_DATA'));
    assert.equal((await gaze.app.deps.delayedDeletes.find(id))?.status, 'pending_delete');
    assert.equal((await api.get(`/v2/images/${id}`, { as: alice })).status, 404);
  });

  test('a restore on a node that cannot check a store stops, leaving the image and all its data as they were', async () => {
    const id = await imageWithData('unchecked', randomBytes(10_000));
    assert.equal((await api.del(`/v2/images/${id}`, { as: alice })).status, 204);
    // A node whose configuration lacks the image's store.
    const elsewhere = { delayedDeletes: gaze.app.deps.delayedDeletes, stores: { forLocation: () => undefined } as never };
    await assert.rejects(restoreDeletedImage(elsewhere, id), refusal('RESTORE_STORE_UNKNOWN'));
    assert.equal((await gaze.app.deps.delayedDeletes.find(id))?.status, 'pending_delete');
    assert.equal((await gaze.app.deps.delayedDeletes.keptLocations(id)).length, 1, 'its data is still kept');
    assert.ok(dataFile(dataRoot(), id));
    assert.equal((await restore(id)).length, 1, 'a node with the store restores it');
  });

  test('a scrubber whose store delete fails after another scrubber took the location counts nothing kept, and logs nothing', async () => {
    const id = await imageWithData('raced', randomBytes(2000));
    const [location] = await gaze.app.deps.images.locationsOf(id);
    assert.ok(location);
    const logged: string[] = [];
    const log = pino({}, { write: (line: string) => logged.push(JSON.parse(line).msg) });
    // A store that answers a transient error (a 503 from an object store) for every delete.
    const failing = { ownsData: true, delete: async () => Promise.reject(new Error('503 Service Unavailable')) } as unknown as Store;
    const deps = { ...gaze.app.deps, log };
    assert.equal(await scrubLocation(deps, location, failing), 'kept', 'the row is still there: kept for a later pass');
    assert.equal(logged.length, 1);
    assert.equal((await gaze.app.deps.images.locationsToScrub(1000, addSeconds(nowTimestamp(), 1))).filter((l) => l.id === location.id).length, 1);
    // The other scrubber removed the data and purged the row meanwhile.
    assert.equal(await gaze.app.deps.images.purgeLocation(location.id), true);
    assert.equal(await scrubLocation(deps, location, failing), 'purged-elsewhere');
    assert.equal(logged.length, 1, 'nothing logged as kept');
  });

  // On SQLite each process has one connection, and better-sqlite3 waits for a lock on its thread: two
  // connections in one process would wait for each other. Two processes: test/process/delayed-delete-crash.
  const sqliteSkip = engine.name === 'sqlite' && 'two SQLite connections in one process; see test/process/delayed-delete-crash.test.ts';
  test(
    'two scrubbers at once (two nodes, or a node and gaze scrub from cron): each image is ended once and its data removed once',
    { skip: sqliteSkip },
    async () => {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) ids.push(await imageWithData(`twice-${i}`, randomBytes(10_000 + i)));
      const files = ids.map((id) => dataFile(dataRoot(), id)!);
      for (const id of ids) assert.equal((await api.del(`/v2/images/${id}`, { as: alice })).status, 204);
      await new Promise((r) => setTimeout(r, (SCRUB_TIME + 1) * 1000));
      // Earlier tests may have left images due too (one whose data was lost): they are ended as well.
      const due = await gaze.app.deps.delayedDeletes.due(addSeconds(nowTimestamp(), -SCRUB_TIME), 100);
      assert.ok(ids.every((id) => due.includes(id)));
      let locations = 0;
      for (const id of due) locations += (await gaze.app.deps.delayedDeletes.keptLocations(id)).length;
      const oneLocation = (await gaze.app.deps.delayedDeletes.keptLocations(ids[11]!))[0]!.id;
      // The other scrubber has its own connections to the same database, as another process would.
      const otherDb = openDatabase(databaseUrl);
      // Half of the images' data queued for removal long ago (a store that was down then): both scrubbers
      // list the same locations, and race for each.
      const queuedLongAgo = await otherDb.kysely
        .updateTable('image_locations')
        .set({ status: 'pending_delete', updated_at: addSeconds(nowTimestamp(), -3600) })
        .where('image_id', 'in', ids.slice(0, 6))
        .executeTakeFirst();
      assert.equal(Number(queuedLongAgo.numUpdatedRows), 6);
      const errors: string[] = [];
      const log = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
      try {
        const other = new DataScrubber(
          { images: new ImagesRepo(otherDb), delayedDeletes: new DelayedDeletesRepo(otherDb), stores: gaze.app.deps.stores, log },
          { intervalSeconds: 3600, graceSeconds: 0, scrubTimeSeconds: SCRUB_TIME },
        );
        const passes = await Promise.all([scrubPass(), other.run()]);
        assert.deepEqual(
          errors.map((line) => JSON.parse(line).err?.message ?? line),
          [],
        );
        assert.ok(
          passes.every((p) => p.complete && p.locationsKept === 0),
          JSON.stringify(passes),
        );
        // Between them: every image ended and every location's data removed, none counted twice.
        assert.equal(passes[0]!.imagesDeleted + passes[1]!.imagesDeleted, due.length, JSON.stringify(passes));
        assert.equal(passes[0]!.locationsRemoved + passes[1]!.locationsRemoved, locations, JSON.stringify(passes));
      } finally {
        await otherDb.close();
      }
      for (const [i, id] of ids.entries()) {
        assert.equal((await gaze.app.deps.delayedDeletes.find(id))?.status, 'deleted');
        assert.ok(!existsSync(files[i]!), `no data left for ${id}`);
      }
      assert.deepEqual(await gaze.app.deps.images.locationsToScrub(500, '9999-12-31 00:00:00.000000'), []);
      assert.equal(await gaze.app.deps.images.purgeLocation(oneLocation), false, 'a row already purged is not purged again');
    },
  );

  describe('restores racing the scrubber', () => {
    test('each image ends active with its data, or deleted without it: never one without the other', async () => {
      const images = new Map<string, Buffer>();
      for (let i = 0; i < 8; i++) {
        const data = randomBytes(20_000 + i);
        images.set(await imageWithData(`race-${i}`, data), data);
      }
      for (const id of images.keys()) assert.equal((await api.del(`/v2/images/${id}`, { as: alice })).status, 204);
      await new Promise((r) => setTimeout(r, (SCRUB_TIME + 1) * 1000));
      // Every image is due: the scrubber's pass and a restore of each run at once, the restores spread
      // over the pass (every other one at once) so that some come before the scrubber reaches their image
      // and some after.
      const restoreLater = (id: string, i: number) =>
        new Promise((r) => setTimeout(r, i % 2 === 0 ? 0 : i * 4))
          .then(() => restore(id))
          .then(
            () => 'restored',
            (err: Error) => err.message,
          );
      const outcomes = await Promise.all([scrubPass(), ...[...images.keys()].map(restoreLater)]);
      let restored = 0;
      for (const [id, data] of images) {
        const shown = await api.get(`/v2/images/${id}`, { as: alice });
        const file = dataFile(dataRoot(), id);
        if (shown.status === 200) {
          restored++;
          assert.equal(shown.json.status, 'active');
          const download = await fetch(`${gaze.url}/v2/images/${id}/file`, { headers: { 'x-project-id': alice.project!, 'x-roles': alice.roles! } });
          assert.ok(Buffer.from(await download.arrayBuffer()).equals(data), `restored ${id} downloads whole`);
        } else {
          assert.equal(shown.status, 404);
          assert.equal((await gaze.app.deps.delayedDeletes.find(id))?.status, 'deleted');
          assert.equal(file, null, `scrubbed ${id} left no data`);
        }
      }
      assert.equal(restored, outcomes.filter((o) => o === 'restored').length, `outcomes: ${outcomes.join('; ')}`);
    });
  });
});
