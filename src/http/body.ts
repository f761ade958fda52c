import type { FastifyRequest } from 'fastify';
import { gazeError } from '../domain/errors.ts';
// Python refuses to read an integer of more digits, so Glance's JSON parser fails on one.
import { PY_INT_MAX_DIGITS } from '../schemas/python-repr.ts';

const MAX_JSON_BYTES = 8 << 20;
// The byte order mark is kept, for the parse to refuse as Python's json.loads does.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined && length !== '0') return true;
  return request.headers['transfer-encoding'] !== undefined && ['POST', 'PUT', 'PATCH'].includes(request.method);
}

/**
 * The media type the client declared, without parameters ('' when it declared none), as WebOb's
 * `content_type` reads it: compared as written, so `Application/Octet-Stream` is not the same (Glance
 * answers it 415).
 */
export function declaredMediaType(request: FastifyRequest): string {
  return (request.declaredContentType ?? '').split(';')[0]!;
}

/** Image bytes (uploads, staging, the format check) come as application/octet-stream, or get a 415. */
export function assertOctetStream(request: FastifyRequest): void {
  if (declaredMediaType(request) !== 'application/octet-stream') {
    throw gazeError('INVALID_CONTENT_TYPE', request.declaredContentType === undefined ? undefined : declaredMediaType(request));
  }
}

/** Routes that take no body refuse one (Glance: "A body is not expected with this request."). */
export function assertNoBody(request: FastifyRequest): void {
  if (hasBody(request)) throw gazeError('BODY_NOT_EXPECTED');
}

/**
 * The body's bytes, up to MAX_JSON_BYTES. Reading stops (without destroying the request, which would
 * reset the connection) when it is larger: the server drains the rest after the 413. A body that sends
 * nothing for the request's `bodyIdleMs` (client_socket_timeout) is given up with a 408, as an upload
 * is; a client that hangs up mid-body is no error of the service's.
 */
function readBytes(request: FastifyRequest): Promise<Buffer> {
  const req = request.raw;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let lastDataAt = Date.now();
    const idleMs = request.bodyIdleMs;
    const timer = idleMs > 0 ? setInterval(() => Date.now() - lastDataAt >= idleMs && fail(stalledBody(idleMs)), Math.min(idleMs, 1000)) : null;
    timer?.unref();
    const onData = (chunk: Buffer) => {
      lastDataAt = Date.now();
      size += chunk.length;
      if (size > MAX_JSON_BYTES) {
        req.pause();
        fail(gazeError('REQUEST_TOO_LARGE'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: NodeJS.ErrnoException) => fail(err.code === 'ECONNRESET' || err.message === 'aborted' ? gazeError('BODY_CUT_OFF') : err);
    // Closed before its end: a client that hung up, perhaps before this read began (during authentication).
    const onClose = () => fail(gazeError('BODY_CUT_OFF'));
    const fail = (err: unknown) => {
      done();
      reject(err);
    };
    const done = () => {
      if (timer) clearInterval(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    if (req.destroyed || req.readableAborted) {
      fail(gazeError('BODY_CUT_OFF'));
      return;
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** The rest of the body is never read: the connection closes after the answer. */
function stalledBody(idleMs: number) {
  return gazeError('BODY_STALLED', idleMs / 1000).withHeaders({ Connection: 'close' });
}

/**
 * JSON nested deeper than this is refused: Python's parser gives up near its recursion limit of 1000,
 * and far deeper nesting would exhaust the stack of whatever walks the value (a 500 instead of a 400).
 */
const MAX_JSON_DEPTH = 1000;

/**
 * What valid JSON text holds that Glance's parser could not read, or Gaze could not walk: arrays and
 * objects nested deeper than MAX_JSON_DEPTH, or an integer literal longer than Python reads. One pass
 * over the text outside its strings; short texts can hold neither.
 */
function unreadableJson(text: string): 'too-deep' | 'huge-integer' | null {
  if (text.length <= Math.min(PY_INT_MAX_DIGITS, 2 * MAX_JSON_DEPTH)) return null;
  const number = /-?(\d+)(\.\d+)?([eE][+-]?\d+)?/y;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      // An escaped character is skipped: it never ends the string.
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '[' || c === '{') {
      if (++depth > MAX_JSON_DEPTH) return 'too-deep';
    } else if (c === ']' || c === '}') {
      depth--;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      number.lastIndex = i;
      const m = number.exec(text)!;
      // A fraction or an exponent makes a float, which Python reads at any length.
      if (!m[2] && !m[3] && m[1]!.length > PY_INT_MAX_DIGITS) return 'huge-integer';
      i = number.lastIndex - 1;
    }
  }
  return null;
}

const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
// With the u flag a surrogate pair is one code point: only a surrogate alone matches.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Whether a string or key holds half of a surrogate pair (`"\ud800"` is valid JSON): no database
 * stores it as written (SQLite keeps replacement characters, so two keys would become one; Glance
 * fails with a 500).
 */
function holdsLoneSurrogate(value: unknown): boolean {
  if (typeof value === 'string') return LONE_SURROGATE.test(value);
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(holdsLoneSurrogate);
  return Object.entries(value).some(([key, v]) => LONE_SURROGATE.test(key) || holdsLoneSurrogate(v));
}

/**
 * The request's JSON body, whatever its Content-Type (as Glance parses it). Must be an object or an
 * array; `undefined` when the request has no body at all.
 */
export async function readJson(request: FastifyRequest): Promise<unknown> {
  if (!hasBody(request)) return undefined;
  let text: string;
  try {
    // Not valid UTF-8 is malformed, as in Glance (its decode is strict), never replaced by U+FFFD.
    text = utf8.decode(await readBytes(request));
  } catch (err) {
    if (err instanceof TypeError) throw gazeError('MALFORMED_JSON');
    throw err;
  }
  // A body of whitespace (or an empty chunked one) is no JSON, as Python's json.loads finds.
  if (text.startsWith('\ufeff') || text.trim() === '') throw gazeError('MALFORMED_JSON');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw gazeError('MALFORMED_JSON');
  }
  const unreadable = unreadableJson(text);
  if (unreadable === 'huge-integer') throw gazeError('MALFORMED_JSON');
  if (unreadable === 'too-deep') throw gazeError('JSON_TOO_DEEP', MAX_JSON_DEPTH);
  if (SURROGATE_ESCAPE.test(text) && holdsLoneSurrogate(value)) throw gazeError('JSON_LONE_SURROGATE');
  if (value === null || typeof value !== 'object') throw gazeError('UNEXPECTED_BODY_TYPE');
  return value;
}

/**
 * Where Glance's default deserializer reads a body its action has no use for (a task, the usage, a
 * refused method): malformed JSON, or JSON that is neither an object nor a list, is a 400; anything
 * else is ignored (Glance then fails with a 500 of its own).
 */
export async function readUnusedBody(request: FastifyRequest): Promise<void> {
  await readJson(request);
}

export async function readJsonObject(request: FastifyRequest): Promise<Record<string, unknown>> {
  const body = await readJson(request);
  if (body === undefined) throw gazeError('BODY_EXPECTED');
  if (Array.isArray(body)) throw gazeError('SCHEMA_MISMATCH', 'image', `${JSON.stringify(body)} is not of type 'object'`);
  return body as Record<string, unknown>;
}
