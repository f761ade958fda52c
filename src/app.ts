import { quotasFromConfig } from './quota/from-config.ts';
import { timerMs } from './domain/time.ts';
import { UsageRepo } from './db/repos/usage.ts';
import type { FastifyInstance } from 'fastify';
import { type Config } from './config/index.ts';
import { openDatabase, syncSchema, type Db } from './db/connection.ts';
import { DatabaseClock } from './db/clock.ts';
import { ImagesRepo } from './db/repos/images.ts';
import { DelayedDeletesRepo } from './db/repos/delayed-deletes.ts';
import { MembersRepo } from './db/repos/members.ts';
import { TasksRepo } from './db/repos/tasks.ts';
import { imageSchema, imagesSchema } from './schemas/image.ts';
import { memberSchema, membersSchema, taskSchema, tasksSchema } from './schemas/others.ts';
import { associationSchema, metadefSchemas, namespaceSchema, objectSchema, propertySchema, tagSchema, tagsRequestSchema } from './schemas/metadefs.ts';
import { MetadefNamespacesRepo } from './db/repos/metadef-namespaces.ts';
import { MetadefContentsRepo } from './db/repos/metadef-contents.ts';
import { MetadefNamespaceService } from './services/metadef-namespaces.ts';
import { MetadefContentService } from './services/metadef-contents.ts';
import type { MetadefDeps } from './services/metadef-access.ts';
import { metadefRoutes } from './http/routes/metadefs.ts';
import { cacheRoutes } from './http/routes/cache.ts';
import { SchemaValidator } from './schemas/validate.ts';
import type { ServiceDeps } from './services/deps.ts';
import { ImageService } from './services/images.ts';
import { ImageUpdateService } from './services/image-update.ts';
import { ImageListService } from './services/image-list.ts';
import { ImageDataService } from './services/image-data.ts';
import { MemberService } from './services/members.ts';
import { UploadRegistry } from './services/uploads.ts';
import { createServer } from './http/server.ts';
import type { Api } from './http/api.ts';
import { imageRoutes } from './http/routes/images.ts';
import { imageDataRoutes } from './http/routes/image-data.ts';
import { memberRoutes } from './http/routes/members.ts';
import { schemaRoutes } from './http/routes/schemas.ts';
import { closeHashWorkers } from './ingest/hashing.ts';
import { stagingAreaFromConfig } from './import/staging-config.ts';
import { ImportRunner } from './import/runner.ts';
import type { ImportEngine } from './import/port.ts';
import { nodeName } from './util/process.ts';
import { StagingService } from './services/staging.ts';
import { orphanSweepEvery, recoverAbandonedUploads, recoverInterruptedUploads, sweepOrphanedParts } from './services/upload-recovery.ts';
import { NodeLiveness } from './services/node-liveness.ts';
import { NodesRepo } from './db/repos/nodes.ts';
import { ImportService } from './services/imports.ts';
import { LocationApiService } from './services/location-api.ts';
import { ImageCacheService } from './services/image-cache.ts';
import { ImageCache } from './cache/image-cache.ts';
import { Metrics } from './util/metrics.ts';
import { AmqpNotificationDriver } from './notify/amqp.ts';
import { TaskService } from './services/tasks.ts';
import { StoreInfoService } from './services/store-info.ts';
import { importRoutes } from './http/routes/import.ts';
import { taskRoutes } from './http/routes/tasks.ts';
import { infoRoutes } from './http/routes/info.ts';
import { formatCheckRoutes } from './http/routes/format-check.ts';
import { DataScrubber } from './services/scrubber.ts';
import { FormatCheckService } from './services/format-check.ts';
import { makeContext } from './auth/context.ts';
import { downloadOptionsFromConfig } from './net/safe-download.ts';
import { createLogger, logOptions, type Logger } from './util/logger.ts';
import { configuredParts, databaseOptions, databaseUrl, whenDatabaseReachable } from './configured-parts.ts';

