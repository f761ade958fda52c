// How Gaze logs in to Keystone to validate callers' tokens: keystoneauth's plugin named by auth_type,
// with that plugin's options read from [keystone_authtoken], or from the section its auth_section names
// (keystoneauth's way of sharing one set of credentials between sections; keystonemiddleware names the
// option, but in Glance 25 it fails on it, the plugin's options being registered in no other section).

import { ConfigError, type Config } from '../config/index.ts';
import { applicationCredentialAuthBody, passwordAuthBody, type UserName } from './keystone-password.ts';

/** The options of keystoneauth's password, v3password and v3applicationcredential plugins Gaze reads. */
export type PluginOptionName =
  | 'auth_type'
  | 'auth_url'
  | 'user_id'
  | 'username'
  | 'password'
  | 'user_domain_id'
  | 'user_domain_name'
  | 'project_id'
  | 'project_name'
  | 'project_domain_id'
  | 'project_domain_name'
  | 'default_domain_id'
  | 'default_domain_name'
  | 'application_credential_id'
  | 'application_credential_name'
  | 'application_credential_secret'
  | 'system_scope';

export interface PluginOptions {
  /** The option's text, null when unset or empty. */
  (name: PluginOptionName): string | null;
  /** Where the options come from, for messages: `[keystone_authtoken]` or the auth_section's. */
  section: string;
}

/** The sections that log in to Keystone with keystoneauth's plugin options. */
export type LoginSection = 'keystone_authtoken' | 'oslo_limit';

export function authPluginOptions(config: Config, own: LoginSection = 'keystone_authtoken'): PluginOptions {
  const named = config.get(own, 'auth_section');
  if (!named || named.toLowerCase() === own) {
    return Object.assign((name: PluginOptionName) => config.get(own, name) || null, { section: `[${own}]` });
  }
  const section = config.section(named);
  // auth_plugin is auth_type's deprecated name there too.
  const text = (name: PluginOptionName) => (section[name] ?? (name === 'auth_type' ? section.auth_plugin : undefined))?.trim() || null;
  return Object.assign(text, { section: `[${named}] (the auth_section of [${own}])` });
}

export interface ServiceLogin {
  body: string;
  /** Who logs in, for the message when Keystone refuses. */
  who: string;
  /** Whether the token is the system's (else a project's: an application credential's always is). */
  systemScoped: boolean;
}

/**
 * The body of Gaze's own login, by keystoneauth's plugin in auth_type: `password` and its v3-only
 * `v3password` (a user by id or by name, a project by id or by name, or the system with system_scope),
 * or `v3applicationcredential` (a credential by id, or by name with its user; it carries its own scope).
 * `why` ends the message of a missing option.
 */
export function serviceLogin(opt: PluginOptions, why = 'with Keystone authentication'): ServiceLogin {
  const required = (names: PluginOptionName[], reason: string): string => {
    for (const name of names) {
      const value = opt(name);
      if (value) return value;
    }
    throw new ConfigError(`${opt.section} ${names.join(' or ')} is required ${reason}`);
  };
  const user: UserName = {
    userId: opt('user_id'),
    username: opt('username'),
    userDomainId: opt('user_domain_id') ?? opt('default_domain_id'),
    userDomainName: opt('user_domain_name') ?? opt('default_domain_name'),
  };
  const authType = opt('auth_type') ?? 'password';
  if (authType === 'v3applicationcredential') {
    const asCredential = 'with auth_type v3applicationcredential';
    const secret = required(['application_credential_secret'], asCredential);
    const id = opt('application_credential_id');
    if (id) return { body: applicationCredentialAuthBody({ id }, secret), who: `application credential ${id}`, systemScoped: false };
    const name = required(['application_credential_id', 'application_credential_name'], asCredential);
    required(['user_id', 'username'], 'with application_credential_name');
    return { body: applicationCredentialAuthBody({ name, user }, secret), who: `application credential '${name}'`, systemScoped: false };
  }
  if (authType !== 'password' && authType !== 'v3password') {
    throw new ConfigError(`${opt.section} auth_type ${authType} is not supported: use password, v3password or v3applicationcredential`);
  }
  const who = required(['username', 'user_id'], why);
  // keystoneauth asks for the whole system with system_scope (only `all` exists), else for a project.
  const system = opt('system_scope') !== null;
  if (!system) required(['project_name', 'project_id'], `${why} (or system_scope = all)`);
  const body = passwordAuthBody({
    ...user,
    password: required(['password'], why),
    scope: system
      ? 'system'
      : {
          projectId: opt('project_id'),
          projectName: opt('project_name'),
          projectDomainId: opt('project_domain_id') ?? opt('default_domain_id'),
          projectDomainName: opt('project_domain_name') ?? opt('default_domain_name'),
        },
  });
  return { body, who: `'${who}'`, systemScoped: system };
}
