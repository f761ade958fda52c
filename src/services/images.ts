import { refuseReadOnlyCaller, type RequestContext } from '../auth/context.ts';
import {
  CREATE_DISALLOWED,
  CREATE_READ_ONLY,
  checkExpectedDigest,
  checkNoFourByteUnicode,
  checkFitsColumn,
  checkNotNegative,
  checkPropertyName,
  RESERVED_PROPERTIES,
  USER_BASE_PROPERTIES,
  countedPropertyKeys,
  isReservedNamespace,
  type Image,
  type ImageProperties,
  type Visibility,
} from '../domain/image.ts';
import { gazeError } from '../domain/errors.ts';
import { pyStr } from '../schemas/python-repr.ts';
import { nowTimestamp } from '../domain/time.ts';
import type { ServiceDeps } from './deps.ts';
import { authorizeOnImage, refuseUnlessOwner, findVisibleImage } from './access.ts';
import type { UploadRegistry } from './uploads.ts';
import type { ImageCacheService } from './image-cache.ts';
import type { ImportEngine } from '../import/port.ts';
import { stagedElsewhere, type StagingPlace } from './staging.ts';
import { notifyImage } from '../notify/image-events.ts';
import { imageDeletedPayload, imagePayload } from '../notify/payloads.ts';
import { scrubLocation } from '../ingest/store-data.ts';
import { canTransition, moveTo, type ImageStatus } from '../domain/image.ts';
import { IMAGE_DELETED } from '../import/port.ts';

const TAG_MAX = 255;

