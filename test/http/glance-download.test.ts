import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client, expectError, JSON_ACCEPT } from '../helpers/http.ts';
import { startFileServer, type FileServer } from '../helpers/file-server.ts';

// Two services in no-auth mode: "RegionOne" holds the source image; the local one imports it by
// glance-download, finding RegionOne in its region table. A fake remote checks the digest verification.

let remote: Awaited<ReturnType<typeof startGazeInProcess>>;
let local: Awaited<ReturnType<typeof startGazeInProcess>>;
let fake: FileServer;
let r1: ReturnType<typeof client>;
let api: ReturnType<typeof client>;
const data = randomBytes(400_000);
let sourceId: string;
const FAKE_ID = '11111111-2222-4333-8444-555555555555';
const REDIRECTING_ID = '11111111-2222-4333-8444-666666666666';
const LONGER_ID = '11111111-2222-4333-8444-777777777777';
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

before(async () => {
  remote = await startGazeInProcess();
  fake = await startFileServer();
  local = await startGazeInProcess({
    DEFAULT: { enabled_import_methods: 'glance-direct,web-download,glance-download' },
    glance_download_opts: { region_endpoints: `RegionOne:${remote.url}, Liar:${fake.url('')}` },
    import_filtering_opts: { allowed_ports: `80,443,${remote.port},${fake.port}` },
    glance_download_properties: { extra_properties: 'hw_,trait:,os_distro,os_secure_boot,os_type,kernel_id,ramdisk_id' },
  });
  r1 = client(remote.url);
  api = client(local.url);
  // ami: random bytes pass format inspection only under a format without an inspector.
  const src = await r1.createImage({
    name: 'source',
    disk_format: 'ami',
    container_format: 'bare',
    hw_disk_bus: 'scsi',
    os_distro: 'debian',
    'trait:CUSTOM_X': 'required',
    unrelated: 'stays home',
    kernel_id: null,
  });
  assert.equal((await r1.upload(src.id, data)).status, 204);
  sourceId = src.id;
  const fakeMeta = {
    id: FAKE_ID,
    status: 'active',
    size: 5,
    disk_format: 'raw',
    container_format: 'bare',
    os_hash_algo: 'sha512',
    os_hash_value: '0'.repeat(128),
    checksum: '0'.repeat(32),
    kernel_id: null,
    ramdisk_id: '22222222-3333-4444-8555-666666666666',
  };
  fake.routes.set(`/v2/images/${FAKE_ID}`, Buffer.from(JSON.stringify(fakeMeta)));
  fake.routes.set(`/v2/images/${FAKE_ID}/file`, Buffer.from('lies!'));
});
after(async () => {
  await local.stop();
  await remote.stop();
  await fake.close();
});

