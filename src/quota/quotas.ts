import type { HeldBytes, UsageCheck, UsageRepo, ProjectUsage } from '../db/repos/usage.ts';
import { gazeError, type GazeError } from '../domain/errors.ts';
import type { LimitName, Limits, LimitSource } from './limits.ts';
import { LIMIT_NAMES } from './limits.ts';
import { LimitsUnavailable } from './keystone-limits.ts';
import type { ImageStatus } from '../domain/image.ts';
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';

const MiB = 1024 * 1024;

/** A write that makes or records a claim, run inside the quota check's transaction when one applies (false: the image changed). */
export type ClaimWrite = (within?: Transaction<Database>) => Promise<boolean>;

/**
 * How many more bytes a write may take before a quota stops it, and the error that says so. Callers that
 * know the size refuse up front; the ingest pipeline cuts a stream of unknown size at `bytes`.
 */
export interface ByteBudget {
  bytes: number;
  exceeded(attempted: number): GazeError;
}

/**
 * Per-project quotas: the legacy `user_storage_quota` (when unified limits are off, as in Glance) and the
 * unified limits image_size_total / image_stage_total / image_count_total / image_count_uploading, from
 * Keystone or from [project_limits]. Sizes are compared in bytes: a hard quota, not Glance's MiB floor.
 */
export class QuotaService {
  constructor(
    private readonly usage: UsageRepo,
    private readonly source: LimitSource | null,
    /** user_storage_quota in bytes; 0 = unlimited. Ignored when Keystone limits are on, as in Glance. */
    private readonly legacyStorageBytes: number,
  ) {}

  get unifiedLimitsOn(): boolean {
    return this.source !== null;
  }

  /** Refuses with 413 when any of `deltas` (MiB for sizes, a count otherwise) would go over its limit. */
  async enforce(projectId: string | null, deltas: Partial<Record<LimitName, number>>, excludeImageId: string | null = null): Promise<void> {
    if (!this.source || !projectId) return;
    const [limits, used] = await Promise.all([this.limits(projectId), this.usage.forProject(projectId, excludeImageId)]);
    refuseOverLimits(projectId, limits, used, deltas);
  }

  /**
   * Bytes the project may still store (a store write: upload, import, copy). Null: no quota applies.
   * `excludeImageId`: the image whose data is being replaced, so its old size does not count twice.
   */
  async storeBudget(projectId: string | null, excludeImageId: string | null): Promise<ByteBudget | null> {
    // No usage to count when no quota limits bytes (it costs five queries over the project's images).
    if (!projectId || !this.limitsBytes) return null;
    const used = await this.usage.forProject(projectId, excludeImageId);
    return this.storeBudgetFrom(projectId, used, this.source ? await this.limits(projectId) : null);
  }

  /**
   * The check a new image of the project meets when image_count_total limits it, run with the insert
   * (null when nothing limits the count): images created side by side never pass the limit.
   */
  async imageCountCheck(projectId: string | null): Promise<UsageCheck | null> {
    if (!this.source || !projectId) return null;
    const limit = (await this.limits(projectId)).image_count_total;
    if (limit < 0) return null;
    return {
      owner: projectId,
      check(used) {
        // The new image is counted already.
        const before = used.imageCount - 1;
        if (before + 1 > limit) throw gazeError('OVER_LIMIT', projectId, [overLimitText('image_count_total', limit, before, 1)]);
      },
    };
  }

  /**
   * Runs `claim`, the write that makes an image one taking data (an upload's or a stage's queued to
   * saving or uploading, an import's start), and refuses it (413, the claim undone) when the project is
   * then over image_count_uploading, counting the image, as Glance counts it once it has marked the
   * image ("delta 0"); with `staging`, over image_stage_total too (an import that stages: Glance checks
   * both as it starts one). Claims of one project are checked one after the other: of images that begin
   * together, only as many as the limit leaves go on. False when `claim` found the image changed.
   */
  async claimTakingData(projectId: string | null, claim: ClaimWrite, opts: { staging?: boolean } = {}): Promise<boolean> {
    if (!this.source || projectId === null) return claim();
    const limits = await this.limits(projectId);
    // In Glance's order, the first one over is said.
    const names = (opts.staging ? (['image_stage_total', 'image_count_uploading'] as const) : (['image_count_uploading'] as const)).filter(
      (n) => limits[n] >= 0,
    );
    if (names.length === 0) return claim();
    return this.usage.checkedWrite(projectId, claim, (used) => {
      for (const name of names) refuseOverLimits(projectId, limits, used, { [name]: 0 });
    });
  }

  /** Bytes the project may still put in staging (stage, web-download, glance-download). */
  async stageBudget(projectId: string | null, imageId: string): Promise<ByteBudget | null> {
    if (!this.source || !projectId) return null;
    const used = await this.usage.forProject(projectId, imageId);
    return this.stageBudgetFrom(projectId, used, await this.limits(projectId));
  }

