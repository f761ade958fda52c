import { CapturedRegion, exactSize, type FormatInspector, type SafetyFailure } from './types.ts';

// VMDK, as oslo.utils' format_inspector reads it: either a "hosted sparse extent" (512-byte
// little-endian header `KDMV` followed by an embedded text descriptor) or a bare text descriptor
// file. qemu follows a descriptor's extent lines to other files, URLs included, so the descriptor
// is parsed cautiously and anything unexpected fails the `descriptor` check.
//
// Sparse header fields used (little-endian):
//    0 magic "KDMV"      4 version (u32)        12 capacity in sectors (u64)
//   28 descriptor offset in sectors (u64)       36 descriptor size in sectors (u64)
//   56 grain directory offset (u64; GD_AT_END means "read the footer at the end of the stream")

const SECTOR = 512;
const HEADER_BYTES = 512;
/** Fields up to gdOffset; fewer bytes than this cannot be a sparse header. */
const MIN_SPARSE_HEADER = 64;
/** Where qemu (and oslo) require the embedded descriptor to start. */
const EMBEDDED_DESCRIPTOR_OFFSET = 0x200;
/** qemu reads at most 1 MiB - 1 of descriptor; we read (and vouch for) no more than it does. */
export const VMDK_DESCRIPTOR_MAX = (1 << 20) - 1;
const GD_AT_END = 0xffffffffffffffffn;
/** Footer marker sector + footer header sector + end-of-stream marker sector. */
const FOOTER_BYTES = 3 * SECTOR;
const MARKER_EOS = 0;
const MARKER_FOOTER = 3;
const SUPPORTED_SUBFORMATS = new Set(['monolithicsparse', 'streamoptimized']);
const EXTENT_ACCESS = new Set(['rw', 'rdonly', 'noaccess']);
const PARENT = 'VMDK has a parent (backing file)';
/**
 * qemu looks for a sparse extent's parent (parentFileNameHint, parentCID) in 20 sectors from 0x200, up
 * to a NUL, whatever length or place the header declares for the descriptor.
 */
const QEMU_PARENT_BYTES = 20 * SECTOR;

type Mode = 'undecided' | 'sparse' | 'text' | 'none';

interface SparseHeader {
  signature: string;
  version: number;
  descriptorSector: bigint;
  descriptorSectors: bigint;
  gdOffset: bigint;
}

function parseSparseHeader(buf: Buffer, at = 0): SparseHeader {
  return {
    signature: buf.toString('latin1', at, at + 4),
    version: buf.readUInt32LE(at + 4),
    descriptorSector: buf.readBigUInt64LE(at + 28),
    descriptorSectors: buf.readBigUInt64LE(at + 36),
    gdOffset: buf.readBigUInt64LE(at + 56),
  };
}

/** Python's ASCII whitespace (str.isspace/str.strip), which the descriptor rules are written in. */
function isSpaceByte(b: number): boolean {
  return (b >= 0x09 && b <= 0x0d) || (b >= 0x1c && b <= 0x20);
}

function isTextByte(b: number): boolean {
  return isSpaceByte(b) || (b > 0x20 && b < 0x7f);
}

function pyStrip(line: string): string {
  let start = 0;
  let end = line.length;
  while (start < end && isSpaceByte(line.charCodeAt(start))) start++;
  while (end > start && isSpaceByte(line.charCodeAt(end - 1))) end--;
  return line.slice(start, end);
}

/** Keeps the last `size` bytes of a stream in a ring: constant work per chunk whatever its length. */
class TailBuffer {
  private readonly buf: Buffer;
  private pos = 0;
  private filled = 0;

  constructor(private readonly size: number) {
    this.buf = Buffer.alloc(size);
  }

  push(chunk: Buffer): void {
    const n = this.size;
    if (chunk.length >= n) {
      chunk.copy(this.buf, 0, chunk.length - n);
      this.pos = 0;
      this.filled = n;
      return;
    }
    const first = Math.min(chunk.length, n - this.pos);
    chunk.copy(this.buf, this.pos, 0, first);
    if (first < chunk.length) chunk.copy(this.buf, 0, first);
    this.pos = (this.pos + chunk.length) % n;
    this.filled = Math.min(n, this.filled + chunk.length);
  }

  /** The retained bytes in stream order (fewer than `size` only when the stream was shorter). */
  bytes(): Buffer {
    if (this.filled < this.size) return this.buf.subarray(0, this.filled);
    return Buffer.concat([this.buf.subarray(this.pos), this.buf.subarray(0, this.pos)]);
  }
}