async function settle(id: string): Promise<any> {
  for (let i = 0; i < 400; i++) {
    const img = (await api.get(`/v2/images/${id}`)).json;
    if (!('os_glance_import_task' in img) && !['importing', 'uploading'].includes(img.status)) return img;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('import did not settle');
}
const gd = (id: string, method: Record<string, unknown>) =>
  api.call('POST', `/v2/images/${id}/import`, { json: { method: { name: 'glance-download', ...method } }, headers: JSON_ACCEPT });

test('glance-download copies the data, the formats and the configured properties from the other region', async () => {
  const img = await api.createImage({ name: 'here', disk_format: 'raw', container_format: 'bare' });
  assert.equal((await gd(img.id, { glance_image_id: sourceId, glance_region: 'regionone' })).status, 202);
  const done = await settle(img.id);
  assert.equal(done.status, 'active');
  assert.equal(done.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(done.os_hash_value, createHash('sha512').update(data).digest('hex'));
  assert.equal(done.disk_format, 'ami');
  assert.equal(done.hw_disk_bus, 'scsi');
  assert.equal(done.os_distro, 'debian');
  assert.equal(done['trait:CUSTOM_X'], 'required');
  assert.ok('kernel_id' in done && done.kernel_id === null, 'a remote null is copied as null');
  assert.ok(!('unrelated' in done), 'properties outside the prefixes are not copied');
  assert.equal(done.name, 'here', 'the name is not copied');
  const [task] = (await api.get(`/v2/images/${img.id}/tasks`)).json.tasks;
  assert.equal(task.input.import_req.method.glance_service_interface, 'public', 'the default interface is written back');
  const bytes = Buffer.from(await (await fetch(`${local.url}/v2/images/${img.id}/file`)).arrayBuffer());
  assert.ok(bytes.equals(data));
});

test('glance-download field checks answer 400 before anything starts', async () => {
  const img = await api.createImage();
  expectError(await gd(img.id, { glance_image_id: sourceId }), 400, "'glance_region' needs to be set for glance-download import method");
  expectError(await gd(img.id, { glance_region: 'RegionOne' }), 400, "'glance_image_id' needs to be set for glance-download import method");
  expectError(await gd(img.id, { glance_region: 'RegionOne', glance_image_id: 'not-a-uuid' }), 400, 'Remote image id does not look like a UUID: not-a-uuid');
  expectError(
    await client(remote.url).call('POST', `/v2/images/${sourceId}/import`, { json: { method: { name: 'glance-download' } }, headers: JSON_ACCEPT }),
    400,
    "Unknown import method name 'glance-download'.",
  );
});

test('a missing remote image, a wrong region, lying data or a redirect away from the endpoint each fail the task clearly and revert the image', async () => {
  // The catalog's endpoint may be internal; where it redirects to may not (another internal service,
  // the metadata service): it meets the URL filter as any other URL.
  const redirectedMeta = { id: REDIRECTING_ID, status: 'active', size: data.length, disk_format: 'raw', container_format: 'bare', checksum: md5(data) };
  fake.routes.set(`/v2/images/${REDIRECTING_ID}`, Buffer.from(JSON.stringify(redirectedMeta)));
  const away = `${remote.url}/v2/images/${sourceId}/file`;
  fake.routes.set(`/v2/images/${REDIRECTING_ID}/file`, (res) => res.writeHead(302, { location: away }).end());
  // A remote that sends more than its image's size is cut off there, not at image_size_cap.
  const longerMeta = { ...redirectedMeta, id: LONGER_ID, size: 5 };
  fake.routes.set(`/v2/images/${LONGER_ID}`, Buffer.from(JSON.stringify(longerMeta)));
  fake.routes.set(`/v2/images/${LONGER_ID}/file`, (res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(Buffer.alloc(3 * 1024 * 1024, 1));
  });
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ glance_image_id: LONGER_ID, glance_region: 'Liar' }, /^Downloading the image failed: download exceeds the limit of 5 bytes$/],
    [{ glance_image_id: REDIRECTING_ID, glance_region: 'Liar' }, new RegExp(`Redirect to disallowed URL: ${away.replace(/[.?]/g, '\\$&')}$`)],
    [
      { glance_image_id: '99999999-9999-4999-8999-999999999999', glance_region: 'RegionOne' },
      /^Remote image 99999999-9999-4999-8999-999999999999 was not found \(HTTP 404/,
    ],
    [{ glance_image_id: sourceId, glance_region: 'Nowhere' }, /^public glance endpoint not found for region Nowhere$/],
    [{ glance_image_id: FAKE_ID, glance_region: 'Liar' }, /^sha512 of the data is [0-9a-f]{128}, not the expected 0{128}; the data was not kept\.$/],
  ];
  for (const [method, reason] of cases) {
    const img = await api.createImage({ disk_format: 'raw', container_format: 'bare', ramdisk_id: null });
    assert.equal((await gd(img.id, method)).status, 202);
    const after = await settle(img.id);
    assert.equal(after.status, 'queued', String(reason));
    assert.equal(after.disk_format, 'raw', 'formats restored');
    assert.ok(!('hw_disk_bus' in after));
    assert.ok(!('kernel_id' in after), 'a property the image did not have is removed again');
    assert.ok('ramdisk_id' in after && after.ramdisk_id === null, 'a property that was null is null again');
    const [task] = (await api.get(`/v2/images/${img.id}/tasks`)).json.tasks;
    assert.equal(task.status, 'failure');
    assert.match(task.message, reason);
  }
});
