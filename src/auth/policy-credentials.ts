import type { RequestContext } from './context.ts';
import { pyStr } from '../schemas/python-repr.ts';

// What a policy check reads of the caller: oslo.context's credentials and oslo.policy's token scope.

/**
 * oslo.context's policy values (`to_policy_values`): `is_admin` is not among them, so `is_admin:True`
 * never matches in Glance. What the caller's token does not say is None there too; a caller without a
 * token counts as of the admin project, as keystonemiddleware says when Keystone names none.
 */
export function policyValues(ctx: RequestContext): Record<string, unknown> {
  const scope = ctx.scope;
  return {
    user_id: ctx.userId,
    user_domain_id: scope?.userDomainId ?? null,
    system_scope: scope?.systemScope ?? null,
    domain_id: scope?.domainId ?? null,
    project_id: ctx.projectId,
    project_domain_id: scope?.projectDomainId ?? null,
    roles: ctx.roles,
    is_admin_project: scope?.isAdminProject ?? true,
    service_user_id: scope?.service?.userId ?? null,
    service_user_domain_id: scope?.service?.userDomainId ?? null,
    service_project_id: scope?.service?.projectId ?? null,
    service_project_domain_id: scope?.service?.projectDomainId ?? null,
    service_roles: ctx.serviceRoles,
  };
}

/** oslo.policy's scope of a token: system, domain, or (any other, unscoped ones too) project. */
export function tokenScope(ctx: RequestContext): 'system' | 'domain' | 'project' {
  if (ctx.scope?.systemScope) return 'system';
  if (ctx.scope?.domainId) return 'domain';
  return 'project';
}

export function credentialMatches(value: unknown, path: string[], expected: string): boolean {
  // A credential the caller lacks (a token without a project) matches nothing, not even a target's
  // None: oslo.policy lets "None" meet "None" (a documented difference).
  if (path.length === 0) return value !== null && value !== undefined && pyStr(value) === expected;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const [key, ...rest] = path;
  if (!Object.hasOwn(value, key!)) return false;
  const next = (value as Record<string, unknown>)[key!];
  if (Array.isArray(next)) return next.some((item) => credentialMatches(item, rest, expected));
  return credentialMatches(next, rest, expected);
}
