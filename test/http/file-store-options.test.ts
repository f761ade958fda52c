// A file store's options through the API: on two filesystems of one priority (filesystem_store_datadirs)
// data goes to the one with more free space, which need not be the first listed, and the image's
// location names where it went, so it downloads and its delete removes it; with thin provisioning,
// zeros take no space and the digests are those of the whole data.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { startGazeInProcess } from '../helpers/gaze.ts';
import { client } from '../helpers/http.ts';

const dirs = ['/dev/shm', tmpdir()].map((base) => mkdtempSync(path.join(base, 'gaze-datadirs-')));
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

test('an upload lands in the directory with more free space, listed second; it downloads and its delete removes it', async (t) => {
  const free = dirs.map((d) => ((s) => s.bavail * s.bsize)(statfsSync(d)));
  if (Math.abs(free[0]! - free[1]!) < 64 * 1024 * 1024) return t.skip(`/dev/shm and ${tmpdir()} have the same free space here`);
  // The fuller filesystem first: the choice, not the order, must decide.
  const [fuller, emptier] = free[0]! < free[1]! ? [dirs[0]!, dirs[1]!] : [dirs[1]!, dirs[0]!];
  const gaze = await startGazeInProcess({ glance_store: { filesystem_store_datadirs: `${fuller}:5\n${emptier}:5` } });
  try {
    const api = client(gaze.url);
    const image = await api.createImage({ name: 'on the emptier disk' });
    const data = randomBytes(300_000);
    assert.equal((await api.upload(image.id, data)).status, 204);
    assert.deepEqual(readdirSync(emptier), [image.id]);
    assert.deepEqual(readdirSync(fuller), []);
    const download = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
    assert.equal(download.status, 200);
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(data));

    // glance-direct: the staged file is taken into the store the same way.
    const staged = await api.createImage({ name: 'staged' });
    const stagedData = randomBytes(200_000);
    assert.equal((await api.put(`/v2/images/${staged.id}/stage`, { body: stagedData, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    assert.equal((await api.post(`/v2/images/${staged.id}/import`, { method: { name: 'glance-direct' } })).status, 202);
    for (let i = 0; i < 200 && (await api.get(`/v2/images/${staged.id}`)).json.status !== 'active'; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await api.get(`/v2/images/${staged.id}`)).json.status, 'active');
    assert.ok(existsSync(path.join(emptier, staged.id)));
    const stagedDownload = await fetch(`${gaze.url}/v2/images/${staged.id}/file`);
    assert.ok(Buffer.from(await stagedDownload.arrayBuffer()).equals(stagedData));

    assert.equal((await api.del(`/v2/images/${image.id}`)).status, 204);
    assert.ok(!existsSync(path.join(emptier, image.id)), 'the delete removed the data where it was');
  } finally {
    await gaze.stop();
  }
});

test('filesystem_thin_provisioning: the zeros of an upload are holes in the file; the size, digests and download are the whole data', async () => {
  const gaze = await startGazeInProcess({ glance_store: { filesystem_thin_provisioning: 'True' } });
  try {
    const api = client(gaze.url);
    const image = await api.createImage({ name: 'mostly zeros' });
    const data = Buffer.concat([randomBytes(100_000), Buffer.alloc(8 << 20), randomBytes(100_000), Buffer.alloc(2 << 20)]);
    assert.equal((await api.upload(image.id, data)).status, 204);
    const shown = (await api.get(`/v2/images/${image.id}`)).json;
    assert.equal(shown.size, data.length);
    assert.equal(shown.checksum, createHash('md5').update(data).digest('hex'));
    assert.equal(shown.os_hash_value, createHash('sha512').update(data).digest('hex'));
    const file = statSync(path.join(gaze.dir, 'data', 'images', image.id));
    assert.equal(file.size, data.length);
    assert.ok(file.blocks * 512 < 2 << 20, `${file.blocks * 512} bytes allocated for ${data.length}`);
    const download = await fetch(`${gaze.url}/v2/images/${image.id}/file`);
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(data));

    // glance-direct: the staged file (not sparse) is written into the store, not linked, so its zeros go too.
    const staged = await api.createImage({ name: 'staged zeros' });
    assert.equal((await api.put(`/v2/images/${staged.id}/stage`, { body: data, headers: { 'content-type': 'application/octet-stream' } })).status, 204);
    assert.equal((await api.post(`/v2/images/${staged.id}/import`, { method: { name: 'glance-direct' } })).status, 202);
    for (let i = 0; i < 200 && (await api.get(`/v2/images/${staged.id}`)).json.status !== 'active'; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await api.get(`/v2/images/${staged.id}`)).json.checksum, createHash('md5').update(data).digest('hex'));
    const imported = statSync(path.join(gaze.dir, 'data', 'images', staged.id));
    assert.equal(imported.size, data.length);
    assert.ok(imported.blocks * 512 < 2 << 20, `${imported.blocks * 512} bytes allocated for ${data.length}`);
  } finally {
    await gaze.stop();
  }
});

