import { isNetworkFailure, StoreError, type StoreErrorCode } from './driver.ts';

// What the S3 SDK's errors (and network failures under it) mean as store error codes.

const NOT_FOUND_NAMES = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket', 'NoSuchUpload']);
const PERMISSION_NAMES = new Set([
  'AccessDenied',
  'Forbidden',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidToken',
  'ExpiredToken',
]);
const FULL_NAMES = new Set(['EntityTooLarge', 'QuotaExceeded', 'InsufficientStorage', 'TooManyBuckets']);
const UNAVAILABLE_NAMES = new Set(['ServiceUnavailable', 'SlowDown', 'InternalError', 'RequestTimeout', 'TimeoutError', 'RequestTimeTooSkewed']);

/** The StoreError code for an S3 SDK (or network) error. */
export function s3ErrorCode(err: unknown): StoreErrorCode {
  if (err instanceof StoreError) return err.code;
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | null;
  if (!e || typeof e !== 'object') return 'FAILED';
  const name = e.Code ?? e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (NOT_FOUND_NAMES.has(name) || status === 404) return 'NOT_FOUND';
  if (PERMISSION_NAMES.has(name) || status === 401 || status === 403) return 'PERMISSION';
  if (FULL_NAMES.has(name) || status === 413 || status === 507) return 'FULL';
  if (name === 'AbortError') return 'ABORTED';
  if (UNAVAILABLE_NAMES.has(name) || (status !== undefined && status >= 500)) return 'UNAVAILABLE';
  if (isNetworkFailure(err)) return 'UNAVAILABLE';
  return 'FAILED';
}

export function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  const detail = [e?.name, status ? `HTTP ${status}` : '', e?.message].filter(Boolean).join(': ');
  return new StoreError(s3ErrorCode(err), `s3 ${what} failed: ${detail || String(err)}`, { cause: err });
}