export class ImageService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly uploads: UploadRegistry,
    private readonly imports: Pick<ImportEngine, 'cancel' | 'discardStaged'>,
    private readonly cache?: Pick<ImageCacheService, 'forget'>,
  ) {}

  async create(ctx: RequestContext, body: Record<string, unknown>): Promise<Image> {
    refuseReadOnlyCaller(ctx);
    // Glance's order: the attributes no request may set, the schema, the custom properties' names; then
    // (in its image factory, after the policy, the property protections and the tag quota) the read-only
    // attributes, `locations` and the minimums; the property quota as its repository adds the image; the
    // sizes its database columns take last.
    for (const key of Object.keys(body)) if ((CREATE_DISALLOWED as readonly string[]).includes(key)) throw gazeError('ATTRIBUTE_READ_ONLY', key);
    this.deps.imageValidator.validate(body);

    const properties: ImageProperties = {};
    const extraKeys: string[] = [];
    for (const [key, value] of Object.entries(body)) {
      if ((USER_BASE_PROPERTIES as readonly string[]).includes(key) || (CREATE_READ_ONLY as readonly string[]).includes(key)) continue;
      if (['id', 'os_hash_algo', 'os_hash_value'].includes(key)) continue;
      if (key.length > 255) throw gazeError('PROPERTY_KEY_TOO_LONG');
      if ((RESERVED_PROPERTIES as readonly string[]).includes(key) || isReservedNamespace(key)) throw gazeError('ATTRIBUTE_RESERVED_ON_CREATE', key);
      checkPropertyName(key);
      extraKeys.push(key);
      // The schema lets some extras be null (kernel_id, …): Glance keeps that null, so does Gaze.
      properties[key] = value as string | null;
    }
    checkExpectedDigest(body.os_hash_algo, body.os_hash_value, this.deps.settings.hashingAlgorithm);

    // Glance's order: the add_image rule (naming the owner when it is another project's), the
    // visibility's rule, then with the deprecated rules its legacy check of the owner.
    // An owner given as null stays null (an admin's image of no project), as in Glance.
    // The rules' target names the visibility asked for, 'private' when none is (the image is 'shared').
    const owner = 'owner' in body ? (body.owner as string | null) : ctx.projectId;
    const target = { project_id: owner, owner, visibility: (body.visibility as Visibility | undefined) ?? 'private' };
    if (!this.deps.policy.check('add_image', ctx, target)) {
      throw owner !== ctx.projectId ? gazeError('OWNER_NOT_PERMITTED_BY_RULE', pyStr(owner)) : gazeError('POLICY_DENIED', 'add_image');
    }
    const visibility = (body.visibility as Visibility | undefined) ?? 'shared';
    if (visibility === 'public') this.deps.policy.enforce('publicize_image', ctx, target);
    if (visibility === 'community') this.deps.policy.enforce('communitize_image', ctx, target);
    if (this.deps.policy.legacyDefaults && !ctx.isAdmin && owner !== ctx.projectId) throw gazeError('OWNER_NOT_PERMITTED', pyStr(owner));

    // Checked now in Glance's order of refusals, and again with the insert (see imageCountCheck).
    await this.deps.quotas.enforce(owner, { image_count_total: 1 });
    const givenTags = (body.tags as string[] | undefined) ?? [];
    const tags = [...new Set(givenTags)];
    for (const key of extraKeys) {
      if (this.deps.propertyProtections && !this.deps.propertyProtections.allows('create', key, ctx)) throw gazeError('PROPERTY_PROTECTED', key);
    }
    this.checkTagQuota(givenTags);
    const readOnly = CREATE_READ_ONLY.find((key) => key in body);
    if (readOnly) throw gazeError('ATTRIBUTE_READ_ONLY', readOnly);
    if ('locations' in body) throw gazeError('ATTRIBUTE_RESERVED', 'locations');
    // As Glance's image is built (min_disk, then min_ram), its repository adds it, and its row is written.
    checkNotNegative('min_disk', body.min_disk);
    checkNotNegative('min_ram', body.min_ram);
    this.checkPropertyQuota(properties);
    checkFitsColumn('min_disk', body.min_disk);
    checkFitsColumn('min_ram', body.min_ram);

    const id = (body.id as string | undefined) ?? crypto.randomUUID(); // as sent: Glance keeps the case of a given id
    if (await this.deps.images.idExists(id)) throw gazeError('IMAGE_ID_EXISTS', id);
    const now = nowTimestamp();
    const image: Image = {
      id,
      name: (body.name as string | null | undefined) ?? null,
      status: 'queued',
      visibility,
      protected: (body.protected as boolean | undefined) ?? false,
      os_hidden: (body.os_hidden as boolean | undefined) ?? false,
      checksum: null,
      os_hash_algo: (body.os_hash_algo as string | undefined) ?? null,
      os_hash_value: (body.os_hash_value as string | undefined) ?? null,
      owner,
      size: null,
      virtual_size: null,
      container_format: (body.container_format as string | null | undefined) ?? null,
      disk_format: (body.disk_format as string | null | undefined) ?? null,
      min_ram: (body.min_ram as number | undefined) ?? 0,
      min_disk: (body.min_disk as number | undefined) ?? 0,
      created_at: now,
      updated_at: now,
      properties,
      tags,
      locations: [],
    };
    checkNoFourByteUnicode({ name: image.name, ...image.properties }, image.tags);
    const countCheck = await this.deps.quotas.imageCountCheck(owner);
    try {
      await this.deps.images.insert(image, countCheck ?? undefined);
    } catch (err) {
      if (await this.deps.images.idExists(id)) throw gazeError('IMAGE_ID_EXISTS', id);
      throw err;
    }
    this.deps.notifier.info('image.create', imagePayload(image));
    return image;
  }

  async exists(id: string): Promise<boolean> {
    return (await this.deps.images.get(id)) !== null;
  }

  checkQuotas(properties: ImageProperties, tags: readonly string[]): void {
    this.checkPropertyQuota(properties);
    this.checkTagQuota(tags);
  }

  checkPropertyQuota(properties: ImageProperties): void {
    const { imagePropertyQuota } = this.deps.settings;
    const props = countedPropertyKeys(properties);
    if (imagePropertyQuota >= 0 && props > imagePropertyQuota) throw gazeError('PROPERTY_QUOTA', props, imagePropertyQuota);
  }

  /** image_tag_quota, counted as Glance counts a list it is given: a duplicate too. */
  checkTagQuota(tags: readonly string[]): void {
    const { imageTagQuota } = this.deps.settings;
    if (imageTagQuota >= 0 && tags.length > imageTagQuota) throw gazeError('TAG_QUOTA', tags.length, imageTagQuota);
  }

  async show(ctx: RequestContext, id: string): Promise<Image> {
    const image = await findVisibleImage(this.deps, ctx, id);
    // A policy that hides an image it found is Glance's bare 404, not its "no image" sentence.
    await authorizeOnImage(this.deps, ctx, 'get_image', image);
    return image;
  }

  /**
   * DELETE /v2/images/{id}. Returns the worker to replay the request to when the image's staged data
   * lives there (unless `local`: the replay failed and the image is deleted here regardless).
   */
  async delete(ctx: RequestContext, id: string, opts: { staging: StagingPlace; local?: boolean }): Promise<{ forwardTo?: string }> {
    refuseReadOnlyCaller(ctx);
    const image = await findVisibleImage(this.deps, ctx, id, 'IMAGE_NOT_FOUND_TO_DELETE');
    await authorizeOnImage(this.deps, ctx, 'delete_image', image);
    const stageHost = stagedElsewhere(image, opts.staging);
    if (!opts.local && stageHost) return { forwardTo: stageHost };
    if (image.protected) throw gazeError('IMAGE_PROTECTED', id);
    // delayed_delete: an image with data becomes pending_delete, its data kept for the scrubber (or a
    // restore). Where the status table has no way there (deactivated), Glance refuses such a delete.
    if (this.deps.settings.delayedDelete && image.locations.length > 0 && !canTransition(image.status, 'pending_delete')) {
      throw gazeError('DELETE_STATUS_TRANSITION', image.status, 'pending_delete');
    }
    // Glance deletes nothing of another project's image its policy let through: its database does not
    // find the image to delete.
    refuseUnlessOwner(ctx, image, () => gazeError('IMAGE_NOT_FOUND_TO_DELETE', id));
    const delayed = this.deps.settings.delayedDelete && (await this.deps.delayedDeletes.mark(id));
    const queued = delayed ? [] : await this.deps.images.markDeleted(id, { unlessProtected: true });
    if (!queued) {
      // Protected since it was read (a concurrent PATCH), or deleted by another request.
      if ((await this.deps.images.get(id))?.protected) throw gazeError('IMAGE_PROTECTED', id);
      throw gazeError('IMAGE_NOT_FOUND_TO_DELETE', id);
    }
    // An upload still streaming into this image is stopped (its request then answers 410), and so is an
    // import running here (one running in another process sees the deletion on its next heartbeat).
    this.uploads.abort(id);
    this.imports.cancel(id, IMAGE_DELETED);
    await this.cache?.forget(id);
    // Best effort: staged data left behind (a store that failed now) goes with the engine's next sweep.
    await this.imports.discardStaged(id).catch(() => {});
    // Data a write is still putting in place is removed by that write when it finds the image gone
    // (or by the scrubber); stored data goes now, or is left queued for the scrubber when a store fails.
    for (const location of queued.filter((l) => l.status === 'active')) await scrubLocation(this.deps, location);
    this.deps.notifier.info('image.delete', imageDeletedPayload(image, delayed ? 'pending_delete' : 'deleted'));
    return {};
  }

  async deactivate(ctx: RequestContext, id: string): Promise<void> {
    refuseReadOnlyCaller(ctx);
    const image = await findVisibleImage(this.deps, ctx, id);
    await authorizeOnImage(this.deps, ctx, 'deactivate', image);
    if (image.status !== 'active' && image.status !== 'deactivated') throw gazeError('DEACTIVATE_NOT_ALLOWED', image.status);
    refuseUnlessOwner(ctx, image); // Glance saves even when nothing changes
    if (image.status === 'deactivated') return;
    if (!(await this.deps.images.updateFields(id, 'active', moveTo('deactivated')))) {
      const now = await this.statusAfterLostRace(ctx, id);
      if (now === 'deactivated') return;
      throw gazeError('DEACTIVATE_NOT_ALLOWED', now);
    }
    await this.cache?.forget(id);
    // The image as written (its updated_at the deactivation's), as Glance's payload shows it.
    await notifyImage(this.deps, 'image.update', id);
  }

  async reactivate(ctx: RequestContext, id: string): Promise<void> {
    refuseReadOnlyCaller(ctx);
    const image = await findVisibleImage(this.deps, ctx, id);
    await authorizeOnImage(this.deps, ctx, 'reactivate', image);
    if (image.status !== 'active' && image.status !== 'deactivated') throw gazeError('REACTIVATE_NOT_ALLOWED', image.status);
    refuseUnlessOwner(ctx, image);
    if (image.status === 'active') return;
    if (!(await this.deps.images.updateFields(id, 'deactivated', moveTo('active')))) {
      const now = await this.statusAfterLostRace(ctx, id);
      if (now === 'active') return;
      throw gazeError('REACTIVATE_NOT_ALLOWED', now);
    }
    await notifyImage(this.deps, 'image.update', id);
  }

  /**
   * The status another request gave the image since it was read (a 404 when it is gone): the same
   * change made by a request alongside is this one's too, as when it comes after.
   */
  private async statusAfterLostRace(ctx: RequestContext, id: string): Promise<ImageStatus> {
    return (await findVisibleImage(this.deps, ctx, id)).status;
  }

  async addTag(ctx: RequestContext, id: string, tag: string): Promise<void> {
    refuseReadOnlyCaller(ctx);
    const image = await findVisibleImage(this.deps, ctx, id, 'IMAGE_NOT_FOUND_SHORT');
    await authorizeOnImage(this.deps, ctx, 'modify_image', image, () => gazeError('TAG_UPDATE_FORBIDDEN', id));
    if (tag.length > TAG_MAX) throw gazeError('SCHEMA_MISMATCH', 'image', `'${tag}' is too long`);
    const present = image.tags.includes(tag);
    const limit = this.deps.settings.imageTagQuota;
    if (!present && limit >= 0 && image.tags.length + 1 > limit) {
      throw gazeError('TAG_LIMIT', id, image.tags.length + 1, limit);
    }
    if (!present) checkNoFourByteUnicode({}, [tag]);
    refuseUnlessOwner(ctx, image, () => gazeError('TAG_UPDATE_FORBIDDEN', id));
    // A tag the image has is saved all the same, as Glance saves it: updated_at moves, image.update is sent.
    const updated = { ...image, tags: present ? image.tags : [...image.tags, tag] };
    // Only this tag is written, under the image's row lock; the limit is checked again with the tags
    // that concurrent requests added.
    const verify = (saved: Image) => {
      if (limit >= 0 && saved.tags.length > limit) {
        throw gazeError('TAG_LIMIT', id, saved.tags.length, limit);
      }
    };
    if (!(await this.deps.images.save(updated, { original: image, verify }))) throw gazeError('IMAGE_NOT_FOUND_SHORT', id);
    this.deps.notifier.info('image.update', imagePayload(updated));
  }

  async removeTag(ctx: RequestContext, id: string, tag: string): Promise<void> {
    refuseReadOnlyCaller(ctx);
    const image = await findVisibleImage(this.deps, ctx, id, 'IMAGE_NOT_FOUND_SHORT');
    await authorizeOnImage(this.deps, ctx, 'modify_image', image, () => gazeError('TAG_DELETE_FORBIDDEN', id));
    if (!image.tags.includes(tag)) throw gazeError('NOT_FOUND');
    refuseUnlessOwner(ctx, image, () => gazeError('TAG_DELETE_FORBIDDEN', id));
    const updated = { ...image, tags: image.tags.filter((t) => t !== tag) };
    if (!(await this.deps.images.save(updated, { original: image }))) throw gazeError('IMAGE_NOT_FOUND_SHORT', id);
    this.deps.notifier.info('image.update', imagePayload(updated));
  }
}
