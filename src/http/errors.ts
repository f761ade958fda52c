import { glanceAsciiJson } from './glance-json.ts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { GazeError, gazeError, isGazeError, type ErrorLayout } from '../domain/errors.ts';
import { isValueTooLong } from '../db/connection.ts';

// Errors are rendered as WebOb renders Glance's: a JSON, HTML or plain-text body chosen by Accept.

const TITLES: Record<number, string> = {
  300: 'Multiple Choices',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Request Range Not Satisfiable',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** WebOb's title of a status, which is also its reason phrase. */
export function statusTitle(status: number): string {
  return TITLES[status] ?? STATUS_CODES[status] ?? 'Unknown';
}

type Shape = 'json' | 'html' | 'plain';

// WebOb 1.8's grammar of Accept (RFC 7231 with RFC 7230's list rule), by which it picks an error's body.
const OWS = '[ \\t]*';
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"';
const QVALUE = '(?:0(?:\\.[0-9]{0,3})?)|(?:1(?:\\.0{0,3})?)';
const MEDIA_RANGE = `(${TOKEN}/${TOKEN})((?:${OWS};${OWS}(?![qQ]=)${TOKEN}=(?:${TOKEN}|${QUOTED}))*)`;
const ACCEPT_EXT = `${OWS};${OWS}${TOKEN}(?:=(?:${TOKEN}|${QUOTED}))?`;
const ELEMENT = `${MEDIA_RANGE}(?:${OWS};${OWS}[qQ]=(${QVALUE})((?:${ACCEPT_EXT})*))?`;
const VALID_ACCEPT = new RegExp(`^(?:$|(?:,|(?:${ELEMENT}))(?:${OWS},(?:${OWS}${ELEMENT})?)*$)`);
/** WebOb's offers for an error body, in its order (the first wins a tie). */
const OFFERS: Array<[Shape, string]> = [
  ['html', 'text/html'],
  ['json', 'application/json'],
];

/**
 * WebOb's choice of an error body: each offer takes the q of the most specific range that matches it
 * (a range with parameters matches neither), the highest q wins, text/html on a tie; no acceptable
 * offer is plain text, and a header WebOb cannot parse accepts anything (text/html).
 */
export function errorShape(accept: string | undefined): Shape {
  const header = accept ?? '';
  if (!VALID_ACCEPT.test(header)) return 'html';
  const ranges = [...header.matchAll(new RegExp(ELEMENT, 'g'))].map((m) => ({ range: m[1]!.toLowerCase(), params: m[2] !== '', q: Number(m[3] ?? 1) }));
  let best: { shape: Shape; q: number } | null = null;
  for (const [shape, offer] of OFFERS) {
    const [type] = offer.split('/');
    let matched: { q: number; specificity: number } | null = null;
    for (const { range, params, q } of ranges) {
      const specificity = range === offer ? (params ? 0 : 3) : range === `${type}/*` ? 2 : range === '*/*' ? 1 : 0;
      if (specificity > (matched?.specificity ?? 0)) matched = { q, specificity };
    }
    if (matched && matched.q > 0 && (!best || matched.q > best.q)) best = { shape, q: matched.q };
  }
  return best?.shape ?? 'plain';
}

/**
 * As WebOb escapes the texts of its HTML bodies: Python's html.escape (quotes included), then every
 * character beyond ASCII as a decimal character reference (é as &#233;).
 */
function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#x27;')
    .replace(/[^\x00-\x7f]/gu, (c) => `&#${c.codePointAt(0)};`);
}

// WebOb's standard explanation of a status, shown before a detail.
const EXPLANATIONS: Record<number, string> = {
  400: 'The server could not comply with the request since it is either malformed or otherwise incorrect.',
  403: 'Access was denied to this resource.',
  404: 'The resource could not be found.',
  409: 'There was a conflict when trying to complete your request.',
  413: 'The request is larger than the server is willing or able to process.',
  416: 'The Range requested is not available.',
  502: 'Bad gateway.',
  504: 'The gateway has timed out.',
};

/**
 * The three bodies WebOb renders from its body text: `<explanation><br /><br />\n<detail>\n\n` (the
 * message as the explanation, or as the detail after the status's standard explanation), the message
 * itself where it is the whole body (`whole`), or for a 415 WebOb's own template,
 * `The request media type <Content-Type> is not supported by this server.\n<br /><br />\n<detail>`,
 * with the request's Content-Type (text/plain where there was none: what Glance's eventlet server fills in).
 */
export function renderError(
  status: number,
  text: string,
  accept: string | undefined,
  layout: ErrorLayout = 'explanation',
  requestContentType?: string,
): { contentType: string; body: string } {
  const title = statusTitle(status);
  const code = `${status} ${title}`;
  const explanation = layout === 'detail' ? (EXPLANATIONS[status] ?? title) : text;
  const detailText = layout === 'detail' ? text : '';
  const escaped = (f: (t: string) => string) =>
    layout === 'media-type'
      ? `The request media type ${f(requestContentType ?? 'text/plain')} is not supported by this server.\n<br /><br />\n${f(text)}`
      : layout === 'whole'
        ? text // a template's own markup, with only a method name or a fixed sentence in it
        : `${f(explanation)}<br /><br />\n${f(detailText)}\n\n`;
  const body = escaped((t) => t);
  switch (errorShape(accept)) {
    case 'json':
      return {
        contentType: 'application/json',
        body: glanceAsciiJson({ message: body, code, title }),
      };
    case 'html':
      return {
        contentType: 'text/html; charset=UTF-8',
        body: `<html>\n <head>\n  <title>${code}</title>\n </head>\n <body>\n  <h1>${code}</h1>\n  ${escaped(escapeHtml)}\n </body>\n</html>`,
      };
    case 'plain': {
      // WebOb's strip_tags of the same text: newlines become spaces, then each <br /> a newline.
      const inner = body.replace(/\n/g, ' ').replace(/<br \/>/g, '\n');
      return { contentType: 'text/plain; charset=UTF-8', body: `${code}\n\n${inner}` };
    }
  }
}

/** Maps anything thrown by a handler (or by fastify itself) to a Glance-shaped error. */
export function toGazeError(err: unknown): GazeError {
  if (isGazeError(err)) return err;
  if (isValueTooLong(err)) return gazeError('BAD_REQUEST', 'A value in the request is too long for the database (or holds characters it cannot store).');
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return gazeError('REQUEST_TOO_LARGE');
  if (e?.code === 'FST_ERR_BAD_URL' || e?.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') return gazeError('BAD_REQUEST', e.message ?? 'Bad request');
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return gazeError('BAD_REQUEST', e.message ?? 'Bad request');
  return gazeError('INTERNAL');
}

export function sendError(request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const gz = toGazeError(err);
  if (gz.status >= 500 && !isGazeError(err)) request.log.error({ err }, 'unhandled error');
  else if (gz.cause !== undefined) request.log.warn({ err: gz.cause }, gz.message);
  const { contentType, body } = renderError(gz.status, gz.message, request.headers.accept, gz.layout, request.declaredContentType);
  for (const [k, v] of Object.entries(gz.headers)) reply.header(k, v);
  // WebOb's reason phrase in the status line ("413 Request Entity Too Large", not Node's "Payload Too Large").
  reply.raw.statusMessage = statusTitle(gz.status);
  // WebOb answers an error to a HEAD request as a bare response: its default content type, no body
  // (Content-Length 0), whatever the Accept header asks for.
  if (request.method === 'HEAD') return reply.code(gz.status).header('content-type', 'text/html; charset=UTF-8').send('');
  return reply.code(gz.status).header('content-type', contentType).send(body);
}
