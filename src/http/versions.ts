// Version negotiation (spec images-api.md §1): which /v2.N prefixes exist and the version document.

export interface VersionOptions {
  cache: boolean;
  publicEndpoint: string | null;
}

export function versionList(opts: VersionOptions): Array<{ id: string; status: string }> {
  const list: Array<{ id: string; status: string }> = [];
  if (opts.cache) list.push({ id: 'v2.16', status: 'CURRENT' }, { id: 'v2.15', status: 'SUPPORTED' }, { id: 'v2.14', status: 'SUPPORTED' });
  else list.push({ id: 'v2.15', status: 'CURRENT' });
  // Glance lists 2.8–2.13 only with several stores, yet the image tasks API (2.12) works either way and
  // python-glanceclient refuses `glance image-tasks` unless v2.12 is listed: Gaze always lists them.
  for (const n of [13, 12, 11, 10, 9, 8]) list.push({ id: `v2.${n}`, status: 'SUPPORTED' });
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
