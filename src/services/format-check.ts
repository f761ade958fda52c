import type { Readable } from 'node:stream';
import type { RequestContext } from '../auth/context.ts';
import { gazeError } from '../domain/errors.ts';
import { inspectStream } from '../formats/inspector.ts';
import { judge, type FormatPolicy } from '../formats/verdict.ts';
import type { FormatReport, SafetyFailure } from '../formats/types.ts';
import { SizeLimit, SizeLimitExceeded } from '../ingest/limit.ts';
import type { ServiceDeps } from './deps.ts';

/** What `POST /v2/x-gaze/format-check` answers: what an upload of these bytes would meet. */
export interface FormatCheckResult {
  /** The detected format; null when detection failed (several formats matched). */
  format: string | null;
  virtual_size: number | null;
  /** Bytes read. */
  size: number;
  /** The disk_format the bytes were judged against: the one asked about, else the detected one. */
  disk_format: string | null;
  safety_checks: SafetyFailure[];
  verdict: 'accepted' | 'rejected';
  /** Why an upload or import of these bytes would be refused (the 415 / task message); null when accepted. */
  reason: string | null;
  warnings: string[];
}

/**
 * The dry-run check (a Gaze extension): streams the bytes through the same inspectors and verdict as an
 * upload with container_format bare, and stores nothing.
 */
export class FormatCheckService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: { diskFormats: string[]; formatPolicy: FormatPolicy },
  ) {}

  async check(ctx: RequestContext, source: Readable, diskFormat: string | null): Promise<FormatCheckResult> {
    this.deps.policy.enforce('add_image', ctx, { project_id: ctx.projectId, owner: ctx.projectId });
    if (diskFormat !== null && !this.opts.diskFormats.includes(diskFormat)) {
      throw gazeError('BAD_REQUEST', `Invalid disk_format '${diskFormat}': one of ${this.opts.diskFormats.join(', ')} was expected.`);
    }
    let report: FormatReport;
    try {
      report = await inspectStream(source, new SizeLimit(this.deps.settings.imageSizeCap));
    } catch (err) {
      if (err instanceof SizeLimitExceeded) throw gazeError('IMAGE_TOO_LARGE');
      throw err;
    }
    const judgedAs = diskFormat ?? report.format;
    const verdict = judge(report, judgedAs, this.opts.formatPolicy);
    return {
      format: report.format,
      virtual_size: verdict.accepted ? verdict.virtualSize : report.virtualSize,
      size: report.size,
      disk_format: judgedAs,
      safety_checks: report.failures,
      verdict: verdict.accepted ? 'accepted' : 'rejected',
      reason: verdict.accepted ? null : verdict.reason,
      warnings: verdict.warnings,
    };
  }
}
