// A stage whose writer died after its data was whole is ended by the recovery, as the stage would have
// ended it: held against image_stage_total, and removed when the project's quota has no room for it
// (the stage would have refused it). Data that fits is kept. On every engine.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { forEachEngine } from '../helpers/databases.ts';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { alice, bob, client } from '../helpers/http.ts';
import { gazeError } from '../../src/domain/errors.ts';
import { NodesRepo } from '../../src/db/repos/nodes.ts';
import { moveTo, UPLOAD_NODE } from '../../src/domain/image.ts';
import { addSeconds, nowTimestamp } from '../../src/domain/time.ts';
import type { App } from '../../src/app.ts';

const KiB = 1024;
const SIZE = 700 * KiB; // two fit in image_stage_total = 2 (MiB), a third does not

forEachEngine((engine) => {
  let gaze: RunningGaze & { app: App };
  before(async () => {
    gaze = await startGazeInProcess({
      database: { connection: await engine.url() },
      DEFAULT: { enabled_import_methods: 'glance-direct' },
      project_limits: { image_stage_total: '2' },
    });
  });
  after(async () => {
    await gaze?.stop();
  });

  test('stages whose writer died with their data whole are kept while they fit image_stage_total; the rest are removed and queued', async () => {
    const api = client(gaze.url);
    const { images } = gaze.app.deps;
    const stopped = `far-host-${randomUUID().slice(0, 8)}:4242:some-boot:${randomUUID()}`;
    await new NodesRepo(gaze.app.db).beat(stopped, addSeconds(nowTimestamp(), -1));
    const staged = (id: string) => path.join(gaze.dir, 'data', 'staging', id);
    const octets = { 'content-type': 'application/octet-stream' };

    const first = (await api.createImage({ name: 'staged' }, alice)).id as string;
    assert.equal((await api.put(`/v2/images/${first}/stage`, { body: Buffer.alloc(SIZE, 1), headers: octets, as: alice })).status, 204);
    // Two more whose data a writer wrote whole and then died, before it could end the stage (and hold it).
    const dead: string[] = [];
    for (const name of ['dead-1', 'dead-2']) {
      const id = (await api.createImage({ name }, alice)).id as string;
      writeFileSync(staged(id), Buffer.alloc(SIZE, 2));
      assert.ok(await images.updateFields(id, 'queued', moveTo('uploading', null), { [UPLOAD_NODE]: stopped }));
      dead.push(id);
    }

    await gaze.app.recoverAbandonedUploads();

    const shown = async (id: string) => (await api.get(`/v2/images/${id}`, { as: alice })).json;
    assert.equal((await shown(first)).status, 'uploading');
    const after = await Promise.all(dead.map(async (id) => ({ id, image: await shown(id), file: existsSync(staged(id)) })));
    const kept = after.filter((a) => a.image.status === 'uploading');
    const removed = after.filter((a) => a.image.status === 'queued');
    assert.equal(kept.length, 1, JSON.stringify(after.map((a) => [a.image.status, a.file])));
    assert.equal(removed.length, 1);
    assert.ok(kept[0]!.file && !removed[0]!.file, 'the data that did not fit is gone, the rest kept');
    assert.equal((await images.get(kept[0]!.id))?.size, SIZE, 'the kept stage is ended with its size');
    assert.equal((await images.get(removed[0]!.id))?.properties[UPLOAD_NODE], undefined, 'the dead writer is forgotten');
    const usage = (await api.get('/v2/info/usage', { as: alice })).json.usage;
    assert.deepEqual(usage.image_stage_total, { limit: 2, usage: 1 });
    // The removed image can be staged again once there is room.
    assert.equal((await api.del(`/v2/images/${first}`, { as: alice })).status, 204);
    assert.equal((await api.put(`/v2/images/${removed[0]!.id}/stage`, { body: Buffer.alloc(SIZE, 3), headers: octets, as: alice })).status, 204);
  });

  test('limits that cannot be read leave such a stage for the next pass, and the pass goes on', async () => {
    const api = client(gaze.url);
    const { images, quotas } = gaze.app.deps;
    const stopped = `far-host-${randomUUID().slice(0, 8)}:4242:some-boot:${randomUUID()}`;
    await new NodesRepo(gaze.app.db).beat(stopped, addSeconds(nowTimestamp(), -1));
    const id = (await api.createImage({ name: 'dead-while-keystone-away' }, bob)).id as string;
    writeFileSync(path.join(gaze.dir, 'data', 'staging', id), Buffer.alloc(KiB, 4));
    assert.ok(await images.updateFields(id, 'queued', moveTo('uploading', null), { [UPLOAD_NODE]: stopped }));
    const holdWith = quotas.holdWith;
    quotas.holdWith = async () => {
      throw gazeError('LIMITS_UNAVAILABLE');
    };
    try {
      await gaze.app.recoverAbandonedUploads();
    } finally {
      quotas.holdWith = holdWith;
    }
    const left = await images.get(id);
    assert.equal(left?.status, 'uploading');
    assert.equal(left?.properties[UPLOAD_NODE], stopped, 'still named as the dead writer, for the next pass');
    await gaze.app.recoverAbandonedUploads();
    const ended = await images.get(id);
    assert.deepEqual([ended?.status, ended?.size, ended?.properties[UPLOAD_NODE]], ['uploading', KiB, undefined]);
  });
});
