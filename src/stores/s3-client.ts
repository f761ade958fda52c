import { Transform } from 'node:stream';
import { format } from 'node:util';
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { StoreError, type Warn } from './driver.ts';

// The s3 driver's client, as the driver makes it and as one write uses it, and what counts a write's bytes.

/** How long connecting, and a request until its answer's head, may take. */
export const S3_TIMEOUT_MS = 60_000;

/** The slowest pace a body whole in memory is given on top of the timeout: a part of 64 MiB gets 11 minutes more. */
const MIN_BODY_BYTES_PER_SECOND = 100 * 1024;

/** The driver's client: an endpoint and credentials, the SDK's retries, and its warnings in the service's log. */
export function s3Client(
  opts: { endpoint: string; region?: string; forcePathStyle?: boolean; accessKey: string; secretKey: string; maxAttempts?: number; timeoutMs?: number },
  warn: Warn,
): S3Client {
  return new S3Client({
    endpoint: opts.endpoint,
    region: opts.region ?? 'us-east-1',
    forcePathStyle: opts.forcePathStyle ?? true,
    credentials: { accessKeyId: opts.accessKey, secretAccessKey: opts.secretKey },
    maxAttempts: opts.maxAttempts ?? 3,
    // A server that accepts and then never answers fails the request instead of holding it for ever:
    // connecting, and a request until its answer's head arrives, may take a minute each (botocore's
    // defaults, Glance's client). An answer's body then takes the time its reader takes (a download to
    // a slow client), and a body sent from a stream its source's (see cancellableClient); no idle timer
    // cuts either.
    requestHandler: { connectionTimeout: opts.timeoutMs ?? S3_TIMEOUT_MS, requestTimeout: opts.timeoutMs ?? S3_TIMEOUT_MS, throwOnRequestTimeout: true },
    // The SDK's defaults (since 3.729) send streamed bodies as aws-chunked with CRC32 trailers, which
    // Swift's s3api (and other S3 implementations) refuse with 501; only checksum what S3 requires.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    logger: sdkLogger(warn),
  });
}

/**
 * The SDK's own warnings, in the service's log rather than on the console. Its `error` lines repeat the
 * failures the driver reports (or expects: a HEAD of a missing object), and a streamed PUT that fails is
 * reported by the write itself, so the remark that it could not be retried is left out too.
 */
function sdkLogger(warn: Warn): NonNullable<S3ClientConfig['logger']> {
  const say = (...content: unknown[]) => {
    const text = format(...content);
    if (!text.startsWith('An error was encountered in a non-retryable streaming request')) warn(`s3: ${text}`);
  };
  return { debug: () => {}, info: () => {}, warn: say, error: () => {} };
}

/**
 * Passes the data on and counts it. With `declared`, the data must be exactly that long: a PUT of a
 * declared length given fewer bytes would wait for the rest, and more would be cut off. The chunk that
 * completes the declared length is held until the source ends: were more to come, the PUT must not
 * have got all its bytes (the server would keep the object).
 */
export function byteCounter(key: string, declared: number | undefined): Transform & { readonly bytes: number } {
  let bytes = 0;
  let last: Buffer | null = null;
  const wrongLength = () => new StoreError('FAILED', `the data of ${key} was not the ${declared} bytes announced (${bytes} bytes came)`);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (chunk.length === 0) return done(); // no data: it must not take the place of a held last chunk
      bytes += chunk.length;
      if (declared === undefined) return done(null, chunk);
      if (bytes > declared) return done(wrongLength());
      if (bytes === declared) last = chunk;
      done(null, bytes === declared ? undefined : chunk);
    },
    flush(done) {
      if (declared !== undefined && bytes !== declared) return done(wrongLength());
      done(null, last ?? undefined);
    },
  });
  return Object.defineProperty(counter, 'bytes', { get: () => bytes }) as Transform & { readonly bytes: number };
}

/**
 * How long a request whose body is already whole in memory (a part, a small object) may go on after
 * its write is cancelled. The server may have the whole body and store it although its client stopped
 * waiting; were such a part stored after the multipart upload's abort, it would stay behind for good.
 */
export const WHOLE_BODY_GRACE_MS = 10_000;

/**
 * The client as one write uses it: its requests are cancelled by `cancel`, and the first that fails
 * is reported to `failed`. Creating, completing and aborting a multipart upload are short and must not
 * be cut off half-way (the server might create or complete it without us learning of it). A request
 * that streams the source is cut off at once; one whose body is whole in memory is given
 * `wholeBodyGraceMs` to finish, so that what it stores is there when the write cleans up after itself.
 */
export function cancellableClient(
  client: S3Client,
  cancel: AbortSignal,
  failed: (err: unknown) => void,
  opts: { timeoutMs?: number; wholeBodyGraceMs?: number } = {},
): S3Client {
  const timeoutMs = opts.timeoutMs ?? S3_TIMEOUT_MS;
  const wholeBodyGraceMs = opts.wholeBodyGraceMs ?? WHOLE_BODY_GRACE_MS;
  const late = new AbortController();
  cancel.addEventListener('abort', () => setTimeout(() => late.abort(), wholeBodyGraceMs).unref(), { once: true });
  const scoped = Object.create(client) as S3Client;
  scoped.send = ((command: Parameters<S3Client['send']>[0], options?: object) => {
    const uncancellable =
      command instanceof CreateMultipartUploadCommand || command instanceof CompleteMultipartUploadCommand || command instanceof AbortMultipartUploadCommand;
    const body: unknown = (command.input as { Body?: unknown }).Body;
    const whole = typeof body === 'string' || body instanceof Uint8Array;
    // A body from the source goes at the source's pace (a client's upload may pause for minutes): only
    // its write's own timeouts end it. One in memory has the time its size needs at the slowest pace.
    const streamed = body !== undefined && !whole;
    const requestTimeout = streamed ? 0 : whole ? timeoutMs + Math.ceil((Buffer.byteLength(body) / MIN_BODY_BYTES_PER_SECOND) * 1000) : undefined;
    const sent = client.send(command, uncancellable ? options : { ...options, abortSignal: whole ? late.signal : cancel, requestTimeout });
    return sent.catch((err: unknown) => {
      failed(err);
      throw err;
    });
  }) as S3Client['send'];
  return scoped;
}
