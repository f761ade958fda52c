// Application credentials' access rules, as keystonemiddleware enforces them: a token made from an
// application credential that lists rules may call only the methods and paths of this service the
// rules name. Keystone validates such a token only for a validator that says it understands them.

import type { CatalogService } from './context.ts';

/** The header that tells Keystone this validator enforces access rules (its version). */
export const ACCESS_RULES_HEADER = { 'OpenStack-Identity-Access-Rules': '1' };

export interface AccessRule {
  service: string;
  method: string;
  path: string;
}

/** The access rules of a validated token body, or null when it has none (no application credential, or one without rules). */
export function accessRulesOf(token: { application_credential?: { access_rules?: unknown } }): AccessRule[] | null {
  const rules = token.application_credential?.access_rules;
  if (!Array.isArray(rules)) return null;
  return rules.map((r: Partial<AccessRule>) => ({ service: String(r.service ?? ''), method: String(r.method ?? ''), path: String(r.path ?? '') }));
}

/** What the rules are weighed against. */
export interface AccessCheck {
  /** [keystone_authtoken] service_type: this service's type in the catalog. */
  serviceType: string | null;
  /** The token's catalog. */
  catalog: readonly CatalogService[];
  /** What is asked: the method and the path without the query. */
  request: { method: string; path: string } | undefined;
  /** A service calls for the user (a valid X-Service-Token with a service role): a chain of calls. */
  fromService: boolean;
}

/**
 * Whether the rules let this request through: `serviceType` must be set and in the token's catalog; a
 * call a service makes for the user passes; otherwise one rule must name this service, the method and
 * the path (`*` one segment, `**` any number, `{name}` one segment).
 */
export function accessRulesAllow(rules: readonly AccessRule[], { serviceType, catalog, request, fromService }: AccessCheck): boolean {
  if (!serviceType || !catalog.some((s) => s.type === serviceType)) return false;
  if (fromService) return true;
  if (!request) return false;
  // The path as the application sees it, %-escapes decoded, as keystonemiddleware reads WSGI's PATH_INFO.
  const path = decodedPath(request.path);
  return rules.some((r) => r.service === serviceType && r.method === request.method && pathPattern(r.path).test(path));
}

function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path; // a malformed escape is left as sent, as the router leaves it
  }
}

function pathPattern(pattern: string): RegExp {
  const parts = pattern.match(/\{[^}]*\}|\*\*|\*|[^{}*]/g) ?? [];
  const source = parts
    .map((part) => {
      if (part === '**') return '.*';
      if (part === '*' || part.startsWith('{')) return '[^/]+';
      return part.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${source}$`);
}
