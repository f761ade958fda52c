// The body of a Keystone v3 `POST /v3/auth/tokens`, as keystoneauth's v3.Password and
// V3ApplicationCredential send it. Gaze logs in to Keystone for three things (its service token, unified
// limits, a Swift account), each with the options of its own section.

/** Keystone's address without the version: deployments write it with /v3 and without. */
export function keystoneBase(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v3$/, '');
}

/** A domain given by id or by name; neither means the default domain, as keystoneauth's callers assume. */
export function domainRef(id: string | null | undefined, name: string | null | undefined): { id: string } | { name: string } {
  return id ? { id } : name ? { name } : { id: 'default' };
}

/** A user by id, or by name in a domain (keystoneauth's user_id, or username with user_domain_*). */
export interface UserName {
  userId?: string | null;
  username?: string | null;
  userDomainId?: string | null;
  userDomainName?: string | null;
}

export interface PasswordLogin extends UserName {
  password: string;
  /** A project by id or by name; `system` asks for a system-scoped token instead. */
  scope: { projectId?: string | null; projectName?: string | null; projectDomainId?: string | null; projectDomainName?: string | null } | 'system';
}

function userRef(user: UserName): { id: string } | { name: string; domain: { id: string } | { name: string } } {
  return user.userId ? { id: user.userId } : { name: user.username ?? '', domain: domainRef(user.userDomainId, user.userDomainName) };
}

export function passwordAuthBody(login: PasswordLogin): string {
  const user = { ...userRef(login), password: login.password };
  const scope =
    login.scope === 'system'
      ? { system: { all: true } }
      : {
          project: login.scope.projectId
            ? { id: login.scope.projectId }
            : { name: login.scope.projectName ?? '', domain: domainRef(login.scope.projectDomainId, login.scope.projectDomainName) },
        };
  return JSON.stringify({ auth: { identity: { methods: ['password'], password: { user } }, scope } });
}

/** A credential by id, or by name with its user. */
export type ApplicationCredential = { id: string } | { name: string; user: UserName };

/** An application credential carries its own scope: the body names none. */
export function applicationCredentialAuthBody(credential: ApplicationCredential, secret: string): string {
  const named = 'id' in credential ? { id: credential.id } : { name: credential.name, user: userRef(credential.user) };
  return JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: { ...named, secret } } } });
}
