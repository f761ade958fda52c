import { CapturedRegion, type FormatInspector, type SafetyFailure } from './types.ts';

// VirtualBox VDI: a 64-byte text banner, then a little-endian header: signature u32 0xBEDA107F at
// 0x40, disk size in bytes (u64) at 0x170 (checked against `qemu-img create -f vdi`). No safety checks.

const HEADER_BYTES = 0x178;
const SIGNATURE_OFFSET = 0x40;
const SIGNATURE = 0xbeda107f;
const SIZE_OFFSET = 0x170;

export class VdiInspector implements FormatInspector {
  readonly format = 'vdi';
  private readonly header = new CapturedRegion(0, HEADER_BYTES);

  feed(chunk: Buffer, offset: number): void {
    if (offset >= HEADER_BYTES) return;
    this.header.feed(chunk, offset);
  }

  finish(_totalSize: number): void {}

  matches(): boolean {
    return this.header.bytes.length >= SIGNATURE_OFFSET + 4 && this.header.data.readUInt32LE(SIGNATURE_OFFSET) === SIGNATURE;
  }

  virtualSize(): number | null {
    if (!this.matches() || !this.header.complete) return null;
    const size = Number(this.header.data.readBigUInt64LE(SIZE_OFFSET));
    return Number.isSafeInteger(size) && size > 0 ? size : null;
  }

  safetyFailures(): SafetyFailure[] {
    return [];
  }

  subformat(): string | null {
    return null;
  }
}
