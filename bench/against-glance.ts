// Side by side with the reference: `npm run bench -- --against-glance`. Starts a real Keystone, a real
// PostgreSQL and Debian's glance-api (installed when missing; two workers, file store, Keystone tokens),
// and a Gaze configured the same way (Keystone tokens, file store, its own database on the same
// PostgreSQL), then runs the same workloads against both with curl as the client, taking turns
// (Glance first in odd rounds, Gaze first in even ones), several rounds, and prints medians, spreads and
// the ratio Gaze / Glance. The machine's own ceilings are measured in the same run. A measurement during
// which other processes used the CPU is thrown away and taken again (and the bench says so).
//
//   GAZE_BENCH_SIZE_MIB=1024    size of the upload/download image
//   GAZE_BENCH_IMPORT_MIB=256   size of the web-download and glance-direct images
//   GAZE_BENCH_ROUNDS=3         rounds
//   GAZE_BENCH_IMAGES=1000      images in each service for the list figures
//   GAZE_BENCH_GAZE_WORKERS=1   Gaze's worker processes (Glance always runs two: its default here)

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startGazeProcess } from '../test/helpers/gaze.ts';
import { freePort, keystoneAuthSections, startKeystone, type RunningKeystone } from '../test/helpers/keystone.ts';
import { startPostgres, type RunningPostgres } from '../test/helpers/postgres.ts';
import { runScript } from '../test/helpers/scripts.ts';
import { MiB } from './bytes.ts';
import { diskWriteAfterIdleAndAgain, hashThroughput } from './ceilings.ts';
import { getBody, putFile } from './curl.ts';
import { loadTest, type LoadResult } from './client.ts';
import { benchCpuSeconds, cpuSecondsOf, machineLoad, processTree, samplePeakRss, watch, type Usage } from './procs.ts';

const repo = fileURLToPath(new URL('../', import.meta.url));
const GiB = 1 << 30;

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw ? Number(raw) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got ${raw})`);
  return value;
}
const SIZE = intFromEnv('GAZE_BENCH_SIZE_MIB', 1024) * MiB;
const IMPORT_SIZE = intFromEnv('GAZE_BENCH_IMPORT_MIB', 256) * MiB;
const ROUNDS = intFromEnv('GAZE_BENCH_ROUNDS', 3);
const IMAGES = intFromEnv('GAZE_BENCH_IMAGES', 1000);
const PARALLEL_UPLOADS = 4;
/** Average cores others may use during a measurement before it is thrown away. */
const OTHERS_LIMIT = 0.25;
const ATTEMPTS = 3;
/** Gaze runs as one process unless asked (its default); Glance's default on 2 cores is two workers. */
const GAZE_WORKERS = Number(process.env.GAZE_BENCH_GAZE_WORKERS ?? 1);
const LOAD = { concurrency: 16, seconds: 5, warmupSeconds: 1, maxRequests: 1_000_000 };
/**
 * GAZE_BENCH_ONLY=requests,upload,…: only these measurements (labels as printed: upload, download, range
 * download, 4 uploads, web-download, glance-direct, requests, show during upload, bare Node), to re-measure
 * one part without the hour the whole run takes. Default: all.
 */
const ONLY = (process.env.GAZE_BENCH_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const wanted = (label: string) => ONLY.length === 0 || ONLY.includes(label);

interface Target {
  name: 'Glance' | 'Gaze';
  url: string;
  /** PID of the process whose tree is the service. */
  root: number;
}

// ---------------------------------------------------------------- the two services and their parts

const cleanups: Array<() => Promise<unknown>> = [];
async function cleanUp(): Promise<void> {
  for (const clean of cleanups.splice(0).reverse()) await clean().catch((err) => console.error(`cleanup: ${err}`));
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().finally(() => process.exit(130)));

async function startGlance(dir: string, keystone: RunningKeystone, database: string, sourcePort: number): Promise<Target> {
  const port = await freePort();
  cleanups.push(() => runScript('stop-glance.sh', [dir], 60_000));
  await runScript('start-glance.sh', [dir, String(port)], 600_000, {
    GLANCE_KEYSTONE: keystone.url,
    GLANCE_DATABASE: database,
    GLANCE_WORKERS: '2',
    GLANCE_ALLOWED_HOSTS: '127.0.0.1',
    GLANCE_ALLOWED_PORTS: String(sourcePort),
  });
  return { name: 'Glance', url: `http://127.0.0.1:${port}`, root: Number(readFileSync(path.join(dir, 'glance-api.pid'), 'utf8')) };
}

