import { CapturedRegion, type FormatInspector, type SafetyFailure } from './types.ts';

// QEMU Enhanced Disk: recognised only to be refused (oslo.utils' "banned" check); nobody supports it
// and it can name a backing file. Little-endian header: magic "QED\0" at 0, image size (u64) at 48.

const HEADER_BYTES = 56;
const MAGIC = Buffer.from('QED\0', 'latin1');
const SIZE_OFFSET = 48;

export class QedInspector implements FormatInspector {
  readonly format = 'qed';
  private readonly header = new CapturedRegion(0, HEADER_BYTES);

  feed(chunk: Buffer, offset: number): void {
    if (offset >= HEADER_BYTES) return;
    this.header.feed(chunk, offset);
  }

  finish(_totalSize: number): void {}

  matches(): boolean {
    const got = this.header.bytes;
    return got.length >= MAGIC.length && got.subarray(0, MAGIC.length).equals(MAGIC);
  }

  virtualSize(): number | null {
    if (!this.matches() || !this.header.complete) return null;
    const size = Number(this.header.data.readBigUInt64LE(SIZE_OFFSET));
    return Number.isSafeInteger(size) && size > 0 ? size : null;
  }

  safetyFailures(): SafetyFailure[] {
    return [{ check: 'banned', message: 'This file format is not allowed' }];
  }

  subformat(): string | null {
    return null;
  }
}
