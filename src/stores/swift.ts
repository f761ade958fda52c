import { Readable } from 'node:stream';
import { keepAliveAgents, type HttpResponse } from '../net/http-client.ts';
import { ConfigError } from '../config/index.ts';
import { processWarning, StoreError, type ByteRange, type KeepKey, type StoreDriver, type Warn, type WriteOptions, type WriteResult } from './driver.ts';
import { ChunkReader } from './chunk-reader.ts';
import { SwiftSession, isTrue, md5 } from './swift-session.ts';
import { statusCode, toStoreError } from './swift-errors.ts';
import { accountOf, type SwiftAuth } from './swift-login.ts';
import { SwiftContainers } from './swift-containers.ts';
import { orphanedSegments } from './swift-orphans.ts';
import { putStreamed, writeSegments } from './swift-upload.ts';
import { accountAddress, parseSwiftLocation, type SwiftLocationScope } from './swift-locations.ts';

const MiB = 1024 * 1024;
/** Objects whose data ends within this many bytes are written as one plain object (buffered in memory). */
const INLINE_LIMIT = 4 * MiB;
/** Swift's default max_file_size: no single object (so no segment) may be larger. */
const MAX_SEGMENT_SIZE = 5 * 1024 * MiB;

export interface SwiftStoreOptions {
  /** The account: tempauth (e.g. http://127.0.0.1:8080/auth/v1.0, user test:tester) or Keystone v3. */
  auth: SwiftAuth;
  container: string;
  /** Where what goes wrong beside a write that succeeds is reported (segments that could not be removed). */
  warn?: Warn;
  /** Create the container (and its `_segments` container) on the first write. */
  createContainerOnPut?: boolean;
  /** Bytes per segment of a static large object (default Glance's 200 "MB" of 1000 KiB, at most 5 GiB). */
  segmentSize?: number;
  /** Data of a known size below this many bytes is written as one object (default Glance's 5120 "MB"). */
  largeObjectSize?: number;
  /** A read whose connection breaks resumes where it stopped (a Range request) this many times (default 0). */
  retryGetCount?: number;
  /** A token this close to its expiry is renewed before a request (default 60 s). */
  expireSoonMs?: number;
  /** Use this storage URL instead of the one the auth service returns (Glance's swift_store_endpoint). */
  endpoint?: string;
  /** Skip TLS certificate checks (Glance's swift_store_auth_insecure). */
  insecure?: boolean;
  /** CA certificates (PEM) the auth service's and Swift's certificates are checked against (swift_store_cacert). */
  ca?: Buffer;
  /** The glance-swift.conf reference of the account: `swift+config://` locations of other references are not this store's. */
  reference?: string;
  /**
   * Glance's swift_store_multiple_containers_seed: Glance kept each image in `<container>_<the first
   * seed characters of its id>`; such locations are read and deleted (new data goes to the container).
   */
  containerSeed?: number;
}

/**
 * Objects in one OpenStack Swift container through the Swift API, authenticated with tempauth or Keystone v3.
 *
 * Data whose size is known beforehand and below `largeObjectSize` is streamed as one object (as Glance
 * does), as is data of unknown size that ends within 4 MiB (buffered). Other data is streamed (nothing
 * but the current chunk is held in memory) into segments of `segmentSize` bytes in `<container>_segments`,
 * each checked against its MD5, and becomes visible only when the static large object manifest is PUT
 * last (Glance writes a dynamic one). If the write fails or is aborted, the segments written so far are
 * deleted. When a write replaces a large object, the old object's segments are deleted after the new
 * object is in place.
 *
 * Locations are `swift://<container>/<key>`: unlike Glance's `swift+http://user:key@auth/container/obj`
 * no credentials or auth address go into the url (they would be stored in the database and shown to
 * admins). Glance's forms `swift://`, `swift+http://`, `swift+https://` and `swift+config://` with
 * credentials and host are accepted for reading and deleting when the container is this store's.
 */
