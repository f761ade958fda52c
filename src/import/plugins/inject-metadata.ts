import { isReservedNamespace } from '../../domain/image.ts';
import type { ImportPlugin, PluginContext } from './plugin.ts';

/**
 * Glance's `inject_image_metadata` (spec §1.2): writes the operator's `[inject_metadata_properties]
 * inject` pairs into the image, unless the importing user holds one of `ignore_user_roles`.
 */
export class InjectMetadataPlugin implements ImportPlugin {
  readonly name = 'inject_image_metadata';
  private readonly ignoreRoles: Set<string>;

  constructor(
    private readonly inject: Record<string, string>,
    ignoreUserRoles: string[],
  ) {
    // Context roles arrive lower-cased; compare the configured ones the same way.
    this.ignoreRoles = new Set(ignoreUserRoles.map((r) => r.trim().toLowerCase()).filter(Boolean));
  }

  async run(ctx: PluginContext): Promise<void> {
    if (ctx.roles.some((r) => this.ignoreRoles.has(r))) return;
    const props: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.inject)) {
      if (isReservedNamespace(key)) {
        ctx.warn?.(`Dropping ${key}=${value} during metadata injection for ${ctx.image.id}`);
        continue;
      }
      if (!ctx.mayWriteProperty(key, Object.hasOwn(ctx.image.properties, key))) {
        ctx.warn?.(`Not injecting ${key} into ${ctx.image.id}: property protections forbid it for the importing user`);
        continue;
      }
      props[key] = value;
    }
    if (Object.keys(props).length) await ctx.setProperties(props);
  }
}
