// kill -9 of a node in the middle of an upload, with a second node running on the same database and
// store and never restarted: once the dead node's row in `nodes` has expired (set here, instead of
// waiting its three minutes), the running node's own timer queues the image again within a pass.
// The pid probe of this host is not involved: while running, a node judges other writers by rows alone.
// On every test engine (SQLite files shared by the two processes, a PostgreSQL or MariaDB server).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess } from '../helpers/gaze.ts';
import { client, stalledUpload } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';
import { openDatabase } from '../../src/db/connection.ts';
import { addSeconds, nowTimestamp } from '../../src/domain/time.ts';
import { forEachEngine } from '../helpers/databases.ts';

forEachEngine((engine) => {
  test('kill -9 mid-upload: a node that keeps running queues the image again once the dead node stopped renewing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-abandoned-'));
    const connection = await engine.url();
    const sections = { database: { connection } };
    const writer = await startGazeProcess(sections, { dir });
    const survivor = await startGazeProcess(sections, { dir });
    const db = openDatabase(connection);
    try {
      const api = client(survivor.url);
      const image = await api.createImage({ name: 'abandoned' });
      const upload = await stalledUpload(writer.url, image.id, 1_000_000);
      const writerPid = writer.child.pid!;
      await writer.kill('SIGKILL');
      upload.destroy();

      const rows = await db.kysely.selectFrom('nodes').select(['name', 'alive_until']).execute();
      const dead = rows.find((row) => row.name.split(':')[1] === String(writerPid));
      assert.ok(dead, 'the writer had its row');
      assert.ok(dead.alive_until > nowTimestamp(), 'a killed node still vouches for itself until its row expires');
      assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'saving');

      await db.kysely
        .updateTable('nodes')
        .set({ alive_until: addSeconds(nowTimestamp(), -1) })
        .where('name', '=', dead.name)
        .execute();
      const recovered = await until(
        async () => {
          const shown = (await api.get(`/v2/images/${image.id}`)).json;
          return shown.status === 'queued' ? shown : undefined;
        },
        'the running node to queue the image again',
        45_000,
      );
      assert.equal(recovered.size, null);
      assert.equal((await api.upload(image.id, 'complete at last')).status, 204);
      assert.equal((await api.get(`/v2/images/${image.id}`)).json.status, 'active');
    } finally {
      await db.close();
      await writer.kill('SIGKILL');
      await survivor.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
