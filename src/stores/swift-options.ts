import { boolOption, ConfigError, intOption, type Config } from '../config/index.ts';
import { besideConfigOrAsGiven } from '../config/find-file.ts';
import { readSwiftReference } from './swift-references.ts';
import type { SwiftAuth } from './swift-login.ts';
import type { Warn } from './driver.ts';
import { SwiftStoreDriver } from './swift.ts';
import { StoreAddDisabled } from './add-disabled.ts';
import { readPemFile } from '../net/tls-fetch.ts';

/** glance_store's swift "MB" for its size options: 1000 KiB ("the mixed meaning of MB"), kept so that a size means the same bytes. */
const SWIFT_MB = 1000 * 1024;

/**
 * The registry factory. Options of the store's section, with Glance's swift store names:
 *   swift_store_config_file              glance-swift.conf: the accounts, by reference (found beside the
 *                                        configuration files like Glance's other files)
 *   default_swift_reference              the account this store writes with (default ref1)
 *   swift_store_auth_address / _user / _key / _auth_version
 *                                        the account inline, when there is no config file
 *   swift_store_region, swift_store_endpoint_type (publicURL), swift_store_service_type (object-store)
 *                                        which endpoint of the Keystone catalog holds the account
 *   swift_store_container                default glance
 *   swift_store_create_container_on_put  create the container and <container>_segments (default false)
 *   swift_store_large_object_size        data of a known size below this many MB is one object (default 5120)
 *   swift_store_large_object_chunk_size  segment size in MB of larger data (default 200)
 *   swift_store_retry_get_count          a read that breaks resumes where it stopped this many times (default 0)
 *   swift_store_expire_soon_interval     a token this close to expiry (seconds) is renewed first (default 60)
 *   swift_store_endpoint                 storage URL to use instead of the one auth returns
 *   swift_store_auth_insecure            skip TLS certificate checks (default false)
 *   swift_store_cacert                   CA certificates (PEM) to check the auth service and Swift with
 *   swift_store_multiple_containers_seed Glance's containers per id prefix (0-32): read and deleted there;
 *                                        new data goes to swift_store_container
 */
export function createSwiftDriver(storeId: string, options: Record<string, string>, config: Config, warn?: Warn): SwiftStoreDriver {
  const where = (option: string) => `store ${storeId}: ${option}`;
  const cacert = options.swift_store_cacert?.trim();
  if (boolOption(options.swift_store_multi_tenant, false, where('swift_store_multi_tenant'))) {
    throw new ConfigError(`store ${storeId}: swift_store_multi_tenant is not supported: Gaze keeps every image in the account of the store's own reference`);
  }
  return new SwiftStoreDriver({
    auth: swiftAuth(storeId, options, config.files ?? []),
    container: options.swift_store_container?.trim() || 'glance',
    createContainerOnPut: boolOption(options.swift_store_create_container_on_put, false, where('swift_store_create_container_on_put')),
    largeObjectSize: intOption(options.swift_store_large_object_size, 5120, where('swift_store_large_object_size'), 1) * SWIFT_MB,
    segmentSize: intOption(options.swift_store_large_object_chunk_size, 200, where('swift_store_large_object_chunk_size'), 1) * SWIFT_MB,
    retryGetCount: intOption(options.swift_store_retry_get_count, 0, where('swift_store_retry_get_count'), 0),
    expireSoonMs: intOption(options.swift_store_expire_soon_interval, 60, where('swift_store_expire_soon_interval'), 0) * 1000,
    endpoint: options.swift_store_endpoint?.trim() || undefined,
    insecure: boolOption(options.swift_store_auth_insecure, false, where('swift_store_auth_insecure')),
    ca: cacert ? readPemFile(cacert, where('swift_store_cacert')) : undefined,
    reference: options.swift_store_config_file?.trim() ? options.default_swift_reference?.trim() || 'ref1' : undefined,
    containerSeed: intOption(options.swift_store_multiple_containers_seed, 0, where('swift_store_multiple_containers_seed'), 0, 32),
    warn,
  });
}

