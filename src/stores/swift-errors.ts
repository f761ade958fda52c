import type { HttpResponse } from '../net/http-client.ts';
import { isNetworkFailure, StoreError, type StoreErrorCode } from './driver.ts';

// How Swift's and its auth service's answers become StoreErrors.

export function header(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function statusCode(status: number): StoreErrorCode {
  if (status === 404) return 'NOT_FOUND';
  if (status === 401 || status === 403) return 'PERMISSION';
  if (status === 413 || status === 507) return 'FULL';
  if (status >= 500) return 'UNAVAILABLE';
  return 'FAILED';
}

export function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { name?: string; code?: string; message?: string } | null;
  const code: StoreErrorCode = e?.name === 'AbortError' || e?.code === 'ABORT_ERR' ? 'ABORTED' : isNetworkFailure(err) ? 'UNAVAILABLE' : 'FAILED';
  return new StoreError(code, `swift ${what} failed: ${e?.message ?? String(err)}`, { cause: err });
}
