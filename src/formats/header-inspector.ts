import { CapturedRegion, exactSize, type FormatInspector, type SafetyFailure } from './types.ts';

/**
 * What the formats recognised by a fixed header at the start of the stream share (qcow2, qed, vdi,
 * vhd, luks): capture that header and nothing else, then read fields from it.
 */
export abstract class HeaderInspector implements FormatInspector {
  abstract readonly format: string;
  protected readonly header: CapturedRegion;

  constructor(headerBytes: number) {
    this.header = new CapturedRegion(0, headerBytes);
  }

  feed(chunk: Buffer, offset: number): void {
    if (offset >= this.header.length) return;
    this.header.feed(chunk, offset);
  }

  finish(_totalSize: number): void {}

  abstract matches(): boolean;
  abstract virtualSize(): number | null;

  safetyFailures(): SafetyFailure[] {
    return [];
  }

  subformat(): string | null {
    return null;
  }

  /** Whether the stream starts with `magic`. */
  protected startsWith(magic: Buffer): boolean {
    const got = this.header.bytes;
    return got.length >= magic.length && got.subarray(0, magic.length).equals(magic);
  }

  /** A u64 size field of the header: null when the header is cut short (see exactSize for large values). */
  protected sizeField(offset: number, endian: 'BE' | 'LE'): number | null {
    if (this.header.bytes.length < offset + 8) return null;
    return exactSize(endian === 'BE' ? this.header.data.readBigUInt64BE(offset) : this.header.data.readBigUInt64LE(offset));
  }
}
