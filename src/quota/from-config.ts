import type { Config } from '../config/index.ts';
import type { StringOptionName } from '../config/options.ts';
import type { UsageRepo } from '../db/repos/usage.ts';
import { ConfigLimits, LIMIT_NAMES, type LimitSource, type Limits } from './limits.ts';
import { KeystoneLimits } from './keystone-limits.ts';
import { QuotaService, parseStorageQuota } from './quotas.ts';
import { fetchWithTls, tlsOptionsOf } from '../net/tls-fetch.ts';
import { authPluginOptions, serviceLogin } from '../auth/service-login.ts';

/** What the config asks of quotas, checked without touching a database or Keystone. */
export interface QuotaSettings {
  source: LimitSource | null;
  /** user_storage_quota in bytes; 0 = unlimited. */
  storageQuota: number;
}

/** Quotas as the config asks: Keystone unified limits, [project_limits], and/or user_storage_quota. */
export function quotasFromConfig({ source, storageQuota }: QuotaSettings, usage: UsageRepo): QuotaService {
  return new QuotaService(usage, source, storageQuota);
}

/** Reads the quota options; a value that cannot be used stops start-up (and `gaze config check`). */
export function quotaSettings(config: Config, warn: (message: string) => void = () => {}): QuotaSettings {
  let source: LimitSource | null = null;
  if (config.get('DEFAULT', 'use_keystone_limits')) {
    const opt = (name: StringOptionName<'oslo_limit'>) => config.get('oslo_limit', name) || null;
    const login = authPluginOptions(config, 'oslo_limit');
    const authUrl = login('auth_url') ?? config.refuse('oslo_limit', 'auth_url', 'is required with use_keystone_limits');
    const limitsLogin = serviceLogin(login, 'with use_keystone_limits');
    // Keystone lists a project-scoped token only its own project's limits: as with oslo.limit, every
    // other project then gets the registered defaults, its own limits unseen.
    if (!limitsLogin.systemScoped) {
      warn(
        `${login.section} logs in with a project-scoped token (${limitsLogin.who}): Keystone shows it no other project's limits, so other projects get the registered defaults; a user with system_scope = all reads them all`,
      );
    }
    if (!opt('endpoint_id') && !opt('endpoint_service_type')) {
      config.refuse(
        'oslo_limit',
        'endpoint_id',
        'is required with use_keystone_limits, unless endpoint_service_type (and endpoint_region_name) name the endpoint',
      );
    }
    source = new KeystoneLimits({
      authUrl,
      login: limitsLogin,
      endpointId: opt('endpoint_id'),
      endpointServiceType: opt('endpoint_service_type'),
      endpointRegionName: opt('endpoint_region_name'),
      endpointInterface: opt('endpoint_interface') ?? 'publicURL',
      fetch: fetchWithTls(tlsOptionsOf(config, 'oslo_limit'), 'oslo_limit'),
    });
  } else {
    const limits = Object.fromEntries(LIMIT_NAMES.map((n) => [n, config.get('project_limits', n)])) as Limits;
    if (Object.values(limits).some((v) => v >= 0)) source = new ConfigLimits(limits);
  }
  const text = config.get('DEFAULT', 'user_storage_quota');
  const storageQuota = parseStorageQuota(text);
  if (storageQuota === null) config.refuse('DEFAULT', 'user_storage_quota', `'${text}' is not a size such as 10GB`);
  return { source, storageQuota };
}
