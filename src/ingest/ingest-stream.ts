import { Transform, type TransformCallback } from 'node:stream';
import { FormatDetector } from '../formats/inspector.ts';
import type { FormatReport } from '../formats/types.ts';
import { INGEST_BUFFER_BYTES } from './buffers.ts';
import { Hasher, type Digests } from './hashing.ts';
import { SizeLimitExceeded } from './limit.ts';

export interface IngestChecks {
  /** Bytes allowed; one more fails the stream before it goes on. */
  limit: number;
  /** Told the running byte count as data arrives. */
  onBytes?: ((bytes: number) => void) | undefined;
  /** Digests to compute (on a worker); null for none. */
  algorithms: string[] | null;
  inspect: boolean;
  /** Judges the inspectors' report after the last byte, before the end of the stream goes on; throws to refuse. */
  verdict?: ((report: FormatReport) => void) | undefined;
}

/**
 * Every check on incoming bytes in one stream stage: the size limit, the digests, format inspection
 * and, at the end, the verdict on the format. One stage rather than one per check, because each stage
 * of a Node stream pipeline costs its own callbacks and events for every 64 KiB chunk.
 */
export class IngestStream extends Transform {
  bytes = 0;
  digests: Digests | null = null;
  report: FormatReport | null = null;
  /** It failed by one of its own checks (or its hash worker), not torn down from outside. */
  failedItself = false;
  private tornDown = false;
  private readonly hasher: Hasher | null;
  private readonly detector: FormatDetector | null;

  constructor(private readonly checks: IngestChecks) {
    super({ highWaterMark: INGEST_BUFFER_BYTES });
    this.hasher = checks.algorithms ? new Hasher(checks.algorithms, (err) => this.fail(err)) : null;
    this.detector = checks.inspect ? new FormatDetector() : null;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.checks.limit) return this.refuse(callback, new SizeLimitExceeded(this.checks.limit));
    this.checks.onBytes?.(this.bytes);
    this.detector?.feed(chunk);
    const wait = this.hasher?.update(chunk);
    if (wait)
      wait.then(
        () => callback(null, chunk),
        (err: unknown) => this.refuse(callback, err),
      );
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.report = this.detector?.finish() ?? null;
      if (this.report) this.checks.verdict?.(this.report);
    } catch (err) {
      return this.refuse(callback, err);
    }
    if (!this.hasher) return callback();
    this.hasher.end().then(
      (digests) => {
        this.digests = digests;
        callback();
      },
      (err: unknown) => this.refuse(callback, err),
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // From outside (the store, the pipeline): what the aborted hasher rejects next is not a failure of its own.
    if (!this.failedItself) this.tornDown = true;
    this.hasher?.abort(err);
    callback(err);
  }

  private refuse(callback: TransformCallback, err: unknown): void {
    if (!this.tornDown) this.failedItself = true;
    callback(err instanceof Error ? err : new Error(String(err)));
  }

  private fail(err: Error): void {
    this.failedItself = true;
    if (!this.destroyed) this.destroy(err);
  }
}
