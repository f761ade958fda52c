import { setTimeout as sleep } from 'node:timers/promises';
import { refuseReadOnlyCaller, type RequestContext } from '../auth/context.ts';
import type { PropertyOperation } from '../auth/property-protections.ts';
import { USER_BASE_PROPERTIES, checkMinimum, checkNoFourByteUnicode, checkPropertyName, type Image } from '../domain/image.ts';
import { gazeError } from '../domain/errors.ts';
import { parsePatch, type PatchDialect, type PatchOp } from '../domain/patch.ts';
import type { ServiceDeps } from './deps.ts';
import { authorizeOnImage, findVisibleImage, refuseUnlessOwner, targetFor } from './access.ts';
import type { ImageService } from './images.ts';
import { imagePayload } from '../notify/payloads.ts';
import { scrubLocation } from '../ingest/store-data.ts';
import { LocationEditor } from './image-locations.ts';

// A save that lost a race re-reads the image and applies its patch again (ten writers at once settle).
const MAX_ATTEMPTS = 12;
const RETRY_SPREAD_MS = 10;

/** The visibilities with a policy rule of their own. */
const VISIBILITY_RULES = new Map([
  ['public', 'publicize_image'],
  ['community', 'communitize_image'],
]);

const isBase = (key: string) => (USER_BASE_PROPERTIES as readonly string[]).includes(key);

/** PATCH /v2/images/{id}: every operation is applied to a copy; the copy is saved only if all succeed. */
export class ImageUpdateService {
  private readonly locations: LocationEditor;

  constructor(
    private readonly deps: ServiceDeps,
    private readonly images: ImageService,
  ) {
    this.locations = new LocationEditor(deps);
  }

  async update(ctx: RequestContext, id: string, body: unknown, dialect: PatchDialect): Promise<Image> {
    refuseReadOnlyCaller(ctx);
    const ops = parsePatch(body, dialect);
    for (const op of ops) {
      if (op.op === 'remove') continue;
      // One location for /locations/<n>, the whole list for /locations (Glance validates {root: [value]}).
      const value = op.path[0] === 'locations' && op.path.length === 2 ? [op.value] : op.value;
      this.deps.imageValidator.validate({ [op.path[0]]: value });
    }
    // A concurrent status change (an upload finishing) makes the compare-and-set fail: re-read and re-apply.
    for (let attempt = 0; ; attempt++) {
      const image = await findVisibleImage(this.deps, ctx, id);
      if (ops.length === 0) return image;
      // Glance asks modify_image with each change of a property, after that change's own checks, against
      // the image as changed so far; here once, against the image as read (a change of owner, the one
      // change that could move the answer, is an admin's, who passes either way).
      let modifyChecked = false;
      const mayModify = async () => {
        if (!modifyChecked) await authorizeOnImage(this.deps, ctx, 'modify_image', image);
        modifyChecked = true;
      };
      const updated: Image = structuredClone(image);
      // A location patch's positions count in the order answers list them (location_strategy), as in Glance.
      if (ops.some((op) => op.path[0] === 'locations')) updated.locations = this.deps.stores.readOrder(updated.locations);
      for (const op of ops) await this.apply(ctx, updated, op, dialect, mayModify);
      // As Glance: the property quota when a property is added, the tag quota when the tags are set; an
      // image already over a quota (lowered since) can still lose properties or change its name.
      const addsProperty = Object.keys(updated.properties).some((key) => !Object.hasOwn(image.properties, key));
      const setsTags = updated.tags.length !== image.tags.length || updated.tags.some((tag, i) => tag !== image.tags[i]);
      const checkQuotas = (target: Image) => {
        if (addsProperty) this.images.checkPropertyQuota(target.properties);
        if (setsTags) this.images.checkTagQuota(target.tags);
      };
      checkQuotas(updated);
      checkNoFourByteUnicode({ name: updated.name, ...updated.properties }, updated.tags);
      // Glance's database takes changes only from the owner or an admin, also where the policy let
      // another caller through (the deprecated rules' set_image_location passes anyone).
      refuseUnlessOwner(ctx, image);
      // Only what this request changed is written, under the image's row lock: concurrent PATCHes of
      // other fields keep theirs, and the quotas are checked again with everyone's changes counted.
      const verify = checkQuotas;
      const maxLocations = this.deps.settings.imageLocationQuota;
      if (await this.deps.images.save(updated, { expectStatus: image.status, original: image, verify, maxLocations })) {
        this.deps.notifier.info('image.update', imagePayload(updated));
        // Removed locations lose their data now, as in Glance (the scrubber retries what fails here).
        const kept = new Set(updated.locations.map((l) => l.id));
        for (const dropped of image.locations.filter((l) => !kept.has(l.id))) await scrubLocation(this.deps, dropped);
        return updated;
      }
      if (attempt >= MAX_ATTEMPTS - 1) throw gazeError('CONFLICT', `Image ${id} changed while it was being updated; try again.`);
      // Writers of one image's locations go one after the other: spread their next tries.
      await sleep(Math.random() * RETRY_SPREAD_MS * (attempt + 1));
    }
  }

