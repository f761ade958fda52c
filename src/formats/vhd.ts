import { CapturedRegion, type FormatInspector, type SafetyFailure } from './types.ts';

// Connectix/Microsoft VHD ("vpc" to qemu): a dynamic disk starts with a copy of its 512-byte
// big-endian footer: "conectix" at 0, original size (u64) at 40. Like oslo.utils, a fixed VHD (footer
// only at the end) is not recognised; it is raw data followed by a footer. No safety checks: a VHD
// cannot name other files.

const FOOTER_BYTES = 512;
const MAGIC = Buffer.from('conectix', 'latin1');
const SIZE_OFFSET = 40;

export class VhdInspector implements FormatInspector {
  readonly format = 'vhd';
  private readonly footer = new CapturedRegion(0, FOOTER_BYTES);

  feed(chunk: Buffer, offset: number): void {
    if (offset >= FOOTER_BYTES) return;
    this.footer.feed(chunk, offset);
  }

  finish(_totalSize: number): void {}

  matches(): boolean {
    const got = this.footer.bytes;
    return got.length >= MAGIC.length && got.subarray(0, MAGIC.length).equals(MAGIC);
  }

  virtualSize(): number | null {
    if (!this.matches() || this.footer.bytes.length < SIZE_OFFSET + 8) return null;
    const size = Number(this.footer.data.readBigUInt64BE(SIZE_OFFSET));
    return Number.isSafeInteger(size) && size > 0 ? size : null;
  }

  safetyFailures(): SafetyFailure[] {
    return [];
  }

  subformat(): string | null {
    return null;
  }
}
