// Machine ceilings, measured in the same run as the service figures: what the disk and one core can do.

import { createHash, randomFillSync, randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { MiB, generatedBytes } from './bytes.ts';

export function mibPerSec(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

/** Sequential write of `size` bytes in 1 MiB writes to a new file in `dir`, then fsync; the file is deleted. */
export async function diskWrite(dir: string, size: number): Promise<{ mibs: number; ms: number }> {
  const file = path.join(dir, `.bench-disk-${randomUUID()}`);
  try {
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
    return { mibs: mibPerSec(size, ms), ms };
  } finally {
    await rm(file, { force: true });
  }
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
