import { keystoneBase } from '../auth/keystone-password.ts';
import type { ServiceLogin } from '../auth/service-login.ts';
import type { LimitName, Limits, LimitSource } from './limits.ts';
import { LIMIT_NAMES } from './limits.ts';

// Reads unified limits from Keystone as oslo.limit does: our service endpoint (by id, or by service
// type and region) names the service and region; a project limit overrides the registered default; a
// resource with neither gets 0, so an operator who turns limits on must register all four.

export interface KeystoneLimitsOptions {
  authUrl: string;
  /** Who logs in (keystoneauth's plugin of [oslo_limit]); reading other projects' limits needs a system-scoped token or an admin. */
  login: ServiceLogin;
  endpointId: string | null;
  endpointServiceType: string | null;
  endpointRegionName: string | null;
  endpointInterface: string;
  timeoutMs?: number;
  /** The fetch to call Keystone with (its TLS settings: fetchWithTls). */
  fetch?: typeof fetch;
}

export class LimitsUnavailable extends Error {}

const TOKEN_MARGIN_MS = 60_000;

export class KeystoneLimits implements LimitSource {
  private readonly base: string;
  private token: { value: string; expiresAt: number } | null = null;
  private target: { serviceId: string; regionId: string | null } | null = null;

  constructor(private readonly opts: KeystoneLimitsOptions) {
    this.base = keystoneBase(opts.authUrl);
    if (!opts.endpointId && !opts.endpointServiceType) {
      throw new Error('[oslo_limit] needs endpoint_id, or endpoint_service_type (and endpoint_region_name), with use_keystone_limits');
    }
  }

  async limitsFor(projectId: string): Promise<Limits> {
    const { serviceId, regionId } = await this.service();
    const query = new URLSearchParams({ service_id: serviceId, ...(regionId ? { region_id: regionId } : {}) });
    const registered = listOf(await this.get(`/v3/registered_limits?${query}`), 'registered_limits');
    const own = listOf(await this.get(`/v3/limits?${query}&project_id=${encodeURIComponent(projectId)}`), 'limits');
    const limits = Object.fromEntries(LIMIT_NAMES.map((n) => [n, 0])) as Limits;
    for (const r of registered) {
      if (isLimitName(r.resource_name) && Number.isInteger(r.default_limit)) limits[r.resource_name] = r.default_limit as number;
    }
    for (const l of own) {
      if (isLimitName(l.resource_name) && Number.isInteger(l.resource_limit) && (l.project_id ?? projectId) === projectId)
        limits[l.resource_name] = l.resource_limit as number;
    }
    return limits;
  }

  /** The service (and region) our limits are registered under, found once. */
  private async service(): Promise<{ serviceId: string; regionId: string | null }> {
    if (this.target) return this.target;
    const { endpointId, endpointServiceType, endpointRegionName, endpointInterface } = this.opts;
    if (endpointId) {
      const { endpoint } = (await this.get(`/v3/endpoints/${encodeURIComponent(endpointId)}`)) as {
        endpoint: { service_id: string; region_id: string | null };
      };
      this.target = { serviceId: endpoint.service_id, regionId: endpoint.region_id };
      return this.target;
    }
    const { services } = (await this.get(`/v3/services?type=${encodeURIComponent(endpointServiceType!)}`)) as { services: Array<{ id: string }> };
    const [service] = services;
    if (!service || services.length !== 1) throw new LimitsUnavailable(`Keystone lists ${services.length} services of type ${endpointServiceType}, not one`);
    const iface = endpointInterface.replace(/URL$/, '');
    const query = new URLSearchParams({ service_id: service.id, interface: iface, ...(endpointRegionName ? { region_id: endpointRegionName } : {}) });
    const { endpoints } = (await this.get(`/v3/endpoints?${query}`)) as { endpoints: Array<{ region_id: string | null }> };
    const [endpoint] = endpoints;
    if (!endpoint || endpoints.length !== 1)
      throw new LimitsUnavailable(`Keystone lists ${endpoints.length} ${iface} endpoints for the ${endpointServiceType} service, not one`);
    this.target = { serviceId: service.id, regionId: endpoint.region_id };
    return this.target;
  }

  private async get(path: string): Promise<unknown> {
    const res = await this.call(path, { headers: { 'X-Auth-Token': await this.authToken(), Accept: 'application/json' } });
    if (res.status !== 200) {
      await res.body?.cancel();
      if (res.status === 401) this.token = null;
      throw new LimitsUnavailable(`Keystone answered ${res.status} to GET ${path.split('?')[0]}`);
    }
    try {
      return await res.json();
    } catch {
      throw new LimitsUnavailable(`Keystone answered GET ${path.split('?')[0]} with something that is not JSON`);
    }
  }

  private async authToken(): Promise<string> {
    if (this.token && this.token.expiresAt - Date.now() > TOKEN_MARGIN_MS) return this.token.value;
    const { body, who } = this.opts.login;
    const res = await this.call('/v3/auth/tokens', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    const token = res.headers.get('x-subject-token');
    if (res.status !== 201 || !token) {
      await res.body?.cancel();
      throw new LimitsUnavailable(`authentication to Keystone as ${who} for unified limits failed with HTTP ${res.status}`);
    }
    const expires = Date.parse(((await res.json()) as { token?: { expires_at?: string } }).token?.expires_at ?? '');
    this.token = { value: token, expiresAt: Number.isFinite(expires) ? expires : Date.now() + 3_600_000 };
    return token;
  }

  private async call(path: string, init: RequestInit): Promise<Response> {
    try {
      return await (this.opts.fetch ?? fetch)(`${this.base}${path}`, { ...init, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000) });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause;
      throw new LimitsUnavailable(`Keystone at ${this.base} is unreachable: ${cause?.message ?? (err as Error).message}`);
    }
  }
}

/** The array `key` of a Keystone list answer; anything else means Keystone cannot be read. */
function listOf(body: unknown, key: string): Array<Record<string, unknown>> {
  const list = (body as Record<string, unknown> | null)?.[key];
  if (!Array.isArray(list)) throw new LimitsUnavailable(`Keystone's answer has no ${key} list`);
  return list.filter((item): item is Record<string, unknown> => item !== null && typeof item === 'object');
}

function isLimitName(name: unknown): name is LimitName {
  return typeof name === 'string' && (LIMIT_NAMES as readonly string[]).includes(name);
}
