import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ConfigError } from '../config/index.ts';
import { processWarning, StoreError, type ByteRange, type KeepKey, type StoreDriver, type Warn, type WriteOptions, type WriteResult } from './driver.ts';
import { toStoreError } from './s3-errors.ts';
import { orphanedUploads } from './s3-orphans.ts';
import { s3KeyOf } from './s3-url.ts';
import { byteCounter, cancellableClient, S3_TIMEOUT_MS, s3Client } from './s3-client.ts';

const MiB = 1024 * 1024;
/** S3's smallest multipart part (all but the last). */
const MIN_PART_SIZE = 5 * MiB;
/** S3's largest part, and its largest single PUT. */
const MAX_PART_SIZE = 5 * 1024 * MiB;
/** glance_store's default s3_store_large_object_size (100 "MB" of MiB). */
const DEFAULT_LARGE_OBJECT_SIZE = 100 * MiB;

export interface S3StoreOptions {
  /** Endpoint URL, e.g. http://127.0.0.1:8080 or https://s3.example.com. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region?: string;
  /** Create the bucket on the first write when it does not exist (otherwise a write fails). */
  createBucketOnPut?: boolean;
  /**
   * Bytes per multipart part (default 64 MiB). S3 allows 10,000 parts, so 64 MiB parts allow objects up
   * to 625 GiB. Objects that fit in one part are sent with a single PutObject.
   */
  partSize?: number;
  /**
   * Data of a known size below this many bytes is one object (Glance's s3_store_large_object_size,
   * default 100 MiB), sent from memory when it fits in a part, else streamed; other data in parts.
   */
  largeObjectSize?: number;
  /**
   * Parts uploaded at once (default 2). A write holds about (queueSize + 2) × partSize bytes at most
   * (measured: 1 GiB with 64 MiB parts peaked at 423 MiB RSS with 2, 358 MiB with 1, 555 MiB with 4).
   */
  queueSize?: number;
  /** Path-style addressing (http://host/bucket/key, default) rather than virtual-hosted (bucket.host). */
  forcePathStyle?: boolean;
  /** Tries per request (the SDK's retries, default 3); a streamed PUT (one object above a part) is tried once. */
  maxAttempts?: number;
  /** How long connecting, or a connection with nothing moving, may take (default S3_TIMEOUT_MS, a minute). */
  timeoutMs?: number;
  /** Where what goes wrong beside a write is reported (an upload that could not be aborted, the SDK's warnings). */
  warn?: Warn;
}

/**
 * Objects in one S3 bucket (AWS S3, Ceph RGW, Swift's s3api, MinIO …), written with one PUT (data of
 * a known size below large_object_size) or streamed multipart uploads (@aws-sdk/lib-storage), so memory
 * stays bounded whatever the image size.
 *
 * Locations are `s3://<bucket>/<key>`. Unlike Glance (`s3://ACCESS:SECRET@HOST/BUCKET/KEY`) no
 * credentials or host go into the url: they would be stored in the database and shown to admins in
 * `locations`. Reading, stating and deleting also accept Glance's forms (`s3://`, `s3+http://`,
 * `s3+https://` with credentials and host) for this store's bucket and host; the credentials in such a
 * url are ignored and the store's own are used.
 */
export class S3StoreDriver implements StoreDriver {
  readonly type = 's3';
  readonly capabilities = { writable: true, rangeRead: true, adopt: false, localPartials: false, closable: true, list: true, orphans: true };
  readonly bucket: string;
  readonly client: S3Client;
  readonly partSize: number;
  readonly largeObjectSize: number;
  readonly queueSize: number;
  private readonly timeoutMs: number;
  private readonly createBucketOnPut: boolean;
  private readonly warn: Warn;
  private readonly endpointHost: string;
  private bucketReady: Promise<void> | null = null;

