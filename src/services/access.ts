import type { RequestContext } from '../auth/context.ts';
import type { Image } from '../domain/image.ts';
import { gazeError, type ErrorCode } from '../domain/errors.ts';
import type { ServiceDeps } from './deps.ts';
import { imageTarget, type PolicyTarget } from '../auth/policy.ts';

/** Whether the caller's project owns the image (an image without an owner is nobody's). */
export function ownsImage(ctx: RequestContext, image: Pick<Image, 'owner'>): boolean {
  return ctx.projectId !== null && image.owner === ctx.projectId;
}

/** Glance's owner rule: the image's owner or an admin. */
export function ownerOrAdmin(ctx: RequestContext, image: Pick<Image, 'owner'>): boolean {
  return ctx.isAdmin || ownsImage(ctx, image);
}

/**
 * Glance's visibility rule: who may know an image exists. An image without an owner (an admin's, made
 * with `owner: null`) is known to everyone, as in Glance ("no owner == image visible"); the policy's
 * get_image then decides who reads it. Lists leave it out for others all the same, as Glance's query does.
 */
export async function canSee(deps: ServiceDeps, ctx: RequestContext, image: Image): Promise<boolean> {
  if (ownerOrAdmin(ctx, image) || image.owner === null) return true;
  if (image.visibility === 'public' || image.visibility === 'community') return true;
  if (image.visibility === 'shared' && ctx.projectId !== null) return (await deps.members.get(image.id, ctx.projectId)) !== null;
  return false;
}

type NotFoundCode = Extract<ErrorCode, 'IMAGE_NOT_FOUND' | 'IMAGE_NOT_FOUND_SHORT' | 'IMAGE_NOT_FOUND_TO_DELETE' | 'NOT_FOUND'>;

/** The image if it exists and the caller may see it; 404 (with the call's own message) otherwise. */
export async function findVisibleImage(deps: ServiceDeps, ctx: RequestContext, id: string, notFound: NotFoundCode = 'IMAGE_NOT_FOUND'): Promise<Image> {
  const image = id.length <= 36 ? await deps.images.get(id) : null;
  if (!image || !(await canSee(deps, ctx, image))) {
    throw notFound === 'NOT_FOUND' ? gazeError('NOT_FOUND') : gazeError(notFound, id);
  }
  return image;
}

/**
 * The policy target of an image for this caller, as Glance's ImageTarget makes it: `member_id` is the
 * caller's project on a shared image it does not own (it found the image as a member, or as an admin),
 * and the extra properties are those property protections let the caller read, so a rule naming one
 * it may not read fails as on a missing key.
 */
export function targetFor(deps: Pick<ServiceDeps, 'propertyProtections'>, ctx: RequestContext, image: Image): PolicyTarget {
  const memberId = image.visibility === 'shared' && !ownsImage(ctx, image) ? ctx.projectId : null;
  const protections = deps.propertyProtections;
  if (!protections) return imageTarget(image, memberId);
  const readable = Object.fromEntries(Object.entries(image.properties).filter(([name]) => protections.allows('read', name, ctx)));
  return imageTarget({ ...image, properties: readable }, memberId);
}

/**
 * A policy rule on an existing image, as Glance's image policy enforces it: a caller the policy does not
 * even let read the image (`get_image`) hears that it does not exist (the bare 404), others 403.
 */
export function enforceOnImage(deps: ServiceDeps, ctx: RequestContext, rule: string, target: PolicyTarget): void {
  if (deps.policy.check(rule, ctx, target)) return;
  if (rule === 'get_image' || !deps.policy.check('get_image', ctx, target)) throw gazeError('NOT_FOUND');
  throw gazeError('POLICY_DENIED', rule);
}

/** The rules after which Glance's legacy policy also holds an image to its owner (check_is_image_mutable). */
const OWNER_ONLY_WITH_LEGACY_RULES = new Set(['modify_image', 'delete_image', 'upload_image', 'deactivate', 'reactivate', 'delete_image_location']);

/**
 * Glance's database check on every change to an image, whatever the policy let through (the deprecated
 * rules' set_image_location passes anyone, an operator's rules may let anyone modify): only its owner
 * or an admin; else 403 "You do not own this image", or the call's own words (`denied`). Each call makes
 * it where Glance saves the image, after its own checks of the request.
 */
export function refuseUnlessOwner(ctx: RequestContext, image: Image, denied?: () => Error): void {
  if (!ownerOrAdmin(ctx, image)) throw denied ? denied() : gazeError('IMAGE_NOT_OWNED');
}

/**
 * Enforces a policy rule on an image. With the deprecated rules (enforce_new_defaults off) most rules
 * pass anyone, and changes to an image are then held to its owner (or an admin) at once, as Glance does
 * in that mode; that refusal is a domain error in Glance, which some calls word their own way
 * (`denied`), where a refusal by the rule itself keeps the rule's generic sentence.
 */
export async function authorizeOnImage(deps: ServiceDeps, ctx: RequestContext, rule: string, image: Image, denied?: () => Error): Promise<void> {
  enforceOnImage(deps, ctx, rule, targetFor(deps, ctx, image));
  if (deps.policy.legacyDefaults && OWNER_ONLY_WITH_LEGACY_RULES.has(rule)) refuseUnlessOwner(ctx, image, denied);
}
