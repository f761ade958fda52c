import { createReadStream } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { SizeLimit, SizeLimitExceeded } from '../../ingest/limit.ts';
import { ProcessFailed, ProcessOutputTooLarge, runLimited, type ProcessLimits } from '../../util/limited-process.ts';
import { hidePath, PluginFailed, type ImportPlugin, type PluginContext } from './plugin.ts';

// Glance's `image_decompression` (spec §1.3), plus bzip2 and xz. The decompressed data goes to a sibling
// temp file through a byte cap of image_size_cap, so a decompression bomb fails cleanly; the staged file
// is replaced only when everything succeeded, and the temp file is removed on every failure.

type Kind = 'zip' | 'lha' | 'gzip' | 'bzip2' | 'xz';

const HEADER_BYTES = 8;

/** The archive kind by magic number, in Glance's order (zip, lha, gzip), then bzip2 and xz. */
export function detectCompression(head: Buffer): Kind | null {
  const at = (offset: number, bytes: number[]): boolean => head.length >= offset + bytes.length && bytes.every((b, i) => head[offset + i] === b);
  if (at(0, [0x50, 0x4b, 0x03, 0x04])) return 'zip';
  // "-lh?-" at offset 2 (e.g. -lh5-): Glance matches "-lh"; the closing dash avoids catching raw data.
  if (at(2, [0x2d, 0x6c, 0x68]) && head[6] === 0x2d) return 'lha';
  if (at(0, [0x1f, 0x8b, 0x08])) return 'gzip';
  // "BZh" then the block size digit 1-9.
  if (at(0, [0x42, 0x5a, 0x68]) && (head[3] ?? 0) >= 0x31 && (head[3] ?? 0) <= 0x39) return 'bzip2';
  if (at(0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  return null;
}

export interface DecompressionOptions {
  /** Address-space limit of the external decompressors, in bytes. */
  addressSpaceBytes: number;
}

export class DecompressionPlugin implements ImportPlugin {
  readonly name = 'image_decompression';

  constructor(private readonly options: DecompressionOptions) {}

  async run(ctx: PluginContext): Promise<void> {
    // The user wants the archive stored as it is.
    if (ctx.image.container_format === 'compressed') return;
    const src = resolve(ctx.stagedPath);
    const kind = detectCompression(await readHead(src));
    if (!kind) return;
    if (kind === 'lha') throw new PluginFailed('The image is an LHA archive; LHA decompression is not supported.');
    const tmp = `${src}.uc`;
    try {
      // Opened here, closed before the cleanup below: no late open can recreate the file after rm.
      const out = await open(tmp, 'w');
      try {
        await this.decompress(kind, src, out, ctx);
      } finally {
        await out.close();
      }
      ctx.signal.throwIfAborted();
      await rename(tmp, src);
    } catch (err) {
      await rm(tmp, { force: true });
      throw translate(err, kind, src, ctx);
    }
  }

  private async decompress(kind: Exclude<Kind, 'lha'>, src: string, out: FileHandle, ctx: PluginContext): Promise<void> {
    const save = (data: Readable): Promise<void> => pipeline(data, new SizeLimit(ctx.sizeCap), out.createWriteStream(), { signal: ctx.signal });
    const limits = { addressSpaceBytes: this.options.addressSpaceBytes };
    switch (kind) {
      case 'gzip':
        await pipeline(createReadStream(src), createGunzip(), new SizeLimit(ctx.sizeCap), out.createWriteStream(), {
          signal: ctx.signal,
        });
        return;
      case 'bzip2':
      case 'xz':
        await runLimited(kind, ['-dc', '--', src], { limits, signal: ctx.signal, consumeStdout: save });
        return;
      case 'zip':
        await checkSingleMember(src, limits, ctx.signal);
        // No member named: with exactly one member, -p writes just it, and names are never parsed as
        // unzip's wildcard patterns. -P '' answers a password prompt so an encrypted member fails at once.
        await runLimited('unzip', ['-qq', '-P', '', '-p', src], { limits, signal: ctx.signal, consumeStdout: save });
        return;
    }
  }
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEADER_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function checkSingleMember(src: string, limits: ProcessLimits, signal: AbortSignal): Promise<void> {
  let names: string[];
  try {
    const { stdout } = await runLimited('unzip', ['-Z1', src], { limits, signal, maxOutputBytes: 64 * 1024 });
    names = stdout.split('\n').filter((n) => n.length > 0);
  } catch (err) {
    // A listing longer than 64 KiB names many members.
    if (err instanceof ProcessOutputTooLarge) throw new PluginFailed('Archive contains more than one file.');
    throw err;
  }
  if (names.length > 1) throw new PluginFailed('Archive contains more than one file.');
  if (names[0] === undefined || names[0].endsWith('/')) throw new PluginFailed('Archive contains no file.');
}

function translate(err: unknown, kind: Kind, src: string, ctx: PluginContext): unknown {
  if (ctx.signal.aborted || err instanceof PluginFailed) return err;
  if (err instanceof SizeLimitExceeded) {
    return new PluginFailed(`The decompressed image is larger than image_size_cap (${ctx.sizeCap} bytes)`);
  }
  if (err instanceof ProcessFailed) {
    const why = hidePath(firstLine(err.stderr) || err.message, src);
    return new PluginFailed(`The ${kind} data could not be decompressed: ${why}`);
  }
  if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) {
    return new PluginFailed(`The gzip data could not be decompressed: ${(err as Error).message}`);
  }
  return err;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
