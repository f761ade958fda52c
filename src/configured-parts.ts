import { boolOption, ConfigError, type Config } from './config/index.ts';
import { timerMs } from './domain/time.ts';
import { databaseUrlShown } from './db/connection-url.ts';
import { StoreRegistry } from './stores/registry.ts';
import { Policy, withPolicyAdmin } from './auth/policy.ts';
import { policyFiles } from './auth/policy-files.ts';
import { quotaSettings } from './quota/from-config.ts';
import { besideConfigOrAsGiven } from './config/find-file.ts';
import { customImageProperties } from './schemas/custom-properties.ts';
import { loadPropertyProtections } from './auth/property-protections.ts';
import type { Authenticator } from './auth/context.ts';
import { createNoAuthAuthenticator } from './auth/noauth.ts';
import { createKeystoneAuthenticator } from './auth/keystone.ts';
import { LogNotificationDriver, Notifier, type NotificationDriver } from './notify/notifier.ts';
import type { CacheSettings } from './services/image-cache.ts';
import type { Metrics } from './util/metrics.ts';
import { AmqpNotificationDriver, amqpUrls, tlsVersions, transportQuery } from './notify/amqp.ts';
import { GLANCE_OPTION_NAMES } from './config/glance-option-names.ts';
import { createPlugins } from './import/plugins/index.ts';
import type { Logger } from './util/logger.ts';
import { checkConnection, connectionNotes, engineOf, whenReachable } from './db/connection.ts';
import { readPemFile } from './net/tls-fetch.ts';
import type { ConnectionOptions } from 'node:tls';

// The parts the configuration alone decides (policy, stores, notifications, plugins, authentication,
// cache settings), shared by `gaze serve` (app.ts) and the commands that check or use the configuration.

export function databaseUrl(config: Config): string {
  const url = config.get('database', 'connection') ?? `sqlite:///${config.dataPath('gaze.db')}`;
  // Refused here, where the option's file and line are known (and before anything is opened).
  if (engineOf(url) === null) {
    config.refuse(
      'database',
      'connection',
      `unsupported scheme in '${databaseUrlShown(url)}': use sqlite:////path.db, postgresql://... or mysql+pymysql://...`,
    );
  }
  refusedIfThrows(config, 'database', 'connection', () => checkConnection(url));
  return url;
}

/**
 * The most connections the pool opens: oslo.db's max_pool_size plus max_overflow (its defaults 5 and 50
 * for the one not set; as SQLAlchemy reads them, a max_pool_size of 0 and a negative max_overflow mean
 * no limit), or Gaze's 10 when neither is set.
 */
export function databasePoolSize(config: Config): number | undefined {
  const size = config.get('database', 'max_pool_size');
  const overflow = config.get('database', 'max_overflow');
  if (size === null && overflow === null) return undefined;
  if (size !== null && size < 0) config.refuse('database', 'max_pool_size', 'must be 0 (no limit) or more');
  if (size === 0 || (overflow !== null && overflow < 0)) return Infinity;
  return (size ?? 5) + (overflow ?? 50);
}

/** How the database is opened: the pool's size and oslo.db's MySQL session mode. */
export function databaseOptions(
  config: Config,
  log?: Logger,
): { maxConnections?: number; mysqlSqlMode: string | null; onConnectionLost?: (err: Error) => void } {
  const mode = config.get('database', 'mysql_sql_mode');
  return {
    maxConnections: databasePoolSize(config),
    mysqlSqlMode: mode === null || mode.trim() === '' ? null : mode,
    onConnectionLost: log && ((err) => log.warn(`a database connection was ended by the server (${err.message}); another is opened when needed`)),
  };
}

/**
 * `first` (the first use of the database at start), tried again while the server cannot be reached,
 * as [database] max_retries and retry_interval say (oslo.db's wait at start); each wait is logged.
 */
export function whenDatabaseReachable<T>(config: Config, log: Logger, first: () => Promise<T>): Promise<T> {
  const intervalSeconds = config.get('database', 'retry_interval');
  return whenReachable(first, {
    maxRetries: config.get('database', 'max_retries'),
    intervalMs: timerMs(intervalSeconds),
    onRetry: (err, left) => log.warn({ err }, `the database cannot be reached; trying again in ${intervalSeconds} s (${left ?? 'unlimited'} attempts left)`),
  });
}

/** [DEFAULT] scrub_time: how long a delayed delete keeps its data, in seconds (the service's and `gaze scrub`'s). */
export function scrubTime(config: Config): number {
  const seconds = config.get('DEFAULT', 'scrub_time');
  if (seconds < 0) config.refuse('DEFAULT', 'scrub_time', 'must be 0 or more');
  return seconds;
}

