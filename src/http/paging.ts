import type { FastifyReply, FastifyRequest } from 'fastify';

/** The raw query string as ordered pairs (repeated keys kept). */
export function queryPairs(request: FastifyRequest): Array<[string, string]> {
  const q = request.url.indexOf('?');
  return q < 0 ? [] : [...new URLSearchParams(request.url.slice(q + 1)).entries()];
}

/**
 * A `first`/`next` link: the request's query without its marker (plus the new one). Glance rebuilds it
 * from a dict, so a repeated key keeps only its last value.
 */
export function pagingLink(base: string, pairs: Array<[string, string]>, marker?: string): string {
  const params = new Map<string, string>();
  for (const [k, v] of pairs) if (k !== 'marker') params.set(k, v);
  if (marker) params.set('marker', marker);
  const qs = new URLSearchParams([...params.entries()]).toString();
  return qs ? `${base}?${qs}` : base;
}

/**
 * Sends a page as UTF-8 bytes encoded once. Given the string, Node measures its length and then encodes
 * it again into the socket; and `Buffer.from(string)` is ten times slower on a large string than writing
 * it into a buffer of the right size. For a page of 1,000 images that is about a fifth of the request's CPU.
 */
export function sendPage(reply: FastifyReply, body: Record<string, unknown>): FastifyReply {
  const json = JSON.stringify(body);
  const bytes = Buffer.allocUnsafe(Buffer.byteLength(json));
  bytes.write(json);
  return reply.header('content-type', 'application/json').send(bytes);
}
