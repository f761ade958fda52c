import { refuseReadOnlyCaller, type RequestContext } from '../auth/context.ts';
import { checkNoFourByteUnicode, type Image } from '../domain/image.ts';
import { GazeError, gazeError } from '../domain/errors.ts';
import type { MemberRow } from '../db/repos/members.ts';
import { memberPayload } from '../notify/payloads.ts';
import type { ServiceDeps } from './deps.ts';
import { findVisibleImage, ownerOrAdmin, ownsImage, targetFor } from './access.ts';
import type { PolicyTarget } from '../auth/policy.ts';
import { isPythonFalsy } from '../schemas/python-repr.ts';

const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'];

/** Image sharing (spec images-api.md §13). */
export class MemberService {
  constructor(private readonly deps: ServiceDeps) {}

  /** The image whose members are asked for, if the caller may see it. */
  private image(ctx: RequestContext, id: string): Promise<Image> {
    return findVisibleImage(this.deps, ctx, id, 'IMAGE_NOT_FOUND_SHORT');
  }

  /**
   * Glance's member policy: `get_image` first (a caller who may not read the image hears that it does
   * not exist, the bare 404), then the member rule (its 403 names the rule). Each call asks it after
   * the image's visibility, as Glance's member controller does. The target is the image's (targetFor):
   * member_id is the caller's own project when it is a member, whichever membership it asks for, as
   * Glance's image target has it; one per request.
   */
  private enforce(ctx: RequestContext, rule: string, target: PolicyTarget): void {
    if (!this.deps.policy.check('get_image', ctx, target)) throw gazeError('NOT_FOUND');
    if (!this.deps.policy.check(rule, ctx, target)) throw gazeError('POLICY_DENIED', rule);
  }

  /** One membership, as Glance's member lookup: the get_member rule, then the membership itself. */
  private async lookupMember(ctx: RequestContext, image: Image, target: PolicyTarget, memberId: string): Promise<MemberRow> {
    this.enforce(ctx, 'get_member', target);
    return this.visibleMember(ctx, image, memberId);
  }

  /**
   * A membership as Glance's member repository finds it: only the owner's (and an admin) see every one,
   * a member only its own; any other is not found (404).
   */
  private async visibleMember(ctx: RequestContext, image: Image, memberId: string): Promise<MemberRow> {
    const member = await this.deps.members.get(image.id, memberId);
    if (!member || !(ownerOrAdmin(ctx, image) || memberId === ctx.projectId)) throw gazeError('MEMBER_NOT_FOUND', memberId, image.id);
    return member;
  }

  async list(ctx: RequestContext, imageId: string): Promise<MemberRow[]> {
    const image = await this.image(ctx, imageId);
    if (image.visibility !== 'shared') throw gazeError('MEMBER_LIST_FORBIDDEN', imageId);
    const target = targetFor(this.deps, ctx, image);
    this.enforce(ctx, 'get_members', target);
    // Glance lists only the members its get_member rule shows (the rule weighs the image, not the member).
    if (!this.deps.policy.check('get_member', ctx, target)) return [];
    const members = await this.deps.members.list(imageId);
    const isOwner = ownerOrAdmin(ctx, image);
    return isOwner ? members : members.filter((m) => m.member === ctx.projectId);
  }

  async show(ctx: RequestContext, imageId: string, memberId: string): Promise<MemberRow> {
    const image = await this.image(ctx, imageId);
    // Not shared, not permitted or not found all answer 404 here (Glance turns its 403s into 404s).
    if (image.visibility !== 'shared') throw gazeError('MEMBERS_ONLY_SHARED');
    try {
      return await this.lookupMember(ctx, image, targetFor(this.deps, ctx, image), memberId);
    } catch (err) {
      if (err instanceof GazeError && err.code === 'POLICY_DENIED') throw gazeError('MEMBER_POLICY_HIDDEN', 'get_member');
      throw err;
    }
  }

