import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGazeInProcess, type RunningGaze } from '../helpers/gaze.ts';
import { client, alice, ADMIN, type Caller } from '../helpers/http.ts';
import { testCorpus } from '../helpers/corpus.ts';

// Where the plugins do not reach: copy-image copies the bytes the image has (no conversion, no
// injection), and inject_image_metadata writes only what the property protections let the user write.
let gaze: RunningGaze;
let api: ReturnType<typeof client>;
let corpus: string;
before(async () => {
  corpus = await testCorpus();
  const protections = path.join(corpus, 'protections.conf');
  writeFileSync(
    protections,
    [
      '[^injected_ok$]',
      'create = member',
      'read = member',
      'update = member',
      'delete = member',
      '[^injected_by_service$]',
      'create = service',
      'read = member',
      'update = service',
      'delete = service',
      '[^x_]',
      'create = member',
      'read = member',
      'update = member',
      'delete = member',
      '[.*]',
      'create = admin',
      'read = admin,member',
      'update = admin',
      'delete = admin',
      '',
    ].join('\n'),
  );
  gaze = await startGazeInProcess({
    DEFAULT: { enabled_backends: 'fast:file, cheap:file', property_protection_file: protections },
    glance_store: { default_backend: 'fast' },
    fast: { filesystem_store_datadir: '__DIR__/stores/fast' },
    cheap: { filesystem_store_datadir: '__DIR__/stores/cheap' },
    image_import_opts: { image_import_plugins: 'image_conversion,inject_image_metadata' },
    inject_metadata_properties: { inject: 'injected_ok:yes,injected_admin_only:no,injected_by_service:svc', ignore_user_roles: '' },
  });
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
});

async function settle(id: string, as: Caller): Promise<any> {
  for (let i = 0; i < 400; i++) {
    const tasks = (await api.get(`/v2/images/${id}/tasks`, { as })).json.tasks;
    if (tasks.length && tasks.every((t: any) => t.status === 'success' || t.status === 'failure')) {
      return { tasks, image: (await api.get(`/v2/images/${id}`, { as })).json };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`import of ${id} did not settle`);
}

/** Alice stages a raw image and imports it by glance-direct, with these headers on the import; its end. */
async function importedByAlice(importHeaders: Record<string, string> = {}): Promise<{ id: string; tasks: any[]; image: any }> {
  const img = await api.createImage({ disk_format: 'raw', container_format: 'bare' }, alice);
  const staged = await api.put(`/v2/images/${img.id}/stage`, {
    body: readFileSync(path.join(corpus, 'raw.img')),
    as: alice,
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(staged.status, 204);
  const imported = await api.post(`/v2/images/${img.id}/import`, { method: { name: 'glance-direct' } }, { as: alice, headers: importHeaders });
  assert.equal(imported.status, 202);
  return { id: img.id, ...(await settle(img.id, alice)) };
}

test('inject_image_metadata writes only the properties the importing user may create', async () => {
  const { id, tasks, image } = await importedByAlice();
  assert.equal(tasks[0].status, 'success', tasks[0].message);
  assert.equal(image.injected_ok, 'yes');
  assert.equal(image.injected_admin_only, undefined, 'a member may not create it, so it is not injected');
  assert.equal((await api.get(`/v2/images/${id}`)).json.injected_admin_only, undefined, 'not stored either');
  assert.equal(image.injected_by_service, undefined, 'nor what only a service may create');
});

test("a service's roles (X-Service-Token) count for what inject_image_metadata may write, as the user's do", async () => {
  const { tasks, image } = await importedByAlice({ 'x-service-roles': 'service' });
  assert.equal(tasks[0].status, 'success', tasks[0].message);
  assert.equal(image.injected_by_service, 'svc');
  assert.equal(image.injected_admin_only, undefined);
  assert.equal('service_roles' in tasks[0].input, false, 'the roles stay out of the task shown');
});

test('copy-image runs no plugin: a qcow2 is copied as qcow2, byte for byte, with nothing injected', async () => {
  const img = await api.createImage({ disk_format: 'qcow2', container_format: 'bare' }, ADMIN);
  const put = await api.put(`/v2/images/${img.id}/file`, {
    body: readFileSync(path.join(corpus, 'qcow2-v2.qcow2')),
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(put.status, 204, put.text);
  const before = (await api.get(`/v2/images/${img.id}`)).json;
  assert.equal((await api.post(`/v2/images/${img.id}/import`, { method: { name: 'copy-image' }, stores: ['cheap'] })).status, 202);
  const { tasks, image } = await settle(img.id, ADMIN);
  assert.equal(tasks[0].status, 'success', tasks[0].message);
  assert.deepEqual(image.stores.split(',').sort(), ['cheap', 'fast']);
  assert.equal(image.disk_format, 'qcow2');
  assert.equal(image.checksum, before.checksum);
  assert.equal(image.injected_ok, undefined);
});
