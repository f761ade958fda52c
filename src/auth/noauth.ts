import type { Authenticator, RequestContext } from './context.ts';
import { makeContext } from './context.ts';

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * No-auth mode: trusted headers make the context (as Glance's unauthenticated pipeline does). A request
 * without a project acts as the configured default project with admin, member and reader roles.
 */
export function createNoAuthAuthenticator(defaultProjectId: string): Authenticator {
  return {
    async authenticate(headers, requestId): Promise<RequestContext> {
      const project = header(headers, 'x-project-id') ?? header(headers, 'x-tenant-id');
      const rolesHeader = header(headers, 'x-roles');
      const roles = rolesHeader !== undefined ? rolesHeader.split(',') : project ? ['member', 'reader'] : ['admin', 'member', 'reader'];
      return makeContext({
        requestId,
        projectId: project ?? defaultProjectId,
        userId: header(headers, 'x-user-id') ?? null,
        roles,
        authToken: header(headers, 'x-auth-token') ?? null,
        // The header keystonemiddleware sets from a validated X-Service-Token.
        serviceRoles: header(headers, 'x-service-roles')?.split(',') ?? [],
      });
    },
  };
}
