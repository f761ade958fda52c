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

export interface PasswordLogin {
  username: string;
  password: string;
  userDomainId?: string | null;
  userDomainName?: string | null;
  /** A project scope; `system` asks for a system-scoped token instead. */
  scope: { projectName: string; projectDomainId?: string | null; projectDomainName?: string | null } | 'system';
}

export function passwordAuthBody(login: PasswordLogin): string {
  const user = { name: login.username, password: login.password, domain: domainRef(login.userDomainId, login.userDomainName) };
  const scope =
    login.scope === 'system'
      ? { system: { all: true } }
      : { project: { name: login.scope.projectName, domain: domainRef(login.scope.projectDomainId, login.scope.projectDomainName) } };
  return JSON.stringify({ auth: { identity: { methods: ['password'], password: { user } }, scope } });
}

/** An application credential carries its own scope: the body names none. */
export function applicationCredentialAuthBody(id: string, secret: string): string {
  return JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } } });
}
