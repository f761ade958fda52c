import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { StoreError } from './driver.ts';
import type { ChunkReader } from './chunk-reader.ts';
import type { SwiftContainers } from './swift-containers.ts';
import { newWriteId } from './swift-orphans.ts';
import type { SwiftSession } from './swift-session.ts';

// The streamed PUTs of the Swift driver's writes: one object, or the segments of a static large object.

/** A segment as the static large object manifest lists it. */
export interface Segment {
  path: string;
  etag: string;
  size_bytes: number;
}

/**
 * PUTs `initial` (read ahead) and then the source, up to `limit` bytes in all, as the object at `path`,
 * streamed (only the current chunk is in memory), and checks Swift's etag against the MD5 of the bytes
 * sent. A source that fails breaks the request off before its last chunk, so Swift keeps nothing; an
 * object that arrived corrupted is deleted again. With `exact`, `limit` is the data's announced size:
 * it is sent as the Content-Length (as Glance does), and data of another length fails the write.
 */
export async function putStreamed(
  swift: SwiftSession,
  path: string,
  what: string,
  initial: Buffer[],
  reader: ChunkReader,
  limit: number,
  signal: AbortSignal | undefined,
  exact = false,
): Promise<{ etag: string; bytes: number }> {
  const hash = createHash('md5');
  // Kept: the request that the generator breaks off fails with the socket's own words.
  let wrongLength: StoreError | null = null;
  let bytes = 0;
  const body = Readable.from(
    (async function* () {
      for (const chunk of initial) {
        hash.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
      while (bytes < limit) {
        const chunk = await reader.read(limit - bytes);
        if (!chunk) break;
        // The last bytes of an exact-length PUT are held back until the source has ended: if more data
        // comes, the request is broken off one chunk short, and Swift keeps nothing.
        const last = bytes + chunk.length === limit;
        if (exact && last && (await reader.read(1)) !== null) break;
        hash.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
      if (exact && bytes !== limit) throw (wrongLength = new StoreError('FAILED', `${what}: the data was not the ${limit} bytes announced`));
    })(),
    { objectMode: false },
  );
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', ...(exact ? { 'content-length': String(limit) } : {}) };
  const res = await swift.call('PUT', path, { body, headers, signal }).catch((err: unknown) => {
    throw reader.error ?? wrongLength ?? err;
  });
  if (reader.error || wrongLength) {
    await res.body.dump().catch(() => {});
    throw reader.error ?? wrongLength;
  }
  await swift.expect(res, [201], what);
  const etag = hash.digest('hex');
  const returned = (res.headers.etag as string | undefined)?.replace(/"/g, '');
  if (returned && returned !== etag) {
    const removed = await swift.call('DELETE', path).catch(() => null);
    await removed?.body.dump().catch(() => {});
    throw new StoreError('FAILED', `${what}: the data was corrupted in transit (etag ${returned}, expected ${etag})`);
  }
  return { etag, bytes };
}

/**
 * `first` (read ahead) and the rest of the source as segments of `segmentSize` bytes in the segment
 * container, named `<key>/<write id>/<n>`. Each name is pushed to `written` before its PUT begins, so
 * that the caller can remove them all when the write fails.
 */
export async function writeSegments(
  swift: SwiftSession,
  containers: SwiftContainers,
  key: string,
  first: Buffer[],
  reader: ChunkReader,
  opts: { segmentSize: number; signal: AbortSignal | undefined; written: string[] },
): Promise<{ segments: Segment[]; size: number }> {
  const writeId = newWriteId();
  const segments: Segment[] = [];
  let size = 0;
  let pending = first;
  const limit = await containers.segmentLimit();
  for (let n = 1; ; n++) {
    if (n > limit) {
      throw new StoreError('FULL', `image is larger than ${limit} segments of ${opts.segmentSize} bytes (raise swift_store_large_object_chunk_size)`);
    }
    const name = `${key}/${writeId}/${String(n).padStart(8, '0')}`;
    opts.written.push(name);
    const path = containers.objectPath(containers.segmentContainer, name);
    const { etag, bytes } = await putStreamed(swift, path, `writing segment ${n} of ${key}`, pending, reader, opts.segmentSize, opts.signal);
    segments.push({ path: `/${containers.segmentContainer}/${name}`, etag, size_bytes: bytes });
    size += bytes;
    // Another segment only if there is more data (never an empty one).
    const next = reader.ended ? null : await reader.read(opts.segmentSize);
    if (reader.error) throw reader.error;
    if (!next) return { segments, size };
    pending = [next];
  }
}
