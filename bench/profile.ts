// Where the CPU goes when bytes move: `npm run bench -- --profile`. Runs a Gaze from its TypeScript
// sources under `node --cpu-prof`, uploads and then downloads one image with curl, and prints, per GiB,
// the process's user and system CPU time (from /proc) and the V8 profile's self time by part: socket and
// HTTP, hashing, format inspection, the upload watchdog, file I/O, stream plumbing, garbage collection.
// The .cpuprofile files (main thread and each worker) are kept and named at the end: open them in
// Chrome DevTools or speedscope for the flame graphs. System time (the kernel copying bytes into the page
// cache and out of sockets) does not appear in V8 profiles, which is why both are printed.
//
//   GAZE_BENCH_SIZE_MIB=1024   size of the image

import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/keystone.ts';
import { MiB } from './bytes.ts';
import { getBody, putFile } from './curl.ts';

const repo = fileURLToPath(new URL('../', import.meta.url));
const SIZE = Number(process.env.GAZE_BENCH_SIZE_MIB ?? 1024) * MiB;
const GiB = 1 << 30;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The part of the data path a profile frame belongs to. */
function partOf(fn: string, url: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'V8 and native (unattributed)';
  if (url.includes('/ingest/hashing') || url.includes('hash-worker') || url.includes('crypto/hash')) return 'hashing';
  if (url.includes('/formats/')) return 'format inspection';
  if (url.includes('upload-watchdog')) return 'upload watchdog';
  if (
    url.includes('durable-writer') ||
    url.includes('file-reader') ||
    url.includes('/stores/') ||
    url.includes('internal/fs/') ||
    ['writeBuffers', 'writeBuffer', 'fdatasync', 'read', 'open', 'close', 'fstat'].includes(fn)
  )
    return 'file I/O';
  if (url.includes('_http_') || url.includes('node:net') || url.includes('internal/net') || url.includes('stream_base_commons') || fn === 'onStreamRead')
    return 'socket and HTTP';
  if (url.includes('internal/streams/') || url.includes('node:events') || url.includes('task_queues') || fn === 'runMicrotasks' || url.includes('/ingest/'))
    return 'stream plumbing';
  if (fn === 'postMessage' || url.includes('worker') || url.includes('messageport')) return 'thread messages';
  return 'other';
}

function selfTimes(file: string): Map<string, number> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parts = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id)!.callFrame;
    const part = partOf(frame.functionName, frame.url);
    parts.set(part, (parts.get(part) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return parts;
}

function cpuOf(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
}

export async function profile(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-profile-'));
  const profiles = path.join(dir, 'profiles');
  const image = path.join(dir, 'image');
  const fd = openSync(image, 'w');
  const piece = Buffer.allocUnsafe(MiB);
  for (let left = SIZE; left > 0; left -= MiB) writeSync(fd, randomFillSync(piece), 0, Math.min(MiB, left));
  closeSync(fd);
  const port = await freePort();
  const conf = path.join(dir, 'gaze.conf');
  writeFileSync(conf, `[DEFAULT]\nbind_port = ${port}\ndata_dir = ${path.join(dir, 'data')}\n`);
  // Through the operator's launcher (its memory settings), with the profiler as node flags of its own.
  const child = spawn(path.join(repo, 'bin/gaze'), ['serve', '--config-file', conf], {
    env: { ...process.env, GAZE_FROM_SOURCE: '1', GAZE_NODE: process.execPath, GAZE_NODE_FLAGS: `--cpu-prof --cpu-prof-dir=${profiles}` },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/versions`)).ok) break;
    } catch {
      /* starting */
    }
    if (i > 300) throw new Error('gaze did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const res = await fetch(`${url}/v2/images`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'profile', disk_format: 'raw', container_format: 'bare' }),
  });
  const { id } = (await res.json()) as { id: string };

  const cpu0 = cpuOf(child.pid!);
  const up = await putFile(`${url}/v2/images/${id}/file`, null, image);
  const cpu1 = cpuOf(child.pid!);
  const down = await getBody(`${url}/v2/images/${id}/file`, null, SIZE);
  const cpu2 = cpuOf(child.pid!);
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));

  const gib = SIZE / GiB;
  console.log(`profile of one ${SIZE / MiB} MiB upload (${up.mibs.toFixed(0)} MiB/s) and download (${down.mibs.toFixed(0)} MiB/s), curl as the client`);
  console.log(
    `process CPU per GiB: upload ${((cpu1.user - cpu0.user) / gib).toFixed(2)} s user + ${((cpu1.system - cpu0.system) / gib).toFixed(2)} s system;` +
      ` download ${((cpu2.user - cpu1.user) / gib).toFixed(2)} s user + ${((cpu2.system - cpu1.system) / gib).toFixed(2)} s system`,
  );
  console.log('V8 self time, ms per GiB of the whole run (upload + download), by thread and part:');
  for (const file of readdirSync(profiles).sort()) {
    const parts = [...selfTimes(path.join(profiles, file))].filter(([part]) => part !== 'idle').sort((a, b) => b[1] - a[1]);
    const thread = file.includes('.0.001.') || /\.0\.\d+\.cpuprofile$/.test(file) ? 'main thread' : 'worker';
    console.log(`  ${thread} (${file}): ${parts.map(([part, ms]) => `${part} ${Math.round(ms / gib)}`).join(', ')}`);
  }
  console.log(`profiles kept in ${profiles}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  profile().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
