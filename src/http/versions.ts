// Version negotiation (spec images-api.md §1): which /v2.N prefixes exist and the version document.

export interface VersionOptions {
  cache: boolean;
  publicEndpoint: string | null;
}

/** In Glance 2024.2's order (2.17, the locations API, is the current version; it comes after 2.8 there). */
export function versionList(opts: VersionOptions): Array<{ id: string; status: string }> {
  const list: Array<{ id: string; status: string }> = [];
  if (opts.cache) {
    list.push({ id: 'v2.17', status: 'CURRENT' });
    for (const n of [16, 15, 14]) list.push({ id: `v2.${n}`, status: 'SUPPORTED' });
  } else list.push({ id: 'v2.15', status: 'SUPPORTED' });
  // Glance lists 2.8–2.13 only with several stores, yet the image tasks API (2.12) works either way and
  // python-glanceclient refuses `glance image-tasks` unless v2.12 is listed: Gaze always lists them.
  for (const n of [13, 12, 11, 10, 9, 8]) list.push({ id: `v2.${n}`, status: 'SUPPORTED' });
  if (!opts.cache) list.push({ id: 'v2.17', status: 'CURRENT' });
  for (let n = 7; n >= 0; n--) list.push({ id: `v2.${n}`, status: 'SUPPORTED' });
  return list;
}

function allowedPrefixes(opts: VersionOptions): Set<string> {
  return new Set(['v2', ...versionList(opts).map((v) => v.id)]);
}

/** Where a request without a known version goes: the 300 version document. */
export const MULTIPLE_CHOICES = '/__gaze_multiple_choices';
/** `/v2` (or `/v2.N`) with nothing after it, which Glance's router redirects to `/v2/`. */
export const VERSION_ROOT = '/__gaze_version_root';
const VERSIONED_MEDIA_TYPE = 'application/vnd.openstack.images-';

/**
 * The route a request URL takes, as Glance's version negotiation reads it: /v2.N/... maps to /v2/...;
 * an unknown version (or none) gets the 300 document.
 */
export function versionRouter(opts: VersionOptions): (requested: string, accept?: string) => string {
  const prefixes = allowedPrefixes(opts);
  return function routedUrl(requested: string, accept?: string): string {
    // A % that starts no escape stands for itself, as Python's unquote reads it (fastify would refuse it).
    const raw = requested.replace(/%(?![0-9A-Fa-f]{2})/g, '%25');
    const q = raw.indexOf('?');
    // Glance routes the decoded path without empty segments: an encoded slash is a slash, `//` is one.
    const pathname = (q < 0 ? raw : raw.slice(0, q)).replace(/%2f/gi, '/').replace(/\/{2,}/g, '/');
    const query = q < 0 ? '' : raw.slice(q);
    const url = pathname + query;
    const [first = '', ...rest] = pathname.split('/').slice(1);
    if (first === 'healthcheck') return url;
    // Glance answers the version document under /versions/ and below too.
    if (first === 'versions') return `/versions${query}`;
    // Media-type versioning, which Glance tries before the path's: the whole Accept header names the
    // version (application/vnd.openstack.images-v2.1), and the path, whatever it is, goes under /v2.
    if (accept?.startsWith(VERSIONED_MEDIA_TYPE)) {
      const version = accept.slice(VERSIONED_MEDIA_TYPE.length);
      return prefixes.has(version) ? routedUrl(`/v2${pathname}${query}`) : MULTIPLE_CHOICES;
    }
    if (first === '') return url;
    if (prefixes.has(first)) return rest.length ? `/v2/${rest.join('/')}${query}` : VERSION_ROOT;
    return MULTIPLE_CHOICES;
  };
}

export function versionDocument(opts: VersionOptions, requestBase: string): { versions: unknown[] } {
  const base = (opts.publicEndpoint ?? requestBase).replace(/\/+$/, '');
  const href = `${base}/v2/`;
  return { versions: versionList(opts).map((v) => ({ ...v, links: [{ rel: 'self', href }] })) };
}