interface Descriptor {
  /** Lower-cased text, as oslo compares it (the format is case-insensitive). */
  text: string;
  /** createType as written, or null when absent (or implausibly long). */
  createType: string | null;
  nonAscii: boolean;
  tooLarge: boolean;
  /** createType named more than once, or read otherwise by qemu (the first, case-sensitive `createType`). */
  ambiguousType: boolean;
}

export class VmdkInspector implements FormatInspector {
  readonly format = 'vmdk';

  private mode: Mode = 'undecided';
  private readonly header = new CapturedRegion(0, HEADER_BYTES);
  private sparse: SparseHeader | null = null;
  private capacitySectors = 0n;
  /** Sparse: the embedded descriptor; text: the file itself from byte 0. */
  private descRegion: CapturedRegion | null = null;
  /** Sparse: the header declares more descriptor than we read. */
  private descTruncated = false;
  /** Sparse: where qemu looks for a parent. */
  private parentRegion: CapturedRegion | null = null;
  /** Sparse: a header qemu opens (or probes) as VMDK that no check here vouches for. */
  private unsupported: string | null = null;
  private tail: TailBuffer | null = null;
  private total = 0;
  private finished = false;
  private descriptor: Descriptor | null | undefined;

  feed(chunk: Buffer, offset: number): void {
    if (this.mode === 'none') return;
    if (this.mode === 'undecided') {
      this.header.feed(chunk, offset);
      if (!this.header.complete) return;
      // Everything before this chunk lies inside the header, so it can be replayed from there.
      if (this.decide(this.header.data.subarray(0, offset)) === 'none') return;
    }
    this.descRegion?.feed(chunk, offset);
    this.parentRegion?.feed(chunk, offset);
    this.tail?.push(chunk);
  }

  finish(totalSize: number): void {
    if (this.finished) return;
    this.total = totalSize;
    if (this.mode === 'undecided') this.decide(this.header.bytes);
    this.finished = true;
  }

  /** Picks sparse/text/none from the header bytes; `before` is the stream up to the current chunk. */
  private decide(before: Buffer): Mode {
    const head = this.header.bytes;
    const magic = head.length >= 4 ? head.toString('latin1', 0, 4) : '';
    if (magic === 'KDMV') {
      this.mode = this.openSparse(head, before);
    } else if (magic === 'COWD') {
      // VMDK3: qemu probes and opens it (and its parent); nothing here reads it.
      this.mode = 'sparse';
      this.unsupported = 'VMDK3 (COWD) images are not supported';
    } else if (head.length >= 4 && (head.every(isTextByte) || qemuProbesTextDescriptor(head))) {
      // Not a sparse extent but all text so far: maybe a bare descriptor file, which qemu also opens.
      this.mode = 'text';
      this.descRegion = new CapturedRegion(0, VMDK_DESCRIPTOR_MAX);
      this.descRegion.feed(before, 0);
    } else {
      this.mode = 'none';
    }
    return this.mode;
  }

  private openSparse(head: Buffer, before: Buffer): Mode {
    if (head.length < MIN_SPARSE_HEADER) return 'sparse'; // too short to hold a descriptor: fails the check
    const h = parseSparseHeader(head);
    // oslo reads other versions and descriptor places as not VMDK at all; qemu still probes the file as
    // VMDK (and opens versions 0 to 3 with the descriptor at 0x200 whatever the header says): refused
    // as VMDK, so that such data claimed raw is refused too.
    if (h.version > 3) this.unsupported = `Unsupported VMDK version ${h.version}`;
    else if (h.descriptorSector * BigInt(SECTOR) !== BigInt(EMBEDDED_DESCRIPTOR_OFFSET)) this.unsupported = 'Unsupported VMDK descriptor place';
    else if (h.version < 1) this.unsupported = `Unsupported VMDK version ${h.version}`;
    if (this.unsupported) return 'sparse';
    this.sparse = h;
    this.parentRegion = new CapturedRegion(EMBEDDED_DESCRIPTOR_OFFSET, QEMU_PARENT_BYTES);
    this.capacitySectors = head.readBigUInt64LE(12);
    // Of capacity 0, qemu opens the file as a descriptor file: from the descriptor's place up to a NUL,
    // whatever length the header declares (up to its cap). The check must read what qemu reads.
    const declared = this.capacitySectors === 0n ? BigInt(VMDK_DESCRIPTOR_MAX) + 1n : h.descriptorSectors * BigInt(SECTOR);
    this.descTruncated = declared > BigInt(VMDK_DESCRIPTOR_MAX);
    const length = this.descTruncated ? VMDK_DESCRIPTOR_MAX : Number(declared);
    if (length > 0) this.descRegion = new CapturedRegion(EMBEDDED_DESCRIPTOR_OFFSET, length);
    if (h.gdOffset === GD_AT_END) {
      // The real metadata is in a footer just before the end-of-stream marker; keep only the tail.
      this.tail = new TailBuffer(FOOTER_BYTES);
      this.tail.push(before);
    }
    return 'sparse';
  }

