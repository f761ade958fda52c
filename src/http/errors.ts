import type { FastifyReply, FastifyRequest } from 'fastify';
import { GazeError, gazeError, isGazeError } from '../domain/errors.ts';

// Errors are rendered as WebOb renders Glance's: a JSON, HTML or plain-text body chosen by Accept.

const TITLES: Record<number, string> = {
  300: 'Multiple Choices', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 406: 'Not Acceptable', 409: 'Conflict', 410: 'Gone', 411: 'Length Required',
  413: 'Request Entity Too Large', 414: 'Request-URI Too Long', 415: 'Unsupported Media Type', 416: 'Requested Range Not Satisfiable',
  431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 501: 'Not Implemented',
  503: 'Service Unavailable',
};

type Shape = 'json' | 'html' | 'plain';

/** WebOb's choice among its offers, text/html first, by the client's Accept q-values. */
export function errorShape(accept: string | undefined): Shape {
  if (!accept || accept.trim() === '') return 'plain';
  const offers: Array<[Shape, string]> = [['html', 'text/html'], ['json', 'application/json'], ['plain', 'text/plain']];
  let best: { shape: Shape; q: number; specificity: number } | null = null;
  for (const part of accept.split(',')) {
    const [range, ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
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

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function renderError(status: number, explanation: string, accept: string | undefined): { contentType: string; body: string } {
  const title = TITLES[status] ?? 'Error';
  const code = `${status} ${title}`;
  switch (errorShape(accept)) {
    case 'json':
      return { contentType: 'application/json', body: JSON.stringify({ message: `${explanation}<br /><br />\n\n\n`, code, title }) };
    case 'html':
      return {
        contentType: 'text/html; charset=UTF-8',
        body: `<html>\n <head>\n  <title>${code}</title>\n </head>\n <body>\n  <h1>${code}</h1>\n  ${escapeHtml(explanation)}<br /><br />\n\n\n\n </body>\n</html>`,
      };
    case 'plain':
      return { contentType: 'text/plain; charset=UTF-8', body: `${code}\n\n${explanation}\n\n   ` };
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
  const { contentType, body } = renderError(gz.status, gz.message, request.headers.accept);
  for (const [k, v] of Object.entries(gz.headers)) reply.header(k, v);
  return reply.code(gz.status).header('content-type', contentType).send(body);
}
