import type { IncomingHttpHeaders } from 'node:http';

/**
 * The URL a client reached the service at (scheme, host and path prefix), for the links and Location
 * headers Glance writes absolute. Behind a proxy with [oslo_middleware] enable_proxy_headers_parsing,
 * what the proxy says, as oslo.middleware's HTTPProxyToWSGI reads it: the first element of an RFC 7239
 * Forwarded header (proto=, host=), else X-Forwarded-Proto and X-Forwarded-Host; and X-Forwarded-Prefix
 * before the path. Without the option none of them is believed, as in Glance. A request without Host
 * gets the address it reached (`local`, host:port), as Glance's server names itself.
 */
export function publicBase(headers: IncomingHttpHeaders, proxyHeaders: boolean, local: string): string {
  let proto = 'http';
  let host = one(headers.host) || local;
  let prefix = '';
  if (proxyHeaders) {
    const forwarded = one(headers.forwarded);
    if (forwarded) {
      const first = firstForwarded(forwarded);
      proto = first.proto || proto;
      host = first.host || host;
    } else {
      proto = one(headers['x-forwarded-proto']) || proto;
      host = one(headers['x-forwarded-host']) || host;
    }
    prefix = one(headers['x-forwarded-prefix']) ?? '';
  }
  return `${proto}://${host}${prefix}`.replace(/\/+$/, '');
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The pairs of the first proxy of a Forwarded header (`for=…;proto=https;host=…, for=…`), names in lower case. */
function firstForwarded(header: string): Record<string, string> {
  const entry: Record<string, string> = {};
  for (const pair of (header.split(',')[0] ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    entry[pair.slice(0, eq).trim().toLowerCase()] = pair
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
  }
  return entry;
}

/**
 * A URL as a header value (Location): each character outside printable ASCII percent-encoded as UTF-8.
 * Node refuses characters above U+00FF in a header (a 500 after the write it reports), and would send
 * those below as Latin-1; names (a metadefs namespace) may hold any of them.
 */
export function headerSafeUrl(url: string): string {
  return url.replace(/[^\x21-\x7e]/gu, (c) => [...Buffer.from(c, 'utf8')].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}