/** RabbitMQ when a transport_url names one; without a broker, each notification as a log line. */
function messagingDriver(config: Config, name: string, log: Logger): NotificationDriver {
  const url = config.get('oslo_messaging_notifications', 'transport_url') ?? config.get('DEFAULT', 'transport_url');
  if (!url) {
    // oslo.messaging's own default would be rabbit:// on this host.
    log.warn(
      `[oslo_messaging_notifications] driver = ${name} without a transport_url: notifications are written to the log (Glance would send them to a RabbitMQ on localhost)`,
    );
    return new LogNotificationDriver(log.child({ component: 'notifications' }));
  }
  const rabbit = rabbitOptions(config, transportQuery(url), log);
  const tls = brokerTls(config, rabbit, log);
  let urls: string[];
  try {
    urls = amqpUrls(url, tls !== null);
  } catch (err) {
    return config.refuse('oslo_messaging_notifications', 'transport_url', (err as Error).message);
  }
  return new AmqpNotificationDriver({
    urls,
    tls: tls ?? undefined,
    exchange: config.get('DEFAULT', 'control_exchange'),
    topics: config.get('oslo_messaging_notifications', 'topics'),
    envelope: name === 'messagingv2',
    // oslo.messaging: a quorum queue is durable, and so then is everything else.
    durable: rabbit.amqp_durable_queues || rabbit.rabbit_quorum_queue,
    queueArguments: rabbit.rabbit_quorum_queue ? quorumArguments(config) : {},
    maxQueued: 10_000,
    log: log.child({ component: 'notifications' }),
  });
}

/** The quorum queue limits of [oslo_messaging_rabbit], and the queue arguments oslo.messaging sets them as. */
const QUORUM_LIMITS = [
  ['rabbit_quorum_delivery_limit', 'x-delivery-limit'],
  ['rabbit_quorum_max_memory_length', 'x-max-in-memory-length'],
  ['rabbit_quorum_max_memory_bytes', 'x-max-in-memory-bytes'],
] as const;

/** oslo.messaging's arguments of a quorum queue: its type, and each of its limits that is set. */
function quorumArguments(config: Config): Record<string, string | number> {
  const args: Record<string, string | number> = { 'x-queue-type': 'quorum' };
  for (const [option, argument] of QUORUM_LIMITS) {
    const limit = config.get('oslo_messaging_rabbit', option);
    if (limit) args[argument] = limit;
  }
  return args;
}

/**
 * The [oslo_messaging_rabbit] options Gaze reads, with transport_url's query parameters taking their
 * place (`?ssl=1&ssl_ca_file=…`, as oslo.messaging's rabbit driver reads them). A parameter that is no
 * option of the section stops start-up, as it stops oslo.messaging's driver; one Gaze does not read is
 * ignored with a warning, as in a file.
 */
const RABBIT_FLAGS = ['ssl', 'ssl_enforce_hostname_verification', 'amqp_durable_queues', 'rabbit_quorum_queue'] as const;
const RABBIT_TEXTS = ['ssl_ca_file', 'ssl_cert_file', 'ssl_key_file', 'ssl_version'] as const;

function rabbitOptions(config: Config, query: Record<string, string>, log: Logger) {
  const section = 'oslo_messaging_rabbit';
  const refuse = (why: string) => config.refuse('oslo_messaging_notifications', 'transport_url', why);
  const flag = (option: (typeof RABBIT_FLAGS)[number]) =>
    query[option] === undefined ? config.get(section, option) : boolOption(query[option], false, `transport_url's ${option}`);
  const text = (option: (typeof RABBIT_TEXTS)[number]) => query[option] || config.get(section, option);
  const read: readonly string[] = [...RABBIT_FLAGS, ...RABBIT_TEXTS];
  for (const key of Object.keys(query)) {
    if (read.includes(key)) continue;
    if (!GLANCE_OPTION_NAMES[section]?.includes(key)) refuse(`its query parameter ${key} is no option of [${section}]`);
    log.warn(`transport_url's ${key} is an [${section}] option Gaze does not implement; it is ignored`);
  }
  try {
    return {
      ssl: flag('ssl'),
      ssl_enforce_hostname_verification: flag('ssl_enforce_hostname_verification'),
      amqp_durable_queues: flag('amqp_durable_queues'),
      rabbit_quorum_queue: flag('rabbit_quorum_queue'),
      ssl_ca_file: text('ssl_ca_file'),
      ssl_cert_file: text('ssl_cert_file'),
      ssl_key_file: text('ssl_key_file'),
      ssl_version: text('ssl_version'),
    };
  } catch (err) {
    return refuse((err as Error).message);
  }
}

