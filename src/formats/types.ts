// The contract between the streaming inspection engine (inspector.ts) and the one-file-per-format
// inspectors. Every inspector sees every byte once, in order, and keeps only the few regions it needs,
// so inspecting costs bounded memory whatever the image size.

/** A named safety check of a format that the data failed (spec plugins-and-safety §2.2). */
export interface SafetyFailure {
  /** Stable check name, as oslo.utils names it: backing_file, data_file, unknown_features, descriptor, footer, mbr, ... */
  check: string;
  /** Human reason, e.g. "Image has a backing file". */
  message: string;
}

export interface FormatInspector {
  /** The disk_format name this inspector recognises (qcow2, vmdk, gpt, ...). */
  readonly format: string;
  /** Bytes [offset, offset + chunk.length) of the stream; called for every chunk, in order. */
  feed(chunk: Buffer, offset: number): void;
  /** The stream ended after `totalSize` bytes. */
  finish(totalSize: number): void;
  /** Whether the data is this format (final once finish() ran). */
  matches(): boolean;
  /** Virtual disk size in bytes when known. */
  virtualSize(): number | null;
  /** The safety checks the data failed; empty when it passes (only asked when matches()). */
  safetyFailures(): SafetyFailure[];
  /** The variant inside the format where one matters to policy (vmdk create-type), else null. */
  subformat(): string | null;
}

/** What inspection found in a whole stream. */
export interface FormatReport {
  /** The detected format: 'raw' when no richer format matched; null when detection failed. */
  format: string | null;
  /** Virtual size of the detected format (raw: the byte count); null when unknown. */
  virtualSize: number | null;
  /** Bytes seen. */
  size: number;
  /** Safety checks the detected format failed. */
  failures: SafetyFailure[];
  /** Variant of the detected format (vmdk create-type), when it has one. */
  subformat: string | null;
  /** Why detection failed, e.g. "Multiple formats detected: iso,qcow2"; null when it did not. */
  error: string | null;
}

/**
 * Collects the bytes of one fixed region [offset, offset + length) of a stream as chunks go by, so an
 * inspector can ask for a header or a table without holding anything else.
 */
export class CapturedRegion {
  readonly data: Buffer;
  private filled = 0;

  constructor(
    readonly offset: number,
    readonly length: number,
  ) {
    this.data = Buffer.alloc(length);
  }

  /** Copies whatever part of the region this chunk holds. */
  feed(chunk: Buffer, chunkOffset: number): void {
    if (this.complete) return;
    const start = Math.max(this.offset, chunkOffset);
    const end = Math.min(this.offset + this.length, chunkOffset + chunk.length);
    if (start >= end) return;
    chunk.copy(this.data, start - this.offset, start - chunkOffset, end - chunkOffset);
    // Chunks arrive in order, so the region fills from its start without gaps.
    this.filled = end - this.offset;
  }

  get complete(): boolean {
    return this.filled >= this.length;
  }

  /** The bytes captured so far (all of the region once complete). */
  get bytes(): Buffer {
    return this.data.subarray(0, this.filled);
  }
}

/**
 * A size in bytes as a number: Infinity when it cannot be represented exactly (beyond 2^53), so that
 * the verdict refuses it as too large instead of losing it.
 */
export function exactSize(value: bigint): number {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : Number.POSITIVE_INFINITY;
}
