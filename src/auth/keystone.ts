// Keystone token authentication, the part of keystonemiddleware's auth_token that Glance relies on:
// validate the caller's X-Auth-Token with Keystone using our own service token, and turn the answer
// into a RequestContext. Successful validations are cached so a busy client costs one Keystone call
// per token_cache_time, not one per request.

import { createHash } from 'node:crypto';
import { timerMs } from '../domain/time.ts';
import { ConfigError, type Config } from '../config/index.ts';
import { gazeError, GazeError } from '../domain/errors.ts';
import type { StringOptionName } from '../config/options.ts';
import { keystoneBase } from './keystone-password.ts';
import { authPluginOptions, serviceLogin } from './service-login.ts';
import { fetchWithTls, tlsOptionsOf } from '../net/tls-fetch.ts';
import { makeContext, type Authenticator, type CatalogService, type RequestContext, type TokenScope } from './context.ts';
import { ACCESS_RULES_HEADER, accessRulesAllow, accessRulesOf, type AccessRule } from './access-rules.ts';

export interface KeystoneAuthenticatorOptions {
  fetch?: typeof fetch;
  /** Milliseconds since the epoch; tests move time forward. */
  now?: () => number;
  /** Validated tokens kept in memory; the oldest is dropped beyond this. */
  maxCachedTokens?: number;
  /** Told what start-up found odd but not fatal (a cafile that is not there). */
  warn?: (message: string) => void;
}

/** What a validation yields that does not depend on the request; `accessRules` are checked per request. */
type TokenInfo = Omit<RequestContext, 'requestId' | 'readOnly' | 'serviceRoles'> & {
  accessRules: AccessRule[] | null;
  /** The roles as Keystone names them (`roles` are lower-cased, as oslo.policy compares them). */
  roleNames: string[];
};

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

// A service token this close to expiry is replaced before use, so it cannot expire in flight.
const SERVICE_TOKEN_MARGIN_MS = 60_000;

class KeystoneUnavailable extends Error {
  override name = 'KeystoneUnavailable';
}

/** What a caller is told when its token cannot be validated now (the cause is logged). */
export const KEYSTONE_UNAVAILABLE = 'Keystone is unavailable: the token cannot be validated now; try again later.';

/** A [keystone_authtoken] option's text, null when unset or empty. */
function authtokenOption(config: Config, name: StringOptionName<'keystone_authtoken'>): string | null {
  return config.get('keystone_authtoken', name) || null;
}

/** Tokens are printable ASCII (Fernet, JWS); anything else could not even be sent on as a header. */
const TOKEN_TEXT = /^[\x21-\x7e]+$/;

