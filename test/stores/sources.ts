// Data sources for the store driver tests: well-behaved, stalling, and failing streams.

import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';

const MiB = 1024 * 1024;

/** `data` in pieces of `size` bytes. */
export function chunks(data: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts);
}

/** A client that sends `bytes` quickly (in MiB pieces), then stalls and never finishes. */
export function stallingAfter(bytes: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) return;
      sent += MiB;
      this.push(randomBytes(MiB));
    },
  });
}

/** A client that sends all of `data` (in MiB pieces), then fails with `message`. */
export function failingAfter(data: Buffer, message: string): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i < data.length) {
        this.push(data.subarray(i, i + MiB));
        i += MiB;
      } else {
        setTimeout(() => this.destroy(new Error(message)), 10);
      }
    },
  });
}
