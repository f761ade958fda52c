import { refuseReadOnlyCaller, type RequestContext } from '../auth/context.ts';
import type { StoreRegistry } from '../stores/registry.ts';
import type { Policy } from '../auth/policy.ts';
import { gazeError } from '../domain/errors.ts';
import type { ServiceDeps } from './deps.ts';
import { authorizeOnImage, canSee, enforceOnImage, targetFor } from './access.ts';
import { imagePayload } from '../notify/payloads.ts';
import { scrubLocation } from '../ingest/store-data.ts';

/** GET /v2/info/stores[/detail] and DELETE /v2/stores/{store}/{image}: the enabled backends. */
/** Glance's reserved stores of multi-store mode, which hold no image's data. */
const RESERVED_STORES = new Set(['os_glance_staging_store', 'os_glance_tasks_store']);

export class StoreInfoService {
  private readonly stores: StoreRegistry;
  private readonly policy: Policy;

  constructor(private readonly deps: ServiceDeps) {
    this.stores = deps.stores;
    this.policy = deps.policy;
  }

  /** Removes an image's data from one store (spec images-api.md §14). */
  async deleteFromStore(ctx: RequestContext, storeId: string, imageId: string): Promise<void> {
    refuseReadOnlyCaller(ctx);
    if (!this.stores.multistore) throw gazeError('NOT_FOUND');
    const store = this.stores.get(storeId);
    // Glance knows its reserved stores as stores: an image is simply not stored there (404 below).
    if (!store && !RESERVED_STORES.has(storeId)) throw gazeError('STORE_NOT_AVAILABLE', storeId);
    const image = imageId.length <= 36 ? await this.deps.images.get(imageId) : null;
    if (!image || !(await canSee(this.deps, ctx, image))) throw gazeError('STORE_IMAGE_NOT_FOUND', imageId);
    const target = targetFor(this.deps, ctx, image);
    enforceOnImage(this.deps, ctx, 'get_image_location', target);
    // With the deprecated rules this also holds the image to its owner, as Glance's delete_locations does.
    await authorizeOnImage(this.deps, ctx, 'delete_image_location', image);
    if (image.status !== 'active') throw gazeError('STORE_DELETE_NOT_ACTIVE');
    // An image with one location hears that first, whichever store is named, as in Glance.
    if (image.locations.length === 1) throw gazeError('STORE_DELETE_LAST');
    const here = image.locations.filter((l) => this.stores.forLocation(l)?.id === storeId);
    if (here.length === 0 || !store) throw gazeError('STORE_DELETE_ABSENT', imageId, storeId);
    if (image.locations.length === here.length) throw gazeError('STORE_DELETE_LAST');
    // Decided under the image's lock (another store's removal may have run meanwhile): one of the copies
    // left must be one a store of this node reads; copies in stores taken out of the configuration are
    // no copies to remove the last readable one for.
    const discarded = await this.deps.images.discardLocationsKeepingOne(
      image.id,
      here.map((l) => l.id),
      undefined,
      (l) => this.stores.forLocation(l) !== undefined,
    );
    if (discarded === 'last') throw gazeError('STORE_DELETE_LAST');
    // Not active under the lock: an image deleted meanwhile is answered as one already gone.
    if (discarded === 'not-active')
      throw (await this.deps.images.get(image.id)) ? gazeError('STORE_DELETE_NOT_ACTIVE') : gazeError('STORE_IMAGE_NOT_FOUND', imageId);
    for (const location of here) await scrubLocation(this.deps, location, store);
    this.deps.notifier.info('image.update', imagePayload(image));
  }

  get multistore(): boolean {
    return this.stores.multistore;
  }

  authorizeDetail(ctx: RequestContext): void {
    this.policy.enforce('stores_info_detail', ctx, { project_id: ctx.projectId });
  }

  list(detail: boolean): Array<Record<string, unknown>> {
    return this.stores.all().map((store) => {
      const entry: Record<string, unknown> = { id: store.id };
      if (store.options.description) entry.description = store.options.description;
      if (store.id === this.stores.defaultId) entry.default = 'true';
      if (!store.writable) entry['read-only'] = 'true';
      if (detail) {
        entry.type = store.type;
        entry.properties = store.driver.properties?.() ?? {};
      }
      return entry;
    });
  }
}
