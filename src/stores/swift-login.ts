import { applicationCredentialAuthBody, keystoneBase, passwordAuthBody, type PasswordLogin } from '../auth/keystone-password.ts';
import { request, type HttpResponse, type keepAliveAgents } from '../net/http-client.ts';
import { StoreError } from './driver.ts';
import { header, statusCode, toStoreError } from './swift-errors.ts';

// Logging in to a Swift account: with tempauth (auth v1: a GET answered with a token and the storage
// URL), or with Keystone v3 (a token whose catalog names the account's storage URL).

export type SwiftAuth =
  | { version: '1'; url: string; user: string; key: string }
  | {
      version: '3';
      /** Keystone's address, with or without /v3. */
      url: string;
      /** Which endpoint of the catalog is the account's storage URL. */
      endpoint: { region: string | undefined; interface: 'public' | 'internal' | 'admin'; serviceType: string };
      password?: PasswordLogin;
      applicationCredential?: { id: string; secret: string };
    };

export interface Session {
  storageUrl: string;
  token: string;
  expiresAt: number;
}

type Agents = ReturnType<typeof keepAliveAgents>;

/** Who logs in, for messages: never the key. */
export function whoLogsIn(auth: SwiftAuth): string {
  if (auth.version === '1') return auth.user;
  if (auth.applicationCredential) return `application credential ${auth.applicationCredential.id}`;
  const scope = auth.password!.scope;
  return `${typeof scope === 'string' ? 'system' : scope.projectName}:${auth.password!.username}`;
}

/**
 * The account a login reaches, as far as the configuration tells: the tempauth account (`account:user`),
 * or the Keystone project (by id, or by domain and name), or the application credential. Two logins of
 * one account may name it differently (an id and a name): then they are taken for two accounts.
 */
export function accountOf(auth: SwiftAuth): string {
  if (auth.version === '1') return `tempauth:${auth.user.split(':')[0]}`;
  if (auth.applicationCredential) return `application-credential:${auth.applicationCredential.id}`;
  const scope = auth.password!.scope;
  if (scope === 'system') return 'system';
  if (scope.projectId) return `project:${scope.projectId}`;
  return `project:${scope.projectDomainId ?? scope.projectDomainName ?? 'default'}/${scope.projectName ?? ''}`;
}

/** A new session; `storageUrl` is the operator's swift_store_endpoint when given, else what the login names. */
export async function logIn(auth: SwiftAuth, endpoint: string | undefined, agents: Agents): Promise<Session> {
  const session = auth.version === '1' ? await tempauthLogin(auth, agents) : await keystoneLogin(auth, agents, endpoint !== undefined);
  const storageUrl = (endpoint ?? session.storageUrl).replace(/\/+$/, '');
  if (!storageUrl) throw new StoreError('FAILED', `swift authentication at ${auth.url} returned no storage URL`);
  return { ...session, storageUrl };
}

// A login that gets no answer must end: every request of the store waits for the session it brings.
const LOGIN_TIMEOUT_MS = 30_000;

async function call(url: string, init: Parameters<typeof request>[1]): Promise<HttpResponse> {
  try {
    return await request(url, { ...init, headersTimeoutMs: LOGIN_TIMEOUT_MS });
  } catch (err) {
    throw toStoreError(err, `authenticating at ${url}`);
  }
}

function refused(auth: SwiftAuth, url: string, res: HttpResponse): StoreError {
  if (res.statusCode === 401 || res.statusCode === 403) {
    return new StoreError('PERMISSION', `swift authentication of ${whoLogsIn(auth)} at ${url} was refused (HTTP ${res.statusCode})`);
  }
  return new StoreError(statusCode(res.statusCode), `swift authentication at ${url} failed: HTTP ${res.statusCode}`);
}

async function tempauthLogin(auth: Extract<SwiftAuth, { version: '1' }>, agents: Agents): Promise<Session> {
  const headers = { 'x-storage-user': auth.user, 'x-storage-pass': auth.key, 'x-auth-user': auth.user, 'x-auth-key': auth.key };
  const res = await call(auth.url, { method: 'GET', headers, agents });
  await res.body.dump();
  if (res.statusCode < 200 || res.statusCode >= 300) throw refused(auth, auth.url, res);
  const token = header(res, 'x-auth-token') ?? header(res, 'x-storage-token');
  const storageUrl = header(res, 'x-storage-url') ?? '';
  if (!token) throw new StoreError('FAILED', `swift authentication at ${auth.url} returned no token`);
  const ttl = Number(header(res, 'x-auth-token-expires') ?? NaN);
  return { token, storageUrl, expiresAt: Number.isFinite(ttl) ? Date.now() + ttl * 1000 : Infinity };
}

interface CatalogEntry {
  type?: string;
  endpoints?: Array<{ interface?: string; region_id?: string; region?: string; url?: string }>;
}

async function keystoneLogin(auth: Extract<SwiftAuth, { version: '3' }>, agents: Agents, endpointGiven: boolean): Promise<Session> {
  // Deployments write the address with or without the version, as for keystone_authtoken.
  const url = `${keystoneBase(auth.url)}/v3/auth/tokens`;
  const body = auth.applicationCredential
    ? applicationCredentialAuthBody({ id: auth.applicationCredential.id }, auth.applicationCredential.secret)
    : passwordAuthBody(auth.password!);
  const res = await call(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body, agents });
  if (res.statusCode !== 201) {
    await res.body.dump();
    throw refused(auth, url, res);
  }
  const token = header(res, 'x-subject-token');
  let answer: { token?: { expires_at?: string; catalog?: CatalogEntry[] } };
  try {
    answer = (await res.body.json()) as typeof answer;
  } catch (err) {
    throw new StoreError('FAILED', `Keystone at ${url} answered with something that is not JSON`, { cause: err });
  }
  if (!token) throw new StoreError('FAILED', `Keystone at ${url} returned no X-Subject-Token`);
  const expires = Date.parse(answer.token?.expires_at ?? '');
  const expiresAt = Number.isFinite(expires) ? expires : Date.now() + 3_600_000;
  return { token, expiresAt, storageUrl: endpointGiven ? '' : storageUrlOf(answer.token?.catalog ?? [], auth) };
}

/** The account's URL in the token's catalog, as keystoneauth's get_endpoint() picks it (the first that fits). */
function storageUrlOf(catalog: CatalogEntry[], auth: Extract<SwiftAuth, { version: '3' }>): string {
  const { serviceType, interface: iface, region } = auth.endpoint;
  for (const service of catalog.filter((s) => s.type === serviceType)) {
    const found = (service.endpoints ?? []).find((e) => e.interface === iface && (!region || e.region_id === region || e.region === region) && e.url);
    if (found) return found.url!;
  }
  const where = `${iface} ${serviceType} endpoint${region ? ` in region ${region}` : ''}`;
  throw new StoreError(
    'FAILED',
    `the Keystone catalog of ${whoLogsIn(auth)} has no ${where} (set swift_store_region, swift_store_endpoint_type or swift_store_endpoint)`,
  );
}
