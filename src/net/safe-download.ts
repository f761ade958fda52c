import { isIP } from 'node:net';
import { timerMs } from '../domain/time.ts';
import type { Readable } from 'node:stream';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { failBodyOnConnectionError } from './http-client.ts';
import { request as httpsRequest } from 'node:https';
import type { Config } from '../config/index.ts';
import { addressPassesFilter, checkUri, uriFilterFromConfig, type UriFilterOptions } from './uri-filter.ts';
import { DownloadError, abortedError, errorText } from './download-error.ts';
import { pinnedLookup, resolveHost, systemLookup, type HostLookup, type ResolvedAddress } from './resolve.ts';

export type { HostLookup, ResolvedAddress } from './resolve.ts';
import { guardBody } from './body-guard.ts';

export { DownloadError, type DownloadErrorCode } from './download-error.ts';
export { guardBody, type BodyGuardOptions } from './body-guard.ts';

// The service's own HTTP client for URIs a user gives (web-download, glance-download). It must not
// become an SSRF tool, so:
//  - the URI passes the [import_filtering_opts] filter (uri-filter.ts), and so does every redirect
//    target; redirects are followed here, one at a time, never by the HTTP library;
//  - the host is resolved once, every address it resolves to passes the host lists too, and the
//    connection goes to exactly those checked addresses (the socket's lookup is pinned), so a name
//    cannot switch to another address between the check and the connect (DNS rebinding); the Host
//    header and the TLS server name stay the name;
//  - the returned body enforces the size limit, an idle read timeout, and the announced length.

export interface SafeDownloadOptions {
  filter: UriFilterOptions;
  /** Name resolution plus TCP connect plus TLS handshake, per request (0: none). */
  connectTimeoutMs: number;
  /** Longest wait for the response headers, and longest idle time between body bytes (0: none). */
  readTimeoutMs: number;
  /** The body's minimum rate over each readTimeoutMs of waiting for it (0 or absent: none). */
  minBytesPerSecond?: number;
  maxRedirects: number;
  /** Refuse bodies larger than this, whatever Content-Length says. */
  maxBytes?: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Name resolution; the system resolver (getaddrinfo) by default. */
  lookup?: HostLookup;
  /** https: the CA certificates (PEM) to check servers with instead of the system's, or no check at all. */
  tls?: { ca?: Buffer; insecure?: boolean };
  /**
   * An origin the operator named (glance-download's catalog endpoint): it may be any address, internal
   * ones too. A redirect elsewhere meets the filter as every other URL does.
   */
  trustedOrigin?: string;
}

/** The filter for one URL: the operator's, relaxed for the addresses of a trusted origin. */
function filterFor(url: URL | string, opts: SafeDownloadOptions): UriFilterOptions {
  if (opts.trustedOrigin === undefined) return opts.filter;
  let origin: string;
  try {
    origin = (typeof url === 'string' ? new URL(url) : url).origin;
  } catch {
    return opts.filter;
  }
  return origin === opts.trustedOrigin ? { ...opts.filter, refuseInternal: false, trustedEndpoint: true } : opts.filter;
}

export interface DownloadResult {
  body: Readable;
  contentLength: number | null;
  finalUrl: string;
  status: number;
  headers: IncomingHttpHeaders;
}

/** The limits of [import_filtering_opts] (seconds there, milliseconds here). */
export function downloadOptionsFromConfig(
  config: Config,
): Pick<SafeDownloadOptions, 'filter' | 'connectTimeoutMs' | 'readTimeoutMs' | 'minBytesPerSecond' | 'maxRedirects'> {
  const s = 'import_filtering_opts';
  return {
    filter: uriFilterFromConfig(config),
    connectTimeoutMs: timerMs(config.get(s, 'connect_timeout')),
    readTimeoutMs: timerMs(config.get(s, 'read_timeout')),
    // The uploads' minimum rate holds for the service's own downloads too: a source that trickles
    // would hold an import (and its slot) for ever.
    minBytesPerSecond: config.get('DEFAULT', 'upload_min_rate'),
    maxRedirects: config.get(s, 'max_redirects'),
  };
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const SUPPORTED_PROTOCOLS = new Set(['http:', 'https:']);
/** Never taken from the caller: the Host is the URL's, the framing is the client's. */
const DROPPED_HEADERS = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'expect',
  'content-length',
  'te',
  'trailer',
  'proxy-connection',
]);
/** Credentials do not follow a redirect to another origin. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization', 'x-auth-token']);

function decodeLenient(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

interface Hop {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

function headerValue(headers: Hop['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function discard(hop: Hop): void {
  hop.body.on('error', () => {
    /* discarded */
  });
  hop.body.destroy();
}