  async add(ctx: RequestContext, imageId: string, body: unknown): Promise<MemberRow> {
    refuseReadOnlyCaller(ctx);
    if (body === undefined) throw gazeError('BODY_EXPECTED');
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw gazeError('BAD_REQUEST', 'Expected a member in the form: {"member": "image_id"}');
    if (!('member' in body)) throw gazeError('BAD_REQUEST', 'Member to be added not specified');
    const memberId = (body as { member: unknown }).member;
    // Glance tests the value's truth first.
    if (isPythonFalsy(memberId) || (typeof memberId === 'string' && memberId.trim() === '')) throw gazeError('BAD_REQUEST', "Member can't be empty");
    // The value itself is looked at once the image is found and the caller may share it, as in Glance.
    const image = await this.image(ctx, imageId);
    const isOwner = ownerOrAdmin(ctx, image);
    // Glance checks the owner itself only with the deprecated rules; else add_member alone decides.
    const ownerRefused = this.deps.policy.legacyDefaults && !isOwner;
    if (image.visibility !== 'shared' || ownerRefused) throw gazeError('MEMBER_CREATE_FORBIDDEN', imageId);
    this.enforce(ctx, 'add_member', targetFor(this.deps, ctx, image));
    if (typeof memberId !== 'string') throw gazeError('BAD_REQUEST', 'Expected a member in the form: {"member": "image_id"}');
    if (memberId.length > 255) throw gazeError('BAD_REQUEST', 'Member id should not be greater than 255 characters.');
    const quota = this.deps.settings.imageMemberQuota;
    const withinQuota = (members: number) => {
      if (members + 1 > quota) throw gazeError('MEMBER_LIMIT', imageId, members + 1, quota);
    };
    // Glance's database layer refuses characters beyond the Basic Multilingual Plane (MySQL's utf8).
    checkNoFourByteUnicode({ member: memberId });
    const row = await this.deps.members.add(imageId, memberId, quota >= 0 ? withinQuota : undefined);
    if (!row) throw gazeError('MEMBER_DUPLICATE', memberId, imageId);
    this.deps.notifier.info('image.member.create', memberPayload(row));
    return row;
  }

  async update(ctx: RequestContext, imageId: string, memberId: string, body: unknown): Promise<MemberRow> {
    refuseReadOnlyCaller(ctx);
    if (body === undefined) throw gazeError('BODY_EXPECTED');
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw gazeError('BAD_REQUEST', 'Expected a status in the form: {"status": "status"}');
    if (!('status' in body)) throw gazeError('BAD_REQUEST', 'Status not specified');
    const status = (body as { status: unknown }).status;
    const image = await this.image(ctx, imageId);
    if (image.visibility !== 'shared') throw gazeError('MEMBER_UPDATE_FORBIDDEN', imageId);
    // With the deprecated rules Glance holds the owner back before it looks for the membership.
    if (this.deps.policy.legacyDefaults && !ctx.isAdmin && ownsImage(ctx, image)) throw gazeError('MEMBER_UPDATE_FORBIDDEN', imageId);
    const target = targetFor(this.deps, ctx, image);
    await this.lookupMember(ctx, image, target, memberId);
    // Who may accept (the member project itself, under both defaults) is modify_member's to say, as in Glance.
    this.enforce(ctx, 'modify_member', target);
    // The value is judged last, as Glance's member does when its status is set.
    if (typeof status !== 'string' || !MEMBER_STATUSES.includes(status)) {
      throw gazeError('BAD_REQUEST', 'Incorrect request: Status must be "pending", "accepted" or "rejected".');
    }
    const row = await this.deps.members.setStatus(imageId, memberId, status);
    if (!row) throw gazeError('MEMBER_NOT_FOUND', memberId, imageId); // removed since it was looked up
    this.deps.notifier.info('image.member.update', memberPayload(row));
    return row;
  }

  async remove(ctx: RequestContext, imageId: string, memberId: string): Promise<void> {
    refuseReadOnlyCaller(ctx);
    const image = await this.image(ctx, imageId);
    const isOwner = ownerOrAdmin(ctx, image);
    // Glance's order: the visibility (and with the deprecated rules the owner), the membership, the policy.
    if (image.visibility !== 'shared' || (this.deps.policy.legacyDefaults && !isOwner)) throw gazeError('MEMBER_DELETE_FORBIDDEN', imageId);
    const target = targetFor(this.deps, ctx, image);
    const row = await this.lookupMember(ctx, image, target, memberId);
    this.enforce(ctx, 'delete_member', target);
    if (!(await this.deps.members.remove(imageId, memberId))) throw gazeError('MEMBER_NOT_FOUND', memberId, imageId);
    this.deps.notifier.info('image.member.delete', memberPayload(row, true));
  }
}
