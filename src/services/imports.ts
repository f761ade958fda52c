import { refuseReadOnlyCaller, type RequestContext } from '../auth/context.ts';
import { IMPORT_LOCK, type Image } from '../domain/image.ts';
import { gazeError } from '../domain/errors.ts';
import { isTerminal } from '../domain/task.ts';
import type { ServiceDeps } from './deps.ts';
import { authorizeOnImage, refuseUnlessOwner, enforceOnImage, findVisibleImage, targetFor } from './access.ts';
import type { ImportEngine } from '../import/port.ts';
import type { ImportInput } from '../import/job.ts';
import type { UriFilterOptions } from '../net/uri-filter.ts';
import { passesFilterResolved } from '../net/safe-download.ts';
import { pyStr } from '../schemas/python-repr.ts';
import { stagedElsewhere, type StagingPlace } from './staging.ts';
import { startLockedTask, takeOverStaleLock } from './import-lock.ts';

export interface ImportOptions {
  importMethods: string[];
  /** Where staged data is: this worker's own URL (as stage recorded it), and whether staging is shared. */
  staging: StagingPlace;
  uriFilter: UriFilterOptions;
  /** How long POST /import waits for the URI's host to resolve (the connect timeout). */
  resolveTimeoutMs: number;
}

/** POST /v2/images/{id}/import: every synchronous check of spec import.md §3.2, in order, then a task. */
export class ImportService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly engine: ImportEngine,
    private readonly opts: ImportOptions,
  ) {}

  /**
   * Starts an import; resolves once its task is scheduled (or at once when there is nothing to copy).
   * Returns the worker to replay the request to when the staged data of a glance-direct lives there.
   */
  async start(ctx: RequestContext, id: string, body: unknown, storeHeader?: string): Promise<{ forwardTo?: string }> {
    refuseReadOnlyCaller(ctx);
    const request = this.parse(body);
    const method = request.method.name;
    const image = await findVisibleImage(this.deps, ctx, id);
    this.checkStatus(image, method);
    if (!image.container_format) throw gazeError('IMPORT_FORMAT_REQUIRED', 'container_format');
    if (!image.disk_format) throw gazeError('IMPORT_FORMAT_REQUIRED', 'disk_format');
    if (method === 'glance-download') this.checkGlanceDownload(request.method);
    if (method === 'copy-image') enforceOnImage(this.deps, ctx, 'copy_image', targetFor(this.deps, ctx, image));
    else {
      await authorizeOnImage(this.deps, ctx, 'modify_image', image);
      // Another project's import the rules let through would change an image that is not its own
      // (Glance accepts it, and its task then fails on its database's owner check).
      refuseUnlessOwner(ctx, image);
    }
    await takeOverStaleLock(this.deps, this.engine, image);
    const backend = this.resolveStores(image, request, method, storeHeader);
    // copy-image to all stores, which all have it already: nothing to do, and no task. Given no store
    // otherwise, a task as in Glance: a copy's succeeds (the image is still active); another method's
    // fails ("None of the uploads finished!") and puts the image back.
    if (backend.length === 0 && method === 'copy-image' && request.all_stores === true) return {};
    if (request.all_stores_must_succeed === false && !this.deps.stores.multistore)
      throw gazeError('IMPORT_ALL_STORES_MUST_SUCCEED_SINGLE', pyStr(request.method.uri ?? null));
    const stageHost = stagedElsewhere(image, this.opts.staging);
    if (method === 'glance-direct' && stageHost) return { forwardTo: stageHost };
    // The image is uploading from the start of its stage: while the stage is still written (through
    // any node) there is nothing whole to import (a stage whose data was lost still gets a task, which
    // fails and requeues the image).
    if (method === 'glance-direct' && (await this.opts.staging.stageRunning(image))) throw gazeError('IMPORT_STAGE_UNFINISHED', id);
    if (method === 'web-download' && !(await passesFilterResolved(request.method.uri, this.opts.uriFilter, { timeoutMs: this.opts.resolveTimeoutMs }))) {
      throw gazeError('IMPORT_URI_FILTERED', pyStr(request.method.uri ?? null));
    }

    // As Glance: the stored total now; staging and the count of images taking data when the task starts
    // taking data (see the engine's start).
    await this.deps.quotas.enforce(image.owner, { image_size_total: 0 });
    if (method === 'glance-download' && this.deps.quotas.limitsBytes) {
      // Beyond Glance: the remote size is known now, so a download that cannot fit is refused with 413
      // instead of failing its task later.
      const size = await this.engine.remoteImageSize({ token: ctx.authToken, catalog: ctx.serviceCatalog }, request.method);
      if (size !== null) await this.deps.quotas.refuseOversized(image.owner, image.id, { staged: size, stored: size * backend.length });
    }

    const input: ImportInput = { image_id: id, import_req: request, backend, roles: ctx.roles };
    if (ctx.serviceRoles.length) input.service_roles = ctx.serviceRoles;
    // Not forwarded: the data is in this node's own staging, which only this node can import from.
    if (method === 'glance-direct' && !this.opts.staging.shared && this.opts.staging.selfUrl) input.staged_on = this.opts.staging.selfUrl;
    await startLockedTask(this.deps, this.engine, ctx, id, 'api_image_import', input, (now) => this.checkStatus(now, method));
    return {};
  }

  /** glance-download's own fields; the interface defaults to public and is written back (spec §3.1). */
  private checkGlanceDownload(method: Record<string, unknown>): void {
    for (const field of ['glance_region', 'glance_image_id']) {
      if (typeof method[field] !== 'string' || method[field] === '') throw gazeError('GLANCE_DOWNLOAD_FIELD', field);
    }
    if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(method.glance_image_id as string)) {
      throw gazeError('GLANCE_DOWNLOAD_BAD_ID', String(method.glance_image_id));
    }
    method.glance_service_interface ??= 'public';
  }

  private parse(body: unknown): ImportInput['import_req'] {
    if (body === undefined || body === null) throw gazeError('BODY_EXPECTED');
    if (typeof body !== 'object' || Array.isArray(body)) throw gazeError('IMPORT_METHOD_REQUIRED');
    const request = body as Record<string, unknown>;
    const method = request.method;
    if (method === undefined || method === null || typeof method !== 'object' || Array.isArray(method)) throw gazeError('IMPORT_METHOD_REQUIRED');
    const name = (method as Record<string, unknown>).name;
    if (name === undefined) throw gazeError('IMPORT_NAME_REQUIRED');
    if (typeof name !== 'string' || !this.opts.importMethods.includes(name)) throw gazeError('IMPORT_METHOD_UNKNOWN', pyStr(name));
    for (const field of ['all_stores_must_succeed', 'all_stores']) {
      if (field in request && typeof request[field] !== 'boolean') throw gazeError('IMPORT_BOOLEAN', field);
    }
    return request as ImportInput['import_req'];
  }

  /**
   * The stores an import writes to (spec import.md §3.2 step 8). Single-store: `[null]`, the one store.
   * Multi-store: all writable stores, the `stores` list, the X-Image-Meta-Store header, or the default.
   */
  private resolveStores(image: Image, request: ImportInput['import_req'], method: string, header?: string): Array<string | null> {
    const heldBy = new Set(image.locations.map((l) => this.deps.stores.forLocation(l)?.id).filter((s): s is string => !!s));
    if (!this.deps.stores.multistore) {
      if (method === 'copy-image') throw gazeError('IMPORT_ALREADY_IN_STORE', this.deps.stores.defaultId);
      return [null];
    }
    // Read here, after the image's status and the policy, as Glance reads them (and only with several stores).
    const listed: unknown = request.stores;
    if (request.all_stores === true && (listed !== undefined || header !== undefined)) throw gazeError('IMPORT_ALL_STORES_WITH_STORES');
    if (listed !== undefined && header !== undefined) throw gazeError('IMPORT_STORES_AND_HEADER');
    // Where Glance would look each entry up as a store name (a string letter by letter).
    if (listed !== undefined && (!Array.isArray(listed) || listed.some((s) => typeof s !== 'string'))) {
      throw gazeError('BAD_REQUEST', "'stores' must be a list of store identifiers");
    }
    let stores: string[];
    if (request.all_stores === true) {
      stores = this.deps.stores
        .all()
        .filter((s) => s.writable)
        .map((s) => s.id);
      if (method === 'copy-image') stores = stores.filter((s) => !heldBy.has(s));
    } else {
      stores = (listed as string[] | undefined) ?? [header ?? this.deps.stores.defaultId];
      for (const id of stores) {
        const store = this.deps.stores.get(id);
        if (!store) throw gazeError('IMPORT_STORE_UNKNOWN', id);
        // Already there before read-only, as Glance checks them.
        if (method === 'copy-image' && heldBy.has(id)) throw gazeError('IMPORT_ALREADY_IN_STORE', id);
        if (!store.writable) throw gazeError('IMPORT_STORE_READ_ONLY', id);
      }
    }
    return [...new Set(stores)];
  }

  private checkStatus(image: Image, method: string): void {
    if (method === 'copy-image') {
      if (image.status !== 'active') throw gazeError('IMPORT_COPY_NOT_ACTIVE');
      return;
    }
    if (image.status === 'active') throw gazeError('IMPORT_ACTIVE_TARGET');
    if ((method === 'web-download' || method === 'glance-download') && image.status !== 'queued') throw gazeError('IMPORT_NEEDS_QUEUED', method);
    if (method === 'glance-direct' && image.status !== 'uploading') throw gazeError('IMPORT_NEEDS_STAGING');
  }

  /** Gaze's cancel of just the import (DELETE /v2/images/{id}/import): the engine reverts the image. */
  async cancel(ctx: RequestContext, id: string): Promise<void> {
    const image = await findVisibleImage(this.deps, ctx, id);
    await authorizeOnImage(this.deps, ctx, 'modify_image', image);
    refuseUnlessOwner(ctx, image);
    const holder = image.properties[IMPORT_LOCK];
    const task = holder ? await this.deps.tasks.getRaw(holder) : null;
    if (!task || isTerminal(task.status)) throw gazeError('IMPORT_NOT_RUNNING', id);
    const message = 'Import cancelled by the user.';
    // A task still waiting for a slot is ended and undone here (no runner would undo it).
    if (task.status === 'pending' && (await this.engine.cancelPending(task, message))) return;
    // Marking the task is what stops it, in whichever process runs it (its heartbeat re-reads the row).
    await this.engine.failUnfinished(task, message);
    this.engine.cancel(id, message);
  }
}
