import { Transform, type TransformCallback } from 'node:stream';
import { INGEST_BUFFER_BYTES } from '../ingest/buffers.ts';

// The hook the ingest pipeline feeds as bytes pass. For now it knows just enough to report
// virtual_size for raw and qcow2 (what Glance Zed does on upload); the safety checks of the format
// inspection issue plug in here without touching the pipeline.

export interface InspectionResult {
  format: string | null;
  virtualSize: number | null;
}

const QCOW2_MAGIC = 0x514649fb;
const HEADER_BYTES = 512;

export class InspectingStream extends Transform {
  private header = Buffer.alloc(0);
  private total = 0;

  constructor(private readonly claimedFormat: string | null) {
    super({ highWaterMark: INGEST_BUFFER_BYTES });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.header.length < HEADER_BYTES) {
      this.header = Buffer.concat([this.header, chunk.subarray(0, HEADER_BYTES - this.header.length)]);
    }
    this.total += chunk.length;
    callback(null, chunk);
  }

  result(): InspectionResult {
    if (this.header.length >= 32 && this.header.readUInt32BE(0) === QCOW2_MAGIC) {
      const size = this.header.readBigUInt64BE(24);
      return { format: 'qcow2', virtualSize: size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(size) : null };
    }
    if (this.claimedFormat === 'raw') return { format: 'raw', virtualSize: this.total };
    return { format: null, virtualSize: null };
  }
}
