import type { FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { GazeError, gazeError, isGazeError, type ErrorLayout } from '../domain/errors.ts';

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

/** WebOb's choice among its offers, text/html first, by the client's Accept q-values. */
export function errorShape(accept: string | undefined): Shape {
  if (!accept || accept.trim() === '') return 'plain';
  const offers: Array<[Shape, string]> = [
    ['html', 'text/html'],
    ['json', 'application/json'],
    ['plain', 'text/plain'],
  ];
  let best: { shape: Shape; q: number; specificity: number } | null = null;
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part
      .trim()
      .toLowerCase()
      .split(';')
      .map((s) => s.trim());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (!(q > 0)) continue;
    for (const [shape, type] of offers) {
      const [t, s] = type.split('/');
      const [rt, rs] = range.split('/');
      const matches = range === '*/*' || (rt === t && (rs === '*' || rs === s));
      if (!matches) continue;
      const specificity = range === '*/*' ? 0 : rs === '*' ? 1 : 2;
      if (!best || q > best.q || (q === best.q && specificity > best.specificity)) best = { shape, q, specificity };
      if (range === '*/*') break; // */* picks the first offer (text/html)
    }
  }
  return best?.shape ?? 'plain';
}

/** A JSON string as Python's json.dumps writes it (ensure_ascii: everything beyond ASCII as \\uXXXX). */
function pythonJson(text: string): string {
  return JSON.stringify(text).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** As WebOb escapes the texts of its HTML bodies (Python's html.escape, quotes included). */
function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;');
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
        body: `{"message": ${pythonJson(body)}, "code": ${pythonJson(code)}, "title": ${pythonJson(title)}}`,
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
  // WebOb renders an error to a HEAD request with no body at all: Content-Length 0, as Glance sends it.
  return reply
    .code(gz.status)
    .header('content-type', contentType)
    .send(request.method === 'HEAD' ? '' : body);
}
