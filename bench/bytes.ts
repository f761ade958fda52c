// Generated image bytes: one reusable block of random data, served as 1 MiB windows at shifting offsets,
// so an upload of any size needs only a few MiB of memory and the stream is not a 1 MiB repetition.

import { randomFillSync } from 'node:crypto';

export const MiB = 1 << 20;
const CHUNK = MiB;
const POOL_BYTES = 8 * MiB + 4093; // odd tail: successive chunks start at different alignments

let pool: Buffer | null = null;

export function randomPool(): Buffer {
  pool ??= randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
  return pool;
}

/** Yields exactly `size` bytes in chunks of up to 1 MiB, views into the shared random pool. */
export async function* generatedBytes(size: number): AsyncGenerator<Buffer> {
  const data = randomPool();
  let offset = 0;
  let left = size;
  while (left > 0) {
    const n = Math.min(CHUNK, left);
    yield data.subarray(offset, offset + n);
    offset = (offset + n + 4093) % (data.length - CHUNK);
    left -= n;
  }
}
