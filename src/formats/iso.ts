import { CapturedRegion, type FormatInspector, type SafetyFailure } from './types.ts';

// ISO 9660 / UDF. The first 16 2 KiB sectors are a free "system area" (boot code, a hybrid MBR/GPT,
// or anything else); the volume descriptors start at sector 16, each with a type byte and a 5-byte
// standard identifier. ISO 9660 descriptors say CD001 (type 1 = primary, 255 = set terminator); UDF's
// volume recognition sequence follows with BEA01, NSR02/NSR03, TEA01. oslo only looks at sector 16;
// we walk the run of descriptors from there so a UDF-only disc (BEA01 first) is recognised too.
// ISO has no safety checks: nothing in it makes qemu read other files.

const SECTOR = 2048;
const FIRST_DESCRIPTOR = 16 * SECTOR;
/** ISO 9660 sets and the UDF recognition sequence are a handful of sectors; 16 is ample. */
const MAX_DESCRIPTORS = 16;
const MATCHING_IDS = new Set(['CD001', 'NSR02', 'NSR03']);
/** Identifiers that may appear in the run from sector 16 (ECMA-119, ECMA-167). */
const KNOWN_IDS = new Set(['CD001', 'NSR02', 'NSR03', 'BEA01', 'TEA01', 'BOOT2', 'CDW02']);
const PRIMARY_VOLUME_DESCRIPTOR = 1;

interface Scan {
  matched: boolean;
  virtualSize: number | null;
}

export class IsoInspector implements FormatInspector {
  readonly format = 'iso';

  private readonly descriptors = new CapturedRegion(FIRST_DESCRIPTOR, MAX_DESCRIPTORS * SECTOR);
  private finished = false;
  private scan: Scan | null = null;

  feed(chunk: Buffer, offset: number): void {
    this.descriptors.feed(chunk, offset);
  }

  finish(_totalSize: number): void {
    this.finished = true;
  }

  private result(): Scan {
    if (this.scan) return this.scan;
    const data = this.descriptors.bytes;
    const scan: Scan = { matched: false, virtualSize: null };
    for (let at = 0; at + SECTOR <= data.length; at += SECTOR) {
      const id = data.toString('latin1', at + 1, at + 6);
      if (!KNOWN_IDS.has(id)) break; // past the descriptors
      if (MATCHING_IDS.has(id)) scan.matched = true;
      if (id === 'CD001' && data[at] === PRIMARY_VOLUME_DESCRIPTOR && scan.virtualSize === null) {
        // Both fields are stored little-endian then big-endian; the little-endian half suffices.
        const blocks = data.readUInt32LE(at + 80);
        const blockSize = data.readUInt16LE(at + 128);
        scan.virtualSize = blocks * blockSize || null;
      }
      if (id === 'TEA01') break; // end of the UDF recognition sequence
    }
    // Final once the region is full or the stream has ended; until then, recompute on demand.
    if (this.descriptors.complete || this.finished) this.scan = scan;
    return scan;
  }

  matches(): boolean {
    return this.result().matched;
  }

  virtualSize(): number | null {
    const scan = this.result();
    return scan.matched ? scan.virtualSize : null;
  }

  safetyFailures(): SafetyFailure[] {
    return [];
  }

  subformat(): string | null {
    return null;
  }
}
