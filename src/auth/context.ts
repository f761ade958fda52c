// Who is calling: built once per request by the authenticator (no-auth headers or a Keystone token).

import { gazeError } from '../domain/errors.ts';

export interface CatalogEndpoint {
  url: string;
  interface: string; // public | internal | admin
  region: string | null;
  region_id?: string | null;
  id?: string;
}

export interface CatalogService {
  type: string;
  name?: string;
  id?: string;
  endpoints: CatalogEndpoint[];
}

export interface RequestContext {
  userId: string | null;
  projectId: string | null;
  /** Lower-cased, as Glance compares them. */
  roles: string[];
  isAdmin: boolean;
  /** The caller's token, kept to call other services on the caller's behalf (glance-download). */
  authToken: string | null;
  /** Keystone v3 catalog of the token, when known. */
  serviceCatalog: CatalogService[];
  requestId: string;
  readOnly: boolean;
  /** Roles of the X-Service-Token a service (Nova, Cinder) sent beside the user's token; lower-cased. */
  serviceRoles: string[];
  /** What a Keystone token says beyond its project (policy credentials); absent without a token. */
  scope?: TokenScope;
}

/**
 * oslo.context's policy values a token gives besides the project and roles: its admin-project mark
 * (keystonemiddleware's true when Keystone names no admin project), a system or domain scope, the
 * domains of its user and project, and the identity of the X-Service-Token beside it.
 */
export interface TokenScope {
  isAdminProject: boolean;
  /** `all` for a system-scoped token. */
  systemScope: string | null;
  /** The domain of a domain-scoped token. */
  domainId: string | null;
  userDomainId: string | null;
  projectDomainId: string | null;
  service: { userId: string | null; userDomainId: string | null; projectId: string | null; projectDomainId: string | null } | null;
}

export function makeContext(fields: Partial<RequestContext> & { requestId: string }): RequestContext {
  const roles = (fields.roles ?? []).map((r) => r.trim().toLowerCase()).filter((r) => r !== '');
  return {
    userId: fields.userId ?? null,
    projectId: fields.projectId ?? null,
    roles,
    isAdmin: fields.isAdmin ?? roles.includes('admin'),
    authToken: fields.authToken ?? null,
    serviceCatalog: fields.serviceCatalog ?? [],
    requestId: fields.requestId,
    readOnly: fields.readOnly ?? false,
    serviceRoles: (fields.serviceRoles ?? []).map((r) => r.trim().toLowerCase()).filter((r) => r !== ''),
    ...(fields.scope && { scope: fields.scope }),
  };
}

/** Turns request headers into a context, or throws GazeError UNAUTHORIZED. */
export interface Authenticator {
  /** `request`: what is asked (its path without the query), for tokens whose access rules name what they may call. */
  authenticate(headers: Record<string, string | string[] | undefined>, requestId: string, request?: { method: string; path: string }): Promise<RequestContext>;
  close?(): Promise<void>;
}

/** Glance's `mutating` guard: a caller let in without a valid token (allow_anonymous_access) only reads. */
export function refuseReadOnlyCaller(ctx: RequestContext): void {
  if (ctx.readOnly) throw gazeError('READ_ONLY');
}
