// Gaze benchmark: `npm run bench`. One run measures the machine's ceilings (disk write, one core of md5
// and sha512) and, against real `gaze serve` processes, upload/download throughput, request rates and
// the server's peak memory during concurrent uploads, and interoperable import (glance-direct against a plain
// PUT, web-download from a loopback file server the bench runs), the S3 store against a real Swift with its S3
// API (scripts/start-swift.sh, started and stopped by the bench), and glance-download between two Gaze
// processes acting as two regions. It prints labelled figures and, as the last line, one JSON object with
// every number. It asserts nothing: targets are shown next to the figures.
//
//   npm run bench -- --against-glance       # the same workloads against a real Glance, side by side (against-glance.ts)
//   npm run bench -- --profile              # where the CPU goes in one upload and one download (profile.ts)
//   npm run bench -- --multi-node           # 1, 2 and 3 nodes behind HAProxy, and kill -9 of one (multi-node.ts)
//   GAZE_BENCH_SIZE_MIB=64 npm run bench     # smaller images and ceilings for a quick run (default 1024)
//   GAZE_BENCH_IMPORT_MIB=64 npm run bench   # smaller images for the import section (default 256)
//   GAZE_BENCH_S3_MIB=64 npm run bench       # smaller image for the S3 store section (default 512)
//   GAZE_BENCH_GD_MIB=64 npm run bench       # smaller image for the glance-download section (default 256)
//   GAZE_BENCH_CONVERT_MIB=64 npm run bench  # smaller qcow2 for the image_conversion section (default 1024)

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { startGazeProcess } from '../test/helpers/gaze.ts';
import { s3StoreOptions, startSwift, swiftStoreOptions, type RunningSwift } from '../test/helpers/swift.ts';
import { MiB } from './bytes.ts';
import { diskWriteAfterIdleAndAgain, hashThroughput } from './ceilings.ts';
import { createImage, createImages, download, loadTest, showImage, upload, type LoadResult } from './client.ts';
import { copyAndWait, importAndWait, stage, startFileServer, type BenchFileServer } from './import.ts';
import { readCpuSeconds, readMemory, sampleMemory } from './memory.ts';
import { bucketObjects } from './s3.ts';
import { conversionImport, inspectionCost } from './safety.ts';
import { againstGlance } from './against-glance.ts';
import { profile } from './profile.ts';
import { multiNode } from './multi-node.ts';

type Server = Awaited<ReturnType<typeof startGazeProcess>>;

/** A positive integer number of MiB from the environment variable `name`, else `fallback`. */
function mibFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw ? Number(raw) : fallback;
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a positive integer number of MiB (got ${raw})`);
    process.exit(2);
  }
  return value;
}
const sizeMiB = mibFromEnv('GAZE_BENCH_SIZE_MIB', 1024);
const SIZE = sizeMiB * MiB;
const importMiB = mibFromEnv('GAZE_BENCH_IMPORT_MIB', 256);
const IMPORT_SIZE = importMiB * MiB;
const s3MiB = mibFromEnv('GAZE_BENCH_S3_MIB', 512);
const S3_SIZE = s3MiB * MiB;
const S3_BUCKET = 'gaze-bench';
const cacheMiB = mibFromEnv('GAZE_BENCH_CACHE_MIB', 1024);
const CACHE_SIZE = cacheMiB * MiB;
const gdMiB = mibFromEnv('GAZE_BENCH_GD_MIB', 256);
const GD_SIZE = gdMiB * MiB;
const convertMiB = mibFromEnv('GAZE_BENCH_CONVERT_MIB', 1024);
const CONVERT_SIZE = convertMiB * MiB;
const INSPECTION_RATIO_TARGET = 0.95;
const INSPECTION_ROUNDS = 3;
const IMPORT_RATIO_TARGET = 1.3;
const IMAGES = 1000;
const CONCURRENCY = 16;
const LOAD_SECONDS = 5;
const WARMUP_SECONDS = 1;
const PARALLEL_UPLOADS = 4;
const UPLOAD_TARGET_PCT = 70;
const RSS_TARGET_MIB = 200;

// ---- cleanup: every server started is stopped and its temp dir removed, on success, error or signal ----

const running = new Set<Server>();
const tempDirs = new Set<string>();
const fileServers = new Set<BenchFileServer>();
// A Swift the bench started. Its helper also signals the recorded Swift PIDs and removes its dir on `exit`.
const swifts = new Set<RunningSwift>();

async function start(sections: Record<string, Record<string, string>> = {}): Promise<Server> {
  // Our own temp dir (the helper then leaves it alone), so it is removed even if the server fails to start.
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-bench-'));
  tempDirs.add(dir);
  const server = await startGazeProcess(sections, { dir });
  running.add(server);
  return server;
}

async function stop(server: Server): Promise<void> {
  if (running.delete(server)) {
    const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
    try {
      await server.stop();
    } finally {
      clearTimeout(timer);
    }
  }
  rmSync(server.dir, { recursive: true, force: true });
  tempDirs.delete(server.dir);
}

async function isCached(url: string, id: string): Promise<boolean> {
  const res = await fetch(`${url}/v2/cache`);
  const body = (await res.json()) as { cached_images?: Array<{ image_id: string }> };
  return (body.cached_images ?? []).some((e) => e.image_id === id);
}

async function closeFileServer(fs: BenchFileServer): Promise<void> {
  if (fileServers.delete(fs)) await fs.close();
}

async function stopSwift(swift: RunningSwift): Promise<void> {
  if (swifts.delete(swift)) await swift.stop();
}

async function stopAll(): Promise<void> {
  await Promise.allSettled([...running].map(stop));
  await Promise.allSettled([...fileServers].map(closeFileServer));
  await Promise.allSettled([...swifts].map(stopSwift));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

// Last resort when the process exits without reaching `finally` (uncaught exception, process.exit).
process.on('exit', () => {
  for (const server of running) server.child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping servers and removing temp files`);
    void stopAll().finally(() => process.exit(130));
  });
}
// `npm run bench | head` must not kill the run (and orphan a server) with EPIPE.
process.stdout.on('error', () => {});

