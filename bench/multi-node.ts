// `npm run bench -- --multi-node`: Gaze nodes behind a real HAProxy on one PostgreSQL and one shared file
// store, with 1, 2 and 3 nodes in turn: the aggregate of 4 concurrent uploads and image-show requests/s
// through the balancer; then the time from kill -9 of the node running an import to that import running,
// and finishing, on another node. Everything runs on this one machine: the point is that nothing
// serialises on one node, not that three nodes on 2 cores go three times as fast.

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startGazeProcess, type GazeProcess } from '../test/helpers/gaze.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import { freePort } from '../test/helpers/keystone.ts';
import { startFileServer as startRouteServer, trickle } from '../test/helpers/file-server.ts';
import { startHaproxy, type RunningHaproxy } from '../test/helpers/haproxy.ts';
import { MiB } from './bytes.ts';
import { createImage, loadTest, upload } from './client.ts';

const UPLOAD_MIB = 256;
const PARALLEL_UPLOADS = 4;

const r1 = (n: number) => Math.round(n * 10) / 10;
function line(label: string, value: string, note = ''): void {
  console.log(`  ${label.padEnd(46, '.')} ${value.padStart(12)}${note ? `   ${note}` : ''}`);
}

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function multiNode(): Promise<void> {
  console.log(`Gaze multi-node bench: node ${process.version}, ${availableParallelism()} cores, HAProxy round robin, PostgreSQL, shared file store`);
  const work = mkdtempSync(path.join(tmpdir(), 'gaze-bench-nodes-'));
  const postgres = await startPostgres();
  const web = await startRouteServer();
  const nodes: GazeProcess[] = [];
  let haproxy: RunningHaproxy | null = null;
  const stopHaproxy = async () => {
    await haproxy?.stop();
    haproxy = null;
  };
  try {
    const database = await postgres.freshDatabase();
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) {
      nodes.push(
        await startGazeProcess(
          {
            DEFAULT: { worker_self_reference_url: `http://127.0.0.1:${port}` },
            database: { connection: database },
            glance_store: { filesystem_store_datadir: path.join(work, 'store') },
            import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(web.port) },
          },
          { port },
        ),
      );
    }
    const lbPort = await freePort();
    const lb = `http://127.0.0.1:${lbPort}`;
    const figures: Array<{ nodes: number; uploadMiBs: number; showRps: number; showErrors: number }> = [];
    for (const count of [1, 2, 3]) {
      haproxy = await startHaproxy(ports.slice(0, count), lbPort);
      await new Promise((r) => setTimeout(r, 1500)); // every server's health checks passed (rise 2)
      console.log(`\n${count} node${count > 1 ? 's' : ''}`);
      const ids = await Promise.all(Array.from({ length: PARALLEL_UPLOADS }, (_, i) => createImage(lb, `bench-nodes-${count}-${i}`)));
      const started = performance.now();
      await Promise.all(ids.map((id) => upload(lb, id, UPLOAD_MIB * MiB)));
      const uploadMiBs = (PARALLEL_UPLOADS * UPLOAD_MIB) / ((performance.now() - started) / 1000);
      line(`${PARALLEL_UPLOADS} concurrent uploads of ${UPLOAD_MIB} MiB, aggregate`, `${r1(uploadMiBs)} MiB/s`);
      const show = await loadTest(lb, () => `/v2/images/${ids[0]!}`, { concurrency: 16, seconds: 5, maxRequests: 1e9, warmupSeconds: 1 });
      line('GET /v2/images/{id}', `${r1(show.rps)} req/s`, `p50 ${r1(show.p50ms)} ms, p99 ${r1(show.p99ms)} ms, ${show.errors} errors`);
      figures.push({ nodes: count, uploadMiBs, showRps: show.rps, showErrors: show.errors });
      for (const id of ids) await fetch(`${lb}/v2/images/${id}`, { method: 'DELETE' });
      await stopHaproxy();
    }

    // kill -9 of the node running a web-download import (48 MiB at about 12 MiB/s).
    console.log('\nkill -9 of the node running an import (3 nodes)');
    haproxy = await startHaproxy(ports, lbPort);
    web.routes.set('/slow.raw', trickle(48 * MiB, 20, 256 * 1024));
    const id = await createImage(lb, 'bench-nodes-survivor');
    const res = await fetch(`${lb}/v2/images/${id}/import`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ method: { name: 'web-download', uri: web.url('/slow.raw') } }),
    });
    if (res.status !== 202) throw new Error(`import: HTTP ${res.status}`);
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    try {
      const owner = async () =>
        (await client.query<{ lease_owner: string | null }>("SELECT lease_owner FROM tasks WHERE image_id = $1 AND status = 'processing'", [id])).rows[0]
          ?.lease_owner ?? undefined;
      const first = await waitFor(owner, 'the import to start');
      const victim = nodes.find((n) => first.split(':')[1] === String(n.child.pid))!;
      await new Promise((r) => setTimeout(r, 1000));
      const killed = performance.now();
      await victim.kill('SIGKILL');
      await waitFor(async () => {
        const now = await owner();
        return now && now !== first ? now : undefined;
      }, 'another node to take the import');
      const resumedMs = performance.now() - killed;
      await waitFor(
        async () => ((await (await fetch(`${lb}/v2/images/${id}`)).json()) as { status: string }).status === 'active' || undefined,
        'the import to finish',
        120_000,
      );
      const activeMs = performance.now() - killed;
      line(
        'kill -9 -> the import runs on another node',
        `${r1(resumedMs / 1000)} s`,
        '(same host: the dead process is seen at the next recovery sweep, every 5 s)',
      );
      line('kill -9 -> image active (48 MiB downloaded again)', `${r1(activeMs / 1000)} s`);
      console.log(
        JSON.stringify({
          multiNode: figures.map((f) => ({ ...f, uploadMiBs: r1(f.uploadMiBs), showRps: r1(f.showRps) })),
          killToResumedSeconds: r1(resumedMs / 1000),
          killToActiveSeconds: r1(activeMs / 1000),
        }),
      );
    } finally {
      await client.end();
    }
  } finally {
    await stopHaproxy();
    for (const node of nodes) await node.stop().catch(() => {});
    await web.close();
    await postgres.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
