import { BlockList, isIP, isIPv4 } from 'node:net';
import type { Config } from '../config/index.ts';

// Glance's URI filter for the service's own downloads (web-download, glance-download):
// [import_filtering_opts] allowed/disallowed schemes, hosts and ports.
//
// The algorithm follows glance.common.utils.validate_import_uri:
//  - at each level, when both an allow-list and a deny-list are set, only the allow-list is used;
//  - reject when there is no scheme, when an allow-list is set and the scheme is not in it, or when
//    the scheme is in the deny-list; the same for the host (a URI without a host is refused);
//  - ports are checked only when the URI carries an explicit port.
// Beyond Glance, hosts are compared in canonical form: the URI is parsed the WHATWG way (the same
// parser that later fetches it), so `http://0x7f.1/`, `http://2130706433/` and `http://127.1/` are
// all 127.0.0.1, `[::ffff:127.0.0.1]` is 127.0.0.1, and a trailing dot (`localhost.`) is dropped.
// List entries are canonicalised the same way, so a deny-list entry `::1` matches `http://[::1]/`.
//
// Beyond Glance, and on by default (`refuse_internal_addresses`): an address that is not on the public
// internet (loopback, unspecified, link-local and cloud metadata, private, CGNAT, unique-local,
// multicast, reserved, documentation) is refused, as an IP literal in the URI and as any address a
// name resolves to (at POST /import, at connect and after every redirect), unless `allowed_hosts`
// lists the name, the address, or a network containing it (CIDR entries are a Gaze extension).

export interface UriFilterOptions {
  allowedSchemes: string[];
  disallowedSchemes: string[];
  allowedHosts: string[];
  disallowedHosts: string[];
  allowedPorts: number[];
  disallowedPorts: number[];
  /**
   * Refuse internal destinations unless allowed_hosts lists them (Gaze's default). Off, loopback and
   * link-local destinations are still refused, as Glance 25 refuses them.
   */
  refuseInternal: boolean;
  /** An endpoint the operator's catalog named (glance-download), which may be any address. */
  trustedEndpoint?: boolean;
}

export function uriFilterFromConfig(config: Config): UriFilterOptions {
  const s = 'import_filtering_opts';
  return {
    allowedSchemes: config.get(s, 'allowed_schemes'),
    disallowedSchemes: config.get(s, 'disallowed_schemes'),
    allowedHosts: config.get(s, 'allowed_hosts'),
    disallowedHosts: config.get(s, 'disallowed_hosts'),
    allowedPorts: config.get(s, 'allowed_ports'),
    disallowedPorts: config.get(s, 'disallowed_ports'),
    refuseInternal: config.get(s, 'refuse_internal_addresses'),
  };
}

/** Default ports of the WHATWG "special" schemes: the parser drops them from `URL.port`. */
const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443, 'ftp:': 21 };

export type UriCheck = { ok: true; url: URL; scheme: string; host: string; port: number | null } | { ok: false; reason: string };

/** Only the allow-list counts when both lists of a level are set. */
function effective<T>(allowed: T[], disallowed: T[]): { allow: Set<T>; deny: Set<T> } {
  return allowed.length > 0 ? { allow: new Set(allowed), deny: new Set() } : { allow: new Set(), deny: new Set(disallowed) };
}

/**
 * An IPv6 address as the WHATWG serialiser writes it (lower case, compressed, no brackets), with an
 * IPv4-mapped address (::ffff:a.b.c.d) turned into its IPv4 form.
 */