  /**
   * Holds bytes against the quotas for the image's running write (while it is in one of `statuses`),
   * so that writes side by side see each other, and refuses (413, holding nothing) when `sizes` do not
   * fit beside what the project stores and everyone else holds: `staged` bytes into staging, `stored`
   * bytes into the stores. One project's holds are checked one after the other: of writes that end
   * together, those that fit are kept. False when the image has left `statuses`.
   */
  async hold(
    projectId: string | null,
    imageId: string,
    statuses: ImageStatus[],
    held: HeldBytes,
    sizes: { staged?: number; stored?: number },
  ): Promise<boolean> {
    return this.holdWith(projectId, imageId, (within) => this.usage.setHeld(imageId, statuses, held, within), sizes);
  }

  /** hold(), with the caller's own `write` (which records what is held) in place of the plain one. */
  async holdWith(projectId: string | null, imageId: string, write: ClaimWrite, sizes: { staged?: number; stored?: number }): Promise<boolean> {
    const checked = projectId !== null && this.limitsBytes && (sizes.staged !== undefined || sizes.stored !== undefined);
    if (!checked) return write();
    const limits = this.source ? await this.limits(projectId) : null;
    return this.usage.checkedWrite(
      projectId,
      write,
      (used) => {
        if (sizes.staged !== undefined && limits) refuseOver(this.stageBudgetFrom(projectId, used, limits), sizes.staged);
        if (sizes.stored !== undefined) refuseOver(this.storeBudgetFrom(projectId, used, limits), sizes.stored);
      },
      imageId,
    );
  }

  /**
   * A transfer's announced size, held before its first byte and checked beside the holds of other
   * writes (of transfers that begin together, those that fit go on: the check before the claim saw none
   * of the others). Returns what is held: null without a budget or an announced size.
   */
  async holdAnnounced(
    projectId: string | null,
    imageId: string,
    status: ImageStatus,
    budget: ByteBudget | null | undefined,
    sizeHint: number | undefined,
    target: 'stored' | 'staged',
  ): Promise<number | null> {
    if (!budget || sizeHint === undefined) return null;
    const held = target === 'staged' ? { staged_bytes: sizeHint } : { reserved_bytes: sizeHint };
    await this.hold(projectId, imageId, [status], held, { [target]: sizeHint });
    return sizeHint;
  }

  /** `limits`: the unified limits, when they are on. */
  private storeBudgetFrom(projectId: string, used: ProjectUsage, limits: Limits | null): ByteBudget | null {
    const budgets: ByteBudget[] = [];
    if (!limits && this.legacyStorageBytes > 0) {
      const remaining = Math.max(0, this.legacyStorageBytes - used.storedBytes);
      budgets.push({ bytes: remaining, exceeded: (attempted) => gazeError('STORAGE_QUOTA', attempted, remaining) });
    }
    if (limits) budgets.push(...this.unifiedBudget(projectId, 'image_size_total', limits, used));
    return tightest(budgets);
  }

  private stageBudgetFrom(projectId: string, used: ProjectUsage, limits: Limits): ByteBudget | null {
    return tightest(this.unifiedBudget(projectId, 'image_stage_total', limits, used));
  }

  /**
   * The checks before an upload (`store`) or a stage (`stage`) claims the image: the project not over its
   * limit already, and an announced size within what remains (413 before anything changes; the count of
   * images taking data is checked with the claim, see claimTakingData). Returns the budget the stream is
   * then cut at, or null when no quota limits bytes.
   */
  async admitWrite(projectId: string | null, imageId: string, target: 'store' | 'stage', sizeHint?: number): Promise<ByteBudget | null> {
    // Staging has unified limits only; the stores the legacy user_storage_quota too.
    const limited = target === 'store' ? this.limitsBytes : this.source !== null;
    if (!projectId || !limited) return null;
    // One read of the limits and the usage for both checks.
    const [limits, used] = await Promise.all([this.source ? this.limits(projectId) : null, this.usage.forProject(projectId, imageId)]);
    // Glance's check first: a project over its limit already takes nothing, not even empty data ("delta 0").
    if (limits) refuseOverLimits(projectId, limits, used, target === 'store' ? { image_size_total: 0 } : { image_stage_total: 0 });
    const budget = target === 'store' ? this.storeBudgetFrom(projectId, used, limits) : this.stageBudgetFrom(projectId, used, limits!);
    refuseOver(budget, sizeHint);
    return budget;
  }

