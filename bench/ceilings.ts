// Machine ceilings, measured in the same run as the service figures: what the disk and one core can do.

import { createHash, randomFillSync, randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { MiB, generatedBytes } from './bytes.ts';

export function mibPerSec(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

export interface DiskWrite {
  mibs: number;
  ms: number;
  /** This process's CPU (user + system, the kernel's copying and page faults included) per GiB written. */
  cpuSecondsPerGiB: number;
}

/** Sequential write of `size` bytes in 1 MiB writes to a new file in `dir`, then fsync; the file is deleted. */
export async function diskWrite(dir: string, size: number): Promise<DiskWrite> {
  const file = path.join(dir, `.bench-disk-${randomUUID()}`);
  try {
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const handle = await open(file, 'wx');
    try {
      for await (const chunk of generatedBytes(size)) {
        let done = 0;
        while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    return { mibs: mibPerSec(size, ms), ms, cpuSecondsPerGiB: (cpu.user + cpu.system) / 1e6 / (size / (1 << 30)) };
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * The same disk write twice: after the machine sat idle, then again at once. On a virtual machine
 * with free page reporting (Linux's page_reporting, as on this project's test machines), memory left
 * free for about two seconds goes back to the hypervisor, and the page cache that the first write fills
 * must be faulted in again from the host; the second write reuses what the first one's deleted file freed.
 * Every upload of the benches starts after a quiet pause, so it pays like the first.
 */
export async function diskWriteAfterIdleAndAgain(dir: string, size: number): Promise<{ afterIdle: DiskWrite; again: DiskWrite }> {
  await new Promise((resolve) => setTimeout(resolve, 6000));
  const afterIdle = await diskWrite(dir, size);
  const again = await diskWrite(dir, size);
  return { afterIdle, again };
}

let hashBuffers: Buffer[] | null = null;

/** One core's throughput for `algo` (node:crypto) over `size` bytes of distinct in-memory 1 MiB buffers. */
export function hashThroughput(algo: string, size: number): { mibs: number; ms: number } {
  // 64 distinct buffers (64 MiB) so the figure is not an L2/L3-cache best case.
  hashBuffers ??= Array.from({ length: 64 }, () => randomFillSync(Buffer.allocUnsafe(MiB)));
  const warm = createHash(algo);
  for (let i = 0; i < 8; i++) warm.update(hashBuffers[i]);
  warm.digest();
  const started = performance.now();
  const hash = createHash(algo);
  let left = size;
  for (let i = 0; left > 0; i++) {
    const buf = hashBuffers[i % hashBuffers.length];
    const n = Math.min(buf.length, left);
    hash.update(n === buf.length ? buf : buf.subarray(0, n));
    left -= n;
  }
  hash.digest('hex');
  const ms = performance.now() - started;
  return { mibs: mibPerSec(size, ms), ms };
}
