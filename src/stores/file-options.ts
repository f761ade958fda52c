import { ConfigError } from '../config/index.ts';
import type { Config } from '../config/index.ts';
import { FileStoreDriver } from './file.ts';

/**
 * The registry factory of a file store. Options of the store's section, with Glance's names:
 *   filesystem_store_datadir    the directory (default: under [DEFAULT] data_dir)
 *   filesystem_store_file_perm  the mode of each image file, for other services (nova) that read the
 *                               files directly: an integer whose digits are octal (640 is rw-r-----);
 *                               0 or less leaves the process's default
 */
export function createFileDriver(storeId: string, options: Record<string, string>, config: Config): FileStoreDriver {
  return new FileStoreDriver(options.filesystem_store_datadir ?? config.dataPath('stores', storeId), {
    fileMode: fileMode(storeId, options.filesystem_store_file_perm),
  });
}

/** filesystem_store_file_perm as a mode, or null for none; refused where Glance refuses it, and where its digits are not octal. */
export function fileMode(storeId: string, value: string | undefined): number | null {
  const text = value?.trim() ?? '';
  if (text === '') return null;
  const refuse = (why: string) => new ConfigError(`store ${storeId}: filesystem_store_file_perm ${why} (got '${text}')`);
  if (!/^[+-]?\d+$/.test(text)) throw refuse('must be an integer');
  const number = Number(text);
  if (number <= 0) return null;
  if (!/^[0-7]{1,4}$/.test(String(number))) throw refuse('must be a mode of at most four octal digits, such as 640');
  const mode = parseInt(String(number), 8);
  // Glance's check: image files the service itself could not read.
  if (!(mode & 0o400)) throw refuse('would make image files unreadable by the service');
  return mode;
}
