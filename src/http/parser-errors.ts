import type { IncomingMessage, ServerResponse } from 'node:http';
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

/** An error of Node's HTTP parser: its code, the bytes it was reading, and where in them it stopped. */
type ParserError = NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number };

/** A server's socket: Node names the answer it is writing on it (pipelined answers wait their turn). */
type ServerSocket = Socket & { _httpMessage?: ServerResponse | null };

/** Connections whose refused request is answered already: the parser may refuse what follows too. */
const answered = new WeakSet<Socket>();

/**
 * Answers a request the parser refused and closes the connection; `allowOn` gives a routed path's Allow.
 * Requests read whole before it on the same connection (pipelined, or a body longer than its
 * Content-Length) get their answers first, as Glance gives them.
 */
export function answerParserError(error: unknown, socket: Socket, allowOn: (url: string) => string | null): void {
  const err = error as ParserError;
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  if (answered.has(socket)) return;
  answered.add(socket);
  // A request whose body was still arriving is the one refused (cut off, or broken framing): its
  // handler learns it from the closing connection.
  const current = (socket as ServerSocket)._httpMessage?.req;
  answerAndClose(socket, answerOf(err, allowOn), current?.complete === true);
}

/**
 * CONNECT, which Node hands to its own event and would otherwise drop unanswered, is refused as an
 * unknown method is: 405 with Allow on a resource's path, else 501; the connection then closes.
 */
export function answerConnect(req: IncomingMessage, socket: Socket, allowOn: (url: string) => string | null): void {
  // Node took its own error handler off the socket before handing it over: a client that resets it
  // must not be an uncaught error.
  socket.on('error', () => socket.destroy());
  if (!socket.writable) return void socket.destroy();
  answered.add(socket);
  answerAndClose(socket, refusedMethod('CONNECT', req.url ?? '', allowOn), true);
}

function answerAndClose(socket: Socket, answer: RawAnswer, afterPending: boolean): void {
  const { status, message, layout, headers } = answer;
  const { contentType, body } = renderError(status, message, undefined, layout);
  const wait = afterPending ? afterPendingAnswers : (_: Socket, then: () => void) => then();
  wait(socket, () => {
    if (!socket.writable) return void socket.destroy();
    // Closed for good a moment after the answer: a client that keeps its half of the connection open
    // must not keep the socket (slowloris, one header timeout after another). Not at once: a client
    // still sending would get a reset that may discard the answer before it is read.
    setTimeout(() => socket.destroy(), CLOSE_AFTER_ANSWER_MS).unref();
    socket.end(
      `HTTP/1.1 ${status} ${statusTitle(status)}\r\n${headers}Content-Type: ${contentType}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

/** How long a refused request's connection stays after its answer (its client should close it first). */
const CLOSE_AFTER_ANSWER_MS = 2_000;

function afterPendingAnswers(socket: ServerSocket, then: () => void): void {
  const pending = socket._httpMessage;
  if (!pending) return then();
  let done = false;
  const next = () => {
    if (done) return;
    done = true;
    // The next pipelined answer, if any, takes the socket once this one is out.
    setImmediate(() => afterPendingAnswers(socket, then));
  };
  pending.once('finish', next);
  pending.once('close', next);
}

/** The line the parser stopped in: the request line of a refused method, wherever its request began in the bytes read. */
function refusedLine(err: ParserError): string {
  const text = err.rawPacket?.toString('latin1') ?? '';
  const stop = Math.min(err.bytesParsed ?? 0, text.length);
  return text.slice(text.lastIndexOf('\n', stop - 1) + 1);
}

interface RawAnswer {
  status: number;
  message: string;
  layout?: ErrorLayout;
  headers: string;
}

function refusedMethod(method: string, url: string, allowOn: (url: string) => string | null): RawAnswer {
  const allow = allowOn(url);
  const refused = gazeError(allow ? 'METHOD_NOT_ALLOWED' : 'NOT_IMPLEMENTED', method);
  return { status: refused.status, message: refused.message, layout: refused.layout, headers: allow ? `Allow: ${allow}\r\n` : '' };
}

/**
 * Headers that did not arrive within Node's headersTimeout (an idle or slow-header connection) are a
 * 408, as a body that stops is; over-long headers a 431. A method Node does not know (any token is one
 * to Glance's server) gets what the router would give it: 405 with Allow on a resource's path, else 501.
 * Anything else is broken framing.
 */
function answerOf(err: ParserError, allowOn: (url: string) => string | null): RawAnswer {
  if (err.code === 'HPE_HEADER_OVERFLOW') return { status: 431, message: 'The request headers are too large.', headers: '' };
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, message: 'The request was not received in time.', headers: '' };
  const line = err.code === 'HPE_INVALID_METHOD' ? /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.[01]\r?\n/.exec(refusedLine(err)) : null;
  if (line) return refusedMethod(line[1]!, line[2]!, allowOn);
  return { status: 400, message: 'The request could not be read: its HTTP framing is malformed.', headers: '' };
}