/**
 * [oslo_messaging_rabbit] ssl and its files as the broker connections' TLS options (null without ssl),
 * as oslo.messaging with py-amqp uses them: the certificate chain is checked against ssl_ca_file, or
 * else the system's CAs, except that an ssl_version without ssl_ca_file checks nothing (py-amqp's
 * context for a fixed protocol verifies no certificate: warned about at start); the broker's name only
 * with ssl_enforce_hostname_verification and a CA file; the key may sit in the certificate's file.
 */
function brokerTls(config: Config, rabbit: ReturnType<typeof rabbitOptions>, log: Logger): (() => ConnectionOptions) | null {
  const section = 'oslo_messaging_rabbit';
  if (!rabbit.ssl) return null;
  const read = (option: 'ssl_ca_file' | 'ssl_cert_file' | 'ssl_key_file') => {
    const file = rabbit[option];
    return file ? readPemFile(file, `[${section}] ${option}`) : undefined;
  };
  let versions: ReturnType<typeof tlsVersions>;
  try {
    versions = tlsVersions(rabbit.ssl_version ?? '');
  } catch (err) {
    return config.refuse(section, 'ssl_version', (err as Error).message);
  }
  const hasCa = Boolean(rabbit.ssl_ca_file);
  const unchecked = !hasCa && Boolean(rabbit.ssl_version?.trim());
  if (unchecked)
    log.warn(
      `[${section}] ssl_version without ssl_ca_file: the broker's certificate is not checked, as oslo.messaging does not check it; set ssl_ca_file to check it`,
    );
  const checkName = hasCa && rabbit.ssl_enforce_hostname_verification;
  // The files are read again for each connection, so that renewed certificates are used without a restart.
  const options = (): ConnectionOptions => {
    const cert = read('ssl_cert_file');
    return {
      ca: read('ssl_ca_file'),
      cert,
      key: cert && (read('ssl_key_file') ?? cert),
      rejectUnauthorized: !unchecked,
      ...(checkName ? {} : { checkServerIdentity: () => undefined }),
      ...versions,
    };
  };
  options(); // a file that cannot be read stops start-up
  return options;
}

/** Glance's paste flavors: '' (no auth) or keystone, each alone or with caching / cachemanagement. */
const PASTE_FLAVORS: Record<string, { keystone: boolean; caching: boolean }> = {
  '': { keystone: false, caching: false },
  keystone: { keystone: true, caching: false },
  caching: { keystone: false, caching: true },
  cachemanagement: { keystone: false, caching: true },
  'keystone+caching': { keystone: true, caching: true },
  'keystone+cachemanagement': { keystone: true, caching: true },
};

export function pasteFlavor(config: Config): { keystone: boolean; caching: boolean } {
  const flavor = config.get('paste_deploy', 'flavor').trim();
  return (
    PASTE_FLAVORS[flavor] ??
    config.refuse(
      'paste_deploy',
      'flavor',
      `'${flavor}' is not supported: use one of ${Object.keys(PASTE_FLAVORS)
        .map((f) => `'${f}'`)
        .join(', ')}`,
    )
  );
}

/** A rules file that cannot be read is a configuration error (exit code 2), named with its option. */
function refusedIfThrows<T>(config: Config, section: string, option: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    return config.refuse(section, option, (err as Error).message);
  }
}

function authenticator(config: Config, log: Logger): Authenticator {
  if (!pasteFlavor(config).keystone) return createNoAuthAuthenticator(config.get('DEFAULT', 'noauth_default_project_id'));
  return createKeystoneAuthenticator(config, { warn: (message) => log.warn(message) });
}

/** The node's image cache: on when image_cache_dir is set (the API); downloads use it with a caching flavor. */
function cacheConfig(config: Config): { dir: string | null; database: string; settings: CacheSettings } {
  const dir = config.get('DEFAULT', 'image_cache_dir');
  const { caching } = pasteFlavor(config);
  if (caching && !dir) return config.refuse('DEFAULT', 'image_cache_dir', 'must be set for a paste flavor with caching or cachemanagement');
  // Glance's choices ignore case.
  const driver = config.get('DEFAULT', 'image_cache_driver').toLowerCase();
  if (!['centralized_db', 'sqlite', 'xattr'].includes(driver)) return config.refuse('DEFAULT', 'image_cache_driver', 'must be centralized_db, sqlite or xattr');
  return {
    dir,
    database: config.get('DEFAULT', 'image_cache_sqlite_db'),
    settings: {
      maxBytes: config.get('DEFAULT', 'image_cache_max_size'),
      stallSeconds: config.get('DEFAULT', 'image_cache_stall_time'),
      prefetchIntervalSeconds: config.get('DEFAULT', 'cache_prefetcher_interval'),
      serveDownloads: caching,
    },
  };
}

/**
 * What the configuration alone makes (rules files read, drivers and plugins chosen, values checked), with
 * no database opened and nothing written: a configuration that cannot be used fails here, which is all
 * `gaze config check` runs.
 */
