import { Transform } from 'node:stream';
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { StoreError } from './driver.ts';

// Pieces of the s3 driver's write: what counts the bytes on their way, and the client its requests go through.

/**
 * Passes the data on and counts it. With `declared`, the data must be exactly that long: a PUT of a
 * declared length given fewer bytes would wait for the rest, and more would be cut off. The chunk that
 * completes the declared length is held until the source ends: were more to come, the PUT must not
 * have got all its bytes (the server would keep the object).
 */
export function byteCounter(key: string, declared: number | undefined): Transform & { readonly bytes: number } {
  let bytes = 0;
  let last: Buffer | null = null;
  const wrongLength = () => new StoreError('FAILED', `the data of ${key} was not the ${declared} bytes announced (${bytes} or more)`);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
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
 * The client as one write uses it: its requests are cancelled by `cancel`, and the first that fails
 * is reported to `failed`. Creating, completing and aborting a multipart upload are short and must not
 * be cut off half-way (the server might create or complete it without us learning of it); parts and
 * single PUTs are.
 */
export function cancellableClient(client: S3Client, cancel: AbortSignal, failed: (err: unknown) => void): S3Client {
  const scoped = Object.create(client) as S3Client;
  scoped.send = ((command: Parameters<S3Client['send']>[0], options?: object) => {
    const cancellable = !(
      command instanceof CreateMultipartUploadCommand ||
      command instanceof CompleteMultipartUploadCommand ||
      command instanceof AbortMultipartUploadCommand
    );
    const sent = client.send(command, cancellable ? { ...options, abortSignal: cancel } : options);
    return sent.catch((err: unknown) => {
      failed(err);
      throw err;
    });
  }) as S3Client['send'];
  return scoped;
}
