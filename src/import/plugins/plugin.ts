import type { Image } from '../../domain/image.ts';
import type { FormatReport } from '../../formats/types.ts';
import type { Verdict } from '../../formats/verdict.ts';

// The contract between the import runner and the import plugins (spec plugins-and-safety §1). The runner
// calls the configured plugins in order on the staged file, after staging and before the store writes,
// for every import method except copy-image; a plugin that throws fails the import.

export interface PluginContext {
  /** The image as it is now (the runner re-reads it between plugins). */
  image: Image;
  /** The staged file; a plugin that changes the data writes a sibling file and renames it over this path. */
  stagedPath: string;
  /** The importing user's roles, lower-cased. */
  roles: string[];
  /** Abort = stop at once, kill child processes, remove temp files. */
  signal: AbortSignal;
  /** image_size_cap: no output may exceed it. */
  sizeCap: number;
  updateImage(fields: { disk_format?: string; container_format?: string; virtual_size?: number | null }): Promise<void>;
  setProperties(props: Record<string, string>): Promise<void>;
  /** Property protections (may the importing user create/update this property?), true when none are configured. */
  mayWriteProperty(name: string, exists: boolean): boolean;
  /** Streams a file through the format inspectors (formats/inspector.ts). */
  inspectFile(path: string): Promise<FormatReport>;
  /** formats/verdict.ts judge with the service's FormatPolicy bound. */
  judge(report: FormatReport, claimedDiskFormat: string | null): Verdict;
  /** Where a plugin reports what it skipped or dropped (Glance logs these as warnings); ignored when absent. */
  warn?(message: string): void;
}

export interface ImportPlugin {
  readonly name: string;
  run(ctx: PluginContext): Promise<void>;
}

/** A plugin refused the data or could not process it; the message is the task failure message the user sees. */
export class PluginFailed extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PluginFailed';
  }
}

/** A tool's message without the server's staging directory: users see the file name only. */
export function hidePath(text: string, path: string): string {
  const dir = path.slice(0, path.lastIndexOf('/') + 1);
  return dir ? text.split(dir).join('') : text;
}
