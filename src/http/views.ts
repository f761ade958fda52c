import type { Image } from '../domain/image.ts';
import { isHiddenProperty } from '../domain/image.ts';
import { apiTime } from '../domain/time.ts';
import type { MemberRow } from '../db/repos/members.ts';
import type { RequestContext } from '../auth/context.ts';
import type { PropertyProtections } from '../auth/property-protections.ts';

export interface ImageViewOptions {
  showMultipleLocations: boolean;
  showImageDirectUrl: boolean;
  multistore: boolean;
  /** property_protection_file rules: extra properties the caller may not read are left out. */
  propertyProtections?: PropertyProtections | null;
  /** location_strategy: the order reads try locations in, which answers list them in (as listed when absent). */
  locationOrder?: (locations: Image['locations']) => Image['locations'];
}

/** An image as Glance's API shows it (spec images-api.md §3.1). */
export function imageView(image: Image, ctx: RequestContext, opts: ImageViewOptions): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  const protections = opts.propertyProtections;
  for (const [key, value] of Object.entries(image.properties)) {
    if (isHiddenProperty(key)) continue;
    if (protections && !protections.allows('read', key, ctx)) continue;
    view[key] = value;
  }
  // Assigned one by one: a literal copied in by Object.assign made a second object per image.
  view.name = image.name;
  view.disk_format = image.disk_format;
  view.container_format = image.container_format;
  view.visibility = image.visibility;
  view.size = image.size;
  view.virtual_size = image.virtual_size;
  view.status = image.status;
  view.checksum = image.checksum;
  view.protected = image.protected;
  view.min_ram = image.min_ram;
  view.min_disk = image.min_disk;
  view.owner = image.owner;
  view.os_hidden = image.os_hidden;
  view.os_hash_algo = image.os_hash_algo;
  view.os_hash_value = image.os_hash_value;
  view.id = image.id;
  view.created_at = apiTime(image.created_at);
  view.updated_at = apiTime(image.updated_at);
  // Glance's key order: locations and direct_url between the times and the tags, stores last.
  const listed = image.locations.filter((l) => l.status === 'active');
  const active = opts.locationOrder ? opts.locationOrder(listed) : listed;
  if (opts.showMultipleLocations) {
    const hidden = image.status === 'deactivated' && !ctx.isAdmin;
    view.locations = hidden ? [] : active.map((l) => l.asGiven ?? { url: l.url, metadata: l.metadata });
  }
  const first = active[0];
  if (opts.showImageDirectUrl && first) view.direct_url = first.url;
  view.tags = [...image.tags];
  view.self = `/v2/images/${image.id}`;
  view.file = `/v2/images/${image.id}/file`;
  view.schema = '/v2/schemas/image';
  if (opts.multistore) {
    // In the order reads try the locations, as Glance lists them.
    const stores = active.map((l) => l.metadata.store).filter((s): s is string => typeof s === 'string');
    if (stores.length) view.stores = stores.join(',');
  }
  return view;
}

export function memberView(row: MemberRow): Record<string, unknown> {
  return {
    member_id: row.member,
    image_id: row.image_id,
    status: row.status,
    created_at: apiTime(row.created_at),
    updated_at: apiTime(row.updated_at),
    schema: '/v2/schemas/member',
  };
}
