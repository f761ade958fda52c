import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../stores/store.ts';
import { StoreError } from '../stores/driver.ts';
import { gazeError, GazeError } from '../domain/errors.ts';
import { SizeLimit, SizeLimitExceeded } from './limit.ts';
import { HashingStream } from './hashing.ts';
import { InspectingStream, type InspectionResult } from '../formats/inspector.ts';
import { INGEST_BUFFER_BYTES } from './buffers.ts';

export interface IngestRequest {
  source: Readable;
  /** Object key in the store (the image id). */
  key: string;
  store: Store;
  sizeCap: number;
  /** `hashing_algorithm` for os_hash_value (with md5 for `checksum`); null: no digests (staging). */
  hashAlgo: string | null;
  claimedDiskFormat: string | null;
  signal?: AbortSignal;
  /** The size announced beforehand (Content-Length, the staged size), if any. */
  sizeHint?: number;
}

export interface Digests {
  checksum: string;
  hashAlgo: string;
  hashValue: string;
}

export interface IngestResult {
  size: number;
  digests: Digests | null;
  inspection: InspectionResult;
  location: { storeId: string; url: string };
}

/**
 * The one path every incoming byte takes: size limit → hashing (worker threads) → format inspection →
 * store write. Nothing is visible in the store unless the whole stream made it through.
 */
export async function ingest(req: IngestRequest): Promise<IngestResult> {
  const limit = new SizeLimit(req.sizeCap);
  const hashing = req.hashAlgo ? new HashingStream(['md5', req.hashAlgo]) : new PassThrough({ highWaterMark: INGEST_BUFFER_BYTES });
  const inspecting = new InspectingStream(req.claimedDiskFormat);
  const toStore = new PassThrough({ highWaterMark: INGEST_BUFFER_BYTES });

  // Errors reach us through pipeline() or the write promise; this listener keeps a late one from being
  // an uncaught 'error' event.
  toStore.on('error', () => {});
  const write = req.store.write(req.key, toStore, { signal: req.signal, sizeHint: req.sizeHint });
  // A store that fails (even before reading a byte) stops the whole flow at once instead of stalling it.
  write.catch((err) => toStore.destroy(err));
  try {
    await pipeline(req.source, limit, hashing, inspecting, toStore, { signal: req.signal });
    const written = await write;
    const digests = hashing instanceof HashingStream ? await hashing.digests : null;
    return {
      size: written.size,
      digests: digests && req.hashAlgo ? { checksum: digests.md5, hashAlgo: req.hashAlgo, hashValue: digests[req.hashAlgo] } : null,
      inspection: inspecting.result(),
      location: { storeId: req.store.id, url: written.url },
    };
  } catch (err) {
    toStore.destroy();
    const writeError = await write.then(() => null, (e: unknown) => e);
    // A refusal of the data (size cap) is the cause; otherwise a failing store says more than the
    // stream error its failure caused.
    const cause = err instanceof SizeLimitExceeded || err instanceof GazeError || !(writeError instanceof StoreError) ? err : writeError;
    throw translateIngestError(cause);
  }
}

export class IngestAborted extends Error {
  constructor(cause: unknown) {
    super('the incoming data stream ended early', { cause });
    this.name = 'IngestAborted';
  }
}

function translateIngestError(err: unknown): Error {
  if (err instanceof GazeError) return err;
  if (err instanceof SizeLimitExceeded) return gazeError('IMAGE_TOO_LARGE');
  if (err instanceof StoreError) {
    if (err.code === 'FULL') return gazeError('STORAGE_FULL', err.message);
    if (err.code === 'PERMISSION') return gazeError('STORAGE_PERMISSION', err.message);
    if (err.code === 'ABORTED') return new IngestAborted(err);
    return err;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError' || ['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'ECONNABORTED', 'EPIPE'].includes(e?.code ?? '')) {
    return new IngestAborted(err);
  }
  return err instanceof Error ? err : new Error(String(err));
}