  constructor(opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.partSize = opts.partSize ?? 64 * MiB;
    this.queueSize = opts.queueSize ?? 2;
    this.timeoutMs = opts.timeoutMs ?? S3_TIMEOUT_MS;
    this.largeObjectSize = opts.largeObjectSize ?? DEFAULT_LARGE_OBJECT_SIZE;
    if (!Number.isInteger(this.largeObjectSize) || this.largeObjectSize < 1) {
      throw new ConfigError(`s3 large object size must be positive (got ${this.largeObjectSize} bytes)`);
    }
    if (!Number.isInteger(this.partSize) || this.partSize < MIN_PART_SIZE || this.partSize > MAX_PART_SIZE) {
      throw new ConfigError(`s3 part size must be between 5 MiB and 5 GiB (got ${this.partSize} bytes)`);
    }
    if (!Number.isInteger(this.queueSize) || this.queueSize < 1) throw new ConfigError(`s3 queue size must be at least 1 (got ${this.queueSize})`);
    this.createBucketOnPut = opts.createBucketOnPut ?? false;
    this.warn = opts.warn ?? processWarning;
    // glance_store talks plain HTTP to a host given without a scheme (its location scheme is then s3, not
    // s3+https); said, since one may have meant TLS.
    const schemeGiven = /^https?:\/\//i.test(opts.endpoint);
    if (!schemeGiven)
      this.warn(`s3_store_host ${opts.endpoint} names no scheme: it is reached over plain HTTP, as glance_store reaches it (write https:// for TLS)`);
    const endpoint = schemeGiven ? opts.endpoint : `http://${opts.endpoint}`;
    try {
      this.endpointHost = new URL(endpoint).host.toLowerCase();
    } catch {
      throw new ConfigError(`s3 endpoint '${opts.endpoint}' is not a URL`);
    }
    this.client = s3Client({ ...opts, endpoint }, this.warn);
  }

  get places(): readonly string[] {
    return [`s3:${this.endpointHost}/${this.bucket}`];
  }

  /** Aborts the multipart uploads of writes that died (see s3-orphans.ts); how many. */
  async sweepOrphans(keep: KeepKey, minAgeMs: number): Promise<number> {
    const orphans = await orphanedUploads(this.client, this.bucket, keep, minAgeMs);
    for (const { key, uploadId } of orphans) await this.abortUpload(key, uploadId);
    return orphans.length;
  }

  /** Closes the client's keep-alive connections. */
  async close(): Promise<void> {
    this.client.destroy();
  }

