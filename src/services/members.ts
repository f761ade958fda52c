import { refuseReadOnlyCaller, type RequestContext } from '../auth/context.ts';
import type { Image } from '../domain/image.ts';
import { gazeError } from '../domain/errors.ts';
import type { MemberRow } from '../db/repos/members.ts';
import { memberPayload } from '../notify/payloads.ts';
import type { ServiceDeps } from './deps.ts';
import { findVisibleImage, targetFor } from './access.ts';
import { isPythonFalsy } from '../schemas/python-repr.ts';

const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'];

/** Image sharing (spec images-api.md §13). */
export class MemberService {
  constructor(private readonly deps: ServiceDeps) {}

  /** The image whose members are asked for; as Glance's member policy, a caller who may not read it hears it does not exist. */
  private async image(ctx: RequestContext, id: string): Promise<Image> {
    const image = await findVisibleImage(this.deps, ctx, id, 'IMAGE_NOT_FOUND_SHORT');
    if (!this.deps.policy.check('get_image', ctx, await targetFor(this.deps, ctx, image))) throw gazeError('NOT_FOUND');
    return image;
  }

  private async allowed(ctx: RequestContext, rule: string, image: Image, memberId?: string): Promise<boolean> {
    const target = await targetFor(this.deps, ctx, image);
    if (memberId !== undefined) target.member_id = memberId;
    return this.deps.policy.check(rule, ctx, target);
  }

  /**
   * A membership as Glance's member repository finds it: only the owner's (and an admin) see every one,
   * a member only its own; any other is not found (404).
   */
  private async visibleMember(ctx: RequestContext, image: Image, memberId: string): Promise<MemberRow> {
    const member = await this.deps.members.get(image.id, memberId);
    if (!member || !(ctx.isAdmin || image.owner === ctx.projectId || memberId === ctx.projectId)) throw gazeError('MEMBER_NOT_FOUND', memberId, image.id);
    return member;
  }

  async list(ctx: RequestContext, imageId: string): Promise<MemberRow[]> {
    const image = await this.image(ctx, imageId);
    if (image.visibility !== 'shared') throw gazeError('MEMBER_LIST_FORBIDDEN', imageId);
    if (!(await this.allowed(ctx, 'get_members', image))) throw gazeError('POLICY_DENIED', 'get_members');
    const members = await this.deps.members.list(imageId);
    const isOwner = ctx.isAdmin || image.owner === ctx.projectId;
    return isOwner ? members : members.filter((m) => m.member === ctx.projectId);
  }

  async show(ctx: RequestContext, imageId: string, memberId: string): Promise<MemberRow> {
    const image = await this.image(ctx, imageId);
    // Not shared, not permitted or not found all answer 404 here (Glance turns the 403 into 404).
    if (image.visibility !== 'shared') throw gazeError('MEMBERS_ONLY_SHARED');
    const member = await this.visibleMember(ctx, image, memberId);
    if (!(await this.allowed(ctx, 'get_member', image, memberId))) throw gazeError('MEMBER_NOT_FOUND', memberId, imageId);
    return member;
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
    const isOwner = ctx.isAdmin || image.owner === ctx.projectId;
    // Glance checks the owner itself only with the deprecated rules; else add_member alone decides.
    const ownerRefused = this.deps.policy.legacyDefaults && !isOwner;
    if (image.visibility !== 'shared' || ownerRefused || !(await this.allowed(ctx, 'add_member', image))) {
      throw gazeError('MEMBER_CREATE_FORBIDDEN', imageId);
    }
    if (typeof memberId !== 'string') throw gazeError('BAD_REQUEST', 'Expected a member in the form: {"member": "image_id"}');
    if (memberId.length > 255) throw gazeError('BAD_REQUEST', 'Member id should not be greater than 255 characters.');
    const quota = this.deps.settings.imageMemberQuota;
    if (quota >= 0) {
      const count = await this.deps.members.count(imageId);
      if (count + 1 > quota) throw gazeError('MEMBER_LIMIT', imageId, count + 1, quota);
    }
    const row = await this.deps.members.add(imageId, memberId);
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
    if (this.deps.policy.legacyDefaults && !ctx.isAdmin && image.owner === ctx.projectId) throw gazeError('MEMBER_UPDATE_FORBIDDEN', imageId);
    await this.visibleMember(ctx, image, memberId);
    // Only the member project itself (or an admin) decides whether it accepts an image.
    if (!(ctx.isAdmin || memberId === ctx.projectId) || !(await this.allowed(ctx, 'modify_member', image, memberId))) {
      throw gazeError('MEMBER_UPDATE_FORBIDDEN', imageId);
    }
    // The value is judged last, as Glance's member does when its status is set.
    if (typeof status !== 'string') throw gazeError('BAD_REQUEST', 'Expected a status in the form: {"status": "status"}');
    if (!MEMBER_STATUSES.includes(status)) throw gazeError('BAD_REQUEST', 'Incorrect request: Status must be "pending", "accepted" or "rejected".');
    const row = (await this.deps.members.setStatus(imageId, memberId, status))!;
    this.deps.notifier.info('image.member.update', memberPayload(row));
    return row;
  }

  async remove(ctx: RequestContext, imageId: string, memberId: string): Promise<void> {
    refuseReadOnlyCaller(ctx);
    const image = await this.image(ctx, imageId);
    const isOwner = ctx.isAdmin || image.owner === ctx.projectId;
    // Glance's order: the visibility (and with the deprecated rules the owner), the membership, the policy.
    if (image.visibility !== 'shared' || (this.deps.policy.legacyDefaults && !isOwner)) throw gazeError('MEMBER_DELETE_FORBIDDEN', imageId);
    const row = await this.visibleMember(ctx, image, memberId);
    if (!(await this.allowed(ctx, 'delete_member', image))) throw gazeError('MEMBER_DELETE_FORBIDDEN', imageId);
    if (!(await this.deps.members.remove(imageId, memberId))) throw gazeError('MEMBER_NOT_FOUND', memberId, imageId);
    this.deps.notifier.info('image.member.delete', memberPayload(row, true));
  }
}
