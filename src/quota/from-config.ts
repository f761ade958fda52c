import type { Config } from '../config/index.ts';
import type { StringOptionName } from '../config/options.ts';
import type { UsageRepo } from '../db/repos/usage.ts';
import { ConfigLimits, LIMIT_NAMES, type LimitSource, type Limits } from './limits.ts';
import { KeystoneLimits } from './keystone-limits.ts';
import { QuotaService, parseStorageQuota } from './quotas.ts';
import { fetchWithTls, tlsOptionsOf } from '../net/tls-fetch.ts';

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
export function quotaSettings(config: Config): QuotaSettings {
  let source: LimitSource | null = null;
  if (config.get('DEFAULT', 'use_keystone_limits')) {
    const opt = (name: StringOptionName<'oslo_limit'>) => config.get('oslo_limit', name) || null;
    for (const name of ['auth_url', 'username', 'password'] as const) {
      if (!opt(name)) config.refuse('oslo_limit', name, 'is required with use_keystone_limits');
    }
    if (!opt('endpoint_id') && !opt('endpoint_service_type')) {
      config.refuse(
        'oslo_limit',
        'endpoint_id',
        'is required with use_keystone_limits, unless endpoint_service_type (and endpoint_region_name) name the endpoint',
      );
    }
    source = new KeystoneLimits({
      authUrl: opt('auth_url')!,
      username: opt('username')!,
      password: opt('password')!,
      userDomainId: opt('user_domain_id'),
      userDomainName: opt('user_domain_name'),
      systemScope: opt('system_scope'),
      projectName: opt('project_name'),
      projectDomainId: opt('project_domain_id'),
      projectDomainName: opt('project_domain_name'),
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