  /** The descriptor, parsed once; null when there is none (stream too short, empty region). */
  private getDescriptor(): Descriptor | null {
    if (this.descriptor !== undefined && this.finished) return this.descriptor;
    const region = this.descRegion;
    let result: Descriptor | null = null;
    let data = region?.bytes ?? Buffer.alloc(0);
    // Sparse descriptors are NUL-padded; text ends at the first NUL too (as oslo reads it).
    const nul = data.indexOf(0);
    const ended = nul >= 0;
    // A sparse descriptor is whole once its region is, or once its terminating NUL went by.
    if (data.length > 0 && (this.mode === 'text' || region!.complete || ended)) {
      if (ended) data = data.subarray(0, nul);
      const tooLarge = this.mode === 'text' ? !ended && this.total > VMDK_DESCRIPTOR_MAX : this.descTruncated && !ended;
      const original = data.toString('latin1');
      const text = original.toLowerCase();
      const createType = findCreateType(original, text);
      const ambiguousType = text.split('createtype').length > 2 || qemuCreateType(original) !== createType;
      result = { text, createType, nonAscii: data.some((b) => b > 0x7f), tooLarge, ambiguousType };
    }
    if (this.finished) this.descriptor = result;
    return result;
  }

  matches(): boolean {
    if (this.mode === 'sparse') return true;
    if (this.mode === 'text') return this.getDescriptor()?.createType != null;
    return false;
  }

  virtualSize(): number | null {
    if (this.mode === 'sparse') {
      if (!this.sparse || this.unsupported) return null;
      return exactSize(this.capacitySectors * BigInt(SECTOR));
    }
    if (this.mode !== 'text') return null;
    const desc = this.getDescriptor();
    if (!desc) return null;
    // A bare descriptor has no header capacity: the disk is its extents laid end to end.
    let sectors = 0n;
    let found = false;
    for (const raw of desc.text.split('\n')) {
      const [access = '', size = ''] = pyStrip(raw).split(/\s+/);
      if (!EXTENT_ACCESS.has(access) || !/^\d+$/.test(size)) continue;
      sectors += BigInt(size);
      found = true;
    }
    return found ? exactSize(sectors * BigInt(SECTOR)) : null;
  }

  subformat(): string | null {
    return this.getDescriptor()?.createType ?? null;
  }

  safetyFailures(): SafetyFailure[] {
    if (this.unsupported) return [{ check: 'descriptor', message: this.unsupported }];
    const failures: SafetyFailure[] = [];
    const descriptorProblem = this.checkDescriptor();
    if (descriptorProblem) failures.push({ check: 'descriptor', message: descriptorProblem });
    if (this.tail) {
      const footerProblem = this.checkFooter();
      if (footerProblem) failures.push({ check: 'footer', message: footerProblem });
    }
    return failures;
  }

