import { createReadStream } from 'node:fs';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FormatInspector, FormatReport } from './types.ts';
import { INSPECTION_FAILED } from './verdict.ts';
import { Qcow2Inspector } from './qcow2.ts';
import { VhdInspector } from './vhd.ts';
import { VhdxInspector } from './vhdx.ts';
import { VmdkInspector } from './vmdk.ts';
import { VdiInspector } from './vdi.ts';
import { QedInspector } from './qed.ts';
import { IsoInspector } from './iso.ts';
import { GptInspector } from './gpt.ts';
import { LuksInspector } from './luks.ts';

/** How much an inspecting stream holds, and a file is read by, at a time (as the ingest pipeline's stages). */
const CHUNK_BYTES = 256 * 1024;

// The streaming format inspection engine (spec plugins-and-safety §2.2 step 1): every inspector sees
// every byte once, in order, and the detected format is decided when the stream ends, as oslo.utils'
// InspectWrapper does. Raw is what remains when no richer format matches.

/** One inspector of each richer format (raw is implicit). */
export function allInspectors(): FormatInspector[] {
  return [
    new Qcow2Inspector(),
    new VhdInspector(),
    new VhdxInspector(),
    new VmdkInspector(),
    new VdiInspector(),
    new QedInspector(),
    new IsoInspector(),
    new GptInspector(),
    new LuksInspector(),
  ];
}

/** Feeds inspectors and decides the format; the core of InspectingStream and inspectFile. */
export class FormatDetector {
  private offset = 0;
  private finished: FormatReport | null = null;
  /** Inspectors that threw while reading; like oslo.utils, they no longer count as candidates. */
  private readonly broken = new Set<FormatInspector>();

  constructor(private readonly inspectors: FormatInspector[] = allInspectors()) {}

  feed(chunk: Buffer): void {
    if (this.finished) throw new Error('format detector fed after the end of the stream');
    if (chunk.length === 0) return;
    for (const inspector of this.inspectors) {
      if (this.broken.has(inspector)) continue;
      try {
        inspector.feed(chunk, this.offset);
      } catch {
        this.broken.add(inspector);
      }
    }
    this.offset += chunk.length;
  }

  /** Ends the stream (idempotent) and returns the report. */
  finish(): FormatReport {
    if (this.finished) return this.finished;
    for (const inspector of this.inspectors) {
      if (this.broken.has(inspector)) continue;
      try {
        inspector.finish(this.offset);
      } catch {
        this.broken.add(inspector);
      }
    }
    this.finished = this.decide();
    return this.finished;
  }

  get report(): FormatReport | null {
    return this.finished;
  }

  private decide(): FormatReport {
    const size = this.offset;
    const none = { failures: [], subformat: null };
    try {
      const matched = this.inspectors.filter((i) => !this.broken.has(i) && i.matches());
      const names = matched.map((i) => i.format).sort();
      if (matched.length === 0) return { format: 'raw', virtualSize: size, size, ...none, error: null };
      // Bootable ISOs legitimately carry an MBR/GPT in their system area.
      const detected = matched.length === 1 ? matched[0] : names.join(',') === 'gpt,iso' ? matched.find((i) => i.format === 'iso')! : null;
      if (!detected) {
        return { format: null, virtualSize: null, size, ...none, error: `Multiple formats detected: ${names.join(',')}` };
      }
      return {
        format: detected.format,
        virtualSize: detected.virtualSize(),
        size,
        failures: detected.safetyFailures(),
        subformat: detected.subformat(),
        error: null,
      };
    } catch {
      // An inspector that cannot judge the data it accepted: refuse rather than guess (Glance does too).
      return { format: null, virtualSize: null, size, ...none, error: INSPECTION_FAILED };
    }
  }
}

/** A pass-through stream that inspects what flows through it; report() once it has ended. */
export class InspectingStream extends Transform {
  private readonly detector: FormatDetector;

  constructor(inspectors?: FormatInspector[]) {
    super({ highWaterMark: CHUNK_BYTES });
    this.detector = new FormatDetector(inspectors);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.detector.feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.detector.finish();
    callback();
  }

  report(): FormatReport {
    const report = this.detector.report;
    if (!report) throw new Error('InspectingStream.report() asked before the stream ended');
    return report;
  }
}

/** Streams a whole file through the inspectors. */
export function inspectFile(path: string): Promise<FormatReport> {
  return inspectStream(createReadStream(path, { highWaterMark: CHUNK_BYTES }));
}

/** Reads a whole stream (through `before`, e.g. a size limit) only to inspect it; keeps none of it. */
export async function inspectStream(source: Readable, ...before: Transform[]): Promise<FormatReport> {
  const inspecting = new InspectingStream();
  const discard = new Writable({ highWaterMark: CHUNK_BYTES, write: (_chunk, _enc, done) => done() });
  await pipeline([source, ...before, inspecting, discard]);
  return inspecting.report();
}
