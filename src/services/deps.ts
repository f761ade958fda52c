import type { ImagesRepo } from '../db/repos/images.ts';
import type { DelayedDeletesRepo } from '../db/repos/delayed-deletes.ts';
import type { MembersRepo } from '../db/repos/members.ts';
import type { TasksRepo } from '../db/repos/tasks.ts';
import type { StoreRegistry } from '../stores/registry.ts';
import type { Policy } from '../auth/policy.ts';
import type { Notifier } from '../notify/notifier.ts';
import type { PropertyProtections } from '../auth/property-protections.ts';
import type { SchemaValidator } from '../schemas/validate.ts';
import type { QuotaService } from '../quota/quotas.ts';
import type { FormatPolicy } from '../formats/verdict.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';

/** Everything the use cases need, assembled once in app.ts. */
export interface ServiceDeps {
  images: ImagesRepo;
  delayedDeletes: DelayedDeletesRepo;
  members: MembersRepo;
  tasks: TasksRepo;
  stores: StoreRegistry;
  policy: Policy;
  notifier: Notifier;
  imageValidator: SchemaValidator;
  /** property_protection_file rules; null or absent when protections are off. */
  propertyProtections?: PropertyProtections | null;
  settings: ServiceSettings;
  quotas: QuotaService;
  /** This process among the nodes sharing the database (util/process.ts nodeName()). */
  nodeId: string;
  /** For work outside a request (imports, sweeps); requests log through request.log. */
  log: Logger;
  metrics?: Metrics;
}

export interface ServiceSettings {
  imageSizeCap: number;
  hashingAlgorithm: string;
  imagePropertyQuota: number;
  imageTagQuota: number;
  imageMemberQuota: number;
  limitParamDefault: number;
  apiLimitMax: number;
  showMultipleLocations: boolean;
  /** Most locations an image may have (image_location_quota; negative: no limit). */
  imageLocationQuota: number;
  showImageDirectUrl: boolean;
  /** [DEFAULT] delayed_delete: a deleted image with data is kept as pending_delete until scrubbed. */
  delayedDelete: boolean;
  /** [image_format] rules every store write of container_format bare is judged by. */
  formatPolicy: FormatPolicy;
}
