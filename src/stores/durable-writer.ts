import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/**
 * Bytes buffered before a write: a few large writev calls cost far fewer thread hand-offs than many
 * 64 KiB ones, and a small batch lets the chunks go sooner (see INGEST_BUFFER_BYTES).
 */
const WRITE_BATCH_BYTES = 1 << 20;
/** Writeback is started every this many bytes, so the closing fdatasync only waits for the last stretch. */
const SYNC_EVERY_BYTES = 64 << 20;

/** Sparse writes look at the data in blocks of this size, aligned to the file, as Glance's store does. */
const HOLE_BYTES = 1 << 16;
const ZEROS = Buffer.alloc(HOLE_BYTES);

/**
 * Writes a stream into an open file and ends only once every byte is on disk (fdatasync). Rolling
 * syncs run while later data is still arriving: the kernel would otherwise keep the whole image dirty
 * in memory and write all of it at the close, which would add seconds to each upload. With `sparse`
 * (Glance's filesystem_thin_provisioning), chunks of zeros are not written but left as holes, which
 * read back as zeros and take no space.
 */
export class DurableFileWriter extends Writable {
  bytesWritten = 0;
  private position = 0;
  private unsynced = 0;
  private rollingSync: Promise<void> | null = null;
  private syncError: Error | null = null;

  constructor(
    private readonly handle: FileHandle,
    private readonly opts: { sparse?: boolean } = {},
  ) {
    super({ highWaterMark: WRITE_BATCH_BYTES });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    (async () => {
      await this.rollingSync;
      if (this.syncError) throw this.syncError;
      // Holes at the end: the file reaches its length only by being extended.
      if (this.opts.sparse && (await this.handle.stat()).size < this.position) await this.handle.truncate(this.position);
      await this.handle.datasync();
    })().then(() => callback(), callback);
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    if (this.syncError) throw this.syncError;
    if (!this.opts.sparse) return this.writeAt(buffers);
    // Runs of data are written; a block of zeros only moves the position on.
    let run: Buffer[] = [];
    let at = this.position;
    for (const buffer of buffers) {
      for (let offset = 0; offset < buffer.length;) {
        const block = buffer.subarray(offset, offset + HOLE_BYTES - (at % HOLE_BYTES));
        offset += block.length;
        at += block.length;
        if (!block.equals(ZEROS.subarray(0, block.length))) {
          run.push(block);
          continue;
        }
        await this.writeAt(run);
        run = [];
        this.position += block.length;
        this.bytesWritten += block.length;
      }
    }
    await this.writeAt(run);
  }

  private async writeAt(buffers: Buffer[]): Promise<void> {
    let pending = buffers;
    while (pending.length > 0) {
      const { bytesWritten } = await this.handle.writev(pending, this.position);
      this.position += bytesWritten;
      this.bytesWritten += bytesWritten;
      this.unsynced += bytesWritten;
      pending = remainderAfter(pending, bytesWritten);
    }
    if (this.unsynced >= SYNC_EVERY_BYTES && this.rollingSync === null) {
      this.unsynced = 0;
      this.rollingSync = this.handle.datasync().then(
        () => {
          this.rollingSync = null;
        },
        (err: Error) => {
          this.syncError = err;
          this.rollingSync = null;
        },
      );
    }
  }
}

/** What is left of `buffers` once the first `written` bytes of them are written (a short writev). */
function remainderAfter(buffers: Buffer[], written: number): Buffer[] {
  let skip = written;
  let i = 0;
  for (let buffer = buffers[i]; buffer !== undefined && skip >= buffer.length; buffer = buffers[++i]) skip -= buffer.length;
  const partial = buffers[i];
  return partial === undefined ? [] : [partial.subarray(skip), ...buffers.slice(i + 1)];
}