  async write(key: string, source: Readable, opts: WriteOptions = {}): Promise<WriteResult> {
    const { signal } = opts;
    if (signal?.aborted) {
      source.destroy();
      throw new StoreError('ABORTED', `write of ${key} aborted`);
    }
    try {
      await this.ensureBucket();
    } catch (err) {
      source.destroy();
      throw err;
    }

    // Glance's rule: data of a known size below large_object_size is one object (S3 takes 5 GiB at most
    // so). What fits in one part is sent from memory, as a part is, which the SDK can send again after a
    // failure; more is streamed with its exact length, and a stream cannot be sent twice (no retries).
    const { sizeHint } = opts;
    const oneObject = sizeHint !== undefined && sizeHint >= 0 && sizeHint < this.largeObjectSize && sizeHint <= MAX_PART_SIZE;
    const streamed = oneObject && sizeHint >= this.partSize;
    const counter = byteCounter(key, oneObject ? sizeHint : undefined);
    // What went wrong first decides what the caller is told.
    const state: { failure: { kind: 'source' | 'request'; err: unknown } | null } = { failure: null };
    // Requests of this write are cancelled through this when the write fails or is aborted.
    const cancel = new AbortController();
    // A source error (or the abort signal) destroys `counter` too, which stops the Upload's reader.
    // `counter` destroyed by us (below) is not a source failure.
    let stoppedByUs = false;
    const stop = (err?: Error) => {
      if (counter.destroyed) return;
      stoppedByUs = true;
      counter.destroy(err);
    };
    const feeding = pipeline(source, counter, signal ? { signal } : {}).catch((err: unknown) => {
      if (!stoppedByUs) state.failure ??= { kind: 'source', err };
      cancel.abort();
    });
    // The first failed request stops reading the source at once: lib-storage's other uploaders would
    // otherwise go on uploading the rest of the stream before giving up.
    const fail = (err: unknown) => {
      state.failure ??= { kind: 'request', err };
      cancel.abort();
      stop(err instanceof Error ? err : new Error(String(err)));
    };
    const onAbort = () => cancel.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const scoped = cancellableClient(this.client, cancel.signal, fail, { timeoutMs: this.timeoutMs });

    const upload = streamed
      ? null
      : new Upload({
          client: scoped,
          params: { Bucket: this.bucket, Key: key, Body: counter },
          // A part that holds the whole object makes lib-storage send one PutObject.
          partSize: oneObject ? this.partSize : this.partSizeFor(sizeHint),
          queueSize: this.queueSize,
          leavePartsOnError: false,
        });
    try {
      if (upload) await upload.done();
      else await scoped.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: counter, ContentLength: sizeHint }));
      await feeding;
      if (signal?.aborted) {
        // Aborted after the last byte was read: the object is whole but no longer wanted.
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => {});
        throw new StoreError('ABORTED', `write of ${key} aborted`);
      }
      if (state.failure) throw state.failure.err; // never report a cut-off source as written
    } catch (err) {
      cancel.abort();
      stop();
      await feeding; // records a source failure (which may have come first) before we default to `err`
      state.failure ??= { kind: 'request', err };
      // lib-storage aborts the multipart upload itself (leavePartsOnError: false); do it again in case
      // that request failed, so no parts are left behind.
      if (upload?.uploadId) await this.abortUpload(key, upload.uploadId);
      if (signal?.aborted) {
        throw err instanceof StoreError && err.code === 'ABORTED' ? err : new StoreError('ABORTED', `write of ${key} aborted`, { cause: err });
      }
      // A failing source is the caller's error (a client that went away, a size limit): pass it on as is.
      if (state.failure.kind === 'source') throw state.failure.err;
      const mapped = toStoreError(state.failure.err, `writing ${key} to bucket ${this.bucket}`);
      if (mapped.code === 'NOT_FOUND') {
        // NoSuchBucket (or an upload that vanished): a configuration problem, not a missing image.
        throw new StoreError('FAILED', `${mapped.message} (does bucket ${this.bucket} exist? see s3_store_create_bucket_on_put)`, { cause: state.failure.err });
      }
      throw mapped;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return { url: this.urlFor(key), size: counter.bytes };
  }

  /** The url an object of this key has (or would have) in this store. */
  urlFor(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  async read(url: string, range?: ByteRange): Promise<Readable> {
    const key = this.keyOf(url);
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      return res.Body as Readable;
    } catch (err) {
      throw toStoreError(err, `reading ${url}`);
    }
  }

  async delete(url: string): Promise<void> {
    const key = this.keyOf(url);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      const mapped = toStoreError(err, `deleting ${url}`);
      if (mapped.code !== 'NOT_FOUND') throw mapped;
    }
  }

  async stat(url: string): Promise<number | null> {
    const key = this.keyOf(url);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return res.ContentLength ?? 0;
    } catch (err) {
      const mapped = toStoreError(err, `checking ${url}`);
      if (mapped.code === 'NOT_FOUND') return null;
      throw mapped;
    }
  }

  owns(url: string): boolean {
    return this.parse(url) !== null;
  }

  objectOf(url: string): string | null {
    return this.parse(url);
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
        for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      const mapped = toStoreError(err, `listing bucket ${this.bucket}`);
      if (mapped.code === 'NOT_FOUND') return []; // no bucket yet: nothing in it
      throw mapped;
    }
    return keys;
  }

  /**
   * Parts are held in memory while they upload: with a known size, the smallest part (8 MiB at least,
   * or the configured size when smaller) that keeps the object within S3's 10,000 parts, beyond the
   * configured size when need be (as Glance's: S3 refuses part 10,001 after all the others were sent);
   * otherwise the configured size, which must fit the largest images.
   */
  partSizeFor(sizeHint?: number): number {
    if (sizeHint === undefined || !Number.isFinite(sizeHint) || sizeHint < 0) return this.partSize;
    const needed = Math.ceil(sizeHint / 9000 / MiB) * MiB;
    return Math.min(MAX_PART_SIZE, Math.max(needed, Math.min(this.partSize, 8 * MiB)));
  }

  properties(): Record<string, unknown> {
    // In bytes, as Glance's discovery shows them.
    return {
      s3_store_large_object_size: this.largeObjectSize,
      s3_store_large_object_chunk_size: this.partSize,
      s3_store_thread_pools: this.queueSize,
    };
  }

  private keyOf(url: string): string {
    const key = this.parse(url);
    if (key === null) throw new StoreError('INVALID_URL', `${url} is not a location in bucket ${this.bucket}`);
    return key;
  }

  /** The key of a url in this store's bucket, or null. */
  private parse(url: string): string | null {
    return s3KeyOf(url, this.bucket, this.endpointHost);
  }

  private ensureBucket(): Promise<void> {
    if (!this.createBucketOnPut) return Promise.resolve();
    this.bucketReady ??= this.createBucket().catch((err: unknown) => {
      this.bucketReady = null; // try again on the next write
      throw err;
    });
    return this.bucketReady;
  }

  private async createBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      const mapped = toStoreError(err, `checking bucket ${this.bucket}`);
      if (mapped.code !== 'NOT_FOUND') throw mapped;
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return; // a concurrent writer made it
      throw toStoreError(err, `creating bucket ${this.bucket}`);
    }
  }

  private async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      // NoSuchUpload: lib-storage already aborted it.
      if (toStoreError(err, '').code !== 'NOT_FOUND') {
        this.warn(`s3: could not abort multipart upload ${uploadId} of ${key} in ${this.bucket}: ${(err as Error).message}`);
      }
    }
  }
}
