import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../stores/store.ts';
import { StoreError } from '../stores/driver.ts';
import { gazeError, GazeError } from '../domain/errors.ts';
import { SizeLimitExceeded } from './limit.ts';
import { IngestStream } from './ingest-stream.ts';
import { judge, type FormatPolicy } from '../formats/verdict.ts';
import type { FormatReport } from '../formats/types.ts';
import type { ByteBudget } from '../quota/quotas.ts';

export interface IngestRequest {
  source: Readable;
  /** Object key in the store (the image id). */
  key: string;
  store: Store;
  sizeCap: number;
  /** `hashing_algorithm` for os_hash_value (with md5 for `checksum`); null: no digests (staging). */
  hashAlgo: string | null;
  /** Judge the data's real format against this claim (store writes of container_format bare); null: don't inspect. */
  formatCheck?: FormatCheck | null;
  /** Inspect even without a claim to judge (staging keeps the report for the import). */
  inspect?: boolean;
  signal?: AbortSignal;
  /** The size announced beforehand (Content-Length, the staged size), if any. */
  sizeHint?: number;
  /** The url reserved for the data before the write (Store.urlFor): the write puts it there. */
  at?: string;
  /** Told the running byte count as data arrives (progress reports). */
  onBytes?: (bytes: number) => void;
  /** A quota's remaining bytes: the stream is cut with the quota's error when it goes beyond. */
  budget?: ByteBudget | null;
}

export interface FormatCheck {
  diskFormat: string | null;
  policy: FormatPolicy;
}

/** What inspection made of accepted data: the detected format and the virtual size to record. */
export interface InspectionResult {
  format: string | null;
  virtualSize: number | null;
}

export interface Digests {
  checksum: string;
  hashAlgo: string;
  hashValue: string;
}

export interface IngestResult {
  size: number;
  digests: Digests | null;
  /** Null when the data was not judged. */
  inspection: InspectionResult | null;
  /** What the inspectors found, when the data was inspected. */
  report: FormatReport | null;
  location: { storeId: string; url: string };
  /** What the judge accepted but wants said (for the log). */
  warnings: string[];
}

/**
 * The one path every incoming byte takes: one stage of checks (size limit, hashing on worker threads,
 * format inspection) → store write. Nothing is visible in the store unless the whole stream made it through.
 */
export async function ingest(req: IngestRequest): Promise<IngestResult> {
  const quotaFirst = req.budget != null && req.budget.bytes < req.sizeCap;
  const check = req.formatCheck ?? null;
  let inspection: InspectionResult | null = null;
  const warnings: string[] = [];
  // The verdict comes once the inspectors saw the last byte and before the store sees the end of the
  // stream, so refused data never becomes a stored object.
  const checked = new IngestStream({
    limit: quotaFirst ? req.budget!.bytes : req.sizeCap,
    onBytes: req.onBytes,
    algorithms: req.hashAlgo ? ['md5', req.hashAlgo] : null,
    inspect: check !== null || req.inspect === true,
    verdict: check
      ? (report) => {
          const accepted = acceptFormat(report, check);
          warnings.push(...accepted.warnings);
          inspection = accepted.inspection;
        }
      : undefined,
  });

  // Errors reach us through pipeline() or the write promise; these listeners keep a late one from being
  // an uncaught 'error' event, and note which side failed first: the data (its source, a limit, the
  // inspector) or the store (which tears down its input first).
  // A source that failed or closed before this began (a client gone while the request waited) did so
  // before any store was involved.
  let firstFailure = (req.source.destroyed && !req.source.readableEnded ? 'data' : null) as 'data' | 'store' | null;
  // A failure of the source counts unless the store tore its input down first (a driver that stops
  // reading when its service fails): the pipeline then destroys the source with an error of its own.
  req.source.once('error', () => {
    if (!checked.destroyed) firstFailure ??= 'data';
  });
  // A source may also just close before its end (a stream destroyed without an error).
  req.source.once('close', () => {
    if (!req.source.readableEnded && !checked.destroyed) firstFailure ??= 'data';
  });
  checked.on('error', () => {
    firstFailure ??= checked.failedItself ? 'data' : 'store';
  });
  const write = req.store.write(req.key, checked, { signal: req.signal, sizeHint: req.sizeHint, at: req.at });
  // A store that fails (even before reading a byte) stops the whole flow at once instead of stalling it.
  write.catch((err) => checked.destroy(err));
  try {
    await pipeline(req.source, checked, { signal: req.signal });
    const written = await write;
    const digests = checked.digests;
    return {
      size: written.size,
      digests: digests && req.hashAlgo ? { checksum: digests.md5!, hashAlgo: req.hashAlgo, hashValue: digests[req.hashAlgo]! } : null,
      inspection,
      report: checked.report,
      location: { storeId: req.store.id, url: written.url },
      warnings,
    };
  } catch (err) {
    checked.destroy();
    const writeError = await write.then(
      () => null,
      (e: unknown) => e,
    );
    // When the store failed first, its own error says more than what the torn-down streams report;
    // otherwise the data's failure (a download cut short, the size cap, a refusal) is the cause.
    const storeCaused = writeError instanceof StoreError && (firstFailure === 'store' || firstFailure === null);
    const cause = storeCaused && !(err instanceof SizeLimitExceeded || err instanceof GazeError) ? writeError : err;
    if (cause instanceof SizeLimitExceeded && quotaFirst) throw req.budget!.exceeded(checked.bytes);
    throw translateIngestError(cause);
  }
}

/** The judge's verdict on what the inspectors found: what to record, or IMAGE_FORMAT_REJECTED. */
export function acceptFormat(report: FormatReport, check: FormatCheck): { inspection: InspectionResult; warnings: string[] } {
  const verdict = judge(report, check.diskFormat, check.policy);
  if (!verdict.accepted) throw gazeError('IMAGE_FORMAT_REJECTED', verdict.reason);
  return { inspection: { format: report.format, virtualSize: verdict.virtualSize }, warnings: verdict.warnings };
}

export class IngestAborted extends Error {
  constructor(cause: unknown) {
    super('the incoming data stream ended early', { cause });
    this.name = 'IngestAborted';
  }
}

/**
 * A store's refusal of an upload's or a stage's data, as the API answers it: a store that takes no data
 * 410, any other failure 503 (full and unwritable ones were answered by translateIngestError already).
 */
export function storeWriteRefusal(err: StoreError): GazeError {
  if (err.code === 'READ_ONLY') return gazeError('STORE_ADD_DISABLED').withCause(err);
  return gazeError('SERVICE_UNAVAILABLE', `Error storing image data: ${err.publicMessage}`).withCause(err);
}

/** What a failed write means to the API (store errors with their codes; a cut-off source). */
export function translateIngestError(err: unknown): Error {
  if (err instanceof GazeError) return err;
  if (err instanceof SizeLimitExceeded) return gazeError('IMAGE_TOO_LARGE');
  if (err instanceof StoreError) {
    // The client sees no path; the cause (with it) is for the log.
    if (err.code === 'FULL') return gazeError('STORAGE_FULL', err.publicMessage).withCause(err);
    if (err.code === 'PERMISSION') return gazeError('STORAGE_PERMISSION', err.publicMessage).withCause(err);
    if (err.code === 'ABORTED') return new IngestAborted(err);
    return err;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError' || ['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'ECONNABORTED', 'EPIPE'].includes(e?.code ?? '')) {
    return new IngestAborted(err);
  }
  return err instanceof Error ? err : new Error(String(err));
}
