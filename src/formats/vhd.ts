import { HeaderInspector } from './header-inspector.ts';

// Connectix/Microsoft VHD ("vpc" to qemu): a dynamic disk starts with a copy of its 512-byte
// big-endian footer: "conectix" at 0, original size (u64) at 40. Like oslo.utils, a fixed VHD (footer
// only at the end) is not recognised; it is raw data followed by a footer. No safety checks: a VHD
// cannot name other files.

const FOOTER_BYTES = 512;
const MAGIC = Buffer.from('conectix', 'latin1');
const SIZE_OFFSET = 40;

export class VhdInspector extends HeaderInspector {
  readonly format = 'vhd';

  constructor() {
    super(FOOTER_BYTES); // the footer's copy at the start is the header we read
  }

  matches(): boolean {
    return this.startsWith(MAGIC);
  }

  virtualSize(): number | null {
    return this.matches() ? this.sizeField(SIZE_OFFSET, 'BE') : null;
  }
}
