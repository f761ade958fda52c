// Every option Gaze reads, with Glance's section and option names where Glance has one, its type and
// its default. Types follow oslo.config (see values.ts for how each is read); `aliases` are other names
// the same option is read under (Glance's deprecated names, and names design documents used).
// config.get() takes its result type from this table.

import type { OptionType, TypeValues } from './values.ts';

export interface OptionSpec {
  type: OptionType;
  default: string | number | boolean | readonly string[] | readonly number[] | Readonly<Record<string, string>> | null;
  /** Other [section, option] names of the same option; the option's own name wins in the same file. */
  aliases?: ReadonlyArray<readonly [string, string]>;
  /** Credentials, or a URL that may hold them: `gaze config show` prints **** (oslo.config's secret=True). */
  secret?: boolean;
  /** A list Glance declares with `bounds=True`: written in `[ ]`, its items' quotes removed. */
  bracketed?: boolean;
  /**
   * An integer's bounds, as oslo.config's IntOpt checks them (Glance stops at start outside them); of an
   * integer list, each item's (Glance fails when it first reads the option: Gaze stops at start).
   */
  min?: number;
  max?: number;
}

// keystoneauth's TLS options, for a Keystone served over https with a CA of the cloud's own: the same in
// every section that logs in to Keystone ([keystone_authtoken], [oslo_limit]).
const KEYSTONEAUTH_TLS = {
  cafile: { type: 'string', default: null },
  certfile: { type: 'string', default: null },
  keyfile: { type: 'string', default: null },
  insecure: { type: 'bool', default: false },
} as const;