function unmapIPv6(serialized: string): string {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(serialized);
  if (!m) return serialized;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/** Canonical form of `URL.hostname` for comparisons. */
export function canonicalHostname(hostname: string): string {
  let h = hostname.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) return unmapIPv6(h.slice(1, -1));
  if (h.length > 1 && h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** Canonical form of a host-list entry: a name, an IPv4 address in any legacy spelling, or an IPv6 address. */
export function canonicalHostEntry(entry: string): string {
  const raw = entry.trim().toLowerCase();
  // Anything that is not a bare host (a CIDR, a host:port, a URL) is kept as written: it can only
  // match a host spelled exactly like it, as in Glance.
  if (raw === '' || /[/?#@\\\s%]/.test(raw)) return raw;
  const bracketed = raw.includes(':') && !raw.startsWith('[') ? `[${raw}]` : raw;
  try {
    const url = new URL(`http://${bracketed}/`);
    if (url.port !== '' || url.username !== '' || url.password !== '') return raw;
    return canonicalHostname(url.hostname);
  } catch {
    return raw;
  }
}

/** Canonical form of a resolved address (from DNS or an IP literal); null when it is not an IP address. */
export function canonicalAddress(address: string): string | null {
  const a = address.trim().toLowerCase();
  if (isIPv4(a)) return a;
  if (isIP(a) === 6) {
    try {
      return canonicalHostname(new URL(`http://[${a}]/`).hostname);
    } catch {
      return null; // e.g. with a zone id (fe80::1%eth0)
    }
  }
  return null;
}

// Destinations that are not on the public internet (IANA special-purpose registries).
const INTERNAL_V4: Array<[string, number]> = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];
const INTERNAL_V6: Array<[string, number]> = [
  ['::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['::ffff:0:0:0', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
];
function blockList(v4: Array<[string, number]>, v6: Array<[string, number]>): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of v4) list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of v6) list.addSubnet(net, prefix, 'ipv6');
  return list;
}
const internal = blockList(INTERNAL_V4, INTERNAL_V6);
// What Glance 25 refuses whatever its configuration (loopback, link-local and so cloud metadata), and
// the addresses that reach this host as well (0.0.0.0, ::).
const ALWAYS_REFUSED = blockList(
  [
    ['0.0.0.0', 8],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
  ],
  [
    ['::', 127],
    ['fe80::', 10],
    ['::ffff:0:0:0', 96],
  ],
);

/** The IPv4 address an IPv6 address carries (NAT64 64:ff9b::/96, 6to4 2002::/16), if any. */
function embeddedIPv4(v6: string): string | null {
  const groups = expandIPv6(v6);
  if (!groups) return null;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0)) return v4(groups[6], groups[7]);
  if (groups[0] === 0x2002) return v4(groups[1], groups[2]);
  return null;
}

type Groups = [number, number, number, number, number, number, number, number];

function expandIPv6(v6: string): Groups | null {
  const [head, tail] = v6.split('::');
  const part = (text: string | undefined) => (text ? text.split(':').map((g) => parseInt(g, 16)) : []);
  const left = part(head);
  const right = part(tail);
  if (v6.includes('.')) return null; // dotted forms are unmapped before this
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g)) ? (groups as Groups) : null;
}

/** Whether a canonical address (see canonicalAddress) is in `list`, directly or as the IPv4 address it carries. */
function listsAddress(list: BlockList, canonical: string): boolean {
  if (isIPv4(canonical)) return list.check(canonical, 'ipv4');
  if (list.check(canonical, 'ipv6')) return true;
  const carried = embeddedIPv4(canonical);
  return carried !== null && list.check(carried, 'ipv4');
}

/** Whether a canonical address (see canonicalAddress) is internal: not a public internet destination. */
export function isInternalAddress(canonical: string): boolean {
  return listsAddress(internal, canonical);
}

/** Whether the filter refuses this canonical address unless allowed_hosts lists it (see UriFilterOptions). */
function refusedDestination(opts: UriFilterOptions, canonical: string): boolean {
  if (opts.refuseInternal) return isInternalAddress(canonical);
  return !opts.trustedEndpoint && listsAddress(ALWAYS_REFUSED, canonical);
}

