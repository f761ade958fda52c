import type { RequestContext } from '../auth/context.ts';
import type { StoreRegistry } from '../stores/registry.ts';
import type { Policy } from '../auth/policy.ts';
import { FileStoreDriver } from '../stores/file.ts';

/** GET /v2/info/stores[/detail]: the enabled backends as Glance lists them. */
export class StoreInfoService {
  constructor(private readonly stores: StoreRegistry, private readonly policy: Policy) {}

  get multistore(): boolean { return this.stores.multistore; }

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
        entry.properties = store.driver instanceof FileStoreDriver
          ? { data_dir: store.driver.dir, chunk_size: 65536, thin_provisioning: false }
          : {};
      }
      return entry;
    });
  }
}
