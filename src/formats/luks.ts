import type { SafetyFailure } from './types.ts';
import { HeaderInspector } from './header-inspector.ts';

// LUKS-encrypted disk. Big-endian header: magic "LUKS\xba\xbe" at 0, version (u16) at 6, payload
// offset in 512-byte sectors (u32) at 104. qemu only reads LUKS1, so any other version is refused.
// As oslo.utils computes it, the virtual size is the encrypted payload: the bytes after the payload
// offset, known once the stream has ended.

const HEADER_BYTES = 108;
const MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);
const VERSION_OFFSET = 6;
const PAYLOAD_OFFSET = 104;
const SECTOR = 512;

export class LuksInspector extends HeaderInspector {
  readonly format = 'luks';
  private total: number | null = null;

  constructor() {
    super(HEADER_BYTES);
  }

  override finish(totalSize: number): void {
    this.total = totalSize;
  }

  matches(): boolean {
    return this.startsWith(MAGIC);
  }

  virtualSize(): number | null {
    if (!this.matches() || !this.header.complete || this.total === null) return null;
    const payload = this.total - this.header.data.readUInt32BE(PAYLOAD_OFFSET) * SECTOR;
    return payload > 0 ? payload : null;
  }

  override safetyFailures(): SafetyFailure[] {
    // A header cut short reads as version 0 (zero-filled) and is refused too.
    const version = this.header.data.readUInt16BE(VERSION_OFFSET);
    return version === 1 ? [] : [{ check: 'version', message: `LUKS version ${version} is not supported` }];
  }
}
