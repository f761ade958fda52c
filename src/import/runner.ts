import { readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { ImportDeps } from './deps.ts';
import type { TaskRow } from '../db/repos/tasks.ts';
import type { Image, ImageStatus } from '../domain/image.ts';
import { isGazeError } from '../domain/errors.ts';
import { addSeconds, nowTimestamp } from '../domain/time.ts';
import { IngestAborted, type Digests } from '../ingest/pipeline.ts';
import { DigestMismatch, ImageGone, adoptData, digestMismatch, expectedAtCreate, formatCheckFor, scrubLocation, storeAndActivate, writeData, type ExpectedDigest } from '../ingest/store-data.ts';
import { StoreError } from '../stores/driver.ts';
import { imagePayload } from '../notify/payloads.ts';
import type { StagingArea } from './staging-area.ts';
import { IMPORT_LOCK } from '../db/repos/images.ts';
import { isTerminal } from '../domain/task.ts';
import type { CatalogService } from '../auth/context.ts';
import { copiedProperties, fetchRemoteImage, GlanceDownloadFailed, openRemoteData, remoteEndpoint } from './glance-download.ts';
import { processAlive } from '../util/process.ts';
import { safeDownload, DownloadError, type SafeDownloadOptions } from '../net/safe-download.ts';
import { PluginFailed, type ImportPlugin } from './plugins/index.ts';
import { inspectFile } from '../formats/inspector.ts';
import type { Logger } from '../util/logger.ts';
import { judge } from '../formats/verdict.ts';
import { activation, moveTo, resetToQueued } from '../domain/image.ts';

// Runs import tasks in the background. A task row is the source of truth: the process that runs it
// holds a lease (renewed by a heartbeat) and re-reads the row and the image on every beat, so a cancel
// or a delete made through any process stops the work. Tasks whose holder died are resumed by whoever
// sees the lease expire (a few times at most), or failed cleanly.

const LEASE_SECONDS = 10;
const HEARTBEAT_MS = 2000;
const RECOVERY_MS = 5000;
const MAX_ATTEMPTS = 3;
const PROGRESS_MS = 2000;
export const IMPORTING_TO_STORES = 'os_glance_importing_to_stores';
export const FAILED_IMPORT = 'os_glance_failed_import';

export interface ImportInput {
  image_id: string;
  import_req: { method: { name: string; uri?: string } & Record<string, unknown> } & Record<string, unknown>;
  backend: Array<string | null>;
  /** The importing user's roles, for the plugins that depend on them (inject_image_metadata). */
  roles?: string[];
  /** Formats and properties the import overwrote, put back if it fails (glance-download, plugins). */
  previous?: PreviousValues;
}

export interface PreviousValues {
  disk_format: string | null;
  container_format: string | null;
  properties: Record<string, string | null>;
}

/** Why a task stopped early; its message becomes the task's message. */
class ImportStopped extends Error {}

/**
 * This process stops working on a task that stays unfinished: the service is stopping, or another
 * process took the lease over (this one was paused past its lease). The task, the image and the staged
 * data are left as they are, to whoever holds the lease now.
 */
class HandedOn extends Error {}

export interface CallerCredentials {
  token: string | null;
  catalog: CatalogService[];
}

export interface RunnerOptions {
  /** [image_import_opts] image_import_plugins, in order. */
  plugins: ImportPlugin[];
  glanceDownload: { extraProperties: string[]; regionEndpoints: string[] };
  download: Pick<SafeDownloadOptions, 'filter' | 'connectTimeoutMs' | 'readTimeoutMs' | 'maxRedirects'>;
  concurrency: number;
  taskTimeToLiveHours: number;
  nodeId: string;
}

export class ImportRunner {
  /** Task id → its image and abort switch, for the tasks this process runs. */
  private readonly running = new Map<string, { imageId: string | null; controller: AbortController }>();
  private readonly callers = new Map<string, CallerCredentials>();
  /** Creates the image of a legacy `import` task (set by app.ts: the image service lives above the runner). */
  createImageForTask: ((owner: string, properties: Record<string, unknown>) => Promise<Image>) | null = null;
  private readonly queue: TaskRow[] = [];
  private recoveryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly deps: ImportDeps, private readonly staging: StagingArea, private readonly opts: RunnerOptions) {}

  get nodeId(): string { return this.opts.nodeId; }

  leaseUntil(): string {
    return addSeconds(nowTimestamp(), LEASE_SECONDS);
  }

  /** Starts the recovery sweep: now, and then periodically. */
  start(): void {
    void this.recover();
    this.recoveryTimer = setInterval(() => void this.recover(), RECOVERY_MS);
    this.recoveryTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.recoveryTimer) clearInterval(this.recoveryTimer);
    // Work in progress is left to the lease: another process (or this one after a restart) resumes it.
    for (const { controller } of this.running.values()) controller.abort(new HandedOn('service stopping'));
  }

  /**
   * Queues a task. `caller` carries the caller's token and catalog for glance-download: kept in memory
   * only (the task row is shown through the API), so such a task cannot outlive this process.
   */
  schedule(task: TaskRow, caller?: CallerCredentials): void {
    if (caller) this.callers.set(task.id, caller);
    this.queue.push(task);
    this.pump();
  }

  /** Stops this process's work on an image's import at once (others notice on their next heartbeat). */
  abortImage(imageId: string, reason: string): void {
    for (const { imageId: taskImage, controller } of this.running.values()) {
      if (taskImage === imageId) controller.abort(new ImportStopped(reason));
    }
  }

  private pump(): void {
    while (!this.stopped && this.queue.length && this.running.size < this.opts.concurrency) {
      const task = this.queue.shift()!;
      void this.execute(task);
    }
  }

  /** Unfinished tasks nobody holds: resume them (a few times) or fail them cleanly. */
  async recover(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.revertAbandonedImports();
      await this.removeOrphanedStagedData();
      const candidates: Array<{ task: TaskRow; deadOwner: string | null }> = [
        ...(await this.deps.tasks.orphaned(50)).map((task) => ({ task, deadOwner: null })),
        // A holder on this host whose process is gone (killed, crashed) need not be waited for.
        ...(await this.deps.tasks.heldWithPrefix(`${hostname()}:`, 50))
          .filter((task) => task.lease_owner !== this.nodeId && !processAlive(Number(task.lease_owner!.split(':')[1])))
          .map((task) => ({ task, deadOwner: task.lease_owner })),
      ];
      for (const { task, deadOwner } of candidates) {
        if (this.running.has(task.id)) continue;
        const claimed = deadOwner
          ? await this.deps.tasks.claimFrom(task.id, deadOwner, this.nodeId, this.leaseUntil())
          : await this.deps.tasks.claim(task.id, this.nodeId, this.leaseUntil());
        if (!claimed) continue;
        if (task.attempts >= MAX_ATTEMPTS) {
          await this.finishFailed(task, 'Import was interrupted too many times (service restarts); giving up.');
          continue;
        }
        this.schedule(task);
      }
    } catch (err) {
      this.deps.log.error({ err }, 'import recovery sweep failed');
    }
  }

  /** Staged data of images that are gone, or that no longer wait for an import (finished, reverted). */
  private async removeOrphanedStagedData(): Promise<void> {
    for (const name of await readdir(this.staging.dir).catch(() => [] as string[])) {
      if (name.startsWith('.')) continue; // a write in progress, or its leftovers (swept at start)
      // `<id>.<suffix>` is a plugin's work file (a conversion's output): it belongs to image <id>.
      const image = await this.deps.images.get(name.split('.')[0]);
      if (!image || !['uploading', 'importing'].includes(image.status)) await this.staging.remove(name);
    }
  }

  /** Images left `importing` by a task that ended (or vanished) without reverting them. */
  private async revertAbandonedImports(): Promise<void> {
    for (const id of await this.deps.images.idsInStatus('importing')) {
      const image = await this.deps.images.get(id);
      if (!image) continue;
      const holder = image.properties[IMPORT_LOCK];
      const task = holder ? await this.deps.tasks.getRaw(holder) : null;
      if (task && !isTerminal(task.status)) continue; // running, or resumable by the orphan sweep
      if (task && task.type === 'api_image_import') {
        await this.finishFailed(task, task.message); // the same revert; the task itself stays as it ended
        continue;
      }
      await this.staging.remove(id).catch(() => {});
      await this.deps.images.updateFields(id, 'importing', resetToQueued());
      await this.deps.images.setProperty(id, IMPORTING_TO_STORES, '');
      if (holder) await this.deps.images.releaseImportLock(id, holder);
    }
  }

  private async execute(task: TaskRow): Promise<void> {
    const controller = new AbortController();
    this.running.set(task.id, { imageId: task.image_id, controller });
    const heartbeat = setInterval(() => void this.beat(task, controller), HEARTBEAT_MS);
    heartbeat.unref();
    try {
      if (!(await this.deps.tasks.claim(task.id, this.nodeId, this.leaseUntil()))) return;
      await this.deps.tasks.transition(task.id, ['pending', 'processing'], { status: 'processing', attempts: task.attempts + 1 });
      this.deps.notifier.info('task.processing', { id: task.id, type: task.type, status: 'processing' });
      if (task.type === 'import') await this.runLegacy(task, controller.signal);
      else await this.run(task, JSON.parse(task.input!) as ImportInput, controller.signal);
    } catch (err) {
      const reason = controller.signal.aborted ? controller.signal.reason : err;
      if (reason instanceof HandedOn) return;
      const log = this.deps.log.child({ task: task.id, image: task.image_id });
      await this.finishFailed(task, describeFailure(reason, log)).catch((e) => log.error({ err: e }, 'could not fail the task'));
    } finally {
      clearInterval(heartbeat);
      this.running.delete(task.id);
      this.callers.delete(task.id);
      this.pump();
    }
  }

  /** Renews the lease; aborts when the task was cancelled or failed elsewhere, or the image was deleted. */
  private async beat(task: TaskRow, controller: AbortController): Promise<void> {
    try {
      const row = await this.deps.tasks.getRaw(task.id);
      if (!row || row.status !== 'processing' && row.status !== 'pending') {
        controller.abort(new ImportStopped(row?.message || 'The import task was stopped.'));
        return;
      }
      const imageId = this.running.get(task.id)?.imageId ?? task.image_id;
      if (imageId && !(await this.deps.images.get(imageId))) {
        controller.abort(new ImportStopped('Image has been deleted, aborting import.'));
        return;
      }
      if (!(await this.deps.tasks.claim(task.id, this.nodeId, this.leaseUntil()))) {
        controller.abort(new HandedOn('the lease was taken over by another process'));
      }
    } catch { /* a missed beat is harmless; the lease is long enough for the next */ }
  }

  private async run(task: TaskRow, input: ImportInput, signal: AbortSignal): Promise<void> {
    const { images } = this.deps;
    let image = await this.requireImage(input.image_id);
    const method = input.import_req.method.name;
    const copying = method === 'copy-image';
    if (image.properties[IMPORT_LOCK] !== task.id) throw new ImportStopped('Task was aborted externally');
    const targets = input.backend.map((id) => {
      const store = id === null ? this.deps.stores.default() : this.deps.stores.get(id);
      if (!store) throw new ImportStopped(`Store ${id} is not enabled on this node.`);
      return store;
    });
    const storeIds = input.backend.filter((id): id is string => id !== null);

    if (!copying && image.status !== 'importing') {
      const from = method === 'glance-direct' ? 'uploading' : 'queued';
      if (!(await images.updateFields(image.id, from, moveTo('importing')))) {
        const now = await this.requireImage(image.id); // deleted meanwhile: says so
        throw new ImportStopped(`Image ${image.id} is ${now.status}, not ${from}; the import cannot start.`);
      }
    }
    await this.progress(image.id, { importing: storeIds, clearFailed: storeIds });
    await images.setProperty(image.id, 'os_glance_stage_host', null);
    image = await this.requireImage(input.image_id);
    this.deps.notifier.info('image.update', imagePayload(image));

    let expectedDigest: ExpectedDigest | null = null;
    if (method === 'web-download') await this.download(image, input.import_req.method.uri!, signal);
    if (method === 'glance-download') {
      expectedDigest = await this.glanceDownload(task, image, input, signal);
      image = await this.requireImage(input.image_id); // it now has the remote image's formats
    }
    if (copying) await this.stageExistingData(image, signal);
    else image = await this.runPlugins(task, image, input, signal);
    const stagedSize = await this.staging.size(image.id);
    if (stagedSize === null) throw new ImportStopped(`No staged data found for image ${image.id}; stage it again.`);
    // Every copy counts against the project's storage: refuse before the first byte is written. A copy
    // adds to the image's existing data; an import replaces whatever the image had.
    if (!copying) await images.updateFields(image.id, 'importing', { reserved_bytes: stagedSize * targets.length });
    await this.deps.quotas.refuseOversized(image.owner, copying ? null : image.id, { stored: stagedSize * targets.length });

    // Every target store gets the staged bytes through the ingest pipeline, one after the other.
    const mustAll = input.import_req.all_stores_must_succeed !== false;
    // Data lands while the image imports; with all_stores_must_succeed off it is active after the first
    // store, and a copy only ever writes to an active image.
    const writableIn: ImageStatus[] = copying ? ['active'] : mustAll ? ['importing'] : ['importing', 'active'];
    let stored: { size: number; digests: Digests; virtualSize: number | null } | null = null;
    let lastError: unknown = null;
    for (const store of targets) {
      this.deps.notifier.info('image.prepare', { ...imagePayload(image), backend: store.id });
      try {
        const report = (copied: number) => this.deps.tasks.setMessage(task.id, `Copied ${Math.floor(copied / 1048576)} MiB`);
        const progress = throttled(PROGRESS_MS, report);
        // Staged bytes that nothing rewrote are already digested and inspected: a store that can take
        // the file as it is (a file store on the same filesystem) gets it without a copy.
        const facts = await this.staging.facts(image.id);
        const { result, location } = (facts && await adoptData(this.deps, image, store, writableIn, this.staging.path(image.id), facts))
          || await writeData(this.deps, image, store, writableIn, {
            source: await this.staging.read(image.id), onBytes: progress,
            sizeCap: this.deps.settings.imageSizeCap, hashAlgo: this.deps.settings.hashingAlgorithm, formatCheck: formatCheckFor(image, this.deps), signal,
            sizeHint: stagedSize,
          });
        const digests = result.digests!;
        // A copy must be the very bytes the image has; new data must match a digest given at create,
        // and glance-download's data the remote image's digest.
        const mismatch = digestMismatch(digests, expectedDigest, expectedAtCreate(image));
        // Fencing: a process paused past its lease must not activate data beside its successor's.
        if (!(await this.deps.tasks.claim(task.id, this.nodeId, this.leaseUntil()))) {
          await scrubLocation(this.deps, location, store);
          throw new HandedOn('the lease was taken over by another process');
        }
        if (mismatch || !(await images.activateLocation(image.id, location.id, writableIn))) {
          await scrubLocation(this.deps, location, store);
          throw mismatch ?? new ImportStopped('Image has been deleted, aborting import.');
        }
        // The last progress message stays on the finished task, as in Glance ("Copied 200 MiB").
        await report(result.size);
        stored = { size: result.size, digests, virtualSize: result.inspection?.virtualSize ?? null };
        if (!copying && !mustAll) await this.activate(image.id, stored);
        await this.progress(image.id, { done: store.id });
        this.deps.notifier.info('image.upload', { ...imagePayload(image), backend: store.id });
      } catch (err) {
        if (signal.aborted || err instanceof ImportStopped || err instanceof HandedOn) throw err;
        await this.progress(image.id, { failed: store.id });
        if (mustAll) throw err;
        lastError = err;
      }
    }
    if (!stored) throw lastError ?? new ImportStopped('None of the uploads finished!');
    if (!copying) await this.activate(image.id, stored);
    await this.staging.remove(image.id);
    await images.releaseImportLock(image.id, task.id);
    await this.succeed(task, image.id, !copying);
  }

  /** importing → active with the stored data's fields (once: a second call finds it active). */
  private async activate(imageId: string, stored: { size: number; digests: Digests; virtualSize: number | null }): Promise<void> {
    const image = await this.requireImage(imageId);
    if (image.status === 'active') return;
    const { digests } = stored;
    const ok = await this.deps.images.updateFields(imageId, 'importing', activation({
      size: stored.size, checksum: digests.checksum, hashAlgo: digests.hashAlgo, hashValue: digests.hashValue, virtualSize: stored.virtualSize,
    }));
    if (!ok) throw new ImportStopped('Image has been deleted, aborting import.');
  }

  /** Keeps os_glance_importing_to_stores / os_glance_failed_import (sorted, comma-joined) up to date. */
  private async progress(imageId: string, change: { importing?: string[]; clearFailed?: string[]; done?: string; failed?: string }): Promise<void> {
    const image = await this.deps.images.get(imageId);
    if (!image) return;
    const split = (v: string | undefined) => new Set((v ?? '').split(',').filter((x) => x !== ''));
    const importing = split(image.properties[IMPORTING_TO_STORES]);
    const failed = split(image.properties[FAILED_IMPORT]);
    for (const id of change.importing ?? []) importing.add(id);
    for (const id of change.clearFailed ?? []) failed.delete(id);
    if (change.done) importing.delete(change.done);
    if (change.failed) { importing.delete(change.failed); failed.add(change.failed); }
    await this.deps.images.setProperty(imageId, IMPORTING_TO_STORES, [...importing].sort().join(','));
    await this.deps.images.setProperty(imageId, FAILED_IMPORT, [...failed].sort().join(','));
  }

  /**
   * copy-image's source: a staged copy left by an earlier attempt when whole, else the data from the
   * default store, else from any store that has it (spec import.md §5.4).
   */
  private async stageExistingData(image: Image, signal: AbortSignal): Promise<void> {
    if ((await this.staging.size(image.id)) === image.size) return;
    await this.staging.remove(image.id);
    const locations = [...image.locations].sort((a, b) =>
      Number(this.deps.stores.forLocation(b)?.id === this.deps.stores.defaultId) - Number(this.deps.stores.forLocation(a)?.id === this.deps.stores.defaultId));
    for (const location of locations) {
      const store = this.deps.stores.forLocation(location);
      if (!store) continue;
      try {
        await this.staging.write({ source: await store.read(location.url), key: image.id, sizeCap: this.deps.settings.imageSizeCap, signal });
        return;
      } catch (err) {
        if (signal.aborted) throw err;
      }
    }
    throw new ImportStopped('Image not found in any configured store');
  }

  /**
   * The legacy tasks API's `import`: creates an image from `image_properties`, downloads `import_from`
   * through the filtered client straight into the default store, and activates it.
   */
  private async runLegacy(task: TaskRow, signal: AbortSignal): Promise<void> {
    const input = JSON.parse(task.input!) as Record<string, unknown>;
    for (const key of ['import_from', 'import_from_format', 'image_properties']) {
      if (!(key in input)) throw new ImportStopped(`Input does not contain '${key}' field`);
    }
    const uri = String(input.import_from);
    if (uri.startsWith('file:')) throw new ImportStopped('File based imports are not allowed. Please use a non-local source of image data.');
    if (!/^https?:\/\//i.test(uri)) throw new ImportStopped("The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']");
    const properties = input.image_properties;
    if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) throw new ImportStopped("'image_properties' must be an object");
    let image: Image;
    if (task.image_id) {
      image = await this.requireImage(task.image_id);
    } else {
      if (!this.createImageForTask) throw new Error('legacy import is not wired');
      image = await this.createImageForTask(task.owner, properties as Record<string, unknown>);
      await this.deps.tasks.transition(task.id, ['processing'], { image_id: image.id });
      task.image_id = image.id;
      this.running.set(task.id, { imageId: image.id, controller: this.running.get(task.id)!.controller });
    }
    if (image.status !== 'saving' && !(await this.deps.images.updateFields(image.id, 'queued', moveTo('saving')))) {
      throw new ImportStopped(`Image ${image.id} is ${image.status}; the import cannot start.`);
    }
    const store = this.deps.stores.default();
    const response = await safeDownload(uri, { ...this.opts.download, maxBytes: this.deps.settings.imageSizeCap, signal });
    await storeAndActivate(this.deps, image, response.body, store, 'saving', signal, response.contentLength ?? undefined);
    this.deps.notifier.info('image.upload', imagePayload((await this.deps.images.get(image.id)) ?? image));
    await this.succeed(task, image.id);
  }

  private async succeed(task: TaskRow, imageId: string, activated = true): Promise<void> {
    const done = await this.deps.images.get(imageId);
    if (done && activated) this.deps.notifier.info('image.activate', imagePayload(done));
    await this.deps.tasks.transition(task.id, ['processing'], {
      status: 'success', result: JSON.stringify({ image_id: imageId }),
      expires_at: addSeconds(nowTimestamp(), this.opts.taskTimeToLiveHours * 3600), lease_owner: null, lease_expires_at: null,
    });
    this.deps.notifier.info('task.success', { id: task.id, type: task.type, status: 'success' });
  }

  /**
   * glance-download: finds the remote region's Image service, copies the remote image's formats and
   * configured properties (remembering the previous values in the task, for the revert), and downloads
   * its data into staging. Returns the remote digest the stored data must match.
   */
  private async glanceDownload(task: TaskRow, image: Image, input: ImportInput, signal: AbortSignal): Promise<ExpectedDigest | null> {
    const caller = this.callers.get(task.id);
    if (!caller) throw new ImportStopped("glance-download was interrupted (the caller's token is never stored); start the import again.");
    const method = input.import_req.method as Record<string, string>;
    const { regionEndpoints, extraProperties } = this.opts.glanceDownload;
    const remoteId = method.glance_image_id;
    const endpoint = remoteEndpoint(caller.catalog, regionEndpoints, method.glance_region, method.glance_service_interface ?? 'public');
    const remote = await fetchRemoteImage(endpoint, remoteId, caller.token, this.opts.download, signal);
    if (remote.size > this.deps.settings.imageSizeCap) throw new ImportStopped('The incoming image is too large: The provided image is too large.');
    // The remote size is known before any byte moves: quotas refuse now rather than after the download.
    await this.deps.quotas.refuseOversized(image.owner, image.id, { staged: remote.size, stored: remote.size * input.backend.length });
    const stageBudget = await this.deps.quotas.stageBudget(image.owner, image.id);

    // The importing user writes these properties: property protections apply as to a PATCH.
    const protections = this.deps.propertyProtections;
    const copied = Object.fromEntries(Object.entries(copiedProperties(remote.metadata, extraProperties))
      .filter(([key]) => !protections || protections.mayWrite(key, key in image.properties, { roles: input.roles ?? [] })));
    const previous = {
      disk_format: image.disk_format, container_format: image.container_format,
      properties: Object.fromEntries(Object.keys(copied).map((k) => [k, image.properties[k] ?? null])),
    };
    input.previous = previous;
    await this.deps.tasks.transition(task.id, ['processing'], { input: JSON.stringify(input) });
    for (const [key, value] of Object.entries(copied)) await this.deps.images.setProperty(image.id, key, value);
    await this.deps.images.updateFields(image.id, 'importing', {
      disk_format: String(remote.metadata.disk_format ?? image.disk_format), container_format: String(remote.metadata.container_format ?? image.container_format),
    });

    await this.staging.remove(image.id);
    const response = await openRemoteData(remote, remoteId, caller.token, this.opts.download, signal, this.deps.settings.imageSizeCap);
    const staged = await this.staging.write({ source: response.body, key: image.id, sizeCap: this.deps.settings.imageSizeCap, signal, budget: stageBudget });
    if (staged.size !== remote.size) {
      throw new ImportStopped(`Downloaded data size ${staged.size} is different from the remote image size ${remote.size}.`);
    }
    await this.deps.images.updateFields(image.id, 'importing', { size: staged.size });
    if (remote.metadata.os_hash_algo === this.deps.settings.hashingAlgorithm && typeof remote.metadata.os_hash_value === 'string') {
      return { algo: 'hash', value: remote.metadata.os_hash_value };
    }
    return typeof remote.metadata.checksum === 'string' ? { algo: 'md5', value: remote.metadata.checksum } : null;
  }

  /** web-download: the service fetches the URL itself, through the filtered client, into staging. */
  private async download(image: Image, uri: string, signal: AbortSignal): Promise<void> {
    await this.staging.remove(image.id);
    const sizeCap = this.deps.settings.imageSizeCap;
    const budget = await this.deps.quotas.stageBudget(image.owner, image.id);
    const response = await safeDownload(uri, { ...this.opts.download, maxBytes: sizeCap, signal });
    if (budget && response.contentLength !== null && response.contentLength > budget.bytes) {
      response.body.destroy();
      throw budget.exceeded(response.contentLength);
    }
    const staged = await this.staging.write({ source: response.body, key: image.id, sizeCap, signal, budget });
    await this.deps.images.updateFields(image.id, 'importing', { size: staged.size });
  }

  /**
   * The configured import plugins, in order, on the staged file (never for copy-image: those bytes are
   * the image's already). Each may replace the file and change the image; the next sees the result.
   */
  private async runPlugins(task: TaskRow, image: Image, input: ImportInput, signal: AbortSignal): Promise<Image> {
    const roles = input.roles ?? [];
    const protections = this.deps.propertyProtections;
    if (this.opts.plugins.length && !input.previous) {
      // A plugin may change the formats (image_conversion): a failed import puts the claimed ones back.
      input.previous = { disk_format: image.disk_format, container_format: image.container_format, properties: {} };
      await this.deps.tasks.transition(task.id, ['processing'], { input: JSON.stringify(input) });
    }
    // What a plugin writes to staging must fit the project's staging quota as well as image_size_cap.
    const stageBudget = await this.deps.quotas.stageBudget(image.owner, image.id);
    const sizeCap = Math.min(this.deps.settings.imageSizeCap, stageBudget?.bytes ?? Infinity);
    for (const plugin of this.opts.plugins) {
      const current = await this.requireImage(image.id);
      await plugin.run({
        image: current,
        stagedPath: this.staging.path(image.id),
        roles,
        signal,
        sizeCap,
        updateImage: async (fields) => {
          if (!(await this.deps.images.updateFields(image.id, 'importing', fields))) throw new ImportStopped('Image has been deleted, aborting import.');
        },
        setProperties: async (props) => {
          for (const [key, value] of Object.entries(props)) await this.deps.images.setProperty(image.id, key, value);
        },
        mayWriteProperty: (name, exists) => protections?.mayWrite(name, exists, { roles }) ?? true,
        inspectFile,
        judge: (report, claimed) => judge(report, claimed, this.deps.settings.formatPolicy),
        warn: (message) => this.deps.log.warn({ task: task.id, image: image.id, plugin: plugin.name }, message),
      });
    }
    return this.requireImage(image.id);
  }

  /**
   * The size of the remote image a glance-download names, read with the caller's credentials, or null
   * when it cannot be read now (the task then says why).
   */
  async remoteImageSize(caller: CallerCredentials, method: Record<string, unknown>): Promise<number | null> {
    try {
      const { regionEndpoints } = this.opts.glanceDownload;
      const endpoint = remoteEndpoint(caller.catalog, regionEndpoints, String(method.glance_region), String(method.glance_service_interface ?? 'public'));
      const remote = await fetchRemoteImage(endpoint, String(method.glance_image_id), caller.token, this.opts.download, AbortSignal.timeout(this.opts.download.readTimeoutMs));
      return remote.size;
    } catch {
      return null;
    }
  }

  private async requireImage(id: string): Promise<Image> {
    const image = await this.deps.images.get(id);
    if (!image) throw new ImportStopped('Image has been deleted, aborting import.');
    return image;
  }

  /**
   * Reverts a failed import: staged data and any data it already wrote are removed, the image goes back
   * to queued (copy-image leaves it active), its unfinished stores are listed as failed, the lock is
   * dropped, and the task fails with why.
   */
  private async finishFailed(stale: TaskRow, message: string): Promise<void> {
    // The run may have added to the task's input since it was read (the values to put back).
    const task = (await this.deps.tasks.getRaw(stale.id)) ?? stale;
    const imageId = task.image_id;
    const image = imageId ? await this.deps.images.get(imageId) : null;
    if (image && task.type === 'import' && image.status !== 'active') {
      // The legacy task made this image for itself: like Glance's revert, it goes with the task.
      const queued = await this.deps.images.markDeleted(image.id);
      for (const location of queued ?? []) await scrubLocation(this.deps, location);
      if (queued) {
        this.deps.notifier.info('image.delete', { ...imagePayload(image), deleted: true, deleted_at: new Date().toISOString() });
        message = `${message} The image ${image.id} created by this task was deleted.`;
      }
    }
    if (imageId && task.type !== 'import') await this.staging.remove(imageId).catch(() => {});
    if (image && imageId && image.properties[IMPORT_LOCK] === task.id) {
      if (image.status === 'importing' || image.status === 'uploading') {
        // A queued image holds no data: whatever this import already wrote goes.
        for (const location of await this.deps.images.locationsOf(imageId)) {
          await this.deps.images.discardLocation(location.id);
          await scrubLocation(this.deps, location);
        }
        const input = task.input ? JSON.parse(task.input) as { previous?: PreviousValues } : {};
        // glance-download copied formats and properties from the remote image: put the old ones back.
        for (const [key, value] of Object.entries(input.previous?.properties ?? {})) await this.deps.images.setProperty(imageId, key, value);
        await this.deps.images.updateFields(imageId, ['importing', 'uploading'], {
          ...resetToQueued(),
          ...(input.previous ? { disk_format: input.previous.disk_format, container_format: input.previous.container_format } : {}),
        });
      }
      const input = task.input ? JSON.parse(task.input) as Partial<ImportInput> : {};
      const unfinished = (image.properties[IMPORTING_TO_STORES] ?? '').split(',')
        .filter((id) => id !== '' && (input.backend ?? []).includes(id));
      for (const id of unfinished) await this.progress(imageId, { failed: id });
      await this.deps.images.releaseImportLock(imageId, task.id);
    }
    const failed = await this.deps.tasks.transition(task.id, ['pending', 'processing'], {
      status: 'failure', message, expires_at: addSeconds(nowTimestamp(), this.opts.taskTimeToLiveHours * 3600),
      lease_owner: null, lease_expires_at: null,
    });
    if (failed) this.deps.notifier.info('task.failure', { id: task.id, type: task.type, status: 'failure', message });
  }
}

