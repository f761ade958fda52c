// Three Gaze nodes behind a real HAProxy (Debian's haproxy: round robin, health checks on /healthcheck),
// sharing one PostgreSQL and S3 stores (a real Swift's S3 API) that also hold the staged data (so no
// import is forwarded between nodes), driven through the load balancer by
// the real openstack and glance CLIs; then the node running an import is killed with SIGKILL: another
// node finishes it with the right checksum, and no request through the load balancer fails for longer
// than the health checks take to notice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { startGazeProcess, type GazeProcess } from '../helpers/gaze.ts';
import { startPostgres, type RunningPostgres } from '../helpers/postgres.ts';
import { s3StoreOptions, startSwift, type RunningSwift } from '../helpers/swift.ts';
import { freePort } from '../helpers/keystone.ts';
import { startFileServer, type FileServer } from '../helpers/file-server.ts';
import { json, md5, noAuthOpenStack, ok, parsePropertyTable, tokenGlance, type Glance, type OpenStack } from '../helpers/cli.ts';
import { HEALTH_FALL, HEALTH_INTERVAL_MS, startHaproxy, type RunningHaproxy } from '../helpers/haproxy.ts';
import { until } from '../helpers/wait.ts';

let postgres: RunningPostgres;
let swift: RunningSwift;
let web: FileServer;
let work: string;
let haproxy: RunningHaproxy;
let lb: string;
let database: string;
const nodes: GazeProcess[] = [];
let openstack: OpenStack;
let glance: Glance;

const s3Store = (bucket: string) => s3StoreOptions(swift, bucket);

before(
  async () => {
    work = mkdtempSync(path.join(tmpdir(), 'gaze-three-nodes-'));
    [postgres, swift, web] = await Promise.all([startPostgres(), startSwift(), startFileServer()]);
    database = await postgres.freshDatabase();
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) {
      nodes.push(
        await startGazeProcess(
          {
            DEFAULT: {
              worker_self_reference_url: `http://127.0.0.1:${port}`,
              enabled_import_methods: 'glance-direct,web-download,copy-image',
              enabled_backends: 'hot:s3, cold:s3',
              staging_store: 'hot',
            },
            database: { connection: database },
            glance_store: { default_backend: 'hot' },
            hot: s3Store('three-nodes-hot'),
            cold: s3Store('three-nodes-cold'),
            import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
          },
          { port },
        ),
      );
    }
    haproxy = await startHaproxy(ports);
    lb = haproxy.url;
    openstack = noAuthOpenStack(lb);
    const g = tokenGlance(lb);
    glance = (args, opts = {}) => g(args, { stdin: 'closed', ...opts });
  },
  { timeout: 400_000 },
);

after(async () => {
  await haproxy?.stop();
  for (const node of nodes) await node.stop().catch(() => {});
  await web?.close();
  await swift?.stop();
  await postgres?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('through the load balancer: upload, stage on one node and import on another, web-download, copy-image, delete', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 11);
  const file = path.join(work, 'disk.raw');
  writeFileSync(file, data);
  const created = json<{ id: string }>(
    await openstack(['image', 'create', '--file', file, '--disk-format', 'raw', '--container-format', 'bare', 'uploaded', '-f', 'json']),
  );
  const uploaded = json<{ status: string; checksum: string }>(await openstack(['image', 'show', created.id, '-f', 'json']));
  assert.deepEqual([uploaded.status, uploaded.checksum], ['active', md5(data)]);
  const saved = path.join(work, 'saved.raw');
  for (let i = 0; i < 3; i++) ok(await openstack(['image', 'save', '--file', saved, created.id])); // each node serves it once

  const staged = parsePropertyTable(ok(await glance(['image-create', '--name', 'staged', '--disk-format', 'raw', '--container-format', 'bare']))).id!;
  ok(await glance(['image-stage', '--file', file, staged]));
  ok(await glance(['image-import', '--import-method', 'glance-direct', staged]));
  web.routes.set('/remote.raw', data);
  const fetched = parsePropertyTable(
    ok(
      await glance([
        'image-create-via-import',
        '--import-method',
        'web-download',
        '--uri',
        web.url('/remote.raw'),
        '--disk-format',
        'raw',
        '--container-format',
        'bare',
        '--name',
        'fetched',
      ]),
    ),
  ).id!;
  for (const id of [staged, fetched]) {
    const shown = await until(async () => {
      const img = json<{ status: string; checksum: string }>(await openstack(['image', 'show', id, '-f', 'json']));
      return img.status === 'active' ? img : undefined;
    }, `image ${id} active`);
    assert.equal(shown.checksum, md5(data));
  }
  ok(await glance(['image-import', '--import-method', 'copy-image', '--stores', 'cold', created.id]));
  // In the whole suite each CLI call can take seconds (timed out once at 60 s): a longer deadline, and
  // the image's tasks in the message should the copy never land.
  await until(
    async () => {
      const img = json<{ stores?: string; properties?: { stores?: string } }>(await openstack(['image', 'show', created.id, '-f', 'json']));
      return (img.stores ?? img.properties?.stores) === 'hot,cold' ? true : undefined; // in the locations' order
    },
    'the copy into the cold store',
    120_000,
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}; the image's tasks: ${await (await fetch(`${lb}/v2/images/${created.id}/tasks`)).text()}`);
  });
  for (const id of [created.id, staged, fetched]) ok(await openstack(['image', 'delete', id]));
});

