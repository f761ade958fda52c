// How a download the service makes fails: one error with a code, for the task message and the log.

import { withoutPasswords } from '../config/redact.ts';

export type DownloadErrorCode =
  | 'FILTERED'
  | 'REDIRECT_FILTERED'
  | 'TOO_MANY_REDIRECTS'
  | 'HTTP_STATUS'
  | 'CONNECT_TIMEOUT'
  | 'READ_TIMEOUT'
  /** The body arrives more slowly than the minimum rate. */
  | 'TOO_SLOW'
  | 'TOO_LARGE'
  | 'CLOSED_EARLY'
  | 'DNS'
  | 'ABORTED'
  /** Connection refused or reset before a response, TLS failure, malformed response. */
  | 'NETWORK';

export class DownloadError extends Error {
  override name = 'DownloadError';
  readonly code: DownloadErrorCode;
  /** The final HTTP status, for HTTP_STATUS. */
  readonly status?: number;
  /** The URL being fetched when the error happened (after redirects). */
  readonly url?: string;

  constructor(code: DownloadErrorCode, message: string, extra: { status?: number; url?: string; cause?: unknown } = {}) {
    // The URL being fetched may hold a password (web-download's, a location's): never in a message.
    super(withoutPasswords(message), extra.cause === undefined ? undefined : { cause: extra.cause });
    this.code = code;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.url !== undefined) this.url = extra.url;
  }
}

export function abortedError(url?: string): DownloadError {
  return new DownloadError('ABORTED', 'download aborted', url === undefined ? {} : { url });
}

export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function errorText(err: unknown): string {
  const code = errorCode(err);
  // OpenSSL's messages end with the source file and line they came from: of no use to a user.
  const message = (err instanceof Error ? err.message : String(err)).replace(/:[^\s:]*\.c:\d+:?\s*$/, '');
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
