import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachEngine } from '../helpers/databases.ts';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';
import { startFileServer, type FileServer } from '../helpers/file-server.ts';

// Real concurrency against a real `gaze serve` on each database: parallel clients that each change
// something of their own on the same image. Every acknowledged change must be kept.

const N = 20;

/** The data every http location of the location races serves (one size for all of an image's locations). */
const LOCATION_DATA = Buffer.from('the same bytes at every location');

forEachEngine((engine) => {
  let gaze: GazeProcess;
  let api: ReturnType<typeof client>;
  let web: FileServer;
  before(async () => {
    web = await startFileServer();
    for (let i = 0; i < N; i++) web.routes.set(`/loc${i}.img`, LOCATION_DATA);
    gaze = await startGazeProcess({
      database: { connection: await engine.url() },
      DEFAULT: { image_property_quota: '12', image_tag_quota: '12', show_multiple_locations: 'True', image_location_quota: '10' },
      import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
    });
    api = client(gaze.url);
  });
  after(async () => {
    await gaze.stop();
    await web.close();
  });

  // A second Gaze with two file stores, on a database of its own.
  let twoStores: GazeProcess;
  let twoApi: ReturnType<typeof client>;
  before(async () => {
    twoStores = await startGazeProcess({
      database: { connection: await engine.url() },
      DEFAULT: { enabled_backends: 'fast:file, cheap:file' },
      glance_store: { default_backend: 'fast' },
    });
    twoApi = client(twoStores.url);
  });
  after(() => twoStores.stop());

  test('two removals of one image from its two stores at once: one is refused, the data stays in the other', async () => {
    for (let round = 0; round < 3; round++) {
      const image = await twoApi.createImage({ name: 'in two stores', disk_format: 'raw', container_format: 'bare' });
      const data = Buffer.from(`bytes of round ${round}`);
      const put = await twoApi.put(`/v2/images/${image.id}/file`, { body: data, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(put.status, 204, put.text);
      assert.equal((await twoApi.post(`/v2/images/${image.id}/import`, { method: { name: 'copy-image' }, stores: ['cheap'] })).status, 202);
      await until(async () => ((await twoApi.get(`/v2/images/${image.id}`)).json.stores?.split(',').length === 2 ? true : undefined), 'the copy to cheap');
      const removals = await Promise.all(['fast', 'cheap'].map((store) => twoApi.del(`/v2/stores/${store}/${image.id}`)));
      assert.deepEqual(removals.map((r) => r.status).sort(), [204, 403], removals.map((r) => r.text).join(' | '));
      const after = (await twoApi.get(`/v2/images/${image.id}`)).json;
      assert.equal(after.stores.split(',').length, 1);
      const read = await fetch(`${twoStores.url}/v2/images/${image.id}/file`);
      assert.deepEqual(Buffer.from(await read.arrayBuffer()), data);
    }
  });

  const addLocation = (id: string, n: number) =>
    api.patch(`/v2/images/${id}`, [{ op: 'add', path: '/locations/-', value: { url: web.url(`/loc${n}.img`), metadata: {} } }]);
  const urlsOf = async (id: string) => ((await api.get(`/v2/images/${id}`)).json.locations as Array<{ url: string }>).map((l) => l.url.replace(/^.*\//, ''));

  test('parallel location patches go one after the other: nothing lost, nothing twice, the first location stays first', async () => {
    const image = await api.createImage({ name: 'located' });
    assert.equal((await addLocation(image.id, 0)).status, 200);
    // Ten distinct additions to a quota of ten: nine kept in full, one refused; none reorders the list.
    const adds = await Promise.all(Array.from({ length: 10 }, (_, i) => addLocation(image.id, i + 1)));
    const statuses = adds.map((r) => r.status);
    assert.deepEqual([statuses.filter((s) => s === 200).length, statuses.filter((s) => s === 413).length], [9, 1], statuses.join(','));
    const urls = await urlsOf(image.id);
    assert.equal(urls[0], 'loc0.img', urls.join(','));
    assert.deepEqual(urls.slice(1).sort(), adds.flatMap((r, i) => (r.status === 200 ? [`loc${i + 1}.img`] : [])).sort());

    // The same location five times at once: one addition, four refusals as for a duplicate added alone.
    const other = await api.createImage({ name: 'twice' });
    assert.equal((await addLocation(other.id, 0)).status, 200);
    const same = await Promise.all(Array.from({ length: 5 }, () => addLocation(other.id, 1)));
    assert.deepEqual(same.map((r) => r.status).sort(), [200, 400, 400, 400, 400]);
    assert.deepEqual(await urlsOf(other.id), ['loc0.img', 'loc1.img']);

    // Two removals that would each leave one location: the second sees the first and keeps the last one.
    const removes = await Promise.all([0, 1].map((n) => api.patch(`/v2/images/${other.id}`, [{ op: 'remove', path: `/locations/${n}` }])));
    // The loser is refused as it would be alone: the last location cannot be removed.
    assert.deepEqual(removes.map((r) => r.status).sort(), [200, 403], removes.map((r) => r.text).join(' | '));
    assert.equal((await urlsOf(other.id)).length, 1);
    assert.equal((await api.get(`/v2/images/${other.id}`)).json.status, 'active');
  });

  test(`${N} parallel PATCHes, each adding its own property: all answered 200, all kept`, async () => {
    const image = await api.createImage({ name: 'patched' });
    const replies = await Promise.all(
      Array.from({ length: N }, (_, i) => api.patch(`/v2/images/${image.id}`, [{ op: 'add', path: `/p${i}`, value: String(i) }])),
    );
    const ok = replies.filter((r) => r.status === 200).length;
    // The property quota is 12: twelve are kept, the others refused with 413, none lost.
    assert.equal(ok, 12, replies.map((r) => r.status).join(','));
    assert.ok(replies.every((r) => r.status === 200 || r.status === 413));
    const props = Object.keys((await api.get(`/v2/images/${image.id}`)).json).filter((k) => /^p\d+$/.test(k));
    assert.equal(props.length, 12);
    for (const [i, r] of replies.entries()) assert.equal(props.includes(`p${i}`), r.status === 200, `p${i}: answered ${r.status}`);
  });

  test(`${N} parallel PATCHes of different base attributes and properties on one image: nothing lost`, async () => {
    const image = await api.createImage({ name: 'before' });
    const ops = [
      { op: 'replace', path: '/name', value: 'after' },
      { op: 'replace', path: '/min_ram', value: 512 },
      { op: 'replace', path: '/min_disk', value: 7 },
      { op: 'replace', path: '/os_hidden', value: true },
      ...Array.from({ length: 8 }, (_, i) => ({ op: 'add', path: `/q${i}`, value: 'v' })),
    ];
    const replies = await Promise.all(ops.map((op) => api.patch(`/v2/images/${image.id}`, [op])));
    assert.deepEqual(
      replies.map((r) => r.status),
      ops.map(() => 200),
    );
    const got = (await api.get(`/v2/images/${image.id}`)).json;
    assert.equal(got.name, 'after');
    assert.equal(got.min_ram, 512);
    assert.equal(got.min_disk, 7);
    assert.equal(got.os_hidden, true);
    for (let i = 0; i < 8; i++) assert.equal(got[`q${i}`], 'v');
  });

  test('a delete racing a PATCH that protects the image: an acknowledged protection is never lost', async () => {
    const outcomes = new Set<string>();
    for (let round = 0; round < N; round++) {
      const image = await api.createImage({ name: `protect or delete ${round}` });
      const [protect, remove] = await Promise.all([
        api.patch(`/v2/images/${image.id}`, [{ op: 'replace', path: '/protected', value: true }]),
        api.del(`/v2/images/${image.id}`),
      ]);
      const left = await api.get(`/v2/images/${image.id}`);
      outcomes.add(`${protect.status}/${remove.status}`);
      if (protect.status === 200) {
        // The protection was acknowledged: the delete must have been refused and the image kept.
        assert.equal(remove.status, 403, `round ${round}: PATCH 200 but DELETE ${remove.status} ${remove.text}`);
        assert.equal(left.status, 200);
        assert.equal(left.json.protected, true);
        assert.equal((await api.patch(`/v2/images/${image.id}`, [{ op: 'replace', path: '/protected', value: false }])).status, 200);
      } else {
        assert.equal(protect.status, 404, protect.text);
        assert.equal(remove.status, 204, remove.text);
        assert.equal(left.status, 404);
      }
    }
    assert.ok(
      [...outcomes].every((o) => ['200/403', '404/204'].includes(o)),
      [...outcomes].join(','),
    );
  });

  test(`${N} parallel tag PUTs with different tags: within the tag limit all are kept`, async () => {
    const image = await api.createImage({ name: 'tagged' });
    const replies = await Promise.all(Array.from({ length: N }, (_, i) => api.put(`/v2/images/${image.id}/tags/t${i}`)));
    assert.ok(
      replies.every((r) => r.status === 204 || r.status === 413),
      replies.map((r) => r.status).join(','),
    );
    const tags: string[] = (await api.get(`/v2/images/${image.id}`)).json.tags;
    assert.equal(tags.length, 12);
    for (const [i, r] of replies.entries()) assert.equal(tags.includes(`t${i}`), r.status === 204, `t${i}: answered ${r.status}`);

    // Tag removals race with additions on another image: the set ends as the sum of both.
    const other = await api.createImage({ name: 'tag-churn', tags: ['a', 'b', 'c', 'd'] });
    const churn = await Promise.all([
      ...['a', 'b', 'c', 'd'].map((t) => api.del(`/v2/images/${other.id}/tags/${t}`)),
      ...['e', 'f', 'g', 'h'].map((t) => api.put(`/v2/images/${other.id}/tags/${t}`)),
    ]);
    assert.deepEqual(
      churn.map((r) => r.status),
      Array(8).fill(204),
    );
    assert.deepEqual([...(await api.get(`/v2/images/${other.id}`)).json.tags].sort(), ['e', 'f', 'g', 'h']);
  });

  test(`${N} parallel imports of one staged image: one is accepted, the others answer 409, the image ends active`, async () => {
    const image = await api.createImage({ name: 'raced-import', disk_format: 'raw', container_format: 'bare' });
    const data = Buffer.alloc(1024 * 1024, 3);
    assert.equal((await api.put(`/v2/images/${image.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    const tasksBefore = (await api.get('/v2/tasks?limit=1000')).json.tasks.length;
    const replies = await Promise.all(Array.from({ length: N }, () => api.post(`/v2/images/${image.id}/import`, { method: { name: 'glance-direct' } })));
    assert.equal(replies.filter((r) => r.status === 202).length, 1, replies.map((r) => r.status).join(','));
    assert.ok(replies.every((r) => r.status === 202 || r.status === 409));
    let shown = (await api.get(`/v2/images/${image.id}`)).json;
    for (let i = 0; i < 300 && shown.status !== 'active'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      shown = (await api.get(`/v2/images/${image.id}`)).json;
    }
    assert.equal(shown.status, 'active');
    assert.equal(shown.size, data.length);
    // Only the winner's task is listed, as in Glance: a loser that got past the status check before the
    // winner took the lock answered 409, and its task went with it. The image turns active just before
    // its task records success: wait for the tasks to finish.
    const statuses = await until(
      async () => {
        const now: string[] = (await api.get(`/v2/images/${image.id}/tasks`)).json.tasks.map((t: { status: string }) => t.status);
        return now.some((s) => s === 'pending' || s === 'processing') ? undefined : now;
      },
      'the import tasks to finish',
      10_000,
    );
    assert.deepEqual(statuses, ['success']);
    const importTasks = async () => (await api.get('/v2/tasks?limit=1000')).json.tasks.length;
    assert.equal(await importTasks(), tasksBefore + 1, 'one task recorded in /v2/tasks too');
  });

  test(`metadefs under ${N} parallel clients: one namespace wins its name, every distinct tag is kept, one wins each tag name`, async () => {
    const same = await Promise.all(Array.from({ length: N }, () => api.post('/v2/metadefs/namespaces', { namespace: 'Race', visibility: 'public' })));
    assert.equal(same.filter((r) => r.status === 201).length, 1, same.map((r) => r.status).join(','));
    assert.ok(same.every((r) => r.status === 201 || r.status === 409));
    const distinct = await Promise.all(Array.from({ length: N }, (_, i) => api.call('POST', `/v2/metadefs/namespaces/Race/tags/t${i}`)));
    assert.deepEqual(
      distinct.map((r) => r.status),
      Array(N).fill(201),
    );
    const clash = await Promise.all(Array.from({ length: N }, (_, i) => api.call('POST', `/v2/metadefs/namespaces/Race/tags/${i % 2 ? 'CLASH' : 'clash'}`)));
    assert.equal(clash.filter((r) => r.status === 201).length, 1, clash.map((r) => r.status).join(','));
    assert.ok(clash.every((r) => r.status === 201 || r.status === 409));
    assert.equal((await api.get('/v2/metadefs/namespaces/Race/tags')).json.tags.length, N + 1);
  });

  test('one member added, removed and accepted by parallel clients: each answers as one of them alone would, never 500', async () => {
    const image = await api.createImage({ name: 'shared', visibility: 'shared' });
    const member = 'racing-member';
    const memberPath = `/v2/images/${image.id}/members/${member}`;
    for (let round = 0; round < 25; round++) {
      const calls = await Promise.all([
        ...Array.from({ length: 6 }, () => api.post(`/v2/images/${image.id}/members`, { member }).then((r) => ['add', r] as const)),
        ...Array.from({ length: 6 }, () => api.del(memberPath).then((r) => ['remove', r] as const)),
        ...Array.from({ length: 2 }, () => api.put(memberPath, { json: { status: 'accepted' }, as: { project: member } }).then((r) => ['accept', r] as const)),
      ]);
      const allowed = { add: [200, 409], remove: [204, 404], accept: [200, 404] };
      for (const [what, reply] of calls) assert.ok(allowed[what].includes(reply.status), `${what}: ${reply.status} ${reply.text}`);
    }
  });

  test('the tags of one namespace replaced, deleted and added to by parallel clients: never 500, and a replace is whole', async () => {
    assert.equal((await api.post('/v2/metadefs/namespaces', { namespace: 'TagRace' })).status, 201);
    const tags = '/v2/metadefs/namespaces/TagRace/tags';
    for (let round = 0; round < 6; round++) {
      const calls = await Promise.all([
        ...Array.from({ length: 4 }, () => api.post(tags, { tags: [{ name: 'a' }, { name: 'b' }] }).then((r) => ['replace', r] as const)),
        ...Array.from({ length: 2 }, () => api.del(tags).then((r) => ['delete', r] as const)),
        ...Array.from({ length: 2 }, (_, i) => api.post(`${tags}/c${i}`).then((r) => ['add', r] as const)),
      ]);
      const allowed = { replace: [201, 409], delete: [204], add: [201, 409] };
      for (const [what, reply] of calls) assert.ok(allowed[what].includes(reply.status), `${what}: ${reply.status} ${reply.text}`);
      const names: string[] = (await api.get(tags)).json.tags.map((t: { name: string }) => t.name);
      assert.equal(names.includes('a'), names.includes('b'), `a replace's tags come together: ${names.join(',')}`);
    }
  });
});
