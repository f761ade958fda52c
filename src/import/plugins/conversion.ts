import { rename, rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { FormatReport } from '../../formats/types.ts';
import { PluginFailed, type ImportPlugin, type PluginContext } from './plugin.ts';
import { qemuDriver, qemuImgConvert, qemuImgInfo, type QemuImgInfo, type QemuImgLimits } from './qemu-img.ts';

// Glance's `image_conversion` (spec §1.4) with the 2024 hardening: the staged file must be what its
// disk_format claims, per our own inspector and per qemu-img (told the format, never probing), with no
// backing file, no external data file and an allowed vmdk create-type, before qemu-img converts it; the
// output must then inspect as the target format. Messages are Glance's.

export const OUTPUT_FORMATS = ['raw', 'qcow2', 'vmdk'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface ConversionOptions {
  outputFormat: OutputFormat;
  qemuImg: QemuImgLimits;
  /** [image_format] vmdk_allowed_types. */
  vmdkAllowedTypes: string[];
}

/** How often the growing output is measured against image_size_cap. */
const OUTPUT_POLL_MS = 200;

class OutputTooLarge extends Error {}

export class ConversionPlugin implements ImportPlugin {
  readonly name = 'image_conversion';

  constructor(private readonly options: ConversionOptions) {}

  async run(ctx: PluginContext): Promise<void> {
    const src = resolve(ctx.stagedPath);
    const claimed = ctx.image.disk_format;
    if (!claimed) throw new PluginFailed('Image format mismatch');
    const detected = await this.inspect(ctx, src);
    if (detected === 'iso') {
      // An ISO stays an ISO; claimed as anything else it could smuggle a disk image past qemu-img.
      if (claimed === 'iso') return;
      throw new PluginFailed(`Image has disallowed configuration: the data is an ISO, not ${claimed}`);
    }
    if (detected !== claimed) throw new PluginFailed(`Image format mismatch: disk_format ${claimed}, but the data is ${detected}`);

    const info = await qemuImgInfo(src, claimed, this.options.qemuImg, ctx.signal);
    this.checkInfo(info, claimed);
    const virtualSize = typeof info['virtual-size'] === 'number' ? info['virtual-size'] : null;

    const target = this.options.outputFormat;
    if (claimed === target) {
      await ctx.updateImage({ virtual_size: virtualSize });
      return;
    }
    // A raw output is as large as the virtual disk: refuse before writing it.
    if (target === 'raw' && virtualSize !== null && virtualSize > ctx.sizeCap) throw tooLarge(ctx.sizeCap);

    const dest = `${src}.${target}`;
    try {
      await this.convert(ctx, src, claimed, dest, target);
      const outFormat = await this.inspect(ctx, dest);
      // Someone may have hidden one format inside another (a vmdk inside "raw" data).
      if (outFormat !== target) throw new PluginFailed('Converted image in unexpected format');
      if ((await stat(dest)).size > ctx.sizeCap) throw tooLarge(ctx.sizeCap);
      ctx.signal.throwIfAborted();
      await rename(dest, src);
    } catch (err) {
      await rm(dest, { force: true });
      throw err;
    }
    await ctx.updateImage({ disk_format: target, container_format: 'bare', virtual_size: virtualSize });
  }

  /** The detected format (gpt counted as raw), after the inspector's safety checks passed. */
  private async inspect(ctx: PluginContext, path: string): Promise<string> {
    let report: FormatReport;
    try {
      report = await ctx.inspectFile(path);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      throw new PluginFailed('Unable to inspect image', { cause: err });
    }
    ctx.signal.throwIfAborted();
    if (report.format === null) throw new PluginFailed('Image format detection failed');
    // Judged against its own format, the verdict is about safety alone; the claim is compared strictly
    // below, whatever require_image_format_match says, as Glance does.
    const verdict = ctx.judge(report, report.format);
    for (const w of verdict.warnings) ctx.warn?.(w);
    if (!verdict.accepted) {
      // Glance's words, then what exactly was found: the user can act on "a backing file", not on
      // "disallowed configuration" alone.
      const found = report.failures.map((f) => f.message).join('; ') || verdict.reason;
      throw new PluginFailed(
        verdict.kind === 'inspection' ? `Image format detection failed: ${verdict.reason}` : `Image has disallowed configuration: ${found}`,
      );
    }
    return report.format === 'gpt' ? 'raw' : report.format;
  }

  private checkInfo(info: QemuImgInfo, claimed: string): void {
    if (info.format !== qemuDriver(claimed)) throw new PluginFailed('Image metadata disagrees about format');
    if ('backing-filename' in info || 'full-backing-filename' in info) {
      throw new PluginFailed('QCOW images with backing files are not allowed');
    }
    const data = info['format-specific']?.data ?? {};
    if (data['data-file'] !== undefined && data['data-file'] !== null) {
      throw new PluginFailed('QCOW images with data-file set are not allowed');
    }
    if (info.format === 'vmdk') {
      const createType = data['create-type'];
      if (typeof createType !== 'string' || !createType) throw new PluginFailed('Unable to determine VMDK create-type');
      const allowed = this.options.vmdkAllowedTypes;
      if (!allowed.length) throw new PluginFailed('Image is a VMDK, but no VMDK createType is specified');
      // Case-insensitive, as the inspector's check (formats/verdict.ts) is.
      if (!allowed.some((t) => t.toLowerCase() === createType.toLowerCase())) throw new PluginFailed('Invalid VMDK create-type specified');
    }
  }

  /** qemu-img convert, killed when the output outgrows image_size_cap or the import is aborted. */
  private async convert(ctx: PluginContext, src: string, from: string, dest: string, to: string): Promise<void> {
    const cap = new AbortController();
    const timer = setInterval(() => {
      stat(dest).then(
        (st) => {
          if (st.size > ctx.sizeCap) cap.abort(new OutputTooLarge());
        },
        () => {}, // not created yet
      );
    }, OUTPUT_POLL_MS);
    try {
      await qemuImgConvert(src, from, dest, to, this.options.qemuImg, AbortSignal.any([ctx.signal, cap.signal]));
    } catch (err) {
      if (err instanceof OutputTooLarge) throw tooLarge(ctx.sizeCap);
      throw err;
    } finally {
      clearInterval(timer);
    }
  }
}

function tooLarge(cap: number): PluginFailed {
  return new PluginFailed(`The converted image is larger than image_size_cap (${cap} bytes)`);
}
