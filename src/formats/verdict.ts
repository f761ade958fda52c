import type { FormatReport, SafetyFailure } from './types.ts';

// What a store write does with inspected data (spec plugins-and-safety §2.2 steps 2–4), after
// glance/location.py (2025.1). Reasons are Glance's 415 / task texts; a failed safety check's reason
// deliberately also names the failed checks, since "Image failed safety checks" alone does not say
// what to fix.

/** The [image_format] options the verdict depends on. */
export interface FormatPolicy {
  /** require_image_format_match: refuse data whose format is not the claimed disk_format. */
  requireFormatMatch: boolean;
  /** gpt_safety_checks_nonfatal: gpt check names that only warn. */
  gptSafetyChecksNonfatal: string[];
  /** vmdk_allowed_types: the vmdk create-types accepted (empty: no vmdk at all). */
  vmdkAllowedTypes: string[];
  /**
   * Gaze's require_raw_format_match: data claimed raw must be raw (a partitioned or LUKS disk counts as
   * raw); false restores Glance's leniency, which lets a qcow2 through as "raw" with a warning.
   */
  requireRawFormatMatch: boolean;
  /** Gaze's virtual_size_cap: inspected data whose virtual size is larger is refused (bytes). */
  virtualSizeCap: number;
}

export type Verdict =
  | { accepted: true; virtualSize: number | null; warnings: string[] }
  | { accepted: false; kind: 'mismatch' | 'safety' | 'inspection'; reason: string; warnings: string[] };

/** Formats oslo.utils can inspect (its ALL_FORMATS); raw data claimed as anything else is not judged. */
const INSPECTABLE = new Set(['raw', 'qcow2', 'vhd', 'vhdx', 'vmdk', 'vdi', 'qed', 'iso', 'gpt', 'luks']);

export const SAFETY_FAILED = 'Image failed safety checks';
export const INSPECTION_FAILED = 'Image format inspection failed';

export function mismatchReason(claimed: string | null, detected: string): string {
  // Python prints a missing disk_format as None.
  return `Image disk_format ${claimed ?? 'None'} does not match stream data ${detected}`;
}

export function judge(report: FormatReport, claimedDiskFormat: string | null, policy: FormatPolicy): Verdict {
  const warnings: string[] = [];
  // A polyglot (or a broken inspector) is refused whatever require_image_format_match says: with no
  // single format, no safety check can vouch for the data.
  if (report.format === null) {
    return { accepted: false, kind: 'inspection', reason: report.error ?? INSPECTION_FAILED, warnings };
  }
  const detected = report.format;
  const claimed = claimedDiskFormat;

  let virtualSize: number | null = null;
  if (detected === claimed) {
    virtualSize = report.virtualSize;
  } else if (detected === 'raw' && (claimed === null || !INSPECTABLE.has(claimed))) {
    // ami, ari, aki, ploop...: nothing to compare with, so plain data is let through unmeasured.
  } else if (claimed === 'raw') {
    // A partitioned disk is raw data, and so is a LUKS volume (no disk_format of its own); a qcow2 or
    // any other container claimed raw is how bad images are slipped past checks (Nova refuses them).
    if (!RAW_KINDS.has(detected) && policy.requireFormatMatch && policy.requireRawFormatMatch) {
      return { accepted: false, kind: 'mismatch', reason: mismatchReason(claimed, detected), warnings };
    }
    // Claimed raw, the data is used as raw: its size is the byte count.
    if (detected !== 'gpt') warnings.push(`Image claims 'raw' disk_format but is actually '${detected}'`);
    virtualSize = report.size;
  } else {
    const reason = mismatchReason(claimed, detected);
    if (policy.requireFormatMatch) return { accepted: false, kind: 'mismatch', reason, warnings };
    warnings.push(`${reason}; unable to calculate virtual size`);
  }

  const fatal = safetyProblems(report, policy, warnings);
  if (fatal.length) {
    return { accepted: false, kind: 'safety', reason: `${SAFETY_FAILED}: ${fatal.map((f) => f.message).join('; ')}`, warnings };
  }
  // A format whose header gives the disk size never goes active without it, nor with an absurd one
  // (a 1 EiB qcow2 in a few KiB: qemu-img itself answers "Image is too big").
  if (detected === claimed && virtualSize === null) {
    return { accepted: false, kind: 'safety', reason: `${SAFETY_FAILED}: the virtual size of the ${detected} data cannot be determined`, warnings };
  }
  if (virtualSize !== null && virtualSize > policy.virtualSizeCap) {
    return { accepted: false, kind: 'safety', reason: `${SAFETY_FAILED}: the virtual size exceeds the limit of ${policy.virtualSizeCap} bytes`, warnings };
  }
  // Glance records a virtual size only when it is non-zero.
  return { accepted: true, virtualSize: virtualSize || null, warnings };
}

/** What may be stored as disk_format raw: plain data, a partitioned disk, a LUKS volume. */
const RAW_KINDS = new Set(['raw', 'gpt', 'luks']);

/** The detected format's failures that refuse the data; non-fatal ones become warnings. */
function safetyProblems(report: FormatReport, policy: FormatPolicy, warnings: string[]): SafetyFailure[] {
  let failures = [...report.failures];
  if (report.format === 'gpt') {
    const nonfatal = failures.filter((f) => policy.gptSafetyChecksNonfatal.includes(f.check));
    for (const f of nonfatal) warnings.push(`Non-fatal safety check failure (${f.check}): ${f.message}`);
    failures = failures.filter((f) => !nonfatal.includes(f));
  }
  if (report.format === 'qed' && !failures.some((f) => f.check === 'banned')) {
    failures.push({ check: 'banned', message: 'This file format is not allowed' });
  }
  if (report.format === 'vmdk') {
    const problem = vmdkTypeProblem(report.subformat, policy.vmdkAllowedTypes);
    if (problem) failures.push({ check: 'vmdk_allowed_types', message: problem });
  }
  return failures;
}

/** vmdk_allowed_types, with the messages of Glance's image_conversion checks plus the create-type. */
function vmdkTypeProblem(createType: string | null, allowed: string[]): string | null {
  if (!createType) return 'Unable to determine VMDK create-type';
  if (!allowed.length) return `Image is a VMDK, but no VMDK createType is specified (create-type ${createType})`;
  // The descriptor's createType is case-insensitive (oslo.utils lower-cases it before its own check).
  const wanted = createType.toLowerCase();
  if (!allowed.some((t) => t.toLowerCase() === wanted)) return `Invalid VMDK create-type specified: ${createType}`;
  return null;
}