export const OPTIONS = {
  DEFAULT: {
    bind_host: { type: 'string', default: '127.0.0.1' },
    bind_port: { type: 'int', default: 9292, min: 0, max: 65535 },
    workers: { type: 'int', default: 1, min: 0 },
    // Gaze: on SIGTERM, /healthcheck answers 503 for this long while requests are still served, so a
    // load balancer takes the node out before it stops accepting.
    drain_seconds: { type: 'int', default: 0 },
    // oslo.service's name: after draining, requests still running get this long to end before the
    // process exits anyway (an upload whose client stalled would otherwise hold it); 0 waits for them.
    graceful_shutdown_timeout: { type: 'int', default: 60 },
    // Where `gaze db load-metadefs` reads metadata definition files by default.
    metadata_source_path: { type: 'string', default: '/etc/glance/metadefs/' },
    // Gaze: where the embedded defaults keep the database, the file store and staging.
    data_dir: { type: 'string', default: './data' },
    image_size_cap: { type: 'int', default: 1099511627776, min: 1 },
    node_staging_uri: { type: 'string', default: null },
    // Gaze: an S3 or Swift store of this node's stores that keeps staged data (shared by every node, so
    // imports need no forwarding). Default: files, per node (node_staging_uri).
    staging_store: { type: 'string', default: null },
    enabled_backends: { type: 'list', default: [] },
    enabled_import_methods: { type: 'list', default: ['glance-direct', 'web-download', 'copy-image'], bracketed: true },
    show_image_direct_url: { type: 'bool', default: false },
    show_multiple_locations: { type: 'bool', default: false },
    user_storage_quota: { type: 'string', default: '0' },
    image_member_quota: { type: 'int', default: 128 },
    // Glance 25's deprecated switch: false refuses any property its image schema does not name.
    allow_additional_image_properties: { type: 'bool', default: true },
    image_property_quota: { type: 'int', default: 128 },
    image_tag_quota: { type: 'int', default: 128 },
    image_location_quota: { type: 'int', default: 10 },
    // Glance's scrubber options: a deleted image with data becomes pending_delete and keeps its data for
    // scrub_time seconds (restorable with `gaze scrub --restore`); the service's own scrubber removes it then.
    delayed_delete: { type: 'bool', default: false },
    scrub_time: { type: 'int', default: 0 },
    // The locations API of Glance 2024.2 (POST /v2/images/{id}/locations): compute the digests of a new
    // location's data, and how often to try reading it.
    do_secure_hash: { type: 'bool', default: true },
    // The local image cache of this node (on when set, with a caching paste flavor for downloads).
    image_cache_dir: { type: 'string', default: null },
    image_cache_max_size: { type: 'int', default: 10737418240, min: 0 },
    image_cache_stall_time: { type: 'int', default: 86400, min: 0 },
    image_cache_driver: { type: 'string', default: 'centralized_db' },
    image_cache_sqlite_db: { type: 'string', default: 'cache.db' },
    cache_prefetcher_interval: { type: 'int', default: 300, min: 1 },
    // Which location of an image a read tries first: the list's order, or by store type.
    location_strategy: { type: 'string', default: 'location_order' },
    http_retries: { type: 'int', default: 3 },
    limit_param_default: { type: 'int', default: 25, min: 1 },
    api_limit_max: { type: 'int', default: 1000, min: 1 },
    hashing_algorithm: { type: 'string', default: 'sha512' },
    public_endpoint: { type: 'string', default: null },
    worker_self_reference_url: { type: 'string', default: null },
    use_keystone_limits: { type: 'bool', default: false },
    max_request_id_length: { type: 'int', default: 64, min: 0 },
    max_header_line: { type: 'int', default: 16384, min: 0 },
    default_publisher_id: { type: 'string', default: 'image.localhost' },
    // oslo.messaging's: the broker notifications go to (unless [oslo_messaging_notifications] names
    // another), and the exchange (Glance's default is glance).
    transport_url: { type: 'string', default: null, secret: true },
    control_exchange: { type: 'string', default: 'glance' },
    disabled_notifications: { type: 'list', default: [] },
    // Gaze: the project a no-auth request without X-Project-Id acts as.
    noauth_default_project_id: { type: 'string', default: 'admin' },
    // Gaze: no-auth mode makes every anonymous caller an admin, so listening beyond loopback must be asked for.
    noauth_allow_remote: { type: 'bool', default: false },
    // Glance's: with Keystone, a request without a valid token reads as an anonymous caller (no
    // project, no roles) instead of a 401; every write is then 403 "Read-only access".
    allow_anonymous_access: { type: 'bool', default: false },
    property_protection_file: { type: 'string', default: null },
    property_protection_rule_format: { type: 'string', default: 'roles' },
    // Glance's WSGI socket timeout; Gaze applies it to request bodies: an upload or stage that sends no
    // byte for this many seconds is cut off (slowloris), and the image goes back to where it was.
    client_socket_timeout: { type: 'int', default: 900, min: 0 },
    // Glance's: false answers every request with `Connection: close` and closes the connection.
    http_keepalive: { type: 'bool', default: true },
    // Glance's server socket: the listen queue (capped by net.core.somaxconn), and TCP keepalive probes
    // on every client connection after this many idle seconds.
    backlog: { type: 'int', default: 4096, min: 1 },
    tcp_keepidle: { type: 'int', default: 600, min: 1 },
    // Gaze: and an upload slower than this many bytes per second over such a window is cut off too; the
    // service's own downloads as well, over each read_timeout of waiting ([import_filtering_opts]).
    upload_min_rate: { type: 'int', default: 1024 },
    // oslo.log: the level, and where lines go (a file, else stdout, or stderr with use_stderr).
    debug: { type: 'bool', default: false },
    log_file: { type: 'string', default: null, aliases: [['DEFAULT', 'logfile']] },
    log_dir: { type: 'string', default: null, aliases: [['DEFAULT', 'logdir']] },
    use_stderr: { type: 'bool', default: false },
  },
  cors: {
    // oslo.middleware's CORS, with the defaults Glance sets (set_cors_middleware_defaults). Off until
    // allowed_origin names an origin (or *).
    allowed_origin: { type: 'list', default: [] },
    allow_credentials: { type: 'bool', default: true },
    expose_headers: { type: 'list', default: ['X-Image-Meta-Checksum', 'X-Auth-Token', 'X-Subject-Token', 'X-Service-Token', 'X-OpenStack-Request-ID'] },
    max_age: { type: 'int', default: 3600 },
    allow_methods: { type: 'list', default: ['GET', 'PUT', 'POST', 'DELETE', 'PATCH'] },
    allow_headers: {
      type: 'list',
      default: [
        'Content-MD5',
        'X-Image-Meta-Checksum',
        'X-Storage-Token',
        'Accept-Encoding',
        'X-Auth-Token',
        'X-Identity-Status',
        'X-Roles',
        'X-Service-Catalog',
        'X-User-Id',
        'X-Tenant-Id',
        'X-OpenStack-Request-ID',
      ],
    },
  },
  database: {
    // oslo.db's older names: a glance-api.conf of an old deployment may still use them.
    connection: {
      type: 'string',
      default: null,
      secret: true,
      aliases: [
        ['DEFAULT', 'sql_connection'],
        ['database', 'sql_connection'],
        ['sql', 'connection'],
      ],
    },
    // oslo.db's pool: max_pool_size connections kept and max_overflow more when busy (5 and 50 in
    // oslo.db); Gaze's pool holds up to their sum, and 10 when neither is set.
    max_pool_size: { type: 'int', default: null },
    max_overflow: {
      type: 'int',
      default: null,
      aliases: [
        ['DEFAULT', 'sql_max_overflow'],
        ['database', 'sqlalchemy_max_overflow'],
      ],
    },
    // oslo.db's SQL mode of each MySQL session; empty: the server's own.
    mysql_sql_mode: { type: 'string', default: 'TRADITIONAL' },
    // oslo.db's wait for the server at start: attempts (-1: no end) and seconds between them.
    max_retries: {
      type: 'int',
      default: 10,
      aliases: [
        ['DEFAULT', 'sql_max_retries'],
        ['database', 'sql_max_retries'],
      ],
    },
    retry_interval: {
      type: 'int',
      default: 10,
      aliases: [
        ['DEFAULT', 'sql_retry_interval'],
        ['database', 'reconnect_interval'],
      ],
    },
  },
  glance_store: {
    stores: { type: 'list', default: ['file', 'http'] },
    default_store: { type: 'string', default: 'file' },
    default_backend: { type: 'string', default: null },
    filesystem_store_datadir: { type: 'string', default: null },
    // Several directories, one `path:priority` per line (a MultiStrOpt); the file store reads them.
    filesystem_store_datadirs: { type: 'multistring', default: [] },
    // The file store reads it (single-store mode); in multi-store mode each store's section.
    filesystem_store_file_perm: { type: 'string', default: null },
    filesystem_thin_provisioning: { type: 'string', default: null },
    filesystem_store_metadata_file: { type: 'string', default: null },
    // The s3 and swift drivers read these (single-store mode); in multi-store mode each store's section.
    s3_store_host: { type: 'string', default: null },
    s3_store_access_key: { type: 'string', default: null, secret: true },
    s3_store_secret_key: { type: 'string', default: null, secret: true },
    s3_store_bucket: { type: 'string', default: null },
    s3_store_create_bucket_on_put: { type: 'string', default: null },
    s3_store_large_object_size: { type: 'string', default: null },
    s3_store_large_object_chunk_size: { type: 'string', default: null },
    s3_store_thread_pools: { type: 'string', default: null },
    s3_store_region_name: { type: 'string', default: null },
    s3_store_bucket_url_format: { type: 'string', default: null },
    swift_store_auth_address: { type: 'string', default: null },
    swift_store_auth_version: { type: 'string', default: null },
    swift_store_user: { type: 'string', default: null, secret: true },
    swift_store_key: { type: 'string', default: null, secret: true },
    swift_store_container: { type: 'string', default: null },
    swift_store_create_container_on_put: { type: 'string', default: null },
    swift_store_large_object_size: { type: 'string', default: null },
    swift_store_large_object_chunk_size: { type: 'string', default: null },
    swift_store_retry_get_count: { type: 'string', default: null },
    swift_store_expire_soon_interval: { type: 'string', default: null },
    swift_store_endpoint: { type: 'string', default: null },
    swift_store_auth_insecure: { type: 'string', default: null },
    swift_store_cacert: { type: 'string', default: null },
    // The http store's (single-store mode; in multi-store mode its section's).
    https_ca_certificates_file: { type: 'string', default: null },
    https_insecure: { type: 'string', default: null },
    swift_store_config_file: { type: 'string', default: null },
    default_swift_reference: { type: 'string', default: null },
    swift_store_region: { type: 'string', default: null },
    swift_store_endpoint_type: { type: 'string', default: null },
    swift_store_service_type: { type: 'string', default: null },
    swift_store_multi_tenant: { type: 'string', default: null },
    swift_store_multiple_containers_seed: { type: 'string', default: null },
    swift_store_application_credential_id: { type: 'string', default: null, secret: true },
    swift_store_application_credential_secret: { type: 'string', default: null, secret: true },
  },
  store_type_location_strategy: {
    store_type_preference: { type: 'list', default: [] },
  },
  // oslo.middleware's healthcheck (Glance's paste pipeline): a file whose presence answers 503.
  // oslo.middleware's HTTPProxyToWSGI (in Glance's paste pipeline): behind a proxy that terminates TLS or
  // serves the API under a path, the links and Location headers say what the proxy's headers say.
  oslo_middleware: {
    enable_proxy_headers_parsing: { type: 'bool', default: false },
  },
  healthcheck: {
    disable_by_file_path: { type: 'string', default: '/etc/glance/healthcheck_disable' },
  },
  // Gaze: Prometheus metrics on an address of their own (off by default).
  metrics: {
    enabled: { type: 'bool', default: false },
    bind_host: { type: 'string', default: '127.0.0.1' },
    bind_port: { type: 'int', default: 9393, min: 0, max: 65535 },
  },
  paste_deploy: {
    flavor: { type: 'string', default: '' },
  },
  keystone_authtoken: {
    // keystonemiddleware's; `auth_uri` is its deprecated name, still in older deployments' files.
    www_authenticate_uri: { type: 'string', default: null, aliases: [['keystone_authtoken', 'auth_uri']] },
    // keystoneauth's plugin and its options (service-login.ts): password and v3password (a user and a
    // project, each by id or by name), or v3applicationcredential (by id, or by name with its user).
    // auth_section names another section to read all of them from instead, auth_type included.
    auth_section: { type: 'string', default: null },
    auth_type: { type: 'string', default: 'password', aliases: [['keystone_authtoken', 'auth_plugin']] },
    auth_url: { type: 'string', default: null },
    user_id: { type: 'string', default: null },
    // keystoneauth's older names (tenant for project) are read as well.
    username: { type: 'string', default: null, aliases: [['keystone_authtoken', 'user_name']] },
    password: { type: 'string', default: null, secret: true },
    project_id: { type: 'string', default: null, aliases: [['keystone_authtoken', 'tenant_id']] },
    project_name: { type: 'string', default: null, aliases: [['keystone_authtoken', 'tenant_name']] },
    user_domain_name: { type: 'string', default: null },
    user_domain_id: { type: 'string', default: null },
    project_domain_name: { type: 'string', default: null },
    project_domain_id: { type: 'string', default: null },
    system_scope: { type: 'string', default: null },
    default_domain_id: { type: 'string', default: null },
    default_domain_name: { type: 'string', default: null },
    application_credential_id: { type: 'string', default: null },
    application_credential_name: { type: 'string', default: null },
    application_credential_secret: { type: 'string', default: null, secret: true },
    region_name: { type: 'string', default: null },
    // keystonemiddleware's: false validates tokens without their catalog (glance-download then finds no
    // other region).
    include_service_catalog: { type: 'bool', default: true },
    // keystonemiddleware's name; seconds a validated token is trusted without asking Keystone again.
    token_cache_time: { type: 'int', default: 300 },
    http_connect_timeout: { type: 'int', default: 10 },
    // keystonemiddleware's: an X-Service-Token holding one of these roles lets an expired user token
    // through (Nova's snapshot after a long conversion); with _required, one without them adds no roles.
    service_token_roles: { type: 'list', default: ['service'] },
    service_token_roles_required: { type: 'bool', default: false },
    // keystonemiddleware's: this service's type in the catalog ("image"), which application credentials'
    // access rules name; unset, a token whose credential has access rules is refused.
    service_type: { type: 'string', default: null },
    ...KEYSTONEAUTH_TLS,
  },
  oslo_policy: {
    // oslo.policy's: looked for beside the configuration files (policy.yaml when unset), then every
    // file of each policy_dirs directory (a MultiStrOpt: once per directory), later rules winning.
    policy_file: { type: 'string', default: null, aliases: [['DEFAULT', 'policy_file']] },
    policy_dirs: { type: 'multistring', default: ['policy.d'], aliases: [['DEFAULT', 'policy_dirs']] },
    // oslo.policy's default since 2024.2; False also weighs the deprecated rules, as Glance then does.
    // Zed's files also say it as [DEFAULT] enforce_secure_rbac, which Zed holds equal to this one.
    enforce_new_defaults: { type: 'bool', default: true, aliases: [['DEFAULT', 'enforce_secure_rbac']] },
    // oslo.policy's default since 2024.2, with the new defaults: a system- or domain-scoped token is
    // refused by every rule of Glance's, which are for project-scoped tokens.
    enforce_scope: { type: 'bool', default: true },
  },
  image_format: {
    container_formats: {
      type: 'list',
      default: ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'],
      aliases: [['DEFAULT', 'container_formats']],
    },
    disk_formats: {
      type: 'list',
      default: ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'],
      aliases: [['DEFAULT', 'disk_formats']],
    },
    vmdk_allowed_types: { type: 'list', default: ['streamOptimized', 'monolithicSparse'] },
    require_image_format_match: { type: 'bool', default: true },
    gpt_safety_checks_nonfatal: { type: 'list', default: [] },
    // Gaze: data claimed raw must be raw (or a partitioned or LUKS disk); false restores Glance's
    // leniency (a qcow2 accepted as "raw" with a warning). Only with require_image_format_match.
    require_raw_format_match: { type: 'bool', default: true },
    // Gaze: inspected data whose virtual size is larger than this (bytes; 64 TiB) is refused.
    virtual_size_cap: { type: 'int', default: 70368744177664 },
  },
  oslo_messaging_notifications: {
    // Glance's option: `log` writes each notification as a JSON line to the service log; `messagingv2`
    // (and `messaging`) send them to RabbitMQ; empty sends none.
    // oslo.messaging's deprecated names in [DEFAULT], still in older deployments' files.
    // A MultiStrOpt in oslo.messaging: one driver per line, the option repeated for several.
    driver: { type: 'multistring', default: [], aliases: [['DEFAULT', 'notification_driver']] },
    transport_url: { type: 'string', default: null, secret: true, aliases: [['DEFAULT', 'notification_transport_url']] },
    topics: {
      type: 'list',
      default: ['notifications'],
      aliases: [
        ['DEFAULT', 'notification_topics'],
        ['rpc_notifier2', 'topics'],
      ],
    },
  },
  oslo_messaging_rabbit: {
    amqp_durable_queues: { type: 'bool', default: false },
    // Quorum queues (x-queue-type: quorum, durable, with the exchange), as kolla and openstack-ansible
    // turn them on; the three limits are set on the queue when above 0.
    rabbit_quorum_queue: { type: 'bool', default: false },
    rabbit_quorum_delivery_limit: { type: 'int', default: 0, min: 0 },
    rabbit_quorum_max_memory_length: { type: 'int', default: 0, min: 0 },
    rabbit_quorum_max_memory_bytes: { type: 'int', default: 0, min: 0 },
    // TLS to the broker, as oslo.messaging reads it: the chain is checked (against ssl_ca_file, else the
    // system's CAs), the broker's name only with ssl_enforce_hostname_verification and a CA file.
    ssl: { type: 'bool', default: false, aliases: [['oslo_messaging_rabbit', 'rabbit_use_ssl']] },
    ssl_ca_file: { type: 'string', default: null, aliases: [['oslo_messaging_rabbit', 'kombu_ssl_ca_certs']] },
    ssl_cert_file: { type: 'string', default: null, aliases: [['oslo_messaging_rabbit', 'kombu_ssl_certfile']] },
    ssl_key_file: { type: 'string', default: null, aliases: [['oslo_messaging_rabbit', 'kombu_ssl_keyfile']] },
    ssl_version: { type: 'string', default: null, aliases: [['oslo_messaging_rabbit', 'kombu_ssl_version']] },
    ssl_enforce_hostname_verification: { type: 'bool', default: false },
  },
  task: {
    task_time_to_live: { type: 'int', default: 48, aliases: [['DEFAULT', 'task_time_to_live']] },
  },
  import_filtering_opts: {
    allowed_schemes: { type: 'list', default: ['http', 'https'], bracketed: true },
    disallowed_schemes: { type: 'list', default: [], bracketed: true },
    allowed_hosts: { type: 'list', default: [], bracketed: true },
    disallowed_hosts: { type: 'list', default: [], bracketed: true },
    // Ports, each from 1 to 65535 (Glance's item type): another refuses every web-download there.
    allowed_ports: { type: 'intlist', default: [80, 443], bracketed: true, min: 1, max: 65535 },
    disallowed_ports: { type: 'intlist', default: [], bracketed: true, min: 1, max: 65535 },
    // Gaze: refuse destinations that are not on the public internet (loopback, private, link-local and
    // metadata, CGNAT, unique-local, multicast, reserved) unless allowed_hosts lists the host, the
    // address or a network (CIDR) holding it. Glance has no such default; false restores its behaviour.
    refuse_internal_addresses: { type: 'bool', default: true },
    // Gaze: limits of the service's own downloads (web-download, glance-download), in seconds.
    connect_timeout: { type: 'int', default: 30 },
    read_timeout: { type: 'int', default: 60 },
    max_redirects: { type: 'int', default: 10 },
  },
  glance_download_properties: {
    // Prefixes of the remote image's properties that glance-download copies (Glance's defaults).
    // The glance-download design names it extra_properties_prefixes; Glance shipped extra_properties.
    extra_properties: {
      type: 'list',
      bracketed: true,
      default: ['hw_', 'trait:', 'os_distro', 'os_secure_boot', 'os_type'],
      aliases: [['glance_download_properties', 'extra_properties_prefixes']],
    },
  },
  glance_download_opts: {
    // Gaze: where other regions' Image services are when there is no Keystone catalog (no-auth mode):
    // `RegionTwo:http://127.0.0.1:9293, ...`.
    region_endpoints: { type: 'list', default: [] },
  },
  image_import_opts: {
    image_import_plugins: { type: 'list', default: [], bracketed: true },
  },
  inject_metadata_properties: {
    inject: { type: 'dict', default: {} },
    ignore_user_roles: { type: 'list', default: ['admin'] },
  },
  image_conversion: {
    output_format: { type: 'string', default: 'raw' },
    // Gaze: limits of every qemu-img run (Glance: 2 CPU-seconds and 1 GiB of address space for `info`;
    // conversion itself gets more CPU time, since it reads the whole image).
    qemu_img_info_cpu_seconds: { type: 'int', default: 2 },
    qemu_img_convert_cpu_seconds: { type: 'int', default: 600 },
    qemu_img_address_space_mib: { type: 'int', default: 1024 },
    // Gaze: convert runs a pool of I/O threads, each reserving stack address space; under 1 GiB it can
    // fail to start them ("qemu_thread_create: Resource temporarily unavailable").
    qemu_img_convert_address_space_mib: { type: 'int', default: 4096 },
  },
  oslo_limit: {
    // Where Keystone's unified limits are read when use_keystone_limits is on (oslo.limit's names), and
    // keystoneauth's plugin to log in with, as in [keystone_authtoken] (service-login.ts).
    auth_section: { type: 'string', default: null },
    auth_type: { type: 'string', default: 'password', aliases: [['oslo_limit', 'auth_plugin']] },
    auth_url: { type: 'string', default: null },
    user_id: { type: 'string', default: null },
    username: { type: 'string', default: null, aliases: [['oslo_limit', 'user_name']] },
    password: { type: 'string', default: null, secret: true },
    user_domain_id: { type: 'string', default: null },
    user_domain_name: { type: 'string', default: null },
    system_scope: { type: 'string', default: null },
    project_id: { type: 'string', default: null },
    project_name: { type: 'string', default: null },
    project_domain_id: { type: 'string', default: null },
    project_domain_name: { type: 'string', default: null },
    default_domain_id: { type: 'string', default: null },
    default_domain_name: { type: 'string', default: null },
    application_credential_id: { type: 'string', default: null },
    application_credential_name: { type: 'string', default: null },
    application_credential_secret: { type: 'string', default: null, secret: true },
    endpoint_id: { type: 'string', default: null },
    endpoint_service_type: { type: 'string', default: null },
    endpoint_region_name: { type: 'string', default: null },
    endpoint_interface: { type: 'string', default: 'publicURL' },
    ...KEYSTONEAUTH_TLS,
  },
  project_limits: {
    // Gaze: the unified limits every project gets when use_keystone_limits is off (MiB for the sizes;
    // -1 = unlimited). Keystone's registered limits play this part when it is on.
    image_size_total: { type: 'int', default: -1 },
    image_stage_total: { type: 'int', default: -1 },
    image_count_total: { type: 'int', default: -1 },
    image_count_uploading: { type: 'int', default: -1 },
  },
  wsgi: {
    task_pool_threads: { type: 'int', default: 16, min: 1 },
  },
} as const satisfies Record<string, Record<string, OptionSpec>>;