/** A host-list entry written as a network (`10.0.0.0/8`, `fd00::/8`): a Gaze extension of allowed_hosts. */
function listedNetworks(entries: string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const m = /^\s*([0-9a-fA-F:.]+)\/(\d{1,3})\s*$/.exec(entry);
    const [, address = '', bits = ''] = m ?? [];
    const family = isIP(address);
    if (family === 0 || Number(bits) > (family === 4 ? 32 : 128)) continue;
    list.addSubnet(address, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

function inNetworks(networks: BlockList, canonical: string): boolean {
  return isIP(canonical) !== 0 && networks.check(canonical, isIPv4(canonical) ? 'ipv4' : 'ipv6');
}

/** allowed_hosts names this host, or this address, or a network that contains the address. */
function allowListed(opts: UriFilterOptions, canonicalHost: string, canonical: string | null): boolean {
  const allowed = opts.allowedHosts.map(canonicalHostEntry);
  return allowed.includes(canonicalHost) || (canonical !== null && (allowed.includes(canonical) || inNetworks(listedNetworks(opts.allowedHosts), canonical)));
}

/** Whether the raw text of the URI has a non-empty port after the host, as the WHATWG parser reads it. */
function hasExplicitPort(raw: string): boolean {
  const text = raw.replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '');
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:[/\\]*/.exec(text);
  if (!scheme) return false;
  let authority = text.slice(scheme[0].length);
  const end = authority.search(/[/\\?#]/);
  if (end >= 0) authority = authority.slice(0, end);
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  let inBrackets = false;
  for (let i = 0; i < authority.length; i++) {
    const c = authority[i];
    if (c === '[') inBrackets = true;
    else if (c === ']') inBrackets = false;
    else if (c === ':' && !inBrackets) return i + 1 < authority.length;
  }
  return false;
}

function authorityIsPlain(raw: string): boolean {
  const text = raw.replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+/, '');
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(text);
  const authority = m?.[1] ?? '';
  return authority !== '' && !authority.includes('\\');
}

/** The filter with its reason; `passesUriFilter` is the boolean form. Pure: no DNS. */
export function checkUri(uri: unknown, opts: UriFilterOptions): UriCheck {
  if (!uri) return { ok: false, reason: 'empty URI' };
  // A list or a number would pass through URL's string conversion.
  if (typeof uri !== 'string') return { ok: false, reason: 'not a valid URI' };
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return { ok: false, reason: 'not a valid URI' };
  }

  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  const schemes = effective(
    opts.allowedSchemes.map((s) => s.trim().toLowerCase()),
    opts.disallowedSchemes.map((s) => s.trim().toLowerCase()),
  );
  if (!scheme) return { ok: false, reason: 'no scheme' };
  if (schemes.allow.size > 0 && !schemes.allow.has(scheme)) return { ok: false, reason: `scheme '${scheme}' is not allowed` };
  if (schemes.deny.has(scheme)) return { ok: false, reason: `scheme '${scheme}' is disallowed` };

  // A special-scheme URI must spell its authority as `//host`: the WHATWG parser reads `http:/x`,
  // `http:///x` and `http:\\x` as host `x`, where Glance (Python's urlsplit) sees no host at all.
  if (DEFAULT_PORTS[url.protocol] !== undefined && !authorityIsPlain(uri)) return { ok: false, reason: 'no host (authority not written as //host)' };
  const host = canonicalHostname(url.hostname);
  const hosts = effective(opts.allowedHosts.map(canonicalHostEntry), opts.disallowedHosts.map(canonicalHostEntry));
  if (!host) return { ok: false, reason: 'no host' };
  if (hosts.allow.size > 0 && !hosts.allow.has(host) && !inNetworks(listedNetworks(opts.allowedHosts), host)) {
    return { ok: false, reason: `host '${host}' is not allowed` };
  }
  if (hosts.deny.has(host)) return { ok: false, reason: `host '${host}' is disallowed` };
  if (isIP(host) !== 0 && refusedDestination(opts, host) && !allowListed(opts, host, host)) {
    return { ok: false, reason: `host '${host}' is an internal address` };
  }

  let port: number | null = null;
  if (url.port !== '') port = Number(url.port);
  else if (DEFAULT_PORTS[url.protocol] !== undefined && hasExplicitPort(uri)) port = DEFAULT_PORTS[url.protocol]!;
  if (port !== null) {
    const ports = effective(opts.allowedPorts, opts.disallowedPorts);
    if (ports.allow.size > 0 && !ports.allow.has(port)) return { ok: false, reason: `port ${port} is not allowed` };
    if (ports.deny.has(port)) return { ok: false, reason: `port ${port} is disallowed` };
  }
  return { ok: true, url, scheme, host, port };
}

/** Glance's validate_import_uri, with canonical host comparison. */
export function passesUriFilter(uri: string | null | undefined, opts: UriFilterOptions): boolean {
  return checkUri(uri, opts).ok;
}

/**
 * The check applied to each address a URI's host resolves to (after `checkUri` passed for the URI).
 * An internal address fails unless allowed_hosts lists the name, the address or its network. With a
 * host allow-list, an address passes when the host itself is listed (a listed name allows the
 * addresses it resolves to) or when the address (or a network holding it) is listed. Otherwise an
 * address fails when the host deny-list names it (in any spelling of the address).
 */
export function addressPassesFilter(address: string, hostname: string, opts: UriFilterOptions): boolean {
  const canonical = canonicalAddress(address);
  if (canonical === null) return false;
  const host = canonicalHostname(hostname);
  if (refusedDestination(opts, canonical) && !allowListed(opts, host, canonical)) return false;
  const hosts = effective(opts.allowedHosts.map(canonicalHostEntry), opts.disallowedHosts.map(canonicalHostEntry));
  if (hosts.allow.size > 0) return allowListed(opts, host, canonical);
  return !hosts.deny.has(canonical);
}
