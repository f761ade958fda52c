import { ProcessFailed, runLimited } from '../../util/limited-process.ts';
import { hidePath, PluginFailed } from './plugin.ts';

// qemu-img runs for the conversion plugin, always with an explicit -f (never format probing) and under
// CPU and address-space limits, as Glance does since OSSA-2024-001.

export interface QemuImgLimits {
  infoCpuSeconds: number;
  convertCpuSeconds: number;
  addressSpaceMiB: number;
  /** Address space of `convert`, which runs I/O threads. */
  convertAddressSpaceMiB: number;
  /** Wall-clock limit of `info` (120 s unless a test says otherwise). */
  infoWallSeconds?: number;
}

/**
 * `info` reads headers and should take moments; the CPU limit does not stop one that waits (a FIFO or
 * a hung mount named by an image), which would hold its task slot for ever.
 */
const INFO_WALL_SECONDS = 120;

/** The parts of `qemu-img info --output=json` the plugin looks at. */
export interface QemuImgInfo {
  format?: string;
  'virtual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'format-specific'?: { type?: string; data?: Record<string, unknown> };
}

/** qemu's driver name for a Glance disk_format (qemu calls vhd "vpc"). */
export function qemuDriver(diskFormat: string): string {
  return diskFormat === 'vhd' ? 'vpc' : diskFormat;
}

export async function qemuImgInfo(path: string, diskFormat: string, limits: QemuImgLimits, signal: AbortSignal): Promise<QemuImgInfo> {
  const wallSeconds = limits.infoWallSeconds ?? INFO_WALL_SECONDS;
  const tooLong = AbortSignal.timeout(wallSeconds * 1000);
  const { stdout, stderr } = await run(
    ['info', '-f', qemuDriver(diskFormat), '--output=json', path],
    { cpuSeconds: limits.infoCpuSeconds, addressSpaceBytes: limits.addressSpaceMiB * 1024 * 1024 },
    path,
    AbortSignal.any([signal, tooLong]),
  ).catch((err: unknown) => {
    if (tooLong.aborted && !signal.aborted) throw new PluginFailed(`qemu-img info did not finish within ${wallSeconds} seconds`, { cause: err });
    throw err;
  });
  // Glance treats any diagnostic from info as a failure: it may mean qemu-img saw something odd.
  if (stderr.trim()) throw new PluginFailed(hidePath(stderr.trim(), path));
  try {
    const info = JSON.parse(stdout) as unknown;
    if (info && typeof info === 'object' && !Array.isArray(info)) return info as QemuImgInfo;
  } catch {
    // Reported below.
  }
  throw new PluginFailed('qemu-img info returned unreadable output');
}

export async function qemuImgConvert(
  src: string,
  fromFormat: string,
  dest: string,
  toFormat: string,
  limits: QemuImgLimits,
  signal: AbortSignal,
): Promise<void> {
  const { stderr } = await run(
    ['convert', '-f', qemuDriver(fromFormat), '-O', qemuDriver(toFormat), src, dest],
    { cpuSeconds: limits.convertCpuSeconds, addressSpaceBytes: limits.convertAddressSpaceMiB * 1024 * 1024 },
    src,
    signal,
  );
  if (stderr.trim()) throw new PluginFailed(hidePath(stderr.trim(), src));
}

async function run(
  args: string[],
  limits: { cpuSeconds: number; addressSpaceBytes: number },
  path: string,
  signal: AbortSignal,
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await runLimited('qemu-img', args, { limits, signal });
  } catch (err) {
    if (signal.aborted || !(err instanceof ProcessFailed)) throw err;
    const why = err.stderr.trim() || (err.exitSignal ? `qemu-img ${args[0]} was killed by ${err.exitSignal} (resource limit)` : err.message);
    throw new PluginFailed(hidePath(why, path), { cause: err });
  }
}