async function startGaze(dir: string, keystone: RunningKeystone, database: string, sourcePort: number): Promise<Target> {
  mkdirSync(dir, { recursive: true });
  const gaze = await startGazeProcess(
    {
      ...keystoneAuthSections(keystone.url),
      DEFAULT: { workers: String(GAZE_WORKERS) },
      database: { connection: database },
      import_filtering_opts: { allowed_hosts: '127.0.0.1', allowed_ports: String(sourcePort) },
    },
    { dir },
  );
  cleanups.push(() => gaze.stop());
  return { name: 'Gaze', url: gaze.url, root: gaze.child.pid! };
}

/** The bare Node file server (bench/static-server.mjs) in its own process; resolves with its port. */
async function startStaticServer(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(repo, 'bench/static-server.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(async () => {
    child.kill('SIGTERM');
  });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d) => resolve(String(d).trim()));
    child.once('exit', (code) => reject(new Error(`static server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

/** A file of random bytes (incompressible, no recognisable format), written once in 1 MiB pieces. */
function makeFile(file: string, size: number): void {
  const fd = openSync(file, 'w');
  const piece = Buffer.allocUnsafe(MiB);
  for (let left = size; left > 0; left -= MiB) writeSync(fd, randomFillSync(piece), 0, Math.min(MiB, left));
  closeSync(fd);
}

// ---------------------------------------------------------------- Image API calls (with a token)

let token = '';
/** The processes of the parts both services use (PostgreSQL, Keystone): theirs is not "other" load. */
let partRoots: number[] = [];
async function call(t: Target, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${t.url}${urlPath}`, {
    method,
    headers: { 'x-auth-token': token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
}
async function expectOk(res: Response, what: string): Promise<string> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return text;
}
async function createImage(t: Target, name: string): Promise<string> {
  const text = await expectOk(await call(t, 'POST', '/v2/images', { name, disk_format: 'raw', container_format: 'bare' }), `${t.name} create`);
  return (JSON.parse(text) as { id: string }).id;
}
async function deleteImage(t: Target, id: string): Promise<void> {
  // Glance sometimes answers 500 to the delete of an image it has just imported (seen once after a
  // web-download); the delete is tried again.
  for (let attempt = 1; ; attempt++) {
    const res = await call(t, 'DELETE', `/v2/images/${id}`);
    if (res.status < 500 || attempt === 10) {
      await expectOk(res, `${t.name} delete`);
      return;
    }
    await res.text();
    await new Promise((r) => setTimeout(r, 500));
  }
}
async function startImport(t: Target, id: string, method: Record<string, unknown>): Promise<void> {
  await expectOk(await call(t, 'POST', `/v2/images/${id}/import`, { method }), `${t.name} import`);
}
async function waitActive(t: Target, id: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const image = JSON.parse(await expectOk(await call(t, 'GET', `/v2/images/${id}`), `${t.name} show`)) as { status: string };
    if (image.status === 'active') return;
    if (['killed', 'deleted'].includes(image.status)) throw new Error(`${t.name}: image ${id} ended ${image.status}`);
    if (Date.now() > deadline) throw new Error(`${t.name}: image ${id} still ${image.status}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
async function createMany(t: Target, count: number): Promise<string> {
  let next = 0;
  let last = '';
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        next++;
        last = await createImage(t, `bench-list-${next}`);
      }
    }),
  );
  return last;
}

// ---------------------------------------------------------------- measuring

type Figures = Record<string, number>;
/** figures[workload][target] = one value per round. */
const figures: Record<string, Record<string, number[]>> = {};
const discarded: string[] = [];
function record(workload: string, target: string, value: number): void {
  ((figures[workload] ??= {})[target] ??= []).push(value);
}

/** Waits until the machine is quiet (dirty data written, others idle) before a measurement starts. */
async function settle(): Promise<void> {
  spawnSync('sync');
  for (let i = 0; i < 30; i++) {
    if ((await machineLoad(500)) < OTHERS_LIMIT) return;
  }
}

/**
 * Runs `measure` against `t` until a run is not disturbed by other processes (at most ATTEMPTS times)
 * and records its figures; `prepare` and `finish` run outside the watched time.
 */
async function measured<P>(
  label: string,
  round: number,
  t: Target,
  prepare: () => Promise<P>,
  measure: (p: P) => Promise<Figures | ((usage: Usage) => Figures)>,
  finish: (p: P) => Promise<void>,
): Promise<void> {
  if (!wanted(label)) return;
  for (let attempt = 1; ; attempt++) {
    const prepared = await prepare();
    await settle();
    const w = watch([t.root], partRoots);
    let outcome: Figures | ((usage: Usage) => Figures);
    let usage: Usage;
    try {
      outcome = await measure(prepared);
    } finally {
      usage = w.stop();
      await finish(prepared);
    }
    if (usage.otherCores > OTHERS_LIMIT && attempt < ATTEMPTS) {
      discarded.push(`round ${round}, ${label}, ${t.name}: others used ${usage.otherCores.toFixed(2)} cores; taken again`);
      continue;
    }
    if (usage.otherCores > OTHERS_LIMIT)
      discarded.push(`round ${round}, ${label}, ${t.name}: others used ${usage.otherCores.toFixed(2)} cores in all ${ATTEMPTS} attempts; kept`);
    const result = typeof outcome === 'function' ? outcome(usage) : outcome;
    for (const [name, value] of Object.entries(result)) record(name, t.name, value);
    return;
  }
}

function loadFigures(prefix: string, r: LoadResult): Figures {
  return { [`${prefix} req/s`]: r.rps, [`${prefix} p99 ms`]: r.p99ms, [`${prefix} failed`]: r.errors };
}

// ---------------------------------------------------------------- the workloads

interface Files {
  big: string;
  importFile: string;
  sourceUrl: string;
  staticUrl: string;
  staticPid: number;
}

async function runRound(round: number, targets: Target[], files: Files, showIds: Map<string, string>): Promise<void> {
  const ordered = round % 2 === 1 ? targets : [...targets].reverse();
  const each = async (fn: (t: Target) => Promise<void>) => {
    for (const t of ordered) await fn(t);
  };

  // The bare Node server sends the same file with the same client: what Node itself reaches here.
  await measuredStatic(files);

  // One upload, then downloads of what it stored (whole, and its second half as a Range). Gaze's answer
  // comes once the data is on disk; Glance's while it may still be dirty in the page cache. `sync` after
  // the answer (outside the watched time: the kernel's flusher threads would count as others' CPU)
  // gives both figures with the data on disk.
  const uploaded = new Map<string, string>();
  let syncSeconds = 0;
  const timedSync = () => {
    const started = performance.now();
    spawnSync('sync');
    syncSeconds = (performance.now() - started) / 1000;
  };
  await each((t) =>
    measured(
      'upload',
      round,
      t,
      () => createImage(t, 'bench-upload'),
      async (id) => {
        const put = await putFile(`${t.url}/v2/images/${id}/file`, token, files.big);
        const earlier = uploaded.get(t.name); // a measurement taken again
        if (earlier) await deleteImage(t, earlier);
        uploaded.set(t.name, id);
        return (usage: Usage) => ({
          'upload MiB/s': put.mibs,
          'upload cpu s/GiB': usage.serverCpuSeconds / (SIZE / GiB),
          'upload then sync MiB/s': SIZE / MiB / (put.seconds + syncSeconds),
        });
      },
      async () => timedSync(),
    ),
  );
  // The downloads need an image with data even when the upload is not measured.
  if (wanted('download') || wanted('range download')) {
    for (const t of targets) {
      if (uploaded.has(t.name)) continue;
      const id = await createImage(t, 'bench-upload');
      await putFile(`${t.url}/v2/images/${id}/file`, token, files.big);
      uploaded.set(t.name, id);
    }
  }
  await each((t) =>
    measured(
      'download',
      round,
      t,
      async () => uploaded.get(t.name)!,
      async (id) => {
        const got = await getBody(`${t.url}/v2/images/${id}/file`, token, SIZE);
        return { 'download MiB/s': got.mibs };
      },
      async () => {},
    ),
  );
  await each((t) =>
    measured(
      'range download',
      round,
      t,
      async () => uploaded.get(t.name)!,
      async (id) => {
        const got = await getBody(`${t.url}/v2/images/${id}/file`, token, SIZE / 2, `${SIZE / 2}-`);
        return { 'range download MiB/s': got.mibs };
      },
      async () => {},
    ),
  );
  for (const t of targets) if (uploaded.has(t.name)) await deleteImage(t, uploaded.get(t.name)!);

  // Several uploads at once: aggregate throughput and the service's peak memory (all its processes).
  await each((t) =>
    measured(
      `${PARALLEL_UPLOADS} uploads`,
      round,
      t,
      () => Promise.all(Array.from({ length: PARALLEL_UPLOADS }, (_, i) => createImage(t, `bench-parallel-${i}`))),
      async (ids) => {
        const rss = samplePeakRss(t.root);
        const started = performance.now();
        await Promise.all(ids.map((id) => putFile(`${t.url}/v2/images/${id}/file`, token, files.big)));
        const seconds = (performance.now() - started) / 1000;
        const peak = rss.stop();
        return () => ({
          [`${PARALLEL_UPLOADS} uploads MiB/s`]: (PARALLEL_UPLOADS * SIZE) / MiB / seconds,
          [`${PARALLEL_UPLOADS} uploads then sync MiB/s`]: (PARALLEL_UPLOADS * SIZE) / MiB / (seconds + syncSeconds),
          [`${PARALLEL_UPLOADS} uploads peak RSS MiB`]: peak,
        });
      },
      async (ids) => {
        timedSync();
        for (const id of ids) await deleteImage(t, id);
      },
    ),
  );

  // web-download from the bare Node server, timed from POST /import to active.
  await each((t) =>
    measured(
      'web-download',
      round,
      t,
      () => createImage(t, 'bench-web-download'),
      async (id) => {
        const started = performance.now();
        await startImport(t, id, { name: 'web-download', uri: files.sourceUrl });
        await waitActive(t, id);
        return { 'web-download MiB/s': IMPORT_SIZE / MiB / ((performance.now() - started) / 1000) };
      },
      async (id) => deleteImage(t, id),
    ),
  );

  // glance-direct (stage, import, active) against a plain upload of the same file.
  await each((t) =>
    measured(
      'glance-direct',
      round,
      t,
      async () => [await createImage(t, 'bench-plain'), await createImage(t, 'bench-direct')] as const,
      async ([plain, direct]) => {
        const put = await putFile(`${t.url}/v2/images/${plain}/file`, token, files.importFile);
        const started = performance.now();
        await putFile(`${t.url}/v2/images/${direct}/stage`, token, files.importFile);
        await startImport(t, direct, { name: 'glance-direct' });
        await waitActive(t, direct);
        const seconds = (performance.now() - started) / 1000;
        return { 'plain upload of the import image s': put.seconds, 'glance-direct / plain upload': seconds / put.seconds };
      },
      async ([plain, direct]) => {
        await deleteImage(t, plain);
        await deleteImage(t, direct);
      },
    ),
  );

  // Metadata: image-show, a page of 25, the whole list of IMAGES in one page.
  await each((t) =>
    measured(
      'requests',
      round,
      t,
      async () => showIds.get(t.name)!,
      async (id) => {
        const headers = { 'x-auth-token': token };
        const show = await loadTest(t.url, () => `/v2/images/${id}`, { ...LOAD, headers });
        const list25 = await loadTest(t.url, () => '/v2/images?limit=25', { ...LOAD, headers });
        const listAll = await loadTest(t.url, () => `/v2/images?limit=${IMAGES}`, { ...LOAD, concurrency: 4, headers });
        return { ...loadFigures('image-show', show), ...loadFigures('list 25', list25), ...loadFigures(`list ${IMAGES}`, listAll) };
      },
      async () => {},
    ),
  );

  // The event loop while bytes move: image-show latency during an upload.
  await each((t) =>
    measured(
      'show during upload',
      round,
      t,
      () => createImage(t, 'bench-busy'),
      async (id) => {
        const upload = putFile(`${t.url}/v2/images/${id}/file`, token, files.big);
        await new Promise((resolve) => setTimeout(resolve, 300));
        const show = await loadTest(t.url, () => `/v2/images/${showIds.get(t.name)!}`, {
          ...LOAD,
          seconds: 2,
          warmupSeconds: 0,
          concurrency: 4,
          headers: { 'x-auth-token': token },
        });
        await upload;
        return { 'image-show during upload p99 ms': show.p99ms, 'image-show during upload req/s': show.rps };
      },
      async (id) => deleteImage(t, id),
    ),
  );
}

async function measuredStatic(files: Files): Promise<void> {
  if (!wanted('bare Node')) return;
  await settle();
  const got = await getBody(`${files.staticUrl}/big`, null, SIZE);
  const range = await getBody(`${files.staticUrl}/big`, null, SIZE / 2, `${SIZE / 2}-`);
  record('download MiB/s', 'bare Node', got.mibs);
  record('range download MiB/s', 'bare Node', range.mibs);
  // The same upload into a server that only counts the bytes: the CPU that receiving them costs Node,
  // and what curl itself spends sending them (the bench's reaped children), both on this machine's cores.
  await settle();
  const server0 = cpuSecondsOf([files.staticPid]);
  const client0 = benchCpuSeconds();
  const put = await putFile(`${files.staticUrl}/sink`, null, files.big);
  record('upload MiB/s', 'bare Node', put.mibs);
  record('upload cpu s/GiB', 'bare Node', (cpuSecondsOf([files.staticPid]) - server0) / (SIZE / GiB));
  record('upload client cpu s/GiB', 'bare Node', (benchCpuSeconds() - client0) / (SIZE / GiB));
}

/**
 * The CPU that any service must spend on one GiB uploaded here, whatever its code: curl sending it, Node
 * receiving it and nothing more, md5 and sha512 (both digests are required), and writing it to a file
 * with fdatasync. Two cores at full use can take at most `cores / that` GiB/s of concurrent uploads.
 */
function uploadCpuBudget(ceilings: Figures): { perGiB: number; parts: string; mibs: number } {
  const bare = (row: string) => median(figures[row]?.['bare Node'] ?? []);
  const parts: Array<[string, number]> = [
    ['curl', bare('upload client cpu s/GiB')],
    ['receiving', bare('upload cpu s/GiB')],
    ['md5', 1024 / ceilings['md5 MiB/s']],
    ['sha512', 1024 / ceilings['sha512 MiB/s']],
    ['file write', ceilings['disk write at once again CPU s/GiB']],
  ];
  const perGiB = parts.reduce((sum, [, v]) => sum + v, 0);
  return { perGiB, parts: parts.map(([name, v]) => `${name} ${fmt(v)}`).join(', '), mibs: (availableParallelism() * 1024) / perGiB };
}

// ---------------------------------------------------------------- output

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
function cell(values: number[] | undefined): string {
  if (!values?.length) return '-';
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return `${fmt(median(values))} (${fmt(lo)}–${fmt(hi)})`;
}

/** What each figure should reach, as Gaze / Glance (or Gaze / bare Node for downloads). */
const TARGETS: Record<string, { ratio: number; of: 'Glance' | 'bare Node'; lowerIsBetter?: boolean }> = {
  'upload MiB/s': { ratio: 1.3, of: 'Glance' },
  'upload cpu s/GiB': { ratio: 1, of: 'Glance', lowerIsBetter: true },
  'download MiB/s': { ratio: 0.9, of: 'bare Node' },
  'range download MiB/s': { ratio: 0.9, of: 'bare Node' },
  [`${PARALLEL_UPLOADS} uploads MiB/s`]: { ratio: 1.3, of: 'Glance' },
  [`${PARALLEL_UPLOADS} uploads peak RSS MiB`]: { ratio: 0.5, of: 'Glance', lowerIsBetter: true },
  'web-download MiB/s': { ratio: 1.3, of: 'Glance' },
  'image-show req/s': { ratio: 10, of: 'Glance' },
  [`list ${IMAGES} req/s`]: { ratio: 20, of: 'Glance' },
};

function report(ceilings: Figures, started: number): void {
  const rows = Object.keys(figures);
  const width = Math.max(...rows.map((r) => r.length));
  console.log(`\n${'figure'.padEnd(width)}  ${'Glance'.padEnd(26)}${'Gaze'.padEnd(26)}${'bare Node'.padEnd(26)}Gaze/Glance  target`);
  const summary: Record<string, unknown> = {};
  for (const row of rows) {
    const byTarget = figures[row];
    const gaze = byTarget.Gaze ? median(byTarget.Gaze) : NaN;
    const glance = byTarget.Glance ? median(byTarget.Glance) : NaN;
    const ratio = gaze / glance;
    let target = '';
    const spec = TARGETS[row];
    if (spec) {
      const base = spec.of === 'Glance' ? glance : median(byTarget['bare Node'] ?? []);
      const r = gaze / base;
      const met = spec.lowerIsBetter ? r <= spec.ratio : r >= spec.ratio;
      target = `${spec.lowerIsBetter ? '≤' : '≥'} ${spec.ratio}× ${spec.of}: ${fmt(r)}× ${met ? 'met' : 'MISSED'}`;
    } else if (row === 'glance-direct / plain upload') {
      target = `≤ 1.1: ${gaze <= 1.1 ? 'met' : 'MISSED'}`;
    } else if (row.endsWith('failed')) {
      target = `0: ${gaze === 0 ? 'met' : 'MISSED'}`;
    }
    console.log(
      `${row.padEnd(width)}  ${cell(byTarget.Glance).padEnd(26)}${cell(byTarget.Gaze).padEnd(26)}${cell(byTarget['bare Node']).padEnd(26)}${Number.isFinite(ratio) ? `${fmt(ratio)}×`.padEnd(13) : ''.padEnd(13)}${target}`,
    );
    summary[row] = Object.fromEntries(Object.entries(byTarget).map(([k, v]) => [k, { median: median(v), all: v }]));
  }
  const upload = median(figures['upload MiB/s']?.Gaze ?? []);
  const download = median(figures['download MiB/s']?.Gaze ?? []);
  console.log("\nGaze against the machine's ceilings (same run):");
  console.log(
    `  upload   ${fmt(upload)} MiB/s = ${fmt((100 * upload) / ceilings['disk write MiB/s'])}% of the disk write, ${fmt((100 * upload) / ceilings['md5 MiB/s'])}% of one core of md5, ${fmt((100 * upload) / ceilings['sha512 MiB/s'])}% of sha512`,
  );
  console.log(`  download ${fmt(download)} MiB/s = ${fmt((100 * download) / median(figures['download MiB/s']?.['bare Node'] ?? []))}% of the bare Node server`);
  const parallel = figures[`${PARALLEL_UPLOADS} uploads MiB/s`];
  const budget = uploadCpuBudget(ceilings);
  if (parallel?.Gaze && Number.isFinite(budget.mibs)) {
    const wanted = TARGETS[`${PARALLEL_UPLOADS} uploads MiB/s`].ratio * median(parallel.Glance ?? []);
    console.log(
      `  ${PARALLEL_UPLOADS} uploads ${fmt(median(parallel.Gaze))} MiB/s = ${fmt((100 * median(parallel.Gaze)) / budget.mibs)}% of the most that ${availableParallelism()} cores can take ` +
        `(${fmt(budget.mibs)} MiB/s: ${fmt(budget.perGiB)} CPU-s per GiB that no service can skip: ${budget.parts}); ` +
        `the target, ${fmt(wanted)} MiB/s, is ${fmt((100 * wanted) / budget.mibs)}% of it`,
    );
  }
  if (discarded.length) console.log(`\nmeasurements disturbed by other processes:\n  ${discarded.join('\n  ')}`);
  else console.log('\nno measurement was disturbed by other processes');
  console.log(`\nbench took ${Math.round((performance.now() - started) / 1000)} s`);
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      cores: availableParallelism(),
      cpu: cpus()[0]?.model,
      sizeMiB: SIZE / MiB,
      importMiB: IMPORT_SIZE / MiB,
      rounds: ROUNDS,
      ceilings,
      figures: summary,
      discarded,
    }),
  );
}

// ---------------------------------------------------------------- main

export async function againstGlance(): Promise<void> {
  const started = performance.now();
  const work = mkdtempSync(path.join(tmpdir(), 'gaze-vs-glance-'));
  cleanups.push(async () => rmSync(work, { recursive: true, force: true }));
  let keystone: RunningKeystone | undefined;
  let postgres: RunningPostgres | undefined;
  try {
    console.log(
      `Gaze against Glance: ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), ` +
        `${SIZE / MiB} MiB image, ${IMPORT_SIZE / MiB} MiB imports, ${ROUNDS} rounds, curl as the client`,
    );
    const glanceVersion = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'glance-api'], { encoding: 'utf8' }).stdout || 'not yet installed';
    console.log(
      `glance-api ${glanceVersion}, 2 workers; Gaze ${GAZE_WORKERS} worker${GAZE_WORKERS > 1 ? 's' : ''}; both with Keystone tokens, a file store and PostgreSQL`,
    );

    const data = path.join(work, 'files');
    mkdirSync(data);
    makeFile(path.join(data, 'big'), SIZE);
    makeFile(path.join(data, 'import'), IMPORT_SIZE);
    const staticServer = await startStaticServer(data);
    const sourcePort = Number(new URL(staticServer.url).port);

    keystone = await startKeystone();
    cleanups.push(() => keystone!.stop());
    postgres = await startPostgres();
    cleanups.push(() => postgres!.stop());
    const glance = await startGlance(path.join(work, 'glance'), keystone, await postgres.freshDatabase(), sourcePort);
    const gaze = await startGaze(path.join(work, 'gaze'), keystone, await postgres.freshDatabase(), sourcePort);
    token = await keystone.token('admin', 'admin-secret', 'admin');
    partRoots = [
      Number(readFileSync(path.join(postgres.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]),
      Number(readFileSync(path.join(keystone.dir, 'uwsgi.pid'), 'utf8')),
    ];
    const targets = [glance, gaze];
    console.log(`Glance ${glance.url} (pids ${processTree(glance.root).join(',')}), Gaze ${gaze.url} (pids ${processTree(gaze.root).join(',')})`);

    await settle();
    const disk = await diskWriteAfterIdleAndAgain(path.join(work, 'gaze'), SIZE);
    const ceilings: Figures = {
      'disk write MiB/s': disk.afterIdle.mibs,
      'disk write CPU s/GiB': disk.afterIdle.cpuSecondsPerGiB,
      'disk write at once again MiB/s': disk.again.mibs,
      'disk write at once again CPU s/GiB': disk.again.cpuSecondsPerGiB,
      'md5 MiB/s': hashThroughput('md5', SIZE).mibs,
      'sha512 MiB/s': hashThroughput('sha512', SIZE).mibs,
    };
    console.log(
      `ceilings: disk write with fdatasync ${fmt(ceilings['disk write MiB/s'])} MiB/s (${fmt(ceilings['disk write CPU s/GiB'])} CPU-s/GiB) after an idle pause, ` +
        `${fmt(ceilings['disk write at once again MiB/s'])} MiB/s (${fmt(ceilings['disk write at once again CPU s/GiB'])} CPU-s/GiB) at once again; ` +
        `one core of md5 ${fmt(ceilings['md5 MiB/s'])} MiB/s, of sha512 ${fmt(ceilings['sha512 MiB/s'])} MiB/s`,
    );

    const showIds = new Map<string, string>();
    for (const t of targets) showIds.set(t.name, await createMany(t, IMAGES));
    const files: Files = {
      big: path.join(data, 'big'),
      importFile: path.join(data, 'import'),
      sourceUrl: `${staticServer.url}/import`,
      staticUrl: staticServer.url,
      staticPid: staticServer.child.pid!,
    };
    for (let round = 1; round <= ROUNDS; round++) {
      console.log(`round ${round} of ${ROUNDS} (${round % 2 ? 'Glance' : 'Gaze'} first)`);
      await runRound(round, targets, files, showIds);
    }
    report(ceilings, started);
  } finally {
    await cleanUp();
  }
}

// Run directly (`node --import tsx bench/against-glance.ts`) as well as from bench/run.ts.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  againstGlance().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
