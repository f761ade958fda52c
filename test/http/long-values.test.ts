// Values longer than a column holds on one database but not another (PostgreSQL's and MariaDB's
// varchar, MariaDB's 64 KiB TEXT; SQLite keeps any length): a clear 400 where the database refuses,
// never a 500; and a list limit beyond any database's integer is still a list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachEngine } from '../helpers/databases.ts';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, JSON_ACCEPT } from '../helpers/http.ts';
import type { App } from '../../src/app.ts';

forEachEngine((engine) => {
  let gaze: RunningGaze & { app: App };
  let api: ReturnType<typeof client>;
  before(async () => {
    gaze = await startGazeInProcess({ database: { connection: await engine.url() } });
    api = client(gaze.url);
  });
  after(async () => {
    await gaze?.stop();
  });

  test('a metadata tag name longer than its column, and a property value beyond MariaDB TEXT: 400 where refused', async () => {
    const ns = await api.post('/v2/metadefs/namespaces', { namespace: `Long::${engine.name}`, visibility: 'public' }, { headers: JSON_ACCEPT });
    assert.equal(ns.status, 201, ns.text);
    const tag = await api.post(`/v2/metadefs/namespaces/Long::${engine.name}/tags`, { tags: [{ name: 'x'.repeat(81) }] }, { headers: JSON_ACCEPT });
    if (engine.name === 'sqlite') assert.equal(tag.status, 201, tag.text);
    else {
      assert.equal(tag.status, 400, tag.text);
      assert.equal(tag.json.message, 'A value in the request is too long for the database (or holds characters it cannot store).<br /><br />\n\n\n');
    }
    const image = await api.createImage({ name: 'long property' });
    const patched = await api.call('PATCH', `/v2/images/${image.id}`, {
      json: [{ op: 'add', path: '/big', value: 'é'.repeat(40_000) }],
      headers: { 'content-type': 'application/openstack-images-v2.1-json-patch', ...JSON_ACCEPT },
    });
    assert.equal(patched.status, engine.name === 'mysql' ? 400 : 200, patched.text.slice(0, 300));
    assert.equal('big' in (await api.get(`/v2/images/${image.id}`)).json, engine.name !== 'mysql', 'all or nothing');
  });

  test('a tag list limit beyond any integer the database takes: the whole list', async () => {
    const ns = `Limits::${engine.name}`;
    assert.equal(
      (await api.post('/v2/metadefs/namespaces', { namespace: ns, visibility: 'public', tags: [{ name: 'a' }, { name: 'b' }] }, { headers: JSON_ACCEPT }))
        .status,
      201,
    );
    for (const limit of ['100000000000000000000', '9223372036854775808']) {
      const listed = await api.get(`/v2/metadefs/namespaces/${ns}/tags?limit=${limit}`);
      assert.equal(listed.status, 200, listed.text);
      assert.deepEqual(listed.json.tags.map((t: { name: string }) => t.name).sort(), ['a', 'b']);
    }
  });
});
