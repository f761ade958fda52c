import type { IncomingMessage } from 'node:http';
import { gazeError } from '../domain/errors.ts';

// The sizes Glance's server (eventlet) allows a request's head: a request line under 8192 bytes (else
// 414), each header line under [DEFAULT] max_header_line (16384; 0: no limit), and 64 KiB of headers.

const MAX_REQUEST_LINE = 8192;
const MAX_TOTAL_HEADER_SIZE = 65536;

/** Node's limit on a request's head, request line included (a head beyond it is refused by its parser). */
export const MAX_HEAD_SIZE = MAX_REQUEST_LINE + MAX_TOTAL_HEADER_SIZE;

/** Refuses a request line or a header line longer than Glance's server reads; the connection then closes, as there. */
export function checkHeadLimits(req: IncomingMessage, maxHeaderLine: number): void {
  const requestLine = `${req.method ?? ''} ${req.url ?? ''} HTTP/${req.httpVersion}\r\n`;
  if (Buffer.byteLength(requestLine, 'latin1') >= MAX_REQUEST_LINE) throw gazeError('URI_TOO_LONG').withHeaders({ Connection: 'close' });
  if (maxHeaderLine <= 0) return;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const line = Buffer.byteLength(raw[i]!, 'latin1') + 2 + Buffer.byteLength(raw[i + 1]!, 'latin1') + 2;
    if (line >= maxHeaderLine) throw gazeError('HEADER_LINE_TOO_LONG').withHeaders({ Connection: 'close' });
  }
}

/**
 * A request body in a transfer coding other than chunked (Node's parser reads the chunks and hands on
 * the still-encoded bytes) is refused, as RFC 9112 asks: stored, they would become the image's data.
 */
export function checkTransferCoding(req: IncomingMessage): void {
  const codings = req.headers['transfer-encoding'];
  if (codings === undefined) return;
  const other = codings
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .find((coding) => coding !== '' && coding !== 'chunked');
  if (other !== undefined) throw gazeError('TRANSFER_CODING_NOT_IMPLEMENTED', other).withHeaders({ Connection: 'close' });
}