export async function configuredParts(config: Config, log: Logger, metrics?: Metrics) {
  databasePoolSize(config); // refuses a negative max_pool_size before anything is opened
  for (const note of connectionNotes(databaseUrl(config))) log.warn(note); // and a connection of no engine Gaze has
  // Without authentication every caller is an admin: only loopback unless the operator says otherwise.
  const host = config.get('DEFAULT', 'bind_host');
  if (!pasteFlavor(config).keystone && !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host) && !config.get('DEFAULT', 'noauth_allow_remote')) {
    config.refuse(
      'DEFAULT',
      'bind_host',
      `refusing to serve without authentication on ${host}: set [DEFAULT] noauth_allow_remote = true, or use [paste_deploy] flavor = keystone`,
    );
  }
  // How long a delayed delete keeps the data (oslo.config's minimum for Glance's option is 0).
  const scrubTimeSeconds = scrubTime(config);
  // Policy and property protections first: a bad rules file stops start-up before anything is opened.
  const policy = refusedIfThrows(config, 'oslo_policy', 'policy_file', () =>
    Policy.fromFiles(
      policyFiles({
        configFiles: config.files,
        policyFile: config.get('oslo_policy', 'policy_file'),
        policyDirs: config.get('oslo_policy', 'policy_dirs'),
        warn: (message) => log.warn(message),
      }),
      { enforceNewDefaults: config.get('oslo_policy', 'enforce_new_defaults'), enforceScope: config.get('oslo_policy', 'enforce_scope') },
    ),
  );
  const protectionFile = config.get('DEFAULT', 'property_protection_file');
  const propertyProtections = refusedIfThrows(config, 'DEFAULT', 'property_protection_file', () =>
    loadPropertyProtections(
      protectionFile === null ? null : besideConfigOrAsGiven(config.files, protectionFile),
      config.get('DEFAULT', 'property_protection_rule_format'),
      policy,
    ),
  );
  for (const warning of propertyProtections?.warnings ?? []) log.warn(`property_protection_file: ${warning}`);
  for (const warning of policy.warnings) log.warn(`policy: ${warning}`);
  const stores = await StoreRegistry.create(config, {
    countBytes: metrics && ((store, direction, bytes) => metrics.storeBytes.inc({ store, direction }, bytes)),
    log,
  });
  const notificationDrivers = config
    .get('oslo_messaging_notifications', 'driver')
    .map((name) => {
      if (name === 'messagingv2' || name === 'messaging') return messagingDriver(config, name, log);
      if (name === 'log') return new LogNotificationDriver(log.child({ component: 'notifications' }));
      if (name === 'noop') return null;
      return config.refuse('oslo_messaging_notifications', 'driver', `'${name}' is not supported: use messagingv2, messaging, log or noop`);
    })
    .filter((d) => d !== null);
  const notifier = new Notifier(notificationDrivers, config.get('DEFAULT', 'default_publisher_id'), config.get('DEFAULT', 'disabled_notifications'));
  const formatPolicy = {
    requireFormatMatch: config.get('image_format', 'require_image_format_match'),
    gptSafetyChecksNonfatal: config.get('image_format', 'gpt_safety_checks_nonfatal'),
    vmdkAllowedTypes: config.get('image_format', 'vmdk_allowed_types'),
    requireRawFormatMatch: config.get('image_format', 'require_raw_format_match'),
    virtualSizeCap: config.get('image_format', 'virtual_size_cap'),
  };
  const plugins = createPlugins(config.get('image_import_opts', 'image_import_plugins'), {
    inject: config.get('inject_metadata_properties', 'inject'),
    ignoreUserRoles: config.get('inject_metadata_properties', 'ignore_user_roles'),
    outputFormat: config.get('image_conversion', 'output_format'),
    qemuImg: {
      infoCpuSeconds: config.get('image_conversion', 'qemu_img_info_cpu_seconds'),
      convertCpuSeconds: config.get('image_conversion', 'qemu_img_convert_cpu_seconds'),
      addressSpaceMiB: config.get('image_conversion', 'qemu_img_address_space_mib'),
      convertAddressSpaceMiB: config.get('image_conversion', 'qemu_img_convert_address_space_mib'),
    },
    vmdkAllowedTypes: formatPolicy.vmdkAllowedTypes,
    refuse: (section, option, reason) => config.refuse(section, option, reason),
  });
  const quotas = quotaSettings(config, (message) => log.warn(message));
  const auth = withPolicyAdmin(authenticator(config, log), policy);
  const cache = cacheConfig(config);
  const customProperties = customImageProperties(config.files);
  return { policy, propertyProtections, stores, notifier, formatPolicy, plugins, auth, cache, scrubTimeSeconds, customProperties, quotas };
}
