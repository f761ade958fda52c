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

export function allowedPrefixes(opts: VersionOptions): Set<string> {
  return new Set(['v2', ...versionList(opts).map((v) => v.id)]);
}

export function versionDocument(opts: VersionOptions, requestBase: string): { versions: unknown[] } {
  const base = (opts.publicEndpoint ?? requestBase).replace(/\/+$/, '');
  const href = `${base}/v2/`;
  return { versions: versionList(opts).map((v) => ({ ...v, links: [{ rel: 'self', href }] })) };
}
