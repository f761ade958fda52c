import { HeaderInspector } from './header-inspector.ts';

// VirtualBox VDI: a 64-byte text banner, then a little-endian header: signature u32 0xBEDA107F at
// 0x40, disk size in bytes (u64) at 0x170 (checked against `qemu-img create -f vdi`). No safety checks.

const HEADER_BYTES = 0x178;
const SIGNATURE_OFFSET = 0x40;
const SIGNATURE = 0xbeda107f;
const SIZE_OFFSET = 0x170;

export class VdiInspector extends HeaderInspector {
  readonly format = 'vdi';

  constructor() {
    super(HEADER_BYTES);
  }

  matches(): boolean {
    return this.header.bytes.length >= SIGNATURE_OFFSET + 4 && this.header.data.readUInt32LE(SIGNATURE_OFFSET) === SIGNATURE;
  }

  virtualSize(): number | null {
    return this.matches() ? this.sizeField(SIZE_OFFSET, 'LE') : null;
  }
}
