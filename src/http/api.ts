import type { ImageService } from '../services/images.ts';
import type { ImageUpdateService } from '../services/image-update.ts';
import type { ImageListService } from '../services/image-list.ts';
import type { ImageDataService } from '../services/image-data.ts';
import type { MemberService } from '../services/members.ts';
import type { StagingService } from '../services/staging.ts';
import type { ImportService } from '../services/imports.ts';
import type { LocationApiService } from '../services/location-api.ts';
import type { ImageCacheService } from '../services/image-cache.ts';
import type { TaskService } from '../services/tasks.ts';
import type { StoreInfoService } from '../services/store-info.ts';
import type { ImageViewOptions } from './views.ts';
import type { JsonSchema } from '../schemas/image.ts';
import type { UploadWatchdogOptions } from './upload-watchdog.ts';
import type { QuotaService } from '../quota/quotas.ts';
import type { FormatCheckService } from '../services/format-check.ts';
import type { MetadefNamespaceService } from '../services/metadef-namespaces.ts';
import type { MetadefContentService } from '../services/metadef-contents.ts';

/** What the routes call: use cases and view settings, handed over by app.ts. */
export interface Api {
  images: ImageService;
  imageUpdates: ImageUpdateService;
  imageList: ImageListService;
  imageData: ImageDataService;
  members: MemberService;
  staging: StagingService;
  imports: ImportService;
  locations: LocationApiService;
  cache: ImageCacheService;
  tasks: TaskService;
  storeInfo: StoreInfoService;
  metadefNamespaces: MetadefNamespaceService;
  metadefContents: MetadefContentService;
  limits: { default: number; max: number };
  view: ImageViewOptions;
  schemas: Record<string, JsonSchema>;
  importMethods: string[];
  storeIds: string[];
  /** How long an upload body may stall or trickle before it is cut off. */
  uploadWatchdog: UploadWatchdogOptions;
  quotas: QuotaService;
  formatCheck: FormatCheckService;
}
