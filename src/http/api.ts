import type { ImageService } from '../services/images.ts';
import type { ImageUpdateService } from '../services/image-update.ts';
import type { ImageListService } from '../services/image-list.ts';
import type { ImageDataService } from '../services/image-data.ts';
import type { MemberService } from '../services/members.ts';
import type { TasksRepo } from '../db/repos/tasks.ts';
import type { ImageViewOptions } from './views.ts';
import type { JsonSchema } from '../schemas/image.ts';

/** What the routes call: use cases and view settings, handed over by app.ts. */
export interface Api {
  images: ImageService;
  imageUpdates: ImageUpdateService;
  imageList: ImageListService;
  imageData: ImageDataService;
  members: MemberService;
  tasks: TasksRepo;
  view: ImageViewOptions;
  schemas: Record<string, JsonSchema>;
  importMethods: string[];
  storeIds: string[];
}
