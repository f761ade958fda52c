import { ConversionPlugin, OUTPUT_FORMATS, type OutputFormat } from './conversion.ts';
import { DecompressionPlugin } from './decompression.ts';
import { InjectMetadataPlugin } from './inject-metadata.ts';
import { NoOpPlugin } from './no-op.ts';
import type { ImportPlugin } from './plugin.ts';

export type { ImportPlugin, PluginContext } from './plugin.ts';
export { PluginFailed } from './plugin.ts';

export interface PluginOptions {
  /** [inject_metadata_properties] inject */
  inject: Record<string, string>;
  /** [inject_metadata_properties] ignore_user_roles */
  ignoreUserRoles: string[];
  /** [image_conversion] output_format */
  outputFormat: string;
  /** [image_conversion] qemu_img_* limits; the address-space limit also bounds bzip2, xz and unzip. */
  qemuImg: { infoCpuSeconds: number; convertCpuSeconds: number; addressSpaceMiB: number; convertAddressSpaceMiB: number };
  /** [image_format] vmdk_allowed_types, which the conversion plugin checks against qemu-img's view too. */
  vmdkAllowedTypes: string[];
  /** Stops the service over an option's value, naming where it was set (Config.refuse). */
  refuse: (section: string, option: string, reason: string) => never;
}

/** The plugins of [image_import_opts] image_import_plugins, in order; a bad entry stops the service starting. */
export function createPlugins(names: string[], options: PluginOptions): ImportPlugin[] {
  const plugins = names.map((raw) => {
    const name = raw.trim();
    switch (name) {
      case 'no_op':
        return new NoOpPlugin();
      case 'inject_image_metadata':
        return new InjectMetadataPlugin(options.inject, options.ignoreUserRoles);
      case 'image_decompression':
        return new DecompressionPlugin({ addressSpaceBytes: positive(options.qemuImg.addressSpaceMiB, 'qemu_img_address_space_mib') * 1048576 });
      case 'image_conversion':
        return new ConversionPlugin({
          outputFormat: outputFormat(options.outputFormat),
          qemuImg: {
            infoCpuSeconds: positive(options.qemuImg.infoCpuSeconds, 'qemu_img_info_cpu_seconds'),
            convertCpuSeconds: positive(options.qemuImg.convertCpuSeconds, 'qemu_img_convert_cpu_seconds'),
            addressSpaceMiB: positive(options.qemuImg.addressSpaceMiB, 'qemu_img_address_space_mib'),
            convertAddressSpaceMiB: positive(options.qemuImg.convertAddressSpaceMiB, 'qemu_img_convert_address_space_mib'),
          },
          vmdkAllowedTypes: options.vmdkAllowedTypes,
        });
      default:
        return options.refuse(
          'image_import_opts',
          'image_import_plugins',
          `unknown import plugin '${name}' (known: no_op, inject_image_metadata, image_decompression, image_conversion)`,
        );
    }
  });
  return plugins;

  function outputFormat(value: string): OutputFormat {
    if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
    return options.refuse('image_conversion', 'output_format', `'${value}' is not one of ${OUTPUT_FORMATS.join(', ')}`);
  }

  function positive(n: number, option: string): number {
    if (!Number.isSafeInteger(n) || n <= 0) options.refuse('image_conversion', option, `must be a positive integer, not ${n}`);
    return n;
  }
}
