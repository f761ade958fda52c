import type { FastifyRequest } from 'fastify';

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