  /**
   * Refuses (413) data whose size is known before it arrives when it would not fit: `staged` bytes into
   * staging, `stored` bytes into the stores (every copy counted). Nothing has been written yet.
   */
  async refuseOversized(projectId: string | null, excludeImageId: string | null, sizes: { staged?: number; stored?: number }): Promise<void> {
    if (sizes.staged !== undefined) refuseOver(await this.stageBudget(projectId, excludeImageId ?? ''), sizes.staged);
    if (sizes.stored !== undefined) refuseOver(await this.storeBudget(projectId, excludeImageId), sizes.stored);
  }

  /** Whether any quota limits bytes (so that learning a size in advance is worth a request). */
  get limitsBytes(): boolean {
    return this.source !== null || this.legacyStorageBytes > 0;
  }

  /** GET /v2/info/usage: each unified limit with the project's usage; empty when unified limits are off. */
  async report(projectId: string | null): Promise<Record<string, { limit: number; usage: number }>> {
    if (!this.source || !projectId) return {};
    const [limits, used] = await Promise.all([this.limits(projectId), this.usage.forProject(projectId)]);
    return Object.fromEntries(LIMIT_NAMES.map((name) => [name, { limit: limits[name], usage: usageIn(name, used) }]));
  }

  private unifiedBudget(projectId: string, name: 'image_size_total' | 'image_stage_total', limits: Limits, used: ProjectUsage): ByteBudget[] {
    const limit = limits[name];
    if (limit < 0) return [];
    const usedBytes = name === 'image_size_total' ? used.storedBytes : used.stagedBytes;
    const current = Math.floor(usedBytes / MiB);
    return [
      {
        bytes: Math.max(0, limit * MiB - usedBytes),
        // Bytes decide; the delta is told in the MiB it starts beyond the usage (as /v2/info/usage counts
        // it), so that the sentence adds up.
        exceeded: (attempted) => gazeError('OVER_LIMIT', projectId, [overLimitText(name, limit, current, Math.ceil((usedBytes + attempted) / MiB) - current)]),
      },
    ];
  }

  private async limits(projectId: string): Promise<Limits> {
    try {
      return await this.source!.limitsFor(projectId);
    } catch (err) {
      if (err instanceof LimitsUnavailable) throw gazeError('LIMITS_UNAVAILABLE').withCause(err);
      throw err;
    }
  }
}

function usageIn(name: LimitName, used: ProjectUsage): number {
  switch (name) {
    case 'image_size_total':
      return Math.floor(used.storedBytes / MiB);
    case 'image_stage_total':
      return Math.floor(used.stagedBytes / MiB);
    case 'image_count_total':
      return used.imageCount;
    case 'image_count_uploading':
      return used.uploadingCount;
  }
}

/** 413 naming every limit `deltas` would take `used` over, as oslo.limit checks it (usage + delta > limit; -1: none). */
function refuseOverLimits(projectId: string, limits: Limits, used: ProjectUsage, deltas: Partial<Record<LimitName, number>>): void {
  const over: string[] = [];
  for (const [name, delta = 0] of Object.entries(deltas) as Array<[LimitName, number | undefined]>) {
    const current = usageIn(name, used);
    if (limits[name] >= 0 && current + delta > limits[name]) over.push(overLimitText(name, limits[name], current, delta));
  }
  if (over.length) throw gazeError('OVER_LIMIT', projectId, over);
}

/** oslo.limit's wording of one resource over its limit. */
function overLimitText(name: LimitName, limit: number, usage: number, delta: number): string {
  return `Resource ${name} is over limit of ${limit} due to current usage ${usage} and delta ${delta}`;
}

/** 413 with the budget's message when `bytes` (if known) do not fit. */
function refuseOver(budget: ByteBudget | null, bytes: number | undefined): void {
  if (budget && bytes !== undefined && bytes > budget.bytes) throw budget.exceeded(bytes);
}

/**
 * Whether what a transfer wrote must be held and checked again: it ran beside others checked against
 * the same remaining quota, and announced nothing (or wrote more than it announced and held).
 */
export function checkAgain(budget: ByteBudget | null | undefined, heldBefore: number | null, written: number): boolean {
  return !!budget && (heldBefore === null || written > heldBefore);
}

function tightest(budgets: ByteBudget[]): ByteBudget | null {
  return budgets.reduce<ByteBudget | null>((best, b) => (best === null || b.bytes < best.bytes ? b : best), null);
}

/** `user_storage_quota`: a byte count with an optional 1024-based unit (B, KB, MB, GB, TB), as Glance reads it; null when it is none. */
export function parseStorageQuota(text: string): number | null {
  const m = /^(\d+)(B|KB|MB|GB|TB)?$/.exec(text.trim());
  if (!m) return null;
  const power = { B: 0, KB: 1, MB: 2, GB: 3, TB: 4 }[(m[2] ?? 'B') as 'B'];
  return Number(m[1]) * 1024 ** power;
}