  private checkDescriptor(): string | null {
    const desc = this.getDescriptor();
    if (!desc) return 'No descriptor found';
    if (desc.tooLarge) return 'VMDK descriptor too large';
    const type = desc.createType?.toLowerCase();
    if (!type || !SUPPORTED_SUBFORMATS.has(type)) return 'Unsupported subformat';
    if (desc.nonAscii || desc.ambiguousType) return 'Invalid VMDK descriptor data';
    // qemu follows a parent as qcow2 follows a backing file: another host file, or a URL (json: names).
    // It looks for one where it reads it, which for a sparse extent may run past the declared descriptor.
    for (const text of [desc.text, this.parentText()]) {
      if (text.includes('parentfilenamehint')) return PARENT;
      // oslo reads parentCID as a line of its own; qemu wherever `parentCID=` stands (sscanf after strstr).
      const cids = [/^[ \t]*parentcid[ \t]*=[ \t]*"?([^"\s]*)/m.exec(text)?.[1], /parentcid=\s*([0-9a-f]+)/.exec(text)?.[1]];
      if (cids.some((cid) => cid !== undefined && cid !== 'ffffffff')) return PARENT;
    }
    let extents = 0;
    let unsafeExtent = false;
    for (const raw of desc.text.split('\n')) {
      const line = pyStrip(raw);
      if (line === '' || line.startsWith('#') || line.startsWith('ddb')) continue;
      const eq = line.indexOf('=');
      if (eq >= 0 && !line.slice(0, eq).includes(' ')) continue; // key=value header field
      if (EXTENT_ACCESS.has(line.split(' ')[0] ?? '')) {
        extents++;
        // A slash means a path or URL: qemu would read another host file or a remote resource.
        if (line.includes('/')) unsafeExtent = true;
        continue;
      }
      return 'Invalid VMDK descriptor data';
    }
    if (unsafeExtent) return 'Invalid extent filenames found';
    if (extents === 0) return 'No extents found';
    return null;
  }

  /** Sparse: the bytes qemu searches for a parent, up to their first NUL, lower-cased ('' for text). */
  private parentText(): string {
    const data = this.parentRegion?.bytes ?? Buffer.alloc(0);
    const nul = data.indexOf(0);
    return (nul >= 0 ? data.subarray(0, nul) : data).toString('latin1').toLowerCase();
  }

  private checkFooter(): string | null {
    const tail = this.tail!.bytes();
    if (tail.length < FOOTER_BYTES || !this.sparse) return 'Footer not found';
    const h = this.sparse;
    const f = parseSparseHeader(tail, SECTOR);
    if (h.signature !== f.signature) return 'Header and footer signature do not match';
    if (h.version !== f.version) return 'Header and footer versions do not match';
    if (h.descriptorSector !== f.descriptorSector || h.descriptorSectors !== f.descriptorSectors) {
      return 'Footer specifies a different descriptor than header';
    }
    // qemu takes the whole header from the footer: its capacity is the disk's.
    if (tail.readBigUInt64LE(SECTOR + 12) !== this.capacitySectors) return 'Footer specifies a different capacity than header';
    if (f.gdOffset === GD_AT_END) return 'Footer indicates another footer';
    if (!isMarker(tail.subarray(0, SECTOR), MARKER_FOOTER, false)) return 'Footer marker is invalid';
    if (!isMarker(tail.subarray(2 * SECTOR), MARKER_EOS, true)) return 'End-of-stream marker is invalid';
    return null;
  }
}

/**
 * qemu's probe of a text descriptor: comment lines (whatever bytes they hold) and blank lines, then
 * `version=1`, `2` or `3` on a line of its own. A probe that runs out of bytes in comments counts too.
 */
function qemuProbesTextDescriptor(head: Buffer): boolean {
  let p = 0;
  while (p < head.length) {
    if (head[p] === 0x23) {
      const eol = head.indexOf(0x0a, p);
      if (eol < 0) return true;
      p = eol + 1;
    } else if (head[p] === 0x20) {
      while (p < head.length && head[p] === 0x20) p++;
      if (p < head.length && head[p] === 0x0d) p++;
      if (p >= head.length) return true;
      if (head[p] !== 0x0a) return false;
      p++;
    } else {
      return /^version=[123]\r?\n/.test(head.toString('latin1', p, p + 11));
    }
  }
  return true;
}

/** A stream marker sector: u64 value, u32 size (0), u32 type, then 496 zero bytes. */
function isMarker(sector: Buffer, type: number, valueMustBeZero: boolean): boolean {
  if (valueMustBeZero && sector.readBigUInt64LE(0) !== 0n) return false;
  if (sector.readUInt32LE(8) !== 0 || sector.readUInt32LE(12) !== type) return false;
  for (let i = 16; i < SECTOR; i++) if (sector[i] !== 0) return false;
  return true;
}

/**
 * createType as qemu reads it: after the first `createType` (case-sensitive, anywhere), two characters
 * on (`="`), up to the next quote; null when qemu finds none.
 */
function qemuCreateType(original: string): string | null {
  const at = original.indexOf('createType');
  if (at < 0) return null;
  const start = at + 'createType'.length + 2;
  const end = original.indexOf('"', start);
  return start < original.length && end >= 0 ? original.slice(start, end) : null;
}

/** createType="..." (case-insensitive key); null when absent or longer than oslo accepts (64). */
function findCreateType(original: string, lower: string): string | null {
  const key = 'createtype="';
  const at = lower.indexOf(key);
  if (at < 0) return null;
  const start = at + key.length;
  const end = lower.indexOf('"', start);
  if (end < 0 || end - start >= 64) return null;
  return original.slice(start, end);
}
