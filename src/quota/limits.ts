// Where per-project limits come from: Keystone's unified limits (use_keystone_limits), or the
// [project_limits] section of the config. Both speak the unified-limit names Glance registers.

export const LIMIT_NAMES = ['image_size_total', 'image_stage_total', 'image_count_total', 'image_count_uploading'] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

/** A limit per name: MiB for the *_total sizes, a count otherwise; negative = unlimited. */
export type Limits = Record<LimitName, number>;

export interface LimitSource {
  limitsFor(projectId: string): Promise<Limits>;
}

/** The same limits for every project, from [project_limits]. */
export class ConfigLimits implements LimitSource {
  constructor(private readonly limits: Limits) {}

  async limitsFor(): Promise<Limits> {
    return this.limits;
  }
}