/**
 * The account's credentials: a reference of swift_store_config_file when it is set, else the store's
 * own swift_store_* options, as glance_store's SwiftParams reads them.
 */
export function swiftAuth(storeId: string, options: Record<string, string>, configFiles: readonly string[]): SwiftAuth {
  const given = (value: string | undefined) => value?.trim() || undefined;
  const configFile = given(options.swift_store_config_file);
  const reference = given(options.default_swift_reference) ?? 'ref1';
  const where = configFile ? `store ${storeId}: [${reference}] of ${configFile}` : `store ${storeId}`;
  const account = configFile ? readSwiftReference(besideConfigOrAsGiven(configFiles, configFile), reference) : null;
  const value = (refName: string, inlineName: string) => given(account ? account(refName) : options[inlineName]);
  // A missing address or credential disables adding to the store, as glance_store's BadStoreConfiguration.
  const need = (refName: string, inlineName: string): string => {
    const found = value(refName, inlineName);
    if (!found) throw new StoreAddDisabled(`${where}: ${account ? refName : inlineName} is required for a swift store`, null);
    return found;
  };

  const url = need('auth_address', 'swift_store_auth_address');
  const version = authVersion(given(account?.('auth_version')) ?? given(options.swift_store_auth_version), url, where);
  const applicationCredential = value('application_credential_id', 'swift_store_application_credential_id');
  if (version === '1') return { version, url, user: need('user', 'swift_store_user'), key: need('key', 'swift_store_key') };

  const endpoint = {
    region: given(options.swift_store_region),
    interface: endpointInterface(given(options.swift_store_endpoint_type) ?? 'publicURL', where),
    serviceType: given(options.swift_store_service_type) ?? 'object-store',
  };
  if (applicationCredential) {
    return {
      version,
      url,
      endpoint,
      applicationCredential: { id: applicationCredential, secret: need('application_credential_secret', 'swift_store_application_credential_secret') },
    };
  }
  const user = need('user', 'swift_store_user');
  // Keystone needs the project the token is for: Glance's `project:user` (tenant:user).
  const colon = user.indexOf(':');
  if (colon <= 0 || colon === user.length - 1 || user.indexOf(':', colon + 1) >= 0) {
    throw new ConfigError(`${where}: user '${user}' must be project:user for Keystone (auth_version 3)`);
  }
  return {
    version,
    url,
    endpoint,
    password: {
      username: user.slice(colon + 1),
      password: need('key', 'swift_store_key'),
      userDomainId: given(account?.('user_domain_id')),
      userDomainName: given(account?.('user_domain_name')),
      scope: {
        projectName: user.slice(0, colon),
        projectDomainId: given(account?.('project_domain_id')),
        projectDomainName: given(account?.('project_domain_name')),
      },
    },
  };
}

/**
 * 1 is tempauth (swauth), 3 Keystone v3. Unset, an address of tempauth's form (/auth/v1.0) means 1 and
 * any other Keystone v3, the only version glance_store still has. 2 (Keystone v2.0, Glance 25's default)
 * was removed from Keystone itself in Queens: it is refused rather than tried.
 */
function authVersion(setting: string | undefined, url: string, where: string): '1' | '3' {
  if (setting === undefined) return /\/auth\/v1(\.0)?\/?$/.test(url) ? '1' : '3';
  if (['1', '1.0'].includes(setting)) return '1';
  if (['3', '3.0'].includes(setting)) return '3';
  if (['2', '2.0'].includes(setting)) throw new ConfigError(`${where}: auth_version 2 (Keystone v2.0) is not supported: Keystone no longer offers it; use 3`);
  throw new ConfigError(`${where}: auth_version '${setting}' is not one of 1 (tempauth) and 3 (Keystone)`);
}

/** keystoneauth's names for catalog interfaces: publicURL and public are the same. */
function endpointInterface(type: string, where: string): 'public' | 'internal' | 'admin' {
  const name = type.replace(/URL$/, '');
  if (name === 'public' || name === 'internal' || name === 'admin') return name;
  throw new ConfigError(`${where}: swift_store_endpoint_type '${type}' is not one of publicURL, internalURL, adminURL`);
}
