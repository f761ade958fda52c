import type { Socket } from 'node:net';
import { gazeError, type ErrorLayout } from '../domain/errors.ts';
import { renderError, statusTitle } from './errors.ts';

// Requests Node's HTTP parser refuses before any route sees them, answered in Glance's error shape.

/** Node's limits on a request's headers: client_socket_timeout, but never more than Node's own 60 s. */
export function headerTimeouts(idleMs: number): { headersTimeout: number; connectionsCheckingInterval: number } {
  const headersTimeout = idleMs > 0 ? Math.min(idleMs, 60_000) : 60_000;
  // Node checks the connections this often: often enough for the limit to mean what it says.
  return { headersTimeout, connectionsCheckingInterval: Math.min(30_000, Math.max(250, headersTimeout / 4)) };
}

/** The API's resources by path pattern, for a method the parser refuses (one Node does not know). */
export class ResourceTable {
  private readonly entries: Array<{ pattern: RegExp; params: number; allow: string | null }> = [];

  /** A route pattern (`/v2/images/:id`) and its Allow; null where the router gives no 405. */
  add(url: string, allow: string | null): void {
    // Parameters match one non-empty segment, as the router's do.
    const pattern = new RegExp(`^${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+')}$`);
    this.entries.push({ pattern, params: (url.match(/:/g) ?? []).length, allow });
  }

  /** The Allow of the resource at a routed path (the most specific match), or null where no 405 is given. */
  allowOn(url: string): string | null {
    const path = url.split('?')[0]!;
    const matches = this.entries.filter((r) => r.pattern.test(path)).sort((a, b) => a.params - b.params);
    return matches[0]?.allow ?? null;
  }
}

/** An error of Node's HTTP parser: its code, and the bytes it was reading. */
type ParserError = NodeJS.ErrnoException & { rawPacket?: Buffer };

/** Answers a request the parser refused and closes the connection; `allowOn` gives a routed path's Allow. */
export function answerParserError(error: unknown, socket: Socket, allowOn: (url: string) => string | null): void {
  const err = error as ParserError;
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const { status, message, layout, headers } = answerOf(err, allowOn);
  const { contentType, body } = renderError(status, message, undefined, layout);
  socket.end(
    `HTTP/1.1 ${status} ${statusTitle(status)}\r\n${headers}Content-Type: ${contentType}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Headers that did not arrive within Node's headersTimeout (an idle or slow-header connection) are a
 * 408, as a body that stops is; over-long headers a 431. A method Node does not know (any token is one
 * to Glance's server) gets what the router would give it: 405 with Allow on a resource's path, else 501.
 * Anything else is broken framing.
 */
function answerOf(err: ParserError, allowOn: (url: string) => string | null): { status: number; message: string; layout?: ErrorLayout; headers: string } {
  if (err.code === 'HPE_HEADER_OVERFLOW') return { status: 431, message: 'The request headers are too large.', headers: '' };
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, message: 'The request was not received in time.', headers: '' };
  const line =
    err.code === 'HPE_INVALID_METHOD' ? /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.[01]\r?\n/.exec(err.rawPacket?.toString('latin1') ?? '') : null;
  if (line) {
    const allow = allowOn(line[2]!);
    const refused = gazeError(allow ? 'METHOD_NOT_ALLOWED' : 'NOT_IMPLEMENTED', line[1]!);
    return { status: refused.status, message: refused.message, layout: refused.layout, headers: allow ? `Allow: ${allow}\r\n` : '' };
  }
  return { status: 400, message: 'The request could not be read: its HTTP framing is malformed.', headers: '' };
}