export class SwiftStoreDriver implements StoreDriver {
  readonly type = 'swift';
  readonly capabilities = { writable: true, rangeRead: true, adopt: false, localPartials: false, closable: true, list: true, orphans: true };
  readonly container: string;
  readonly segmentContainer: string;
  readonly places: readonly string[];
  readonly segmentSize: number;
  readonly largeObjectSize: number;
  private readonly retryGetCount: number;
  private readonly swift: SwiftSession;
  /** Segment prefixes known to make an object (sweepOrphans reads each object's manifest once). */
  private readonly wholeWrites = new Set<string>();
  private readonly containers: SwiftContainers;
  /** The account and container its locations name (swift-locations.ts). */
  private readonly scope: SwiftLocationScope;

  constructor(opts: SwiftStoreOptions) {
    try {
      new URL(opts.auth.url);
    } catch {
      throw new ConfigError(`swift auth address '${opts.auth.url}' is not a URL`);
    }
    if (!opts.container || opts.container.includes('/')) throw new ConfigError(`invalid swift container name '${opts.container}'`);
    this.container = opts.container;
    this.scope = {
      container: opts.container,
      reference: opts.reference?.toLowerCase(),
      authAddress: accountAddress(opts.auth.url),
      containerSeed: opts.containerSeed ?? 0,
    };
    this.segmentSize = opts.segmentSize ?? 200 * 1000 * 1024;
    if (!Number.isInteger(this.segmentSize) || this.segmentSize < 1 || this.segmentSize > MAX_SEGMENT_SIZE) {
      throw new ConfigError(`swift segment size must be between 1 byte and 5 GiB (got ${this.segmentSize})`);
    }
    this.largeObjectSize = opts.largeObjectSize ?? 5120 * 1000 * 1024;
    this.retryGetCount = opts.retryGetCount ?? 0;
    this.swift = new SwiftSession(opts.auth, opts.endpoint, keepAliveAgents({ insecure: opts.insecure, ca: opts.ca }), opts.expireSoonMs ?? 60_000);
    this.containers = new SwiftContainers(this.swift, opts.container, opts.createContainerOnPut ?? false, opts.warn ?? processWarning);
    this.segmentContainer = this.containers.segmentContainer;
    // The account: its storage URL when the operator names it, else the login's at this auth address.
    const account = opts.endpoint ? opts.endpoint.replace(/\/+$/, '') : `${this.scope.authAddress}/${accountOf(opts.auth)}`;
    this.places = [this.container, this.segmentContainer].map((container) => `swift:${account}/${container}`);
  }

  /** Closes the driver's connections. */
  async close(): Promise<void> {
    this.swift.agents.close();
  }

