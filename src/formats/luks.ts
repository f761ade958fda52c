import { CapturedRegion, type FormatInspector, type SafetyFailure } from './types.ts';

// LUKS-encrypted disk. Big-endian header: magic "LUKS\xba\xbe" at 0, version (u16) at 6, payload
// offset in 512-byte sectors (u32) at 104. qemu only reads LUKS1, so any other version is refused.
// As oslo.utils computes it, the virtual size is the encrypted payload: the bytes after the payload
// offset, known once the stream has ended.

const HEADER_BYTES = 108;
const MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);
const VERSION_OFFSET = 6;
const PAYLOAD_OFFSET = 104;
const SECTOR = 512;

export class LuksInspector implements FormatInspector {
  readonly format = 'luks';
  private readonly header = new CapturedRegion(0, HEADER_BYTES);
  private total: number | null = null;

  feed(chunk: Buffer, offset: number): void {
    if (offset >= HEADER_BYTES) return;
    this.header.feed(chunk, offset);
  }

  finish(totalSize: number): void {
    this.total = totalSize;
  }

  matches(): boolean {
    const got = this.header.bytes;
    return got.length >= MAGIC.length && got.subarray(0, MAGIC.length).equals(MAGIC);
  }

  virtualSize(): number | null {
    if (!this.matches() || !this.header.complete || this.total === null) return null;
    const payload = this.total - this.header.data.readUInt32BE(PAYLOAD_OFFSET) * SECTOR;
    return payload > 0 ? payload : null;
  }

  safetyFailures(): SafetyFailure[] {
    // A header cut short reads as version 0 (zero-filled) and is refused too.
    const version = this.header.data.readUInt16BE(VERSION_OFFSET);
    return version === 1 ? [] : [{ check: 'version', message: `LUKS version ${version} is not supported` }];
  }

  subformat(): string | null {
    return null;
  }
}
