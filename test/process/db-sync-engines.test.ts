import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { forEachEngine } from '../helpers/databases.ts';
import { runGaze, startGazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

// `gaze db sync` and `gaze serve` as an operator runs them, on each database, with the connection URL
// in the form Glance's own configuration uses (mysql+pymysql://, postgresql://, sqlite:////).

forEachEngine((engine) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-dbsync-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('gaze db sync creates the schema, a second run finds it up to date, and gaze serve stores and returns an image', async () => {
    // Glance's configuration guide writes MySQL URLs with a charset parameter.
    const connection = engine.name === 'mysql' ? `${await engine.url()}?charset=utf8` : await engine.url();
    const conf = path.join(dir, `${engine.name}.conf`);
    writeFileSync(conf, `[DEFAULT]\ndata_dir = ${path.join(dir, 'data')}\n\n[database]\nconnection = ${connection}\n`);
    const first = await runGaze(['db', 'sync', '--config', conf], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied 0001_initial, .*0005_metadefs, 0006_nodes, 0007_images_status, 0008_null_property_values/);
    const again = await runGaze(['db', 'sync', '--config', conf], { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /up to date/);

    const gaze = await startGazeProcess({ database: { connection } });
    try {
      const api = client(gaze.url);
      const image = await api.createImage({ name: 'über', disk_format: 'raw', container_format: 'bare', tags: ['Tag', 'tag'] });
      const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
      assert.equal((await api.upload(image.id, data)).status, 204);
      const shown = (await api.get(`/v2/images/${image.id}`)).json;
      assert.equal(shown.status, 'active');
      assert.equal(shown.name, 'über');
      // Tags differ by case only: two tags, on every engine (MariaDB's default collation would merge them).
      assert.deepEqual([...shown.tags].sort(), ['Tag', 'tag']);
      assert.equal(shown.checksum, createHash('md5').update(data).digest('hex'));
      const back = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
      assert.equal(
        createHash('md5')
          .update(Buffer.from(await back.arrayBuffer()))
          .digest('hex'),
        shown.checksum,
      );
      const byName = (await api.get('/v2/images?name=%C3%BCber')).json.images;
      assert.deepEqual(
        byName.map((i: { id: string }) => i.id),
        [image.id],
      );
      assert.equal((await api.get('/v2/images?name=%C3%9Cber')).json.images.length, 0);
    } finally {
      await gaze.stop();
    }
  });
});
