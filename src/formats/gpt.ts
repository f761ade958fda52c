import { CapturedRegion, type FormatInspector, type SafetyFailure } from './types.ts';

// A partitioned disk: an MBR (signature 55 AA at 510), which a GPT disk also has as its "protective"
// MBR. Like oslo.utils, one inspector covers both; the data is otherwise raw, so the virtual size is
// the byte count. The `mbr` check refuses partition tables qemu or firmware could misread.
//
// Partition table entries: 4 × 16 bytes from 446: boot flag, start CHS (head, sector, cylinder),
// type, end CHS, start LBA (u32 LE), size in sectors (u32 LE).

const MBR_BYTES = 512;
const PTE_START = 446;
const PTE_SIZE = 16;
const PROTECTIVE_TYPE = 0xee;
const FIXED_DISK_MEDIA = 0xf8;

export class GptInspector implements FormatInspector {
  readonly format = 'gpt';

  private readonly mbr = new CapturedRegion(0, MBR_BYTES);
  private total: number | null = null;

  feed(chunk: Buffer, offset: number): void {
    this.mbr.feed(chunk, offset);
  }

  finish(totalSize: number): void {
    this.total = totalSize;
  }

  /**
   * A FAT volume boot record also ends in 55 AA; its BIOS parameter block gives it away: two FATs
   * (0x10) and the fixed-disk media descriptor (0x15).
   */
  private isFat(): boolean {
    const d = this.mbr.data;
    return d[0x10] === 2 && d[0x15] === FIXED_DISK_MEDIA;
  }

  matches(): boolean {
    if (!this.mbr.complete) return false;
    const d = this.mbr.data;
    return d[510] === 0x55 && d[511] === 0xaa && !this.isFat();
  }

  virtualSize(): number | null {
    return this.matches() ? this.total : null;
  }

  safetyFailures(): SafetyFailure[] {
    const problem = this.checkMbr();
    return problem ? [{ check: 'mbr', message: problem }] : [];
  }

  // Same order and messages as oslo.utils' check_mbr_partitions.
  private checkMbr(): string | null {
    const d = this.mbr.data;
    const used: number[] = [];
    let protective = false;
    for (let i = 0; i < 4; i++) {
      const pte = d.subarray(PTE_START + i * PTE_SIZE, PTE_START + (i + 1) * PTE_SIZE);
      const boot = pte[0];
      if (boot !== 0x00 && boot !== 0x80) return `MBR PTE ${i} has invalid boot flag`;
      const type = pte[4];
      if (type !== 0) used.push(i);
      if (type === PROTECTIVE_TYPE) {
        protective = true;
        if (pte[1] !== 0x00 || pte[2] !== 0x02 || pte[3] !== 0x00) return 'GPT MBR has invalid start CHS';
        if (pte.readUInt32LE(8) !== 1) return 'GPT MBR has invalid start LBA';
      }
    }
    // A protective MBR must be alone in slot 0, or MBR-only tools see partitions the GPT does not.
    if (protective && (used.length !== 1 || used[0] !== 0)) return 'GPT MBR defines invalid extra partitions';
    if (used.length === 0) return 'GPT MBR has no partitions defined';
    return null;
  }

  subformat(): string | null {
    return null;
  }
}
