import { Transform, type TransformCallback } from 'node:stream';
import { INGEST_BUFFER_BYTES } from './buffers.ts';

export class SizeLimitExceeded extends Error {
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes`);
    this.name = 'SizeLimitExceeded';
  }
}

/** Fails the stream as soon as byte limit+1 arrives, before it is written anywhere. */
export class SizeLimit extends Transform {
  bytes = 0;

  constructor(
    private readonly limit: number,
    private readonly onBytes?: (bytes: number) => void,
  ) {
    super({ highWaterMark: INGEST_BUFFER_BYTES });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) return callback(new SizeLimitExceeded(this.limit));
    this.onBytes?.(this.bytes);
    callback(null, chunk);
  }
}
