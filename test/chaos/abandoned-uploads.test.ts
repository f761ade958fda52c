// A node that dies for good (its host gone) never restarts to recover its own uploads: the running nodes
// must. Each node renews its row in the database; an upload or a stage whose writer stopped renewing
// goes back to `queued` on another node's next pass, and only those: a writer still renewing, or one
// with no row at all (a node older than the rows), keeps its image. On every engine, through a real
// running Gaze and its database.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { forEachEngine } from '../helpers/databases.ts';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT, stalledUpload } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';
import { NodesRepo } from '../../src/db/repos/nodes.ts';
import { moveTo, UPLOAD_NODE, type ImageStatus } from '../../src/domain/image.ts';
import { addSeconds, nowTimestamp } from '../../src/domain/time.ts';
import type { App } from '../../src/app.ts';

/** A node name of another host, as nodeName() builds them. */
const farNode = () => `far-host-${randomUUID().slice(0, 8)}:4242:some-boot:${randomUUID()}`;

forEachEngine((engine) => {
  let gaze: RunningGaze & { app: App };
  before(async () => {
    gaze = await startGazeInProcess({ database: { connection: await engine.url() }, DEFAULT: { enabled_import_methods: 'glance-direct' } });
  });
  after(async () => {
    await gaze?.stop();
  });

  test('uploads and stages of a node that stopped renewing are queued again; live and unknown writers keep theirs', async () => {
    const api = client(gaze.url);
    const { images } = gaze.app.deps;
    const nodes = new NodesRepo(gaze.app.db);
    const writers = { stopped: farNode(), running: farNode(), unknown: farNode() };
    await nodes.beat(writers.stopped, addSeconds(nowTimestamp(), -1));
    await nodes.beat(writers.running, addSeconds(nowTimestamp(), 120));

    /** An image another node is writing: the state its upload (saving) or stage (uploading) left. */
    const writtenBy = async (name: string, status: ImageStatus, writer: string) => {
      const { id } = await api.createImage({ name, disk_format: 'raw', container_format: 'bare' });
      assert.ok(await images.updateFields(id, 'queued', moveTo(status, 1 << 20), { [UPLOAD_NODE]: writer }));
      return id as string;
    };
    // Data staged in full whose writer stopped before it could say so (the stage's end forgets it).
    const { id: wholeStage } = await api.createImage({ name: 'whole-stage', disk_format: 'raw', container_format: 'bare' });
    assert.equal((await api.put(`/v2/images/${wholeStage}/stage`, { body: 'whole', headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    assert.equal((await images.get(wholeStage))?.properties[UPLOAD_NODE], undefined, 'a stage that ended forgets its writer');
    // As a writer that died before it ended its stage leaves it: its name, the size it announced, its reservation.
    assert.ok(await images.updateFields(wholeStage, 'uploading', { size: 1 << 20, staged_bytes: 1 << 20 }, { [UPLOAD_NODE]: writers.stopped }));
    const ids = {
      stoppedUpload: await writtenBy('stopped-upload', 'saving', writers.stopped),
      stoppedStage: await writtenBy('stopped-stage', 'uploading', writers.stopped),
      runningUpload: await writtenBy('running-upload', 'saving', writers.running),
      runningStage: await writtenBy('running-stage', 'uploading', writers.running),
      unknownUpload: await writtenBy('unknown-upload', 'saving', writers.unknown),
    };

    await gaze.app.recoverAbandonedUploads();

    const status = async (id: string) => (await api.get(`/v2/images/${id}`)).json.status;
    assert.equal(await status(ids.stoppedUpload), 'queued');
    assert.equal(await status(ids.stoppedStage), 'queued');
    assert.equal(await status(ids.runningUpload), 'saving');
    assert.equal(await status(ids.runningStage), 'uploading');
    assert.equal(await status(ids.unknownUpload), 'saving');
    // Another node's stage still runs: an import through this node is refused until it ends.
    const early = await api.call('POST', `/v2/images/${ids.runningStage}/import`, { json: { method: { name: 'glance-direct' } }, headers: JSON_ACCEPT });
    expectError(early, 409, `The data of image ${ids.runningStage} is still being staged; import it once the stage has finished`);
    assert.deepEqual((await api.get(`/v2/images/${ids.runningStage}/tasks`)).json.tasks, [], 'no task was made');
    // The whole staged data is kept, its dead writer forgotten, and it imports.
    assert.equal(await status(wholeStage), 'uploading');
    const ended = await images.get(wholeStage);
    assert.equal(ended?.properties[UPLOAD_NODE], undefined);
    assert.equal(ended?.size, 'whole'.length, 'the size of the staged data, as the stage would have written it');
    const held = await gaze.app.db.kysely.selectFrom('images').select(['reserved_bytes', 'staged_bytes']).where('id', '=', wholeStage).executeTakeFirst();
    assert.deepEqual(held, { reserved_bytes: null, staged_bytes: null }, 'the size counts now, not the hold');
    assert.equal((await api.post(`/v2/images/${wholeStage}/import`, { method: { name: 'glance-direct' } })).status, 202);
    await until(async () => ((await status(wholeStage)) === 'active' ? true : undefined), 'the whole stage to be imported');
    const reverted = await images.get(ids.stoppedUpload);
    assert.equal(reverted?.properties[UPLOAD_NODE], undefined, 'the dead writer is forgotten');
    const row = await gaze.app.db.kysely.selectFrom('images').select('reserved_bytes').where('id', '=', ids.stoppedUpload).executeTakeFirst();
    assert.equal(row?.reserved_bytes, null, 'its reservation no longer counts against the quota');

    // The recovered images take data again, by upload and by stage.
    assert.equal((await api.upload(ids.stoppedUpload, 'recovered')).status, 204);
    assert.equal((await api.get(`/v2/images/${ids.stoppedUpload}`)).json.status, 'active');
    const restaged = await api.put(`/v2/images/${ids.stoppedStage}/stage`, { body: 'staged again', headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(restaged.status, 204);

    // An upload streaming into this node right now is left alone by the pass.
    const { id: liveId } = await api.createImage({ name: 'live-upload' });
    const live = await stalledUpload(gaze.url, liveId, 256 * 1024);
    await gaze.app.recoverAbandonedUploads();
    assert.equal(await status(liveId), 'saving', 'a live upload survives the pass');
    assert.equal((await images.get(liveId))?.properties[UPLOAD_NODE], gaze.app.deps.nodeId);
    live.destroy();
    await until(async () => ((await status(liveId)) === 'queued' ? true : undefined), 'the cut-off upload to be queued again');

    // An upload of this node whose own reset failed (the database away at that moment) keeps naming this
    // node, which runs on: its next pass tries the reset again.
    const { id: failedReset } = await api.createImage({ name: 'failed-reset' });
    const updateFields = images.updateFields.bind(images);
    let refused = 0;
    images.updateFields = async (...args: Parameters<typeof updateFields>) => {
      if (args[0] === failedReset && args[2].status === 'queued') {
        refused++;
        throw new Error('the database is away');
      }
      return updateFields(...args);
    };
    try {
      const cut = await stalledUpload(gaze.url, failedReset, 64 * 1024);
      cut.destroy();
      await until(async () => (refused ? true : undefined), 'the cut-off upload to try its reset');
    } finally {
      images.updateFields = updateFields;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(await status(failedReset), 'saving', 'the reset failed');
    assert.equal((await images.get(failedReset))?.properties[UPLOAD_NODE], gaze.app.deps.nodeId);
    await gaze.app.recoverAbandonedUploads();
    assert.equal(await status(failedReset), 'queued', 'the reset is tried again');
    assert.equal((await images.get(failedReset))?.properties[UPLOAD_NODE], undefined);
    assert.equal((await api.upload(failedReset, 'again')).status, 204);

    // The running node renewed its own row at start: it is not among the stopped.
    assert.equal((await nodes.expiredAmong([gaze.app.deps.nodeId])).size, 0);
    assert.ok(await gaze.app.db.kysely.selectFrom('nodes').select('name').where('name', '=', gaze.app.deps.nodeId).executeTakeFirst());
  });
});
