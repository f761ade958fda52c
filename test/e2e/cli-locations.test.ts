// Image locations with the real glance CLI (python3-glanceclient 4.x: location-add, location-update,
// location-delete) against a `gaze serve` process, with a loopback web server as the http store's data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { failed, md5, ok, parsePropertyTable, sha512, tokenGlance, type Glance } from '../helpers/cli.ts';
import { startFileServer, type FileServer } from '../helpers/file-server.ts';

let gaze: GazeProcess;
let web: FileServer;
let glance: Glance;
let work: string;
const data = randomBytes(512 * 1024 + 3);

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gaze-cli-locations-'));
  web = await startFileServer();
  web.routes.set('/one.raw', data);
  web.routes.set('/two.raw', data);
  gaze = await startGazeProcess({
    DEFAULT: { show_multiple_locations: 'True' },
    import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
  });
  glance = tokenGlance(gaze.url);
});
after(async () => {
  await gaze?.stop();
  await web?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** With standard input closed: glanceclient uploads any other stdin as the image's data. */
const createQueued = async (name: string): Promise<string> =>
  parsePropertyTable(ok(await glance(['image-create', '--name', name, '--disk-format', 'raw', '--container-format', 'bare'], { stdin: 'closed' }))).id!;

const locationsOf = async (id: string): Promise<Array<{ url: string; metadata: Record<string, unknown> }>> =>
  (await (await fetch(`${gaze.url}/v2/images/${id}`)).json()).locations;

test('glance location-add makes a queued image active with the digests given; location-update and location-delete edit the list', async () => {
  const id = await createQueued('located');
  const added = parsePropertyTable(
    ok(
      await glance([
        'location-add',
        '--url',
        web.url('/one.raw'),
        '--metadata',
        '{"region": "here"}',
        '--checksum',
        md5(data),
        '--hash-algo',
        'sha512',
        '--hash-value',
        sha512(data),
        id,
      ]),
    ),
  );
  assert.equal(added.status, 'active');
  assert.equal(added.size, String(data.length));
  assert.equal(added.checksum, md5(data));
  assert.equal(added.os_hash_value, sha512(data));

  ok(await glance(['location-add', '--url', web.url('/two.raw'), id]));
  assert.deepEqual(await locationsOf(id), [
    { url: web.url('/one.raw'), metadata: { region: 'here' } },
    { url: web.url('/two.raw'), metadata: {} },
  ]);
  ok(await glance(['location-update', '--url', web.url('/two.raw'), '--metadata', '{"region": "there"}', id]));
  assert.deepEqual((await locationsOf(id))[1], { url: web.url('/two.raw'), metadata: { region: 'there' } });

  const out = path.join(work, 'out.raw');
  ok(await glance(['image-download', '--file', out, id]));
  assert.deepEqual(readFileSync(out), data);

  ok(await glance(['location-delete', '--url', web.url('/one.raw'), id]));
  assert.deepEqual(await locationsOf(id), [{ url: web.url('/two.raw'), metadata: { region: 'there' } }]);
  assert.match(failed(await glance(['location-delete', '--url', web.url('/two.raw'), id])), /Cannot remove last location in the image/);
  assert.match(failed(await glance(['location-add', '--url', web.url('/two.raw'), '--metadata', '{"region": "there"}', id])), /already exists/);
});

test("glance location-add of a url the service will not read fails with Glance's message and leaves the image queued", async () => {
  const id = await createQueued('refused');
  for (const url of ['file:///etc/passwd', web.url('/missing.raw'), 'http://169.254.169.254/latest/meta-data']) {
    assert.match(failed(await glance(['location-add', '--url', url, id])), /Invalid location/, url);
  }
  assert.equal(parsePropertyTable(ok(await glance(['image-show', id]))).status, 'queued');
});
