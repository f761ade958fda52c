// Which of Glance's and Gaze's Swift location urls are a store's: its account (by reference or auth
// address) and its container, or the container Glance chose for the image under
// swift_store_multiple_containers_seed.

/** A store's account and container, as its locations name them. */
export interface SwiftLocationScope {
  container: string;
  /** The glance-swift.conf reference (lower-cased); undefined when the account is given inline. */
  reference: string | undefined;
  /** The auth address as `accountAddress` gives it. */
  authAddress: string;
  /** Glance's swift_store_multiple_containers_seed (0: one container). */
  containerSeed: number;
}

/** The container and key of a url of this scope's account and container, or null. */
export function parseSwiftLocation(url: string, scope: SwiftLocationScope): { container: string; key: string } | null {
  const m = /^(swift|swift\+https?|swift\+config):\/\/(.*)$/i.exec(url);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  let rest = m[2]!;
  // Glance's forms: credentials up to the last '@', then the auth address (which has path segments
  // of its own), or the reference; then container/object: the container and object are the last two segments.
  const parts = rest.slice(rest.lastIndexOf('@') + 1).split('/');
  if (scheme !== 'swift' || rest.includes('@') || parts.length > 2) {
    if (parts.length < 3) return null;
    const account = parts.slice(0, -2).join('/').replace(/\/+$/, '');
    // Another reference, or another auth address, is another account (which may have a container of the same name).
    if (scheme === 'swift+config') {
      if (scope.reference !== undefined && account.toLowerCase() !== scope.reference) return null;
    } else if (accountAddress(`${scheme === 'swift+http' ? 'http' : 'https'}://${account}`) !== scope.authAddress) {
      // swift+http(s):// and Glance's oldest swift://user:key@auth/… name the account by its auth address.
      return null;
    }
    rest = parts.slice(-2).join('/');
  }
  const slash = rest.indexOf('/');
  if (slash < 0) return null;
  const container = rest.slice(0, slash);
  const key = rest.slice(slash + 1);
  if (key === '' || key.includes('/') || key === '.' || key === '..') return null;
  if (container !== scope.container && container !== seedContainer(scope, key)) return null;
  return { container, key };
}

/** Glance's container for an image id under swift_store_multiple_containers_seed (null when unset). */
function seedContainer(scope: SwiftLocationScope, key: string): string | null {
  if (scope.containerSeed === 0) return null;
  const id = key.toLowerCase();
  const prefix = id.slice(0, scope.containerSeed + (id.slice(0, scope.containerSeed).match(/-/g)?.length ?? 0));
  return `${scope.container}_${prefix}`;
}

/**
 * An auth address as locations are compared by it: host (its default port left out, as URL leaves it)
 * and path, lower-cased; '' when it cannot be read.
 */
export function accountAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.host}${parsed.pathname}`.replace(/\/+$/, '').toLowerCase();
  } catch {
    return '';
  }
}