  async write(key: string, source: Readable, opts: WriteOptions = {}): Promise<WriteResult> {
    const { signal } = opts;
    const aborted = () => new StoreError('ABORTED', `write of ${key} aborted`);
    if (signal?.aborted) {
      source.destroy();
      throw aborted();
    }
    // Stop reading the source at once on abort; in-flight requests get the signal too. Until the
    // source is read its errors would have no listener: they are seen (and kept) by the reader.
    const onAbort = () => source.destroy(Object.assign(new Error('write aborted'), { name: 'AbortError' }));
    const ignore = () => {};
    source.on('error', ignore);
    signal?.addEventListener('abort', onAbort, { once: true });
    const reader = new ChunkReader(source);
    const written: string[] = []; // segment names, including one whose PUT may be under way
    try {
      await this.containers.ensureContainers();
      const objectPath = this.containers.objectPath(this.container, key);
      // Glance's rule: data of a known size below large_object_size is one object, streamed.
      const { sizeHint } = opts;
      if (sizeHint !== undefined && sizeHint > 0 && sizeHint < this.largeObjectSize) {
        const old = await this.containers.oldSegments(key);
        const { bytes } = await putStreamed(this.swift, objectPath, `writing ${key}`, [], reader, sizeHint, signal, true);
        await this.finish(key, old, signal);
        return { url: this.urlFor(key), size: bytes };
      }
      // Data that ends within the in-memory limit is one object too, unless it reaches large_object_size.
      const first = await reader.readUpTo(Math.min(INLINE_LIMIT, this.segmentSize));
      if (reader.ended && first.reduce((n, chunk) => n + chunk.length, 0) < this.largeObjectSize) {
        const data = Buffer.concat(first);
        const old = await this.containers.oldSegments(key);
        await this.swift.expect(
          await this.swift.call('PUT', objectPath, {
            body: data,
            headers: { 'content-type': 'application/octet-stream', etag: md5(data) },
            signal,
          }),
          [201],
          `writing ${key}`,
        );
        await this.finish(key, old, signal);
        return { url: this.urlFor(key), size: data.length };
      }

      // Segments are streamed and cannot be sent again after a 401: a bodiless request first renews a
      // token Swift no longer knows (a restarted Swift or memcached, a revocation).
      const head = await this.swift.call('HEAD', `/${encodeURIComponent(this.segmentContainer)}`);
      await head.body.dump();
      await this.swift.expect(head, [200, 204], `checking container ${this.segmentContainer}`);
      const { segments, size } = await writeSegments(this.swift, this.containers, key, first, reader, { segmentSize: this.segmentSize, signal, written });
      if (signal?.aborted) throw aborted();

      const old = await this.containers.oldSegments(key);
      await this.swift.expect(
        await this.swift.call('PUT', `${objectPath}?multipart-manifest=put`, {
          body: JSON.stringify(segments),
          headers: { 'content-type': 'application/octet-stream' },
          signal,
        }),
        [201],
        `writing the manifest of ${key}`,
      );
      written.length = 0; // the segments belong to the object now
      await this.finish(key, old, signal);
      return { url: this.urlFor(key), size };
    } catch (err) {
      source.destroy();
      await this.containers.removeSegments(written);
      if (signal?.aborted)
        throw err instanceof StoreError && err.code === 'ABORTED' ? err : new StoreError('ABORTED', `write of ${key} aborted`, { cause: err });
      // A failing source is the caller's error (a client that went away, a size limit): pass it on as is.
      if (reader.error && (err === reader.error || !(err instanceof StoreError))) throw reader.error;
      const mapped = toStoreError(err, `writing ${key} to container ${this.container}`);
      if (mapped.code === 'NOT_FOUND') {
        // A missing container: a configuration problem, not a missing image.
        throw new StoreError(
          'FAILED',
          `${mapped.message} (do containers ${this.container} and ${this.segmentContainer} exist? see swift_store_create_container_on_put)`,
          { cause: err },
        );
      }
      throw mapped;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      source.off('error', ignore);
    }
  }

