// The legacy tasks API opened to members by the operator's policy: the image an `import` task creates
// is created with its submitter's rights (as Glance's task makes it with the request's context), so a
// member cannot make a public image, or set a property the protections keep from them, through a task.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, alice, JSON_ACCEPT, type Caller } from '../helpers/http.ts';
import { startFileServer, type FileServer } from '../helpers/file-server.ts';

let gaze: Awaited<ReturnType<typeof startGazeInProcess>>;
let api: ReturnType<typeof client>;
let files: FileServer;
const admin: Caller = { project: 'alice-project', roles: 'admin,member,reader', user: 'root' };

before(async () => {
  files = await startFileServer();
  files.routes.set('/disk.raw', Buffer.from('legacy task data'));
  files.routes.set('/big.raw', Buffer.alloc(2048, 1));
  gaze = await startGazeInProcess(
    {
      // Room for the small tasks here, not for big.raw.
      DEFAULT: { user_storage_quota: '1KB' },
      oslo_policy: { policy_file: 'policy.yaml' },
      import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(files.port) },
    },
    { besideConfig: { 'policy.yaml': '"tasks_api_access": "role:member"\n' } },
  );
  api = client(gaze.url);
});
after(async () => {
  await gaze.stop();
  await files.close();
});

async function runTask(as: Caller, imageProperties: Record<string, unknown>, from = '/disk.raw'): Promise<any> {
  const created = await api.post(
    '/v2/tasks',
    { type: 'import', input: { import_from: files.url(from), import_from_format: 'raw', image_properties: imageProperties } },
    { as, headers: JSON_ACCEPT },
  );
  assert.equal(created.status, 201, created.text);
  for (let i = 0; ; i++) {
    const task = (await api.get(`/v2/tasks/${created.json.id}`, { as })).json;
    if (task.status === 'success' || task.status === 'failure') return task;
    assert.ok(i < 400, 'the task did not end');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test("a member's task cannot create a public image; an admin's can", async () => {
  const byMember = await runTask(alice, { name: 'public by a member', disk_format: 'raw', container_format: 'bare', visibility: 'public' });
  assert.equal(byMember.status, 'failure');
  assert.match(byMember.message, /publicize_image/);
  const byAdmin = await runTask(admin, { name: 'public by an admin', disk_format: 'raw', container_format: 'bare', visibility: 'public' });
  assert.equal(byAdmin.status, 'success', byAdmin.message);
  const image = (await api.get(`/v2/images/${byAdmin.result.image_id}`, { as: admin })).json;
  assert.deepEqual([image.visibility, image.status], ['public', 'active']);
});

test("a member's task creates the image of the member's project, with what a member may set", async () => {
  const task = await runTask(alice, { name: 'private by a member', disk_format: 'raw', container_format: 'bare' });
  assert.equal(task.status, 'success', task.message);
  const image = (await api.get(`/v2/images/${task.result.image_id}`, { as: alice })).json;
  assert.deepEqual([image.owner, image.visibility, image.status], ['alice-project', 'shared', 'active']);
});

test('a task meets what an upload meets: formats set before any data, and the storage quota', async () => {
  const unformatted = await runTask(alice, { name: 'no formats' });
  assert.equal(unformatted.status, 'failure');
  assert.match(unformatted.message, /Properties disk_format, container_format must be set prior to saving data\./);
  const carol: Caller = { project: 'carol-project', roles: 'member,reader', user: 'carol' };
  const big = await runTask(carol, { name: 'too big', disk_format: 'raw', container_format: 'bare' }, '/big.raw');
  assert.equal(big.status, 'failure');
  assert.match(big.message, /The size of the data 2048 will exceed the limit\. 1024 bytes remaining\./);
  for (const task of [unformatted, big]) {
    const image = task.result?.image_id ? (await api.get(`/v2/images/${task.result.image_id}`, { as: admin })).json : null;
    assert.notEqual(image?.status, 'active', JSON.stringify(image));
  }
});

test("a source in upper case is refused as Glance refuses it; another project's task is no marker", async () => {
  const upper = await api.post(
    '/v2/tasks',
    { type: 'import', input: { import_from: files.url('/disk.raw').replace('http://', 'HTTP://'), import_from_format: 'raw', image_properties: {} } },
    { as: alice, headers: JSON_ACCEPT },
  );
  assert.equal(upper.status, 400, upper.text);
  const bob: Caller = { project: 'bob-project', roles: 'member,reader', user: 'bob' };
  const bobs = await runTask(bob, { name: 'of bob', disk_format: 'raw', container_format: 'bare' });
  const listed = await api.get(`/v2/tasks?marker=${bobs.id}`, { as: alice, headers: JSON_ACCEPT });
  assert.equal(listed.status, 403, listed.text);
  assert.match(listed.text, new RegExp(`Forbidding request, task ${bobs.id} is not visible`));
  assert.equal((await api.get(`/v2/tasks?marker=${bobs.id}`, { as: bob })).status, 200);
});