test('kill -9 of the node running an import: another node finishes it; requests through the balancer keep being answered', async (t) => {
  // 1 GiB of generated bytes, sent as fast as the importing node takes them.
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const total = 1024 * chunk.length;
  web.routes.set('/big.raw', (res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
    Readable.from(
      (function* () {
        for (let i = 0; i < 1024; i++) yield chunk;
      })(),
    ).pipe(res);
  });
  const digest = createHash('md5');
  for (let i = 0; i < 1024; i++) digest.update(chunk);
  const expected = digest.digest('hex');
  const id = parsePropertyTable(ok(await glance(['image-create', '--name', 'survivor', '--disk-format', 'raw', '--container-format', 'bare']))).id!;

  // A client polling through the balancer all along; the longest run of failed requests is what it saw.
  let polling = true;
  let failedSince: number | null = null;
  let longestOutageMs = 0;
  const poller = (async () => {
    while (polling) {
      const okNow = await fetch(`${lb}/v2/images/${id}`)
        .then((r) => r.status === 200)
        .catch(() => false);
      if (!okNow) failedSince ??= Date.now();
      else if (failedSince !== null) {
        longestOutageMs = Math.max(longestOutageMs, Date.now() - failedSince);
        failedSince = null;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  ok(await glance(['image-import', '--import-method', 'web-download', '--uri', web.url('/big.raw'), id]));
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  let owner: string;
  try {
    owner = await until(async () => {
      const row = await client.query<{ lease_owner: string | null }>("SELECT lease_owner FROM tasks WHERE image_id = $1 AND status = 'processing'", [id]);
      return row.rows[0]?.lease_owner ?? undefined;
    }, 'the import to run on a node');
  } finally {
    await client.end();
  }
  // A lease owner is host:pid:instance.
  const victim = nodes.find((n) => owner.split(':')[1] === String(n.child.pid));
  assert.ok(victim, `the lease owner ${owner} is one of the nodes`);
  await new Promise((r) => setTimeout(r, 2000)); // well into the download
  const killedAt = Date.now();
  await victim.kill('SIGKILL');

  const done = await until(
    async () => {
      const img = json<{ status: string; checksum: string; size: number }>(await openstack(['image', 'show', id, '-f', 'json']));
      return img.status === 'active' ? img : undefined;
    },
    'another node to finish the import',
    240_000,
  );
  const resumedMs = Date.now() - killedAt;
  polling = false;
  await poller;
  t.diagnostic(`kill -9 to active on another node: ${resumedMs} ms; longest run of failed requests through the balancer: ${longestOutageMs} ms`);
  assert.equal(done.size, total);
  assert.equal(done.checksum, expected);
  assert.ok(
    longestOutageMs <= HEALTH_INTERVAL_MS * HEALTH_FALL + 1000,
    `requests through the balancer failed for ${longestOutageMs} ms at most (health checks: ${HEALTH_FALL} × ${HEALTH_INTERVAL_MS} ms)`,
  );
  // Nothing is left in the shared staging area (removed just after activation).
  await until(
    async () => (((await swift.listContainer('three-nodes-hot')) ?? []).some((name) => name.startsWith('os_glance_staging-')) ? undefined : true),
    'the staging area to be empty',
    10_000,
  );
});