  /** After a write: aborted at the very end → remove the object again; else drop the replaced object's segments. */
  private async finish(key: string, old: string[], signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) {
      await this.delete(this.urlFor(key)).catch(() => {});
      throw new StoreError('ABORTED', `write of ${key} aborted`);
    }
    await this.containers.removeSegments(old);
  }

  /** The url an object of this key has (or would have) in this store. */
  urlFor(key: string): string {
    return `swift://${this.container}/${key}`;
  }

  async read(url: string, range?: ByteRange): Promise<Readable> {
    const first = await this.open(url, range);
    const length = Number(first.headers['content-length']);
    if (this.retryGetCount === 0 || !Number.isSafeInteger(length)) return first.body;
    const out = Readable.from(this.resuming(url, first, range?.start ?? 0, length), { objectMode: false });
    // Given up before its first read, the generator never starts: the response it was given goes here.
    out.once('close', () => first.body.destroy());
    return out;
  }

  /** The GET of an object, or of a range of it (only while its etag is `ifMatch`), answered 200 or 206 (its body not yet read). */
  private async open(url: string, range?: ByteRange, ifMatch?: string): Promise<HttpResponse> {
    const path = this.pathOf(url);
    try {
      const res = await this.swift.call('GET', path, {
        headers: { ...(range ? { range: `bytes=${range.start}-${range.end}` } : {}), ...(ifMatch ? { 'if-match': ifMatch } : {}) },
      });
      await this.swift.expect(res, range ? [200, 206] : [200], `reading ${url}`);
      if (range && res.statusCode === 200) {
        // The server ignored the range (it should not): never hand out the wrong bytes.
        res.body.destroy();
        throw new StoreError('FAILED', `reading ${url}: the server ignored the range`);
      }
      return res;
    } catch (err) {
      throw toStoreError(err, `reading ${url}`);
    }
  }

  /**
   * The `length` bytes from `start` on, read again from where they stopped when the connection breaks,
   * up to swift_store_retry_get_count times (glance_store's swift_retry_iter, which also resumes with a
   * Range request). A resumed read asks for the object the first one read (If-Match its etag), so that
   * an object replaced meanwhile fails the read instead of splicing two versions. Past the retries, the
   * read fails: bytes are never silently missing.
   */
  private async *resuming(url: string, first: HttpResponse, start: number, length: number): AsyncGenerator<Buffer> {
    const etag = typeof first.headers.etag === 'string' ? first.headers.etag : undefined;
    let body = first.body;
    let done = 0;
    try {
      for (let retries = 0; ; retries++) {
        let broken: unknown = null;
        try {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            done += chunk.length;
            yield chunk;
          }
        } catch (err) {
          broken = err;
        }
        if (done >= length) return;
        if (retries >= this.retryGetCount) {
          throw broken ?? new StoreError('FAILED', `reading ${url}: the data ended after ${done} of ${length} bytes`);
        }
        body = (await this.open(url, { start: start + done, end: start + length - 1 }, etag)).body;
      }
    } finally {
      body.destroy();
    }
  }

  async delete(url: string): Promise<void> {
    const { container, key } = this.locate(url);
    const path = this.containers.objectPath(container, key);
    try {
      const head = await this.swift.call('HEAD', path);
      await head.body.dump();
      if (head.statusCode === 404) return;
      await this.swift.expect(head, [200], `checking ${url}`);
      if (isTrue(head.headers['x-static-large-object'])) {
        // Deletes the manifest and every segment it names (Swift's bulk delete through slo).
        const res = await this.swift.call('DELETE', `${path}?multipart-manifest=delete`, { headers: { accept: 'application/json' } });
        await this.swift.expect(res, [200], `deleting ${url}`);
        const report = (await res.body.json()) as { 'Response Status'?: string; Errors?: unknown[] };
        const status = Number(String(report['Response Status'] ?? '').split(' ')[0]);
        if (status !== 200 && status !== 404) {
          throw new StoreError(statusCode(status), `deleting ${url}: ${report['Response Status']} ${JSON.stringify(report.Errors ?? [])}`);
        }
        return;
      }
      const manifest = head.headers['x-object-manifest'];
      if (typeof manifest === 'string') await this.containers.deleteDynamicSegments(container, key, manifest);
      const res = await this.swift.call('DELETE', path);
      await this.swift.expect(res, [204, 404], `deleting ${url}`);
    } catch (err) {
      throw toStoreError(err, `deleting ${url}`);
    }
  }

  async stat(url: string): Promise<number | null> {
    const path = this.pathOf(url);
    try {
      const res = await this.swift.call('HEAD', path);
      await res.body.dump();
      if (res.statusCode === 404) return null;
      await this.swift.expect(res, [200], `checking ${url}`);
      return Number(res.headers['content-length'] ?? 0);
    } catch (err) {
      throw toStoreError(err, `checking ${url}`);
    }
  }

  owns(url: string): boolean {
    return this.parse(url) !== null;
  }

  objectOf(url: string): string | null {
    return this.parse(url)?.key ?? null;
  }

  async list(prefix: string): Promise<string[]> {
    try {
      return await this.containers.names(this.container, prefix);
    } catch (err) {
      throw toStoreError(err, `listing container ${this.container}`);
    }
  }

  /** Deletes the segments of writes that died (see swift-orphans.ts); how many writes they were. */
  async sweepOrphans(keep: KeepKey, minAgeMs: number): Promise<number> {
    try {
      const writes = await orphanedSegments(this.containers, keep, minAgeMs, this.wholeWrites);
      await this.containers.removeSegments(writes.flat());
      return writes.length;
    } catch (err) {
      throw toStoreError(err, `sweeping container ${this.segmentContainer}`);
    }
  }

  properties(): Record<string, unknown> {
    // In bytes, as Glance's discovery shows them.
    return { container: this.container, large_object_size: this.largeObjectSize, large_object_chunk_size: this.segmentSize };
  }

  private locate(url: string): { container: string; key: string } {
    const found = this.parse(url);
    if (found === null) throw new StoreError('INVALID_URL', `${url} is not a location in container ${this.container}`);
    return found;
  }

  private pathOf(url: string): string {
    const { container, key } = this.locate(url);
    return this.containers.objectPath(container, key);
  }

  /** The container and key of a url of this store's account and container, or null. */
  private parse(url: string): { container: string; key: string } | null {
    return parseSwiftLocation(url, this.scope);
  }
}
