import type { SafetyFailure } from './types.ts';
import { HeaderInspector } from './header-inspector.ts';

// QEMU Enhanced Disk: recognised only to be refused (oslo.utils' "banned" check); nobody supports it
// and it can name a backing file. Little-endian header: magic "QED\0" at 0, image size (u64) at 48.

const HEADER_BYTES = 56;
const MAGIC = Buffer.from('QED\0', 'latin1');
const SIZE_OFFSET = 48;

export class QedInspector extends HeaderInspector {
  readonly format = 'qed';

  constructor() {
    super(HEADER_BYTES);
  }

  matches(): boolean {
    return this.startsWith(MAGIC);
  }

  virtualSize(): number | null {
    return this.matches() ? this.sizeField(SIZE_OFFSET, 'LE') : null;
  }

  override safetyFailures(): SafetyFailure[] {
    return [{ check: 'banned', message: 'This file format is not allowed' }];
  }
}