/**
 * One request to an already filtered URL: resolve, check the addresses, connect to them only. Node's
 * own HTTP client, on a connection of its own (no pool): undici 7's parser throws an uncatchable
 * assertion when a server closes a connection whose body is paused by back-pressure (undici #5360).
 */
async function fetchOnce(
  url: URL,
  method: 'GET' | 'HEAD',
  headers: Record<string, string>,
  opts: SafeDownloadOptions,
  redirected: boolean,
  asGiven: string,
): Promise<Hop> {
  const href = url.href;
  const filteredError = (): DownloadError =>
    redirected
      ? new DownloadError('REDIRECT_FILTERED', `Redirect to disallowed URL: ${href}`, { url: href })
      : new DownloadError('FILTERED', `URI does not pass filtering: ${asGiven}`, { url: asGiven });

  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const started = Date.now();
  const addresses: ResolvedAddress[] =
    isIP(host) !== 0
      ? [{ address: host, family: isIP(host) === 6 ? 6 : 4 }]
      : await resolveHost(host, opts.lookup ?? systemLookup, opts.connectTimeoutMs, opts.signal, href);
  const filter = filterFor(url, opts);
  if (!addresses.every((a) => addressPassesFilter(a.address, url.hostname, filter))) throw filteredError();
  if (opts.signal?.aborted) throw abortedError(href);

  // Credentials in the URL are sent as Basic authentication, not in the request line.
  const target = new URL(href);
  const requestHeaders = { ...headers };
  if (target.username !== '' || target.password !== '') {
    const basic = Buffer.from(`${decodeLenient(target.username)}:${decodeLenient(target.password)}`).toString('base64');
    requestHeaders.authorization = `Basic ${basic}`;
    target.username = '';
    target.password = '';
  }
  const secure = target.protocol === 'https:';
  const connectTimeout = opts.connectTimeoutMs > 0 ? Math.max(1, opts.connectTimeoutMs - (Date.now() - started)) : 0;

  return new Promise<Hop>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number, onTimeout: () => DownloadError): void => {
      if (timer) clearTimeout(timer);
      timer = ms > 0 ? setTimeout(() => fail(onTimeout()), ms) : undefined;
    };
    const finish = (): void => {
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: DownloadError): void => {
      if (settled) return;
      finish();
      req.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(abortedError(href));

    // The socket's lookup answers the checked addresses of this one name only; Host and the TLS
    // server name stay the name. `agent: false`: a connection of its own, closed after the response.
    const req = (secure ? httpsRequest : httpRequest)(
      target,
      {
        method,
        headers: requestHeaders,
        agent: false,
        lookup: pinnedLookup(host, addresses) as never,
        ...(secure && opts.tls ? { ca: opts.tls.ca, rejectUnauthorized: !opts.tls.insecure } : {}),
      },
      (res) => {
        if (settled) {
          res.destroy();
          return;
        }
        finish();
        res.on('error', () => {
          /* reported through the body guard */
        });
        failBodyOnConnectionError(req, res);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
      },
    );
    req.on('error', (err) =>
      fail(err instanceof DownloadError ? err : new DownloadError('NETWORK', `request to ${url.host} failed: ${errorText(err)}`, { url: href, cause: err })),
    );
    req.on('socket', (socket) => {
      const connected = (): void =>
        arm(opts.readTimeoutMs, () => new DownloadError('READ_TIMEOUT', `no response from ${url.host} within ${opts.readTimeoutMs} ms`, { url: href }));
      socket.once(secure ? 'secureConnect' : 'connect', connected);
    });
    arm(connectTimeout, () => new DownloadError('CONNECT_TIMEOUT', `timed out after ${opts.connectTimeoutMs} ms connecting to ${url.host}`, { url: href }));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.end();
  });
}

function cleanHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (!DROPPED_HEADERS.has(lower)) out[lower] = value;
  }
  return out;
}