// ---- output ----

const r1 = (n: number) => Math.round(n * 10) / 10;
const r2 = (n: number) => Math.round(n * 100) / 100;
const LABEL = 46;

function line(label: string, value: string, note = ''): void {
  console.log(`  ${label.padEnd(LABEL, '.')} ${value.padStart(12)}${note ? `   ${note}` : ''}`);
}
function section(title: string): void {
  console.log(`\n${title}`);
}
function loadLine(label: string, r: LoadResult): void {
  line(
    label,
    `${r1(r.rps)} req/s`,
    `p50 ${r1(r.p50ms)} ms, p99 ${r1(r.p99ms)} ms, ${r.requests} req in ${r1(r.seconds)} s, ${r.errors} errors, ${Math.round(r.bytesPerResponse / 1024)} KiB/resp`,
  );
}
function roundAll<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? (Math.abs(v) < 10 ? r2(v) : r1(v)) : v))) as T;
}

// ---- the run ----

async function main(): Promise<void> {
  const benchStarted = performance.now();
  console.log(`Gaze bench: node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), image size ${sizeMiB} MiB`);

  // Part 1 + 2 + 3 on one server.
  const a = await start();

  section('1. Machine ceilings (same run)');
  // a.dir holds the server's data dir: same filesystem
  const { afterIdle: disk, again: diskAgain } = await diskWriteAfterIdleAndAgain(a.dir, SIZE);
  line(
    `disk sequential write ${sizeMiB} MiB + fsync`,
    `${r1(disk.mibs)} MiB/s`,
    `(${r1(disk.ms / 1000)} s, ${r1(disk.cpuSecondsPerGiB)} CPU-s/GiB, after an idle pause)`,
  );
  line(
    'the same at once again',
    `${r1(diskAgain.mibs)} MiB/s`,
    `(${r1(diskAgain.cpuSecondsPerGiB)} CPU-s/GiB: memory just freed, not yet returned to a hypervisor)`,
  );
  const md5 = hashThroughput('md5', SIZE);
  line('md5, one core (node:crypto)', `${r1(md5.mibs)} MiB/s`);
  const sha512 = hashThroughput('sha512', SIZE);
  line('sha512, one core (node:crypto)', `${r1(sha512.mibs)} MiB/s`);
  const ceiling = Math.min(disk.mibs, sha512.mibs);
  line('upload ceiling min(disk write, sha512)', `${r1(ceiling)} MiB/s`, disk.mibs <= sha512.mibs ? '(disk-bound)' : '(sha512-bound)');

  section(`2. Image data, ${sizeMiB} MiB, file store`);
  const bigId = await createImage(a.url, 'bench-big');
  const cpu0 = readCpuSeconds(a.child.pid!);
  const client0 = process.cpuUsage();
  const up = await upload(a.url, bigId, SIZE);
  const upServerCpu = readCpuSeconds(a.child.pid!) - cpu0;
  const clientUsage = process.cpuUsage(client0);
  const upClientCpu = (clientUsage.user + clientUsage.system) / 1e6;
  const shown = await showImage(a.url, bigId);
  if (shown.status !== 'active' || shown.size !== SIZE) throw new Error(`after upload the image is ${String(shown.status)} with size ${String(shown.size)}`);
  const uploadPct = (up.mibs / ceiling) * 100;
  line(
    'upload PUT /file',
    `${r1(up.mibs)} MiB/s`,
    `(${r1(up.ms / 1000)} s; CPU: server ${r1(upServerCpu)} s = ${r1(upServerCpu / (up.ms / 1000))} cores, bench client ${r1(upClientCpu)} s)`,
  );
  line('upload as % of min(disk, sha512)', `${r1(uploadPct)} %`, `target >= ${UPLOAD_TARGET_PCT}%: ${uploadPct >= UPLOAD_TARGET_PCT ? 'MET' : 'MISSED'}`);
  const down = await download(a.url, bigId, SIZE);
  line('download GET /file', `${r1(down.mibs)} MiB/s`, `(${r1(down.ms / 1000)} s)`);

  section(`3. Request rates, ${IMAGES} images, concurrency ${CONCURRENCY}, ${LOAD_SECONDS} s each (after ${WARMUP_SECONDS} s warm-up)`);
  const createStarted = performance.now();
  const ids = await createImages(a.url, IMAGES, CONCURRENCY);
  const createSeconds = (performance.now() - createStarted) / 1000;
  line(`create ${IMAGES} images POST /v2/images`, `${r1(IMAGES / createSeconds)} req/s`, `(${r1(createSeconds)} s)`);
  const show = await loadTest(a.url, (i) => `/v2/images/${ids[i % ids.length]}`, {
    concurrency: CONCURRENCY,
    seconds: LOAD_SECONDS,
    maxRequests: 200_000,
    warmupSeconds: WARMUP_SECONDS,
  });
  loadLine('GET /v2/images/{id}', show);
  const list = await loadTest(a.url, () => '/v2/images?limit=1000', {
    concurrency: CONCURRENCY,
    seconds: LOAD_SECONDS,
    maxRequests: 20_000,
    warmupSeconds: WARMUP_SECONDS,
  });
  loadLine('GET /v2/images?limit=1000', list);
  await stop(a);

  // Part 4 on a fresh server, so VmHWM is this workload's peak.
  section(`4. Server memory, ${PARALLEL_UPLOADS} concurrent ${sizeMiB} MiB uploads (fresh server)`);
  const b = await start();
  const pid = b.child.pid!;
  const idle = readMemory(pid);
  const upIds = await Promise.all(Array.from({ length: PARALLEL_UPLOADS }, (_, i) => createImage(b.url, `bench-parallel-${i}`)));
  const sampler = sampleMemory(pid, 100);
  const parCpu0 = readCpuSeconds(pid);
  const parStarted = performance.now();
  let parallel: Awaited<ReturnType<typeof upload>>[];
  let mem: ReturnType<ReturnType<typeof sampleMemory>['stop']>;
  try {
    parallel = await Promise.all(upIds.map((id) => upload(b.url, id, SIZE)));
  } finally {
    mem = sampler.stop();
  }
  const parSeconds = (performance.now() - parStarted) / 1000;
  const parServerCpu = readCpuSeconds(pid) - parCpu0;
  for (const id of upIds) {
    const img = await showImage(b.url, id);
    if (img.status !== 'active' || img.size !== SIZE)
      throw new Error(`after parallel upload image ${id} is ${String(img.status)} with size ${String(img.size)}`);
  }
  await stop(b);
  const peakMiB = Math.max(mem.hwmKiB, mem.peakRssKiB) / 1024;
  line('server RSS idle (after start)', `${r1((idle?.rssKiB ?? NaN) / 1024)} MiB`, `VmHWM ${r1((idle?.hwmKiB ?? NaN) / 1024)} MiB`);
  line(
    'aggregate upload',
    `${r1((PARALLEL_UPLOADS * SIZE) / MiB / parSeconds)} MiB/s`,
    `(${r1(parSeconds)} s; each ${parallel.map((p) => r1(p.mibs)).join(', ')} MiB/s; server CPU ${r1(parServerCpu / parSeconds)} cores)`,
  );
  line('server peak RSS (VmHWM)', `${r1(mem.hwmKiB / 1024)} MiB`, `sampled VmRSS max ${r1(mem.peakRssKiB / 1024)} MiB over ${mem.samples} samples`);
  line('server peak RSS vs target', `${r1(peakMiB)} MiB`, `target < ${RSS_TARGET_MIB} MiB: ${peakMiB < RSS_TARGET_MIB ? 'MET' : 'MISSED'}`);

  // Part 5 on a fresh server whose URI filter lets web-download reach the bench's own file server,
  // which therefore starts first (its port goes into the server's config).
  section(`5. Interoperable import, ${importMiB} MiB (fresh server)`);
  const imagePath = '/img';
  const files = await startFileServer(imagePath, IMPORT_SIZE);
  fileServers.add(files);
  const c = await start({ import_filtering_opts: { allowed_ports: `80,443,${files.port}`, allowed_hosts: '127.0.0.1' } });
  const cPid = c.child.pid!;
  const expectActive = (what: string, img: Record<string, unknown>) => {
    if (img.status !== 'active' || img.size !== IMPORT_SIZE) {
      throw new Error(`after ${what} image ${String(img.id)} is ${String(img.status)} with size ${String(img.size)} (expected active, ${IMPORT_SIZE})`);
    }
  };
  const timedCpu = async <T>(fn: () => Promise<T>): Promise<{ result: T; serverCpu: number }> => {
    const cpu0 = readCpuSeconds(cPid);
    const result = await fn();
    return { result, serverCpu: readCpuSeconds(cPid) - cpu0 };
  };

  // glance-direct: stage (not part of the timed span), then POST /import until active; and a plain PUT.
  const gdId = await createImage(c.url, 'bench-glance-direct');
  const staged = await stage(c.url, gdId, IMPORT_SIZE);
  const stagedImage = await showImage(c.url, gdId);
  if (stagedImage.status !== 'uploading') throw new Error(`after staging image ${gdId} is ${String(stagedImage.status)}, not uploading`);
  const gd = await timedCpu(() => importAndWait(c.url, gdId, { name: 'glance-direct' }, IMPORT_SIZE));
  expectActive('glance-direct import', gd.result.image);
  const putId = await createImage(c.url, 'bench-import-put');
  const put = await timedCpu(() => upload(c.url, putId, IMPORT_SIZE));
  const putImage = await showImage(c.url, putId);
  expectActive('PUT /file', putImage);
  const importRatio = gd.result.ms / put.result.ms;
  const ratioMet = importRatio <= IMPORT_RATIO_TARGET;
  line('stage PUT /stage (not timed below)', `${r1(staged.mibs)} MiB/s`, `(${r1(staged.ms / 1000)} s)`);
  line(
    'glance-direct POST /import -> active',
    `${r2(gd.result.ms / 1000)} s`,
    `(${r1(gd.result.mibs)} MiB/s; 202 after ${r1(gd.result.acceptMs)} ms, ${gd.result.polls} polls; server CPU ${r1(gd.serverCpu)} s)`,
  );
  line('plain PUT /file, same size, another image', `${r2(put.result.ms / 1000)} s`, `(${r1(put.result.mibs)} MiB/s; server CPU ${r1(put.serverCpu)} s)`);
  line('glance-direct import / PUT', `${r2(importRatio)} x`, `target ≤ ${IMPORT_RATIO_TARGET}: ${ratioMet ? 'MET' : 'MISSED'}`);

  // web-download from the loopback file server; then, for reference, the same bytes through PUT /file.
  const wdId = await createImage(c.url, 'bench-web-download');
  const wd = await timedCpu(() => importAndWait(c.url, wdId, { name: 'web-download', uri: files.url(imagePath) }, IMPORT_SIZE));
  expectActive('web-download import', wd.result.image);
  if (files.served < 1) throw new Error('web-download finished but the file server never completed a response');
  const refId = await createImage(c.url, 'bench-web-download-ref-put');
  const ref = await timedCpu(() => upload(c.url, refId, IMPORT_SIZE));
  const refImage = await showImage(c.url, refId);
  expectActive('reference PUT /file', refImage);
  line(
    'web-download POST /import -> active',
    `${r1(wd.result.mibs)} MiB/s`,
    `(${r2(wd.result.ms / 1000)} s; 202 after ${r1(wd.result.acceptMs)} ms, ${wd.result.polls} polls; server CPU ${r1(wd.serverCpu)} s)`,
  );
  line(
    'reference: same bytes via PUT /file',
    `${r1(ref.result.mibs)} MiB/s`,
    `(${r2(ref.result.ms / 1000)} s; web-download / PUT ${r2(wd.result.ms / ref.result.ms)} x)`,
  );

  // The same generated bytes went in four ways: every image must carry the same digests.
  const digests = new Set([gd.result.image, putImage, wd.result.image, refImage].map((img) => `${String(img.checksum)}/${String(img.os_hash_value)}`));
  if (digests.size !== 1) throw new Error(`imported and uploaded images differ in checksum/os_hash_value: ${[...digests].join(', ')}`);
  line('all four images active, same size and digests', 'yes', `(${IMPORT_SIZE} bytes, md5 ${String(putImage.checksum)})`);
  await stop(c);
  await closeFileServer(files);

  // copy-image between two file stores: staged from the first (read, digested, inspected), then taken
  // by the second (a hard link where both are on one filesystem, as here; a copy otherwise).
  section(`5b. copy-image between two file stores, ${importMiB} MiB (fresh server)`);
  const m = await start({ DEFAULT: { enabled_backends: 'fast:file, cheap:file' }, glance_store: { default_backend: 'fast' } });
  const copyId = await createImage(m.url, 'bench-copy-image');
  const copySource = await upload(m.url, copyId, IMPORT_SIZE);
  const cpuBefore = readCpuSeconds(m.child.pid!);
  const copied = await copyAndWait(m.url, copyId, ['cheap'], IMPORT_SIZE);
  const copyCpu = readCpuSeconds(m.child.pid!) - cpuBefore;
  line('upload PUT /file -> fast (not timed below)', `${r1(copySource.mibs)} MiB/s`);
  line(
    'copy-image fast -> cheap, POST /import -> both stores',
    `${r1(copied.mibs)} MiB/s`,
    `(${r2(copied.ms / 1000)} s; 202 after ${r1(copied.acceptMs)} ms; server CPU ${r1(copyCpu)} s; stores ${String(copied.image.stores)})`,
  );
  await stop(m);

  // Part 6: a real Swift with its S3 API, and a fresh server whose only store is S3 (so VmHWM is this
  // upload's peak). The bucket does not exist yet: the first write creates it.
  section(`6. S3 store (Swift s3api), ${s3MiB} MiB (fresh server)`);
  const swift = await startSwift();
  swifts.add(swift);
  const s = await start({
    glance_store: { default_store: 's3', ...s3StoreOptions(swift, S3_BUCKET) },
  });
  const sPid = s.child.pid!;
  const s3Idle = readMemory(sPid);
  const s3Id = await createImage(s.url, 'bench-s3');
  const s3Sampler = sampleMemory(sPid, 100);
  const s3Cpu0 = readCpuSeconds(sPid);
  let s3Up: Awaited<ReturnType<typeof upload>>;
  let s3Mem: ReturnType<ReturnType<typeof sampleMemory>['stop']>;
  try {
    s3Up = await upload(s.url, s3Id, S3_SIZE);
  } finally {
    s3Mem = s3Sampler.stop();
  }
  const s3UpCpu = readCpuSeconds(sPid) - s3Cpu0;
  const s3Image = await showImage(s.url, s3Id);
  if (s3Image.status !== 'active' || s3Image.size !== S3_SIZE) {
    throw new Error(`after the S3 upload image ${s3Id} is ${String(s3Image.status)} with size ${String(s3Image.size)} (expected active, ${S3_SIZE})`);
  }
  const s3Objects = await bucketObjects(swift.s3, S3_BUCKET);
  const s3Object = s3Objects.find((o) => o.key.includes(s3Id));
  if (!s3Object || s3Object.size !== S3_SIZE) {
    throw new Error(`bucket ${S3_BUCKET} holds no ${S3_SIZE}-byte object for image ${s3Id}: ${JSON.stringify(s3Objects)}`);
  }
  const s3DownCpu0 = readCpuSeconds(sPid);
  const s3Down = await download(s.url, s3Id, S3_SIZE);
  const s3DownCpu = readCpuSeconds(sPid) - s3DownCpu0;
  const s3HwmAfterDown = readMemory(sPid)?.hwmKiB ?? NaN;
  await stop(s);

  // The image cache in front of the same Swift (its Swift API): a first download misses and fills the
  // cache as it passes; the next one is served from the cache.
  const cacheServer = await start({
    DEFAULT: { image_cache_dir: '__DIR__/cache' },
    paste_deploy: { flavor: 'caching' },
    glance_store: { default_store: 'swift', ...swiftStoreOptions(swift, 'gaze-bench-cache') },
  });
  const cacheId = await createImage(cacheServer.url, 'bench-cache');
  const cacheUp = await upload(cacheServer.url, cacheId, CACHE_SIZE);
  const cold = await download(cacheServer.url, cacheId, CACHE_SIZE);
  const cachedAt = Date.now();
  while (!(await isCached(cacheServer.url, cacheId))) {
    if (Date.now() - cachedAt > 60_000) throw new Error(`image ${cacheId} was not in the cache 60 s after its first download`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const cachedCpu0 = readCpuSeconds(cacheServer.child.pid!);
  const warm = await download(cacheServer.url, cacheId, CACHE_SIZE);
  const warmCpu = readCpuSeconds(cacheServer.child.pid!) - cachedCpu0;
  await stop(cacheServer);
  await stopSwift(swift);
  const s3PeakMiB = Math.max(s3Mem.hwmKiB, s3Mem.peakRssKiB) / 1024;
  line('Swift start (start-swift.sh)', `${r1(swift.startMs / 1000)} s`);
  line('server RSS idle (after start)', `${r1((s3Idle?.rssKiB ?? NaN) / 1024)} MiB`, `VmHWM ${r1((s3Idle?.hwmKiB ?? NaN) / 1024)} MiB`);
  line('upload PUT /file -> S3', `${r1(s3Up.mibs)} MiB/s`, `(${r1(s3Up.ms / 1000)} s; server CPU ${r1(s3UpCpu)} s = ${r1(s3UpCpu / (s3Up.ms / 1000))} cores)`);
  line(
    'server peak RSS during upload (VmHWM)',
    `${r1(s3Mem.hwmKiB / 1024)} MiB`,
    `sampled VmRSS max ${r1(s3Mem.peakRssKiB / 1024)} MiB over ${s3Mem.samples} samples; target < ${RSS_TARGET_MIB} MiB: ${s3PeakMiB < RSS_TARGET_MIB ? 'MET' : 'MISSED'}`,
  );
  line('image active, size; object in bucket', 'yes', `(${S3_SIZE} bytes; ${S3_BUCKET}/${s3Object.key})`);
  line(
    'download GET /file <- S3',
    `${r1(s3Down.mibs)} MiB/s`,
    `(${r1(s3Down.ms / 1000)} s, ${S3_SIZE} bytes; server CPU ${r1(s3DownCpu)} s; VmHWM after it ${r1(s3HwmAfterDown / 1024)} MiB)`,
  );

  section(`6b. image cache in front of Swift, ${cacheMiB} MiB (fresh server, flavor caching)`);
  line('upload PUT /file -> Swift (not timed below)', `${r1(cacheUp.mibs)} MiB/s`);
  line('download GET /file <- Swift, cold (fills the cache as it passes)', `${r1(cold.mibs)} MiB/s`, `(${r2(cold.ms / 1000)} s)`);
  line('download GET /file <- cache', `${r1(warm.mibs)} MiB/s`, `(${r2(warm.ms / 1000)} s; server CPU ${r1(warmCpu)} s)`);

  // Part 7: two no-auth servers as two regions. RegionOne starts first: its port goes into RegionTwo's
  // region table and URI filter.
  section(`7. glance-download RegionOne -> RegionTwo, ${gdMiB} MiB (two fresh servers)`);
  const regionOne = await start();
  const regionTwo = await start({
    DEFAULT: { enabled_import_methods: 'glance-direct,web-download,copy-image,glance-download' },
    glance_download_opts: { region_endpoints: `RegionOne:http://127.0.0.1:${regionOne.port}` },
    import_filtering_opts: { allowed_ports: `80,443,${regionOne.port}` },
  });
  const srcId = await createImage(regionOne.url, 'bench-gd-source');
  const srcUp = await upload(regionOne.url, srcId, GD_SIZE);
  const srcImage = await showImage(regionOne.url, srcId);
  if (srcImage.status !== 'active' || srcImage.size !== GD_SIZE) {
    throw new Error(`RegionOne source image ${srcId} is ${String(srcImage.status)} with size ${String(srcImage.size)} (expected active, ${GD_SIZE})`);
  }
  const dstId = await createImage(regionTwo.url, 'bench-gd-target');
  const oneCpu0 = readCpuSeconds(regionOne.child.pid!);
  const twoCpu0 = readCpuSeconds(regionTwo.child.pid!);
  const gdl = await importAndWait(regionTwo.url, dstId, { name: 'glance-download', glance_image_id: srcId, glance_region: 'RegionOne' }, GD_SIZE);
  const gdOneCpu = readCpuSeconds(regionOne.child.pid!) - oneCpu0;
  const gdTwoCpu = readCpuSeconds(regionTwo.child.pid!) - twoCpu0;
  if (gdl.image.status !== 'active' || gdl.image.size !== GD_SIZE) {
    throw new Error(`after glance-download image ${dstId} is ${String(gdl.image.status)} with size ${String(gdl.image.size)} (expected active, ${GD_SIZE})`);
  }
  if (gdl.image.checksum !== srcImage.checksum || gdl.image.os_hash_value !== srcImage.os_hash_value) {
    throw new Error(
      `glance-download image ${dstId} has checksum ${String(gdl.image.checksum)} / ${String(gdl.image.os_hash_value)}, RegionOne's ${srcId} has ${String(srcImage.checksum)} / ${String(srcImage.os_hash_value)}`,
    );
  }
  await stop(regionTwo);
  await stop(regionOne);
  line('RegionOne: source upload PUT /file', `${r1(srcUp.mibs)} MiB/s`, `(${r2(srcUp.ms / 1000)} s; not timed below)`);
  line(
    'glance-download POST /import -> active',
    `${r1(gdl.mibs)} MiB/s`,
    `(${r2(gdl.ms / 1000)} s; 202 after ${r1(gdl.acceptMs)} ms, ${gdl.polls} polls; CPU: RegionTwo ${r1(gdTwoCpu)} s, RegionOne ${r1(gdOneCpu)} s)`,
  );
  line('same size, checksum and os_hash_value', 'yes', `(md5 ${String(srcImage.checksum)})`);

  // Part 8: what format inspection costs an upload, and an image_conversion import (qemu-img).
  section(`8. Image safety: inspection cost (${sizeMiB} MiB uploads), conversion of a ${convertMiB} MiB qcow2 (fresh servers)`);
  const inspectServer = await start();
  const inspection = await inspectionCost(inspectServer.url, SIZE, INSPECTION_ROUNDS);
  await stop(inspectServer);
  const inspectionMet = inspection.ratio >= INSPECTION_RATIO_TARGET;
  line('upload, inspected (container bare)', `${r1(inspection.onMiBs)} MiB/s`, `(best of ${inspection.rounds})`);
  line('upload, not inspected (container ovf)', `${r1(inspection.offMiBs)} MiB/s`, `(best of ${inspection.rounds})`);
  line('inspection on / off', `${r2(inspection.ratio)} x`, `target >= ${INSPECTION_RATIO_TARGET}: ${inspectionMet ? 'MET' : 'MISSED'}`);
  const convertServer = await start({ image_import_opts: { image_import_plugins: 'image_conversion' }, image_conversion: { output_format: 'raw' } });
  const convertDir = mkdtempSync(path.join(tmpdir(), 'gaze-bench-convert-'));
  tempDirs.add(convertDir);
  const conversion = await conversionImport(convertServer.url, convertDir, CONVERT_SIZE);
  await stop(convertServer);
  rmSync(convertDir, { recursive: true, force: true });
  tempDirs.delete(convertDir);
  line(`make the qcow2 (${convertMiB} MiB of data)`, `${r1(conversion.makeSeconds)} s`, `(${r1(conversion.qcow2Bytes / MiB)} MiB file; not timed below)`);
  line(
    'image_conversion import qcow2 -> raw, POST /import -> active',
    `${r2(conversion.importSeconds)} s`,
    `(${r1(convertMiB / conversion.importSeconds)} MiB/s of virtual disk; inspect, qemu-img info + convert, inspect again, store with digests)`,
  );

  const totalSeconds = (performance.now() - benchStarted) / 1000;
  console.log(`\nbench took ${r1(totalSeconds)} s`);

  console.log(
    JSON.stringify(
      roundAll({
        node: process.version,
        cores: availableParallelism(),
        sizeMiB,
        ceilings: { diskWriteMiBs: disk.mibs, md5MiBs: md5.mibs, sha512MiBs: sha512.mibs, uploadCeilingMiBs: ceiling },
        upload: {
          mibs: up.mibs,
          seconds: up.ms / 1000,
          serverCpuSeconds: upServerCpu,
          clientCpuSeconds: upClientCpu,
          pctOfCeiling: uploadPct,
          targetPct: UPLOAD_TARGET_PCT,
          met: uploadPct >= UPLOAD_TARGET_PCT,
        },
        download: { mibs: down.mibs, seconds: down.ms / 1000 },
        createImages: { count: IMAGES, seconds: createSeconds, rps: IMAGES / createSeconds },
        showImage: show,
        listImages: list,
        parallelUploads: {
          count: PARALLEL_UPLOADS,
          seconds: parSeconds,
          aggregateMiBs: (PARALLEL_UPLOADS * SIZE) / MiB / parSeconds,
          eachMiBs: parallel.map((p) => p.mibs),
          serverCpuSeconds: parServerCpu,
          idleRssMiB: (idle?.rssKiB ?? NaN) / 1024,
          peakRssMiB: peakMiB,
          vmHwmMiB: mem.hwmKiB / 1024,
          sampledPeakRssMiB: mem.peakRssKiB / 1024,
          targetMiB: RSS_TARGET_MIB,
          met: peakMiB < RSS_TARGET_MIB,
        },
        import: {
          sizeMiB: importMiB,
          stage: { mibs: staged.mibs, seconds: staged.ms / 1000 },
          glanceDirect: {
            seconds: gd.result.ms / 1000,
            mibs: gd.result.mibs,
            acceptMs: gd.result.acceptMs,
            polls: gd.result.polls,
            serverCpuSeconds: gd.serverCpu,
          },
          put: { seconds: put.result.ms / 1000, mibs: put.result.mibs, serverCpuSeconds: put.serverCpu },
          ratio: importRatio,
          targetRatio: IMPORT_RATIO_TARGET,
          met: ratioMet,
          webDownload: {
            mibs: wd.result.mibs,
            seconds: wd.result.ms / 1000,
            acceptMs: wd.result.acceptMs,
            polls: wd.result.polls,
            serverCpuSeconds: wd.serverCpu,
          },
          referencePut: { mibs: ref.result.mibs, seconds: ref.result.ms / 1000, serverCpuSeconds: ref.serverCpu },
          copyImage: { mibs: copied.mibs, seconds: copied.ms / 1000, serverCpuSeconds: copyCpu },
        },
        s3: {
          sizeMiB: s3MiB,
          swiftStartSeconds: swift.startMs / 1000,
          upload: { mibs: s3Up.mibs, seconds: s3Up.ms / 1000, serverCpuSeconds: s3UpCpu },
          idleRssMiB: (s3Idle?.rssKiB ?? NaN) / 1024,
          peakRssMiB: s3PeakMiB,
          vmHwmMiB: s3Mem.hwmKiB / 1024,
          sampledPeakRssMiB: s3Mem.peakRssKiB / 1024,
          rssTargetMiB: RSS_TARGET_MIB,
          rssMet: s3PeakMiB < RSS_TARGET_MIB,
          download: { mibs: s3Down.mibs, seconds: s3Down.ms / 1000, serverCpuSeconds: s3DownCpu, vmHwmAfterMiB: s3HwmAfterDown / 1024 },
        },
        cache: {
          sizeMiB: cacheMiB,
          swiftCold: { mibs: cold.mibs, seconds: cold.ms / 1000 },
          cached: { mibs: warm.mibs, seconds: warm.ms / 1000, serverCpuSeconds: warmCpu },
        },
        glanceDownload: {
          sizeMiB: gdMiB,
          sourcePut: { mibs: srcUp.mibs, seconds: srcUp.ms / 1000 },
          import: { mibs: gdl.mibs, seconds: gdl.ms / 1000, acceptMs: gdl.acceptMs, polls: gdl.polls, targetCpuSeconds: gdTwoCpu, sourceCpuSeconds: gdOneCpu },
          checksumMatch: true,
        },
        safety: {
          inspection: { ...inspection, targetRatio: INSPECTION_RATIO_TARGET, met: inspectionMet },
          conversion: {
            sizeMiB: convertMiB,
            qcow2MiB: conversion.qcow2Bytes / MiB,
            makeSeconds: conversion.makeSeconds,
            importSeconds: conversion.importSeconds,
          },
        },
        totalSeconds,
      }),
    ),
  );
}

try {
  // `npm run bench -- --against-glance`: the side-by-side comparison with a real Glance instead.
  if (process.argv.includes('--against-glance')) await againstGlance();
  else if (process.argv.includes('--profile')) await profile();
  else if (process.argv.includes('--multi-node')) await multiNode();
  else await main();
} catch (err) {
  console.error('bench failed:', err);
  process.exitCode = 1;
} finally {
  await stopAll();
}