/** The lease owner name of this process: host and pid let a restarted neighbour see that it is gone. */
export function nodeName(): string {
  return `${hostname()}:${process.pid}:${crypto.randomUUID()}`;
}


/** A byte-count callback that reports at most once per `everyMs` (the task message "Copied N MiB"). */
function throttled(everyMs: number, report: (copied: number) => Promise<void>): (copied: number) => void {
  let last = Date.now();
  return (copied) => {
    if (Date.now() - last < everyMs) return;
    last = Date.now();
    report(copied).catch(() => {});
  };
}

function describeFailure(err: unknown, log: Logger): string {
  if (err instanceof ImportStopped) return err.message;
  if (err instanceof DigestMismatch) return `${err.message}; the data was not kept.`;
  if (err instanceof ImageGone) return 'Image has been deleted, aborting import.';
  if (err instanceof GlanceDownloadFailed) return err.message;
  if (err instanceof PluginFailed) return err.message;
  if (err instanceof DownloadError) return `Downloading the image failed: ${err.message}`;
  if (isGazeError(err)) {
    if (err.cause !== undefined) log.warn({ err: err.cause }, err.message);
    return err.message;
  }
  if (err instanceof StoreError) {
    log.error({ err }, 'an import failed to store data');
    return `Storing the image failed: ${err.publicMessage}`;
  }
  if (err instanceof IngestAborted) return 'The image data stream ended early.';
  log.error({ err }, 'an import failed unexpectedly');
  return 'Task failed due to Internal Error';
}