test('filesystem_store_metadata_file: a location gets the entry whose mountpoint holds its file, with the store id in multi-store mode; none without a match', async () => {
  const metadataDir = mkdtempSync(path.join(tmpdir(), 'gaze-mountpoints-'));
  const entries = [
    { id: 'shared-a', mountpoint: dirs[0]! },
    { id: 'shared-b', mountpoint: dirs[1]!, share: 'nfs:/b' },
  ];
  const both = path.join(metadataDir, 'both.json');
  const onlyA = path.join(metadataDir, 'only-a.json');
  writeFileSync(both, JSON.stringify(entries));
  writeFileSync(onlyA, JSON.stringify(entries[0])); // one object, not a list: Glance takes it too
  const uploadedLocations = async (sections: Record<string, Record<string, string>>, log?: Logger) => {
    const gaze = await startGazeInProcess({ ...sections, DEFAULT: { ...sections.DEFAULT, show_multiple_locations: 'True' } }, { log });
    try {
      const api = client(gaze.url);
      const image = await api.createImage({ name: 'located' });
      assert.equal((await api.upload(image.id, randomBytes(1000))).status, 204);
      return (await api.get(`/v2/images/${image.id}`)).json.locations as Array<{ url: string; metadata: Record<string, unknown> }>;
    } finally {
      await gaze.stop();
    }
  };
  try {
    // The higher priority directory, dirs[1], takes the data.
    const [second] = await uploadedLocations({
      glance_store: { filesystem_store_datadirs: `${dirs[0]}:1\n${dirs[1]}:9`, filesystem_store_metadata_file: both },
    });
    assert.ok(second!.url.startsWith(`file://${dirs[1]}/`));
    assert.deepEqual(second!.metadata, entries[1]);
    const [inFast] = await uploadedLocations({
      DEFAULT: { enabled_backends: 'fast:file' },
      glance_store: { default_backend: 'fast' },
      fast: { filesystem_store_datadir: dirs[0]!, filesystem_store_metadata_file: onlyA },
    });
    assert.deepEqual(inFast!.metadata, { ...entries[0], store: 'fast' });
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const [unmatched] = await uploadedLocations({ glance_store: { filesystem_store_datadir: dirs[1]!, filesystem_store_metadata_file: onlyA } }, log);
    assert.deepEqual(unmatched!.metadata, {});
    // Said in the service's log (log_file, when set), as a warning naming the store.
    const warning = lines.find((l) => /^filesystem_store_metadata_file: no mountpoint holds /.test(String(l.msg)));
    assert.ok(warning, JSON.stringify(lines.map((l) => l.msg)));
    assert.equal(warning.level, 40);
    assert.equal(warning.store, 'file');

    for (const [content, reason] of [
      ['{"id": "x"', /is not valid JSON/],
      ['[{"id": "x"}]', /entry 0 is not an object with string "id" and "mountpoint"/],
      ['[{"id": 1, "mountpoint": "/m"}]', /entry 0 is not an object/],
      ['"text"', /entry 0 is not an object/],
      ['{"id": "x", "mountpoint": "/m", "size": 5}', /entry 0 holds a value that is not text, an object or a list/],
    ] as const) {
      writeFileSync(path.join(metadataDir, 'bad.json'), content);
      await assert.rejects(
        startGazeInProcess({ glance_store: { filesystem_store_metadata_file: path.join(metadataDir, 'bad.json') } }),
        (err: Error) => /filesystem_store_metadata_file/.test(err.message) && reason.test(err.message),
      );
    }
    await assert.rejects(
      startGazeInProcess({ glance_store: { filesystem_store_metadata_file: path.join(metadataDir, 'absent.json') } }),
      /cannot be read \(ENOENT\)/,
    );
  } finally {
    rmSync(metadataDir, { recursive: true, force: true });
  }
});
