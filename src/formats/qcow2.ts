import { exactSize, type SafetyFailure } from './types.ts';
import { HeaderInspector } from './header-inspector.ts';

// QEMU qcow2 (and its predecessor qcow, which shares the magic). Big-endian header:
//    0 magic "QFI\xfb"   4 version (u32)   8 backing file offset (u64)   24 virtual size (u64)
//   72 incompatible features (u64, version 3 only)
// A backing file or an external data file makes qemu open another file named by the image, so both
// are refused, as is any feature qemu would need to understand the image that we do not know about.

const HEADER_BYTES = 512;
const MAGIC = 0x514649fb;
const INCOMPATIBLE_FEATURES = 72;
/** Incompatible feature bit 2: the guest data lives in an external file. */
const DATA_FILE_BIT = 1n << 2n;
/**
 * Bits oslo.utils knows: dirty, corrupt, external data file, compression type. Like oslo, bit 4
 * (extended L2 entries) and anything above counts as unknown.
 */
const KNOWN_FEATURES = 0b1111n;

export class Qcow2Inspector extends HeaderInspector {
  readonly format = 'qcow2';

  constructor() {
    super(HEADER_BYTES);
  }

  // The magic alone decides (oslo also waits for 512 bytes): a shorter file with the magic is judged
  // as qcow2, its missing header bytes read as zeros, and fails the version check instead of passing
  // as raw.
  matches(): boolean {
    return this.header.bytes.length >= 4 && this.header.data.readUInt32BE(0) === MAGIC;
  }

  private get version(): number {
    return this.header.data.readUInt32BE(4);
  }

  /** Version 2 has no feature field; qemu ignores whatever follows its 72-byte header there. */
  private get incompatibleFeatures(): bigint {
    return this.version === 3 ? this.header.data.readBigUInt64BE(INCOMPATIBLE_FEATURES) : 0n;
  }

  virtualSize(): number | null {
    if (!this.matches()) return null;
    // A header cut short before the size field has no size.
    return this.header.bytes.length >= 32 ? exactSize(this.header.data.readBigUInt64BE(24)) : null;
  }

  override safetyFailures(): SafetyFailure[] {
    const failures: SafetyFailure[] = [];
    if (this.header.data.readBigUInt64BE(8) !== 0n) {
      failures.push({ check: 'backing_file', message: 'Image has a backing file' });
    }
    const features = this.incompatibleFeatures;
    if (features & DATA_FILE_BIT) failures.push({ check: 'data_file', message: 'Image has data_file set' });
    if (this.version !== 2 && this.version !== 3) {
      failures.push({ check: 'unknown_features', message: 'Unsupported qcow2 version' });
    } else if (features & ~KNOWN_FEATURES) {
      failures.push({ check: 'unknown_features', message: 'Unknown QCOW2 features found' });
    }
    return failures;
  }
}