/** Follows `url` through filtered redirects to the first response that is not a redirect (which must be 2xx). */
async function follow(url: string, method: 'GET' | 'HEAD', opts: SafeDownloadOptions): Promise<{ hop: Hop; finalUrl: URL }> {
  if (opts.signal?.aborted) throw abortedError(url);
  const first = checkUri(url, filterFor(url, opts));
  if (!first.ok || !SUPPORTED_PROTOCOLS.has(first.url.protocol)) {
    throw new DownloadError('FILTERED', `URI does not pass filtering: ${url}`, { url });
  }
  let current = first.url;
  let headers = cleanHeaders(opts.headers);

  for (let redirects = 0; ; redirects++) {
    const hop = await fetchOnce(current, method, headers, opts, redirects > 0, url);
    const location = headerValue(hop.headers, 'location');

    if (REDIRECT_STATUSES.has(hop.status) && location !== undefined) {
      discard(hop);
      if (redirects >= opts.maxRedirects) {
        throw new DownloadError('TOO_MANY_REDIRECTS', `more than ${opts.maxRedirects} redirects fetching ${url}`, { url: current.href });
      }
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new DownloadError('REDIRECT_FILTERED', `Redirect to disallowed URL: ${location}`, { url: current.href });
      }
      // Filter the Location as written when it is absolute (an explicit default port must count,
      // as in Glance), the resolved URL otherwise.
      let written = next.href;
      if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(location.trim())) written = location;
      else if (/^\s*[/\\]{2}/.test(location)) written = `${current.protocol}${location.trim()}`;
      const check = checkUri(written, filterFor(next, opts));
      if (!check.ok || !SUPPORTED_PROTOCOLS.has(next.protocol)) {
        throw new DownloadError('REDIRECT_FILTERED', `Redirect to disallowed URL: ${next.href}`, { url: next.href });
      }
      if (next.origin !== current.origin) {
        headers = Object.fromEntries(Object.entries(headers).filter(([name]) => !CREDENTIAL_HEADERS.has(name)));
      }
      if (opts.signal?.aborted) throw abortedError(next.href);
      current = next;
      continue;
    }

    if (hop.status < 200 || hop.status > 299) {
      discard(hop);
      throw new DownloadError('HTTP_STATUS', `HTTP status ${hop.status} from ${current.href}`, { status: hop.status, url: current.href });
    }
    return { hop, finalUrl: current };
  }
}

function declaredLength(headers: Hop['headers']): number | null {
  const declared = headerValue(headers, 'content-length');
  return declared !== undefined && /^\s*\d+\s*$/.test(declared) ? Number(declared) : null;
}

/**
 * Downloads `url` without following it anywhere the filter forbids. Resolves once a 2xx response's
 * headers arrived; the body stream then fails with a DownloadError (TOO_LARGE, READ_TIMEOUT,
 * CLOSED_EARLY, ABORTED) instead of delivering too much, stalling or ending short.
 */
export async function safeDownload(url: string, opts: SafeDownloadOptions): Promise<DownloadResult> {
  const { hop, finalUrl } = await follow(url, 'GET', opts);
  const contentLength = declaredLength(hop.headers);
  if (opts.maxBytes !== undefined && contentLength !== null && contentLength > opts.maxBytes) {
    discard(hop);
    throw new DownloadError('TOO_LARGE', `Content-Length ${contentLength} exceeds the limit of ${opts.maxBytes} bytes`, { url: finalUrl.href });
  }
  const body = guardBody(hop.body, {
    maxBytes: opts.maxBytes,
    expectedLength: contentLength,
    readTimeoutMs: opts.readTimeoutMs,
    minBytesPerSecond: opts.minBytesPerSecond,
    signal: opts.signal,
    url: finalUrl.href,
  });
  return { body, contentLength, finalUrl: finalUrl.href, status: hop.status, headers: hop.headers };
}

/** A HEAD request under the same rules as safeDownload: what the server says of the data, without it. */
export async function safeHead(url: string, opts: SafeDownloadOptions): Promise<Omit<DownloadResult, 'body'>> {
  const { hop, finalUrl } = await follow(url, 'HEAD', opts);
  discard(hop);
  return { contentLength: declaredLength(hop.headers), finalUrl: finalUrl.href, status: hop.status, headers: hop.headers };
}

/**
 * Whether `uri` passes the filter with the addresses its host resolves to now; a name that does not
 * resolve does not pass, as in Glance 25 (the download resolves and checks again before it connects).
 */
export async function passesFilterResolved(
  uri: string | null | undefined,
  filter: UriFilterOptions,
  opts: { lookup?: HostLookup; timeoutMs: number },
): Promise<boolean> {
  const check = checkUri(uri, filter);
  if (!check.ok || !SUPPORTED_PROTOCOLS.has(check.url.protocol)) return false;
  const host = check.url.hostname.startsWith('[') ? check.url.hostname.slice(1, -1) : check.url.hostname;
  if (isIP(host) !== 0) return true;
  let addresses: ResolvedAddress[];
  try {
    addresses = await resolveHost(host, opts.lookup ?? systemLookup, opts.timeoutMs, undefined, check.url.href);
  } catch {
    return false;
  }
  return addresses.every((a) => addressPassesFilter(a.address, check.url.hostname, filter));
}