export interface App {
  server: FastifyInstance;
  db: Db;
  deps: ServiceDeps;
  metrics: Metrics;
  /** From now on /healthcheck answers 503 (the node is about to stop); everything else is still served. */
  drain(): void;
  /** One pass of what runs every 30 s while the node runs: uploads of writers gone since, and this node's failed resets, are queued again. */
  recoverAbandonedUploads(): Promise<void>;
  /** One pass of the import engine's recovery sweep, which runs every few seconds while the node runs. */
  recoverImports(): Promise<void>;
  /** The import engine, as the services see it. */
  imports: ImportEngine;
  close(): Promise<void>;
}

/** `log` defaults to the logger the configuration asks for ([DEFAULT] debug, log_file, log_dir, use_stderr). */
export async function createApp(config: Config, opts: { log?: Logger } = {}): Promise<App> {
  const log = opts.log ?? createLogger(logOptions(config));
  const metrics = new Metrics();
  const { policy, propertyProtections, stores, notifier, formatPolicy, plugins, auth, cache, scrubTimeSeconds, customProperties, quotas } =
    await configuredParts(config, log, metrics);
  const db = openDatabase(databaseUrl(config), databaseOptions(config, log));
  const applied = await whenDatabaseReachable(config, log, () => syncSchema(db));
  if (applied.length) log.info(`database schema upgraded: applied ${applied.join(', ')}`);
  // Before anything is stamped: every node writes times on the database server's clock.
  const clock = new DatabaseClock(db, log);
  await clock.sync();
  const stagingArea = await stagingAreaFromConfig(config, stores, log);

  const diskFormats = config.get('image_format', 'disk_formats');
  const containerFormats = config.get('image_format', 'container_formats');
  const image = imageSchema(diskFormats, containerFormats, customProperties, stores.multistore, config.get('DEFAULT', 'allow_additional_image_properties'));

  const deps: ServiceDeps = {
    images: new ImagesRepo(db),
    delayedDeletes: new DelayedDeletesRepo(db),
    members: new MembersRepo(db),
    tasks: new TasksRepo(db),
    stores,
    policy,
    notifier,
    imageValidator: new SchemaValidator('image', image),
    propertyProtections,
    quotas: quotasFromConfig(quotas, new UsageRepo(db)),
    nodeId: nodeName(),
    log,
    metrics,
    settings: {
      imageSizeCap: config.get('DEFAULT', 'image_size_cap'),
      hashingAlgorithm: config.get('DEFAULT', 'hashing_algorithm'),
      imagePropertyQuota: config.get('DEFAULT', 'image_property_quota'),
      imageTagQuota: config.get('DEFAULT', 'image_tag_quota'),
      imageMemberQuota: config.get('DEFAULT', 'image_member_quota'),
      limitParamDefault: config.get('DEFAULT', 'limit_param_default'),
      apiLimitMax: config.get('DEFAULT', 'api_limit_max'),
      showMultipleLocations: config.get('DEFAULT', 'show_multiple_locations'),
      imageLocationQuota: config.get('DEFAULT', 'image_location_quota'),
      showImageDirectUrl: config.get('DEFAULT', 'show_image_direct_url'),
      delayedDelete: config.get('DEFAULT', 'delayed_delete'),
      formatPolicy,
    },
  };
  const selfUrl = config.get('DEFAULT', 'worker_self_reference_url') ?? config.get('DEFAULT', 'public_endpoint');
  const liveness = new NodeLiveness(new NodesRepo(db), deps.nodeId, log);
  await liveness.beat();
  await recoverInterruptedUploads(deps, stagingArea, selfUrl, liveness);
  const scrubber = new DataScrubber(deps, {
    intervalSeconds: 60,
    graceSeconds: 60,
    scrubTimeSeconds,
    alsoSweep: orphanSweepEvery(3600_000, () => sweepOrphanedParts(deps, [...stores.all(), stagingArea.store], stagingArea)),
  });
  const importMethods = config.get('DEFAULT', 'enabled_import_methods');
  const downloadOptions = downloadOptionsFromConfig(config);
  const uploads = new UploadRegistry();
  const imageCache = new ImageCacheService(deps, cache.dir ? new ImageCache(cache.dir, cache.database) : null, cache.settings);
  // A deleted image's import stops at once here (other processes notice on their next heartbeat).
  const images = new ImageService(
    deps,
    uploads,
    { cancel: (id, reason) => runner.cancel(id, reason), discardStaged: (id): Promise<void> => runner.discardStaged(id) },
    imageCache,
  );
  const runner = new ImportRunner(
    deps,
    stagingArea,
    {
      plugins,
      download: downloadOptions,
      concurrency: config.get('wsgi', 'task_pool_threads'),
      taskTimeToLiveHours: config.get('task', 'task_time_to_live'),
      locationImport: { secureHash: config.get('DEFAULT', 'do_secure_hash'), retries: config.get('DEFAULT', 'http_retries') },
      metrics,
      nodeId: deps.nodeId,
      selfUrl,
      glanceDownload: {
        extraProperties: config.get('glance_download_properties', 'extra_properties'),
        regionEndpoints: config.get('glance_download_opts', 'region_endpoints'),
        diskFormats,
        containerFormats,
        propertyQuota: config.get('DEFAULT', 'image_property_quota'),
      },
    },
    (owner, properties, submitter) => images.create(makeContext({ requestId: `req-${crypto.randomUUID()}`, projectId: owner, ...submitter }), properties),
  );
  const metadefs: MetadefDeps = {
    namespaces: new MetadefNamespacesRepo(db),
    contents: new MetadefContentsRepo(db),
    policy,
    notifier,
    validators: {
      namespace: new SchemaValidator('namespace', namespaceSchema),
      object: new SchemaValidator('object', objectSchema),
      property: new SchemaValidator('property', propertySchema),
      // Glance checks each property of a new object against the property schema, without its name.
      object_property: new SchemaValidator('property', { ...propertySchema, required: ['type', 'title'] }),
      tag: new SchemaValidator('tag', tagSchema),
      tags: new SchemaValidator('tags', tagsRequestSchema),
      resource_type_association: new SchemaValidator('resource_type_association', associationSchema),
    },
    limits: { default: deps.settings.limitParamDefault, max: deps.settings.apiLimitMax },
  };
  const staging = new StagingService(deps, uploads, stagingArea, { importMethods, selfUrl });
  const api: Api = {
    images,
    imageUpdates: new ImageUpdateService(deps, images),
    imageList: new ImageListService(deps),
    imageData: new ImageDataService(deps, uploads, imageCache),
    cache: imageCache,
    members: new MemberService(deps),
    staging,
    locations: new LocationApiService(deps, runner, { uriFilter: downloadOptions.filter, resolveTimeoutMs: downloadOptions.connectTimeoutMs }),
    imports: new ImportService(deps, runner, {
      importMethods,
      staging: staging.place,
      uriFilter: downloadOptions.filter,
      resolveTimeoutMs: downloadOptions.connectTimeoutMs,
    }),
    tasks: new TaskService(deps, runner, { uriFilter: downloadOptions.filter, resolveTimeoutMs: downloadOptions.connectTimeoutMs }),
    storeInfo: new StoreInfoService(deps),
    limits: { default: deps.settings.limitParamDefault, max: deps.settings.apiLimitMax },
    view: {
      showMultipleLocations: deps.settings.showMultipleLocations,
      showImageDirectUrl: deps.settings.showImageDirectUrl,
      multistore: stores.multistore,
      propertyProtections,
      locationOrder: (locations) => stores.readOrder(locations),
    },
    metadefNamespaces: new MetadefNamespaceService(metadefs),
    metadefContents: new MetadefContentService(metadefs),
    schemas: {
      image,
      images: imagesSchema(image),
      member: memberSchema,
      members: membersSchema,
      task: taskSchema,
      tasks: tasksSchema,
      ...metadefSchemas,
    },
    importMethods,
    storeIds: stores.multistore ? stores.all().map((s) => s.id) : [],
    quotas: deps.quotas,
    formatCheck: new FormatCheckService(deps, { diskFormats, formatPolicy: deps.settings.formatPolicy }),
    uploadWatchdog: {
      idleMs: timerMs(config.get('DEFAULT', 'client_socket_timeout')),
      minBytesPerSecond: config.get('DEFAULT', 'upload_min_rate'),
    },
  };

  let draining = false;
  const server = createServer({
    authenticator: auth,
    versions: { cache: imageCache.cache !== null, publicEndpoint: config.get('DEFAULT', 'public_endpoint') },
    maxRequestIdLength: config.get('DEFAULT', 'max_request_id_length'),
    maxHeaderLine: config.get('DEFAULT', 'max_header_line'),
    bodyIdleMs: timerMs(config.get('DEFAULT', 'client_socket_timeout')),
    // oslo.middleware takes its paste filter's setting (Debian's glance-api-paste.ini has one) over the option.
    healthcheckDisableFile: config.section('filter:healthcheck').disable_by_file_path ?? config.get('healthcheck', 'disable_by_file_path'),
    draining: () => draining,
    logger: log,
    metrics,
    keepAlive: config.get('DEFAULT', 'http_keepalive'),
    proxyHeaders: config.get('oslo_middleware', 'enable_proxy_headers_parsing'),
    tcpKeepIdleSeconds: config.get('DEFAULT', 'tcp_keepidle'),
    cors: {
      allowedOrigins: config.get('cors', 'allowed_origin'),
      allowCredentials: config.get('cors', 'allow_credentials'),
      exposeHeaders: config.get('cors', 'expose_headers'),
      maxAge: config.get('cors', 'max_age'),
      allowMethods: config.get('cors', 'allow_methods'),
      allowHeaders: config.get('cors', 'allow_headers'),
    },
  });
  imageRoutes(server, api);
  imageDataRoutes(server, api);
  memberRoutes(server, api);
  schemaRoutes(server, api);
  importRoutes(server, api);
  taskRoutes(server, api);
  infoRoutes(server, api);
  formatCheckRoutes(server, api);
  metadefRoutes(server, api);
  cacheRoutes(server, api);
  metrics.gauge('gaze_import_queue_depth', 'Import tasks waiting for a free slot on this node', () => runner.load.queued);
  metrics.gauge('gaze_import_leases_held', 'Import tasks this node holds the lease of (running)', () => runner.load.running);
  metrics.labelledGauge('gaze_db_pool_connections', 'Database connections by state (PostgreSQL pool; SQLite has one)', 'state', () => db.poolUsage());
  for (const driver of notifier.drivers) {
    if (!(driver instanceof AmqpNotificationDriver)) continue;
    metrics.gauge('gaze_notifications_queued', 'Notifications waiting for the message broker', () => driver.depth);
    metrics.gauge('gaze_notifications_dropped_total', 'Notifications given up while the broker was away (the queue was full)', () => driver.dropped);
  }
  metrics.gauge('gaze_image_cache_bytes', 'Bytes of image data in the node image cache', () => imageCache.cache?.totalSize() ?? 0);
  clock.start();
  runner.start();
  scrubber.start();
  imageCache.start();
  const recoverAbandoned = async () => {
    await uploads.retryResets(log);
    await recoverAbandonedUploads(deps, stagingArea, selfUrl, liveness);
  };
  liveness.start(recoverAbandoned);

  return {
    server,
    db,
    deps,
    metrics,
    drain() {
      draining = true;
    },
    recoverAbandonedUploads: recoverAbandoned,
    recoverImports: () => runner.recover(),
    imports: runner,
    async close() {
      await runner.stop();
      await scrubber.stop();
      await server.close();
      // After the last request: an upload still running until now must not look abandoned to the others.
      await liveness.stop();
      await imageCache.stop();
      await notifier.close();
      await auth.close?.();
      await stores.close();
      clock.stop();
      await db.close();
      await closeHashWorkers();
    },
  };
}