export function createKeystoneAuthenticator(config: Config, opts: KeystoneAuthenticatorOptions = {}): Authenticator {
  const opt = (name: StringOptionName<'keystone_authtoken'>) => authtokenOption(config, name);
  const pluginOption = authPluginOptions(config);
  const authUrlOption = pluginOption('auth_url');
  if (!authUrlOption) throw new ConfigError(`${pluginOption.section} auth_url is required with Keystone authentication`);
  const login = serviceLogin(pluginOption);
  const catalogQuery = config.get('keystone_authtoken', 'include_service_catalog') ? [] : ['nocatalog'];
  // Deployments write auth_url both with and without the version; requests below add /v3 themselves.
  const authUrl = keystoneBase(authUrlOption);
  const wwwAuthenticate = `Keystone uri="${opt('www_authenticate_uri') ?? authUrlOption}"`;
  const timeoutMs = timerMs(Math.max(1, config.get('keystone_authtoken', 'http_connect_timeout')));
  const cacheTtlMs = config.get('keystone_authtoken', 'token_cache_time') * 1000;
  const maxCached = opts.maxCachedTokens ?? 10_000;
  const doFetch = opts.fetch ?? fetchWithTls(tlsOptionsOf(config, 'keystone_authtoken'), 'keystone_authtoken', opts.warn);
  const now = opts.now ?? Date.now;
  // Compared with Keystone's names exactly, as keystonemiddleware compares them.
  const serviceTokenRoles = new Set(config.get('keystone_authtoken', 'service_token_roles'));
  const serviceTokenRolesRequired = config.get('keystone_authtoken', 'service_token_roles_required');
  const holdsServiceRole = (roleNames: readonly string[]) => roleNames.some((name) => serviceTokenRoles.has(name));
  const allowAnonymous = config.get('DEFAULT', 'allow_anonymous_access');
  const serviceType = opt('service_type');

  const unauthorized = (): GazeError => gazeError('UNAUTHORIZED').withHeaders({ 'WWW-Authenticate': wwwAuthenticate });

  async function call(method: string, headers: Record<string, string>, body?: string, query = ''): Promise<Response> {
    try {
      return await doFetch(`${authUrl}/v3/auth/tokens${query}`, {
        method,
        headers: { Accept: 'application/json', ...headers },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') throw new KeystoneUnavailable(`no answer from ${authUrl} within ${timeoutMs / 1000} s`);
      // undici's "fetch failed" hides the useful part (connect ECONNREFUSED ...) in `cause`.
      const cause = (err as { cause?: { message?: string } }).cause;
      throw new KeystoneUnavailable(cause?.message ?? (err as Error).message);
    }
  }

  async function readJson(res: Response): Promise<any> {
    try {
      return await res.json();
    } catch (err) {
      throw new KeystoneUnavailable(`unreadable answer from ${res.url}: ${(err as Error).message}`);
    }
  }

  // ---- our own (service) token -------------------------------------------------------------------
  let serviceToken: Expiring<string> | null = null;
  let serviceTokenPending: Promise<string> | null = null;

  async function fetchServiceToken(): Promise<string> {
    const res = await call('POST', { 'Content-Type': 'application/json' }, login.body);
    if (res.status !== 201) {
      await res.body?.cancel();
      // Wrong service credentials are an operator problem, not the caller's: 503 like keystonemiddleware.
      throw new KeystoneUnavailable(`service authentication as ${login.who} failed with HTTP ${res.status}`);
    }
    const token = res.headers.get('x-subject-token');
    const body = await readJson(res);
    if (!token) throw new KeystoneUnavailable('no X-Subject-Token in the service token answer');
    serviceToken = { value: token, expiresAt: Date.parse(body?.token?.expires_at) || now() + 3_600_000 };
    return token;
  }

  function getServiceToken(): Promise<string> {
    if (serviceToken && serviceToken.expiresAt - now() > SERVICE_TOKEN_MARGIN_MS) return Promise.resolve(serviceToken.value);
    // One authentication shared by all requests that arrive while it is under way.
    serviceTokenPending ??= fetchServiceToken().finally(() => {
      serviceTokenPending = null;
    });
    return serviceTokenPending;
  }

  // ---- validated user tokens -----------------------------------------------------------------------
  // Keyed by the SHA-256 of the token, as keystonemiddleware does: small fixed-size keys.
  const cache = new Map<string, Expiring<TokenInfo>>();

  function remember(key: string, info: TokenInfo, tokenExpiresAt: number): void {
    const expiresAt = Math.min(now() + cacheTtlMs, tokenExpiresAt);
    if (cacheTtlMs <= 0 || expiresAt <= now()) return;
    cache.delete(key); // re-insert at the end: Map iteration order is insertion order
    while (cache.size >= maxCached) cache.delete(cache.keys().next().value as string);
    cache.set(key, { value: info, expiresAt });
  }

  /** `allowExpired`: Keystone answers for a token expired within its allow_expired_window too. */
  async function validate(userToken: string, allowExpired: boolean): Promise<{ info: TokenInfo; expiresAt: number }> {
    for (let attempt = 0; ; attempt++) {
      const service = await getServiceToken();
      const headers = { 'X-Auth-Token': service, 'X-Subject-Token': userToken, ...ACCESS_RULES_HEADER };
      const flags = [...(allowExpired ? ['allow_expired=1'] : []), ...catalogQuery];
      const res = await call('GET', headers, undefined, flags.length ? `?${flags.join('&')}` : '');
      if (res.status === 200) {
        const body = await readJson(res);
        const token = body?.token;
        if (!token?.user?.id) throw new KeystoneUnavailable('token validation answer without a user');
        const expiresAt = Date.parse(token.expires_at);
        if (!allowExpired && !(expiresAt > now())) throw unauthorized();
        return { info: toInfo(token, userToken), expiresAt };
      }
      await res.body?.cancel();
      // 404 (and 400 for garbage): the user's token is unknown, expired or revoked.
      if (res.status === 404 || res.status === 400) throw unauthorized();
      // 401: our service token expired or was revoked; get a new one, once.
      if (res.status === 401 && attempt === 0) {
        serviceToken = null;
        continue;
      }
      throw new KeystoneUnavailable(`token validation failed with HTTP ${res.status}`);
    }
  }

  /** A token's facts: from the cache while they are fresh, else from Keystone (an expired token is never cached). */
  async function known(token: string, allowExpired = false): Promise<TokenInfo> {
    const key = createHash('sha256').update(token).digest('hex');
    const hit = cache.get(key);
    if (hit && hit.expiresAt > now()) return hit.value;
    if (hit) cache.delete(key);
    const { info, expiresAt } = await validate(token, allowExpired);
    remember(key, info, expiresAt);
    return info;
  }

  /** The roles of a valid X-Service-Token (none otherwise), and whether it holds a service role. */
  async function serviceTokenOf(token: string | null): Promise<{ roles: string[]; fromService: boolean; identity: TokenScope['service'] }> {
    const none = { roles: [], fromService: false, identity: null };
    if (token === null || !TOKEN_TEXT.test(token)) return none;
    let info: TokenInfo;
    try {
      info = await known(token);
    } catch (err) {
      if (err instanceof GazeError && err.status === 401) return none;
      throw err;
    }
    const fromService = holdsServiceRole(info.roleNames);
    if (serviceTokenRolesRequired && !fromService) return none;
    const identity = {
      userId: info.userId,
      userDomainId: info.scope?.userDomainId ?? null,
      projectId: info.projectId,
      projectDomainId: info.scope?.projectDomainId ?? null,
    };
    return { roles: info.roles, fromService, identity };
  }

  return {
    async authenticate(headers, requestId, request) {
      // keystonemiddleware also accepts the Swift-era X-Storage-Token, when no X-Auth-Token is sent (an
      // empty one included: it is no token, and no reason to look at the other header).
      const userToken = sentHeader(headers, 'x-auth-token') !== undefined ? header(headers, 'x-auth-token') : header(headers, 'x-storage-token');
      try {
        if (!userToken || !TOKEN_TEXT.test(userToken)) throw unauthorized();
        // A service calling on a user's behalf adds its own token. One holding a service role
        // (service_token_roles) may bring a user token that has expired meanwhile (Nova's snapshot after
        // a long conversion). As in Glance (keystonemiddleware deferring its decision), a service token
        // that is not valid only adds no roles; neither does one without a service role when
        // service_token_roles_required is set.
        const { roles: serviceRoles, fromService, identity: service } = await serviceTokenOf(header(headers, 'x-service-token'));
        const { accessRules, roleNames: _names, ...info } = await known(userToken, fromService);
        // An application credential's access rules name what its tokens may call here. A call a service
        // makes for the user passes them (keystonemiddleware lets any X-Service-Token header do that;
        // Gaze asks for a valid one holding a service role).
        if (accessRules && !accessRulesAllow(accessRules, { serviceType, catalog: info.serviceCatalog, request, fromService })) throw unauthorized();
        return makeContext({ ...info, serviceRoles, requestId, scope: info.scope && { ...info.scope, service } });
      } catch (err) {
        // Why is the operator's (the log's): Keystone's address and the service user are not the caller's to see.
        if (err instanceof KeystoneUnavailable) throw gazeError('SERVICE_UNAVAILABLE', KEYSTONE_UNAVAILABLE).withCause(err);
        // Glance's allow_anonymous_access: no valid token reads as nobody (no project, no roles), read-only.
        if (allowAnonymous && err instanceof GazeError && err.code === 'UNAUTHORIZED') return makeContext({ requestId, readOnly: true });
        throw err;
      }
    },
    async close() {
      cache.clear();
      serviceToken = null;
    },
  };
}

/** A header as it was sent, whatever the case of its name; undefined when it was not sent. */
function sentHeader(headers: Record<string, string | string[] | undefined>, name: string): string | string[] | undefined {
  if (headers[name] !== undefined) return headers[name];
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name && headers[k] !== undefined);
  return key === undefined ? undefined : headers[key];
}

/** A header's first value, trimmed; null when it was not sent or is blank. */
function header(headers: Record<string, string | string[] | undefined>, name: string): string | null {
  const value = sentHeader(headers, name);
  const first = (Array.isArray(value) ? value[0] : value)?.trim();
  return first ? first : null;
}

/** Keystone v3 token body → the request-independent part of a context. */
function toInfo(token: any, authToken: string): TokenInfo {
  const roleNames: string[] = (token.roles ?? []).map((r: { name: string }) => String(r.name));
  const roles = roleNames.map((name) => name.toLowerCase());
  const serviceCatalog: CatalogService[] = (token.catalog ?? []).map((s: any) => ({
    type: s.type,
    name: s.name,
    id: s.id,
    endpoints: (s.endpoints ?? []).map((e: any) => ({
      url: e.url,
      interface: e.interface,
      region: e.region ?? e.region_id ?? null,
      region_id: e.region_id ?? e.region ?? null,
      id: e.id,
    })),
  }));
  return {
    userId: token.user.id,
    projectId: token.project?.id ?? null,
    roles,
    isAdmin: roles.includes('admin'),
    authToken,
    serviceCatalog,
    accessRules: accessRulesOf(token),
    roleNames,
    scope: {
      // keystoneauth's is_admin_project: true unless the token says otherwise.
      isAdminProject: token.is_admin_project !== false,
      systemScope: token.system?.all === true ? 'all' : null,
      domainId: token.domain?.id ?? null,
      userDomainId: token.user?.domain?.id ?? null,
      projectDomainId: token.project?.domain?.id ?? null,
      service: null,
    },
  };
}
