// A staging area of its own must not keep staged data where an image store keeps images: the sweep of
// staged data nobody waits for would remove every image's data (it did, at each start).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

/** The start stops with an error matching `reason` (a start that goes on is stopped, and fails the test). */
async function assertRefused(sections: Parameters<typeof startGazeInProcess>[0], reason: RegExp, label?: string): Promise<void> {
  let started: Awaited<ReturnType<typeof startGazeInProcess>>;
  try {
    started = await startGazeInProcess(sections);
  } catch (err) {
    assert.match((err as Error).message, reason, label);
    return;
  }
  await started.stop();
  assert.fail(`the start went on${label ? ` (${label})` : ''}`);
}

test("node_staging_uri in the file store's directory, or around it, stops the start with the reason", async () => {
  for (const staging of ['file://__DIR__/images', 'file://__DIR__/images/', 'file://__DIR__']) {
    await assertRefused(
      { DEFAULT: { node_staging_uri: staging }, glance_store: { filesystem_store_datadir: '__DIR__/images' } },
      /\[DEFAULT\] node_staging_uri: staged data would be kept where store 'file' keeps images \(file:\/.*\/images\): give staging a place of its own/,
      staging,
    );
  }
});

test("a staging directory that is data_dir, or holds the SQLite database, stops the start: its sweep would remove the service's own files", async () => {
  await assertRefused(
    { DEFAULT: { node_staging_uri: 'file://__DIR__/data' }, glance_store: { filesystem_store_datadir: '__DIR__/images' } },
    /\[DEFAULT\] node_staging_uri: the staging directory would hold .*\/data, whose files its sweep would remove/,
  );
  await assertRefused(
    {
      DEFAULT: { node_staging_uri: 'file://__DIR__/shared' },
      glance_store: { filesystem_store_datadir: '__DIR__/images' },
      database: { connection: 'sqlite:///__DIR__/shared/db/gaze.db' },
    },
    /the staging directory would hold .*\/shared\/db, whose files/,
  );
});

test("a staging directory inside the store's directory is its own place: the start goes on and images keep their data", async () => {
  const gaze = await startGazeInProcess({
    DEFAULT: { node_staging_uri: 'file://__DIR__/images/staging' },
    glance_store: { filesystem_store_datadir: '__DIR__/images' },
  });
  try {
    const api = client(gaze.url);
    const image = await api.createImage({ name: 'kept' });
    assert.equal((await api.upload(image.id, 'bytes')).status, 204);
    const read = await api.get(`/v2/images/${image.id}/file`);
    assert.equal(read.text, 'bytes');
  } finally {
    await gaze.stop();
  }
});

test("multi-store: [os_glance_staging_store] filesystem_store_datadir of a backend's directory stops the start", async () => {
  await assertRefused(
    {
      DEFAULT: { enabled_backends: 'fast:file, cheap:file' },
      glance_store: { default_backend: 'fast' },
      fast: { filesystem_store_datadir: '__DIR__/fast' },
      cheap: { filesystem_store_datadir: '__DIR__/cheap' },
      os_glance_staging_store: { filesystem_store_datadir: '__DIR__/cheap' },
    },
    /\[os_glance_staging_store\] filesystem_store_datadir: staged data would be kept where store 'cheap' keeps images/,
  );
});

test('a dedicated S3 staging store in the bucket of an S3 image store on the same host stops the start; another bucket does not', async () => {
  const s3 = { s3_store_host: 'http://127.0.0.1:9', s3_store_access_key: 'k', s3_store_secret_key: 's', s3_store_bucket: 'images' };
  const sections = (stagingBucket: string) => ({
    DEFAULT: { enabled_backends: 'objects:s3' },
    glance_store: { default_backend: 'objects' },
    objects: s3,
    os_glance_staging_store: { ...s3, s3_store_bucket: stagingBucket },
  });
  await assertRefused(
    sections('images'),
    /\[os_glance_staging_store\] s3_store_bucket: staged data would be kept where store 'objects' keeps images \(s3:127\.0\.0\.1:9\/images\)/,
  );
  const apart = await startGazeInProcess(sections('staging'));
  await apart.stop();
});

test('a dedicated Swift staging store: the same container of the same account stops the start; of another account it is apart', async () => {
  const swift = (user: string) => ({
    swift_store_auth_address: 'http://127.0.0.1:9/auth/v1.0',
    swift_store_auth_version: '1',
    swift_store_user: user,
    swift_store_key: 'k',
  });
  const sections = (stagingUser: string) => ({
    DEFAULT: { enabled_backends: 'objects:swift' },
    glance_store: { default_backend: 'objects' },
    objects: swift('service:glance'),
    os_glance_staging_store: swift(stagingUser),
  });
  await assertRefused(
    sections('service:stager'),
    /\[os_glance_staging_store\] swift_store_container: staged data would be kept where store 'objects' keeps images \(swift:.*tempauth:service\/glance\)/,
  );
  const apart = await startGazeInProcess(sections('staging:stager'));
  await apart.stop();
});
