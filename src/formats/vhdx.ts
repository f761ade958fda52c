import { CapturedRegion, type FormatInspector, type SafetyFailure } from './types.ts';

// Microsoft VHDX (little-endian). "vhdxfile" at 0; the region table at 192 KiB ("regi", entry count
// u32 at +8, 32-byte entries from +16: GUID, file offset u64, length u32, required u32) locates the
// metadata region ("metadata", entry count u16 at +10, 32-byte entries from +32: item GUID, offset
// u32 relative to the region, length u32), whose Virtual Disk Size item is a u64. The metadata
// region lies further on in the stream, so each structure is captured when it passes; one that lies
// behind the point the stream has reached can no longer be read and leaves the size unknown.
// No safety checks: VHDX names no other files qemu would open.

const IDENT = Buffer.from('vhdxfile', 'latin1');
const REGION_TABLE_OFFSET = 192 * 1024;
const REGION_TABLE_BYTES = 64 * 1024;
const REGION_SIGNATURE = Buffer.from('regi', 'latin1');
const METADATA_SIGNATURE = Buffer.from('metadata', 'latin1');
/** Both tables hold at most 2047 entries (qemu and the spec). */
const MAX_ENTRIES = 2047;
const ENTRY_BYTES = 32;
/** Metadata table header plus its largest entry list. */
const METADATA_TABLE_BYTES = ENTRY_BYTES * (MAX_ENTRIES + 1);
const METADATA_REGION_GUID = guidBytes('8B7CA206-4790-4B9A-B8FE-575F050F886E');
const VIRTUAL_DISK_SIZE_GUID = guidBytes('2FA54224-CD1B-4876-B211-5DBED83BF4B8');

/** A GUID in its on-disk form: the first three fields little-endian, the rest as written. */
function guidBytes(text: string): Buffer {
  const hex = text.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  return Buffer.concat([b.subarray(0, 4).reverse(), b.subarray(4, 6).reverse(), b.subarray(6, 8).reverse(), b.subarray(8)]);
}

/** The file offset of the entry whose GUID is `guid`, read by `offsetOf`, or null. */
function findEntry(table: Buffer, first: number, count: number, guid: Buffer, offsetOf: (at: number) => number): number | null {
  for (let i = 0; i < count; i++) {
    const at = first + i * ENTRY_BYTES;
    if (table.subarray(at, at + 16).equals(guid)) return offsetOf(at);
  }
  return null;
}

export class VhdxInspector implements FormatInspector {
  readonly format = 'vhdx';
  private readonly ident = new CapturedRegion(0, IDENT.length);
  private readonly regionTable = new CapturedRegion(REGION_TABLE_OFFSET, REGION_TABLE_BYTES);
  private metadata: CapturedRegion | null = null;
  private sizeItem: CapturedRegion | null = null;
  private size: number | null = null;
  /** Nothing more to learn from the stream: not a VHDX, the size was found, or it cannot be. */
  private done = false;

  feed(chunk: Buffer, offset: number): void {
    if (this.done) return;
    if (!this.ident.complete) {
      this.ident.feed(chunk, offset);
      if (this.ident.complete && !this.ident.data.equals(IDENT)) {
        this.done = true;
        return;
      }
    }
    if (!this.regionTable.complete) {
      this.regionTable.feed(chunk, offset);
      if (!this.regionTable.complete) return;
      this.metadata = this.region(this.locateMetadata(), METADATA_TABLE_BYTES, offset);
      if (!this.metadata) return;
    }
    if (this.metadata && !this.sizeItem) {
      this.metadata.feed(chunk, offset);
      const item = this.locateSizeItem();
      if (item === undefined) return; // the table is not all there yet
      const table = this.metadata;
      this.metadata = null; // its bytes are no longer needed
      const inTable = item === null ? -1 : item - table.offset;
      if (inTable >= 0 && inTable + 8 <= table.bytes.length) {
        this.found(table.data, inTable);
        return;
      }
      this.sizeItem = this.region(item, 8, offset);
      if (!this.sizeItem) return;
    }
    if (this.sizeItem) {
      this.sizeItem.feed(chunk, offset);
      if (this.sizeItem.complete) this.found(this.sizeItem.data, 0);
    }
  }

  private found(buf: Buffer, at: number): void {
    const size = Number(buf.readBigUInt64LE(at));
    this.size = Number.isSafeInteger(size) && size > 0 ? size : null;
    this.sizeItem = null;
    this.done = true;
  }

  /** A region to capture from `at`, or null (and done) when there is none or the stream is past it. */
  private region(at: number | null, length: number, chunkOffset: number): CapturedRegion | null {
    // CapturedRegion fills from its start, so it must begin in this chunk or later.
    if (at === null || at < chunkOffset) {
      this.done = true;
      return null;
    }
    return new CapturedRegion(at, length);
  }

  private locateMetadata(): number | null {
    const table = this.regionTable.data;
    if (!table.subarray(0, 4).equals(REGION_SIGNATURE)) return null;
    const count = table.readUInt32LE(8);
    if (count > MAX_ENTRIES) return null;
    const at = findEntry(table, 16, count, METADATA_REGION_GUID, (e) => Number(table.readBigUInt64LE(e + 16)));
    return at !== null && Number.isSafeInteger(at) ? at : null;
  }

  /** The Virtual Disk Size item's file offset; null if absent; undefined while the table is incomplete. */
  private locateSizeItem(): number | null | undefined {
    const region = this.metadata!;
    const table = region.bytes;
    if (table.length < ENTRY_BYTES) return region.complete ? null : undefined;
    if (!table.subarray(0, 8).equals(METADATA_SIGNATURE)) return null;
    const count = table.readUInt16LE(10);
    if (count > MAX_ENTRIES) return null;
    if (table.length < ENTRY_BYTES * (count + 1)) return region.complete ? null : undefined;
    return findEntry(table, ENTRY_BYTES, count, VIRTUAL_DISK_SIZE_GUID, (e) => region.offset + table.readUInt32LE(e + 16));
  }

  finish(_totalSize: number): void {}

  matches(): boolean {
    return this.ident.complete && this.ident.data.equals(IDENT);
  }

  virtualSize(): number | null {
    return this.matches() ? this.size : null;
  }

  safetyFailures(): SafetyFailure[] {
    return [];
  }

  subformat(): string | null {
    return null;
  }
}
