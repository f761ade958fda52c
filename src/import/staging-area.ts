import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { FileStoreDriver } from '../stores/file.ts';
import { Store } from '../stores/store.ts';

/**
 * The staging area (`node_staging_uri`): a file store named `os_glance_staging_store` whose objects are
 * named after image ids. Staged data waits here between stage (or download) and the import into stores.
 */
export class StagingArea {
  readonly driver: FileStoreDriver;
  readonly store: Store;

  constructor(dir: string) {
    this.driver = new FileStoreDriver(dir);
    this.store = new Store('os_glance_staging_store', this.driver);
  }

  get dir(): string { return this.driver.dir; }

  /** The staged file itself, for the import plugins that rewrite it. */
  path(imageId: string): string {
    return fileURLToPath(this.url(imageId));
  }

  url(imageId: string): string {
    return this.driver.urlFor(imageId);
  }

  /** Size of the staged data, or null when nothing is staged. */
  size(imageId: string): Promise<number | null> {
    return this.driver.stat(this.url(imageId));
  }

  read(imageId: string): Promise<Readable> {
    return this.store.read(this.url(imageId));
  }

  remove(imageId: string): Promise<void> {
    return this.driver.delete(this.url(imageId));
  }
}