/** The MultiStrOpts Gaze reads (type multistring, in any section, and their other names): set once per value (ini.ts). */
export const MULTI_VALUED: ReadonlySet<string> = new Set(
  Object.values(OPTIONS as Record<string, Record<string, OptionSpec>>).flatMap((specs) =>
    Object.entries(specs)
      .filter(([, spec]) => spec.type === 'multistring')
      .flatMap(([name, spec]) => [name, ...(spec.aliases ?? []).map(([, alias]) => alias)]),
  ),
);

/** `section.option` of every name Gaze reads an option under: its own, and its other (older) names. */
export const READ_OPTION_NAMES: ReadonlySet<string> = new Set(
  Object.entries(OPTIONS as Record<string, Record<string, OptionSpec>>).flatMap(([section, specs]) =>
    Object.entries(specs).flatMap(([option, spec]) => [`${section}.${option}`, ...(spec.aliases ?? []).map(([s, o]) => `${s}.${o}`)]),
  ),
);

export type Options = typeof OPTIONS;
export type SectionName = keyof Options;
export type OptionName<S extends SectionName> = keyof Options[S] & string;
/** The value type of an option: its type's, or null too where the option has no default. */
export type OptionValue<S extends SectionName, O extends OptionName<S>> = Options[S][O] extends { type: infer T extends OptionType; default: infer D }
  ? D extends null
    ? TypeValues[T] | null
    : TypeValues[T]
  : never;
/** The options of a section whose value is text (for code that reads several of them alike). */
export type StringOptionName<S extends SectionName> = { [O in OptionName<S>]: OptionValue<S, O> extends string | null ? O : never }[OptionName<S>];
