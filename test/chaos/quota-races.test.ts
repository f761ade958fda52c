import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachEngine } from '../helpers/databases.ts';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';
import { until } from '../helpers/wait.ts';

// Quotas and state changes under parallel clients, against two worker processes on one database: a
// quota is neither exceeded nor refused to everyone, and a race lost to an identical change is no error.

const KiB = 1024;
const SIZE = 300 * KiB; // three fit in user_storage_quota = 1MB, a fourth does not
const N = 10;
const MEMBER_QUOTA = 5;

forEachEngine((engine) => {
  let gaze: GazeProcess;
  let api: ReturnType<typeof client>;
  before(async () => {
    gaze = await startGazeProcess({
      database: { connection: await engine.url() },
      DEFAULT: { workers: '2', user_storage_quota: '1MB', image_member_quota: String(MEMBER_QUOTA) },
    });
    api = client(gaze.url);
  });
  after(() => gaze.stop());

  const caller = (project: string) => ({ project, roles: 'member,reader', user: `user-of-${project}` });
  const octets = { 'content-type': 'application/octet-stream' };
  const createIn = async (project: string, name: string) => {
    const created = await api.post('/v2/images', { name, disk_format: 'raw', container_format: 'bare' }, { as: caller(project) });
    assert.equal(created.status, 201, created.text);
    return created.json.id as string;
  };
  const storedIn = async (project: string) => {
    const images: Array<{ status: string; size: number | null }> = (await api.get('/v2/images?limit=100', { as: caller(project) })).json.images;
    return images.filter((i) => i.status === 'active').reduce((sum, i) => sum + (i.size ?? 0), 0);
  };

  test(`${N} uploads at once against a storage quota three fit in: exactly three are stored, the others answer 413`, async () => {
    for (let round = 0; round < 2; round++) {
      const project = `uploads-${round}`;
      const ids = await Promise.all(Array.from({ length: N }, (_, i) => createIn(project, `u${i}`)));
      const puts = await Promise.all(ids.map((id) => api.put(`/v2/images/${id}/file`, { body: Buffer.alloc(SIZE, 7), headers: octets, as: caller(project) })));
      const statuses = puts.map((r) => r.status);
      assert.deepEqual([statuses.filter((s) => s === 204).length, statuses.filter((s) => s === 413).length], [3, N - 3], statuses.join(','));
      assert.equal(await storedIn(project), 3 * SIZE);
      // The refused ones are back to queued, with nothing held against the quota.
      const refused = ids.filter((_, i) => statuses[i] === 413);
      for (const id of refused) assert.equal((await api.get(`/v2/images/${id}`, { as: caller(project) })).json.status, 'queued');
    }
  });

  test(`unified limits under parallel clients: of ${N} stages three fit in image_stage_total and are staged, of 30 creates exactly image_count_total (12) are made`, async () => {
    const staging = await startGazeProcess({
      database: { connection: await engine.url() },
      DEFAULT: { workers: '2' },
      project_limits: { image_stage_total: '1', image_count_total: '12' },
    });
    try {
      const stageApi = client(staging.url);
      const project = 'stages';
      const ids = await Promise.all(
        Array.from({ length: N }, async (_, i) => {
          const created = await stageApi.post('/v2/images', { name: `s${i}`, disk_format: 'raw', container_format: 'bare' }, { as: caller(project) });
          return created.json.id as string;
        }),
      );
      const stages = await Promise.all(
        ids.map((id) => stageApi.put(`/v2/images/${id}/stage`, { body: Buffer.alloc(SIZE, 5), headers: octets, as: caller(project) })),
      );
      const statuses = stages.map((r) => r.status);
      assert.deepEqual([statuses.filter((s) => s === 204).length, statuses.filter((s) => s === 413).length], [3, N - 3], statuses.join(','));
      const creates = await Promise.all(Array.from({ length: 30 }, (_, i) => stageApi.post('/v2/images', { name: `c${i}` }, { as: caller('counted') })));
      assert.deepEqual(creates.map((r) => r.status).filter((st) => st === 201).length, 12, creates.map((r) => r.status).join(','));
      const shown = await Promise.all(ids.map(async (id) => (await stageApi.get(`/v2/images/${id}`, { as: caller(project) })).json.status as string));
      assert.deepEqual(shown.filter((s) => s === 'uploading').length, 3, shown.join(','));
    } finally {
      await staging.stop();
    }
  });

  test(`image_count_uploading under parallel clients: of ${N} stages at once exactly three are taken, and of ${N} uploads held open at once exactly three`, async () => {
    const limited = await startGazeProcess({
      database: { connection: await engine.url() },
      DEFAULT: { workers: '2' },
      project_limits: { image_count_uploading: '3' },
    });
    try {
      const limitedApi = client(limited.url);
      const createInLimited = async (project: string, name: string) => {
        const created = await limitedApi.post('/v2/images', { name, disk_format: 'raw', container_format: 'bare' }, { as: caller(project) });
        assert.equal(created.status, 201, created.text);
        return created.json.id as string;
      };
      const overLimit = /Resource image_count_uploading is over limit of 3 due to current usage 4 and delta 0/;
      const expectThreeTaken = (replies: Array<{ status: number; text: string }>, what: string) => {
        const statuses = replies.map((r) => r.status);
        // Staged images stay uploading (they count until imported): exactly three, whatever the timing.
        if (what === 'stages')
          assert.deepEqual([statuses.filter((st) => st === 204).length, statuses.filter((st) => st === 413).length], [3, N - 3], statuses.join(','));
        // An upload stops counting when it ends: the bodies end only once the others were refused.
        else assert.deepEqual([statuses.filter((st) => st === 204).length, statuses.filter((st) => st === 413).length], [3, N - 3], statuses.join(','));
        for (const r of replies) if (r.status !== 204) assert.match(r.text, overLimit);
      };

      const staged = await Promise.all(Array.from({ length: N }, (_, i) => createInLimited('stagers', `s${i}`)));
      const stages = await Promise.all(
        staged.map((id) => limitedApi.put(`/v2/images/${id}/stage`, { body: Buffer.alloc(SIZE, 3), headers: octets, as: caller('stagers') })),
      );
      expectThreeTaken(stages, 'stages');
      const shown = await Promise.all(staged.map(async (id) => (await limitedApi.get(`/v2/images/${id}`, { as: caller('stagers') })).json.status as string));
      // The refused claims were undone: queued, not left uploading.
      assert.deepEqual([shown.filter((st) => st === 'uploading').length, shown.filter((st) => st === 'queued').length], [3, N - 3], shown.join(','));

      const uploaded = await Promise.all(Array.from({ length: N }, (_, i) => createInLimited('uploaders', `u${i}`)));
      // Every body waits, half sent, until the uploads over the limit have been refused (or 20 s, when
      // more than three were let in): no upload ends, and frees its place, before every claim is decided.
      let refused = 0;
      let allRefused!: () => void;
      const decided = Promise.race([new Promise<void>((r) => (allRefused = r)), new Promise<void>((r) => setTimeout(r, 20_000))]);
      const slowBody = () =>
        new ReadableStream({
          async start(c) {
            c.enqueue(new Uint8Array(SIZE / 2));
            await decided;
            c.enqueue(new Uint8Array(SIZE / 2));
            c.close();
          },
        });
      const uploads = await Promise.all(
        uploaded.map(async (id) => {
          const reply = await limitedApi.put(`/v2/images/${id}/file`, { body: slowBody(), headers: octets, as: caller('uploaders') });
          if (reply.status === 413 && ++refused === N - 3) allRefused();
          return reply;
        }),
      );
      expectThreeTaken(uploads, 'uploads');
      const ended = await Promise.all(
        uploaded.map(async (id) => (await limitedApi.get(`/v2/images/${id}`, { as: caller('uploaders') })).json.status as string),
      );
      assert.equal(ended.filter((st) => st === 'active').length, uploads.filter((r) => r.status === 204).length, ended.join(','));
      assert.equal(ended.filter((st) => st === 'queued').length, uploads.filter((r) => r.status === 413).length, ended.join(','));
    } finally {
      await limited.stop();
    }
  });

  test(`${N} glance-direct imports at once against a storage quota three fit in: exactly three turn active`, async () => {
    const project = 'imports';
    const ids = await Promise.all(Array.from({ length: N }, (_, i) => createIn(project, `i${i}`)));
    for (const id of ids) {
      const staged = await api.put(`/v2/images/${id}/stage`, { body: Buffer.alloc(SIZE, 9), headers: octets, as: caller(project) });
      assert.equal(staged.status, 204, staged.text);
    }
    const imports = await Promise.all(ids.map((id) => api.post(`/v2/images/${id}/import`, { method: { name: 'glance-direct' } }, { as: caller(project) })));
    // Distinct images: no import has a rival, so every one is accepted.
    assert.deepEqual(
      imports.map((r) => r.status),
      ids.map(() => 202),
      imports.map((r) => r.text).join(' | '),
    );
    // Each image's import task ends (success or failure) before the image is looked at.
    await until(
      async () => {
        for (const id of ids) {
          const tasks: Array<{ status: string }> = (await api.get(`/v2/images/${id}/tasks`, { as: caller(project) })).json.tasks;
          if (tasks.length === 0 || tasks.some((t) => t.status === 'pending' || t.status === 'processing')) return undefined;
        }
        return true;
      },
      'the import tasks to end',
      60_000,
    );
    const ended = await Promise.all(ids.map(async (id) => (await api.get(`/v2/images/${id}`, { as: caller(project) })).json.status as string));
    assert.equal(ended.filter((s) => s === 'active').length, 3, ended.join(','));
    assert.equal(await storedIn(project), 3 * SIZE);
  });

  test(`${6 * MEMBER_QUOTA} members added at once to one image with a member quota of ${MEMBER_QUOTA}: exactly ${MEMBER_QUOTA} are kept`, async () => {
    const project = 'sharing';
    const id = await createIn(project, 'shared');
    assert.equal((await api.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/visibility', value: 'shared' }], { as: caller(project) })).status, 200);
    const adds = await Promise.all(
      Array.from({ length: 6 * MEMBER_QUOTA }, (_, i) => api.post(`/v2/images/${id}/members`, { member: `m${i}` }, { as: caller(project) })),
    );
    const statuses = adds.map((r) => r.status);
    assert.deepEqual(
      [statuses.filter((s) => s === 200).length, statuses.filter((s) => s === 413).length],
      [MEMBER_QUOTA, 5 * MEMBER_QUOTA],
      statuses.join(','),
    );
    assert.equal((await api.get(`/v2/images/${id}/members`, { as: caller(project) })).json.members.length, MEMBER_QUOTA);
  });

  test(`${N} deactivations at once, then ${N} reactivations: each is a 204, as the same change made twice`, async () => {
    const project = 'states';
    const id = await createIn(project, 'toggled');
    assert.equal((await api.put(`/v2/images/${id}/file`, { body: Buffer.from('bits'), headers: octets, as: caller(project) })).status, 204);
    for (const action of ['deactivate', 'reactivate']) {
      const replies = await Promise.all(Array.from({ length: N }, () => api.post(`/v2/images/${id}/actions/${action}`, undefined, { as: caller(project) })));
      assert.deepEqual(
        replies.map((r) => r.status),
        replies.map(() => 204),
        `${action}: ${replies.map((r) => r.text).join(' | ')}`,
      );
    }
    assert.equal((await api.get(`/v2/images/${id}`, { as: caller(project) })).json.status, 'active');
  });
});