  private async apply(ctx: RequestContext, image: Image, op: PatchOp, dialect: PatchDialect, mayModify: () => Promise<void>): Promise<void> {
    const key = op.path[0];
    if (key === 'locations') return this.locations.apply(ctx, image, op);
    // Glance's order for one change: an owner replaced by a non-admin, then the rule of the visibility
    // asked for (publicize_image even when the image is already public; its 403 is not hidden as a 404),
    // then modify_image, then the property itself.
    if (key === 'owner' && op.op === 'replace' && !ctx.isAdmin) throw gazeError('OWNER_ADMIN_ONLY');
    const rule = op.op === 'remove' ? undefined : VISIBILITY_RULES.get(op.value as string);
    if (key === 'visibility' && rule) this.deps.policy.enforce(rule, ctx, targetFor(this.deps, ctx, image));
    await mayModify();
    // A property the caller may not read looks absent, as in Glance: replace/remove answer 409 and add creates.
    const exists = isBase(key) || this.readable(ctx, image, key);
    switch (op.op) {
      case 'remove':
        if (isBase(key)) throw gazeError('PROPERTY_NOT_REMOVABLE', key);
        if (!exists) throw gazeError('PROPERTY_MISSING', key);
        this.guard(ctx, 'delete', key);
        delete image.properties[key];
        return;
      case 'add':
        if (dialect === 'v2.0' && exists) throw gazeError('PROPERTY_PRESENT', key);
        return this.set(ctx, image, key, op.value);
      case 'replace':
        if (!exists) throw gazeError('PROPERTY_MISSING', key);
        return this.set(ctx, image, key, op.value);
    }
  }

  private readable(ctx: RequestContext, image: Image, key: string): boolean {
    const protections = this.deps.propertyProtections;
    return Object.hasOwn(image.properties, key) && (!protections || protections.allows('read', key, ctx));
  }

  /** property_protection_file: 403 "Attribute '<key>' is reserved." when the operation is not granted. */
  private guard(ctx: RequestContext, op: PropertyOperation, key: string): void {
    const protections = this.deps.propertyProtections;
    if (protections && !protections.allows(op, key, ctx)) throw gazeError('PROPERTY_PROTECTED', key);
  }

  private set(ctx: RequestContext, image: Image, key: string, value: unknown): void {
    if (!isBase(key)) {
      if (key.length > 255) throw gazeError('PROPERTY_KEY_TOO_LONG');
      checkPropertyName(key);
      this.guard(ctx, this.deps.propertyProtections?.writeOperation(key, Object.hasOwn(image.properties, key), ctx) ?? 'create', key);
      image.properties[key] = value as string | null;
      return;
    }
    switch (key) {
      case 'owner':
        if (!ctx.isAdmin) throw gazeError('OWNER_ADMIN_ONLY');
        image.owner = value as string | null;
        return;
      case 'visibility':
        image.visibility = value as Image['visibility'];
        return;
      case 'disk_format':
      case 'container_format':
        if (image.status !== 'queued') throw gazeError('FORMAT_ONLY_QUEUED', key);
        image[key] = value as string | null;
        return;
      case 'min_ram':
      case 'min_disk':
        checkMinimum(key, value);
        image[key] = value as number;
        return;
      case 'tags':
        this.images.checkTagQuota(value as string[]);
        image.tags = [...new Set(value as string[])];
        return;
      case 'name':
        image.name = value as string | null;
        return;
      case 'protected':
      case 'os_hidden':
        image[key] = value as boolean;
        return;
    }
  }
}
