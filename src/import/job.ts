import { Ajv } from 'ajv';
import type { TaskRow } from '../db/repos/tasks.ts';
import type { CatalogService } from '../auth/context.ts';
import type { SafeDownloadOptions } from '../net/safe-download.ts';
import type { ImportDeps } from './deps.ts';
import type { ImportPlugin } from './plugins/index.ts';
import type { ProtectionCaller } from '../auth/property-protections.ts';
import type { StagingArea } from './staging-area.ts';
import type { Metrics } from '../util/metrics.ts';
import { ImportStopped } from './failures.ts';
import { NULL_VALUE, type PropertyWrites } from '../domain/image.ts';

// What one running import carries from step to step.

export interface ImportInput {
  image_id: string;
  import_req: { method: { name: string; uri?: string } & Record<string, unknown> } & Record<string, unknown>;
  backend: Array<string | null>;
  /** The importing user's roles, for the plugins that depend on them (inject_image_metadata). */
  roles?: string[];
  /** The roles of a service calling for the user (X-Service-Token): property protections count them too. */
  service_roles?: string[];
  /** Formats and properties the import overwrote, put back if it fails (glance-download, plugins). */
  previous?: PreviousValues;
  /** The locations a copy-image made (ids), taken back if it fails with all_stores_must_succeed. */
  copies?: string[];
  /**
   * The node (its worker_self_reference_url) whose own staging holds the data a glance-direct imports:
   * an interrupted task is resumed there, never by a node that cannot see the data.
   */
  staged_on?: string;
}

export interface PreviousValues {
  disk_format: string | null;
  container_format: string | null;
  /** The overwritten properties' earlier values (null: the value null, or no such property where `absent` is missing). */
  properties: Record<string, string | null>;
  /** Which of them the image did not have (inputs written before this field read null as absent). */
  absent?: string[];
}

/** The writes that put back the properties an import overwrote. */
export function previousPropertyWrites(previous: PreviousValues | undefined): PropertyWrites {
  if (!previous) return {};
  const absent = new Set(previous.absent ?? Object.keys(previous.properties).filter((k) => previous.properties[k] === null));
  return Object.fromEntries(Object.entries(previous.properties).map(([k, v]) => [k, absent.has(k) ? null : (v ?? NULL_VALUE)]));
}

/** Who an import writes properties for, as property protections ask it (the user's and a service's roles). */
export function importCaller(input: ImportInput): ProtectionCaller {
  return { roles: input.roles ?? [], serviceRoles: input.service_roles ?? [] };
}

/** The caller's token and catalog (glance-download): kept in memory only, never in the task row. */
export interface CallerCredentials {
  token: string | null;
  catalog: CatalogService[];
  /** Who submitted a legacy task: its image is made with their rights, as Glance makes it. */
  roles?: string[];
  isAdmin?: boolean;
}

export interface EngineOptions {
  /** [image_import_opts] image_import_plugins, in order. */
  plugins: ImportPlugin[];
  glanceDownload: {
    extraProperties: string[];
    regionEndpoints: string[];
    /** This cloud's formats, which a remote image's must be among. */
    diskFormats: string[];
    containerFormats: string[];
    /** image_property_quota (-1: none), which the copied properties must keep to. */
    propertyQuota: number;
  };
  download: Pick<SafeDownloadOptions, 'filter' | 'connectTimeoutMs' | 'readTimeoutMs' | 'maxRedirects'>;
  concurrency: number;
  taskTimeToLiveHours: number;
  locationImport: LocationImportOptions;
  metrics?: Metrics;
  nodeId: string;
  /** This node's worker_self_reference_url: the tasks pinned to it (staged_on) are resumed here only. */
  selfUrl: string | null;
}

/** The locations API's task (location-import.ts). */
export interface LocationImportOptions {
  /** [DEFAULT] do_secure_hash. */
  secureHash: boolean;
  /** [DEFAULT] http_retries: reads of the data tried this many times at most. */
  retries: number;
}

export interface ImportJob {
  deps: ImportDeps;
  staging: StagingArea;
  opts: EngineOptions;
  task: TaskRow;
  input: ImportInput;
  signal: AbortSignal;
  caller: CallerCredentials | undefined;
  /**
   * Renews this process's lease; throws when this process may no longer act for the task: HandedOn when
   * another process holds it now, ImportStopped when it was ended meanwhile (a cancel through another node).
   */
  keepLease(): Promise<void>;
}

// The input an import task keeps in its row is read back by whichever process resumes or reverts it:
// checked against this schema rather than trusted.
const nullableString = { type: ['string', 'null'] };
const validInput = new Ajv({ allErrors: false }).compile<ImportInput>({
  type: 'object',
  required: ['image_id', 'import_req', 'backend'],
  properties: {
    image_id: { type: 'string' },
    import_req: {
      type: 'object',
      required: ['method'],
      properties: { method: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, uri: { type: 'string' } } } },
    },
    backend: { type: 'array', items: nullableString },
    roles: { type: 'array', items: { type: 'string' } },
    service_roles: { type: 'array', items: { type: 'string' } },
    copies: { type: 'array', items: { type: 'string' } },
    staged_on: { type: 'string' },
    previous: {
      type: 'object',
      required: ['disk_format', 'container_format', 'properties'],
      properties: {
        disk_format: nullableString,
        container_format: nullableString,
        properties: { type: 'object', additionalProperties: nullableString },
        absent: { type: 'array', items: { type: 'string' } },
      },
    },
  },
});

/** The stored input of an import task; throws (the task then fails) when it is not what the engine wrote. */
export function parseImportInput(text: string | null): ImportInput {
  let value: unknown;
  try {
    value = JSON.parse(text ?? 'null');
  } catch {
    throw new ImportStopped("The import task's stored input is not valid JSON.");
  }
  if (!validInput(value)) {
    const first = validInput.errors?.[0];
    throw new ImportStopped(`The import task's stored input is not valid: ${first ? `${first.instancePath || '/'} ${first.message}` : 'unknown error'}.`);
  }
  return value;
}

/**
 * Writes the task's input back (the values to put back if it fails, which the run adds to it), whatever
 * the task's status: a cancel may have ended it a moment ago, and its revert reads them.
 */
export async function saveInput(job: ImportJob): Promise<void> {
  await job.deps.tasks.setInput(job.task.id, JSON.stringify(job.input));
}
