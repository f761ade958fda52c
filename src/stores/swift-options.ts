import { boolOption, ConfigError, type Config } from '../config/index.ts';
import { SwiftStoreDriver } from './swift.ts';

const MiB = 1024 * 1024;

/**
 * The registry factory. Options of the store's section, with Glance's swift store names:
 *   swift_store_auth_address             auth v1 URL (tempauth), e.g. http://127.0.0.1:8080/auth/v1.0
 *   swift_store_auth_version             must be 1 (the only one supported; default 1)
 *   swift_store_user / swift_store_key   e.g. test:tester / testing
 *   swift_store_container                default glance
 *   swift_store_create_container_on_put  create the container and <container>_segments (default false)
 *   swift_store_large_object_chunk_size  segment size in MiB (default 200)
 *   swift_store_endpoint                 storage URL to use instead of the one auth returns
 *   swift_store_auth_insecure            skip TLS certificate checks (default false)
 */
export function createSwiftDriver(storeId: string, options: Record<string, string>, _config: Config): SwiftStoreDriver {
  const need = (option: string): string => {
    const value = options[option]?.trim();
    if (!value) throw new ConfigError(`store ${storeId}: ${option} is required for a swift store`);
    return value;
  };
  const version = (options.swift_store_auth_version ?? '1').trim() || '1';
  if (!['1', '1.0'].includes(version)) {
    throw new ConfigError(`store ${storeId}: swift_store_auth_version ${version} is not supported (only 1, tempauth)`);
  }
  const chunk = options.swift_store_large_object_chunk_size?.trim();
  if (chunk && (!/^\d+$/.test(chunk) || Number(chunk) < 1)) {
    throw new ConfigError(`store ${storeId}: swift_store_large_object_chunk_size '${chunk}' is not a positive integer (MiB)`);
  }
  return new SwiftStoreDriver({
    authUrl: need('swift_store_auth_address'),
    user: need('swift_store_user'),
    key: need('swift_store_key'),
    container: options.swift_store_container?.trim() || 'glance',
    createContainerOnPut: boolOption(options.swift_store_create_container_on_put, false, `store ${storeId}: swift_store_create_container_on_put`),
    segmentSize: chunk ? Number(chunk) * MiB : undefined,
    endpoint: options.swift_store_endpoint?.trim() || undefined,
    insecure: boolOption(options.swift_store_auth_insecure, false, `store ${storeId}: swift_store_auth_insecure`),
  });
}
