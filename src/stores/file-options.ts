import { boolOption, ConfigError } from '../config/index.ts';
import type { Config } from '../config/index.ts';
import path from 'node:path';
import { readFileSync, statSync } from 'node:fs';
import { processWarning, type Warn } from './driver.ts';
import { FileStoreDriver, type DataDir, type MountpointMetadata } from './file.ts';

/**
 * The registry factory of a file store. Options of the store's section, with Glance's names:
 *   filesystem_store_datadir    the directory (default: under [DEFAULT] data_dir)
 *   filesystem_store_datadirs   several directories instead, one `path:priority` per line (repeat the
 *                               option), the priority an integer, 0 when left out
 *   filesystem_thin_provisioning  zeros left as holes in the files (sparse), not written (default false)
 *   filesystem_store_file_perm  the mode of each image file, for other services (nova) that read the
 *                               files directly: an integer whose digits are octal (640 is rw-r-----);
 *                               0 or less leaves the process's default
 *   filesystem_store_metadata_file  a JSON file of `{"id", "mountpoint"}` (or a list of them): each new
 *                               location gets the one whose mountpoint holds its file, for the same
 *                               services
 */
export function createFileDriver(storeId: string, options: Record<string, string>, config: Config, warn?: Warn): FileStoreDriver {
  const mode = {
    warn,
    fileMode: fileMode(storeId, options.filesystem_store_file_perm),
    sparse: boolOption(options.filesystem_thin_provisioning, false, `store ${storeId}: filesystem_thin_provisioning`),
    mountpoints: mountpointMetadata(storeId, options.filesystem_store_metadata_file),
  };
  const dir = options.filesystem_store_datadir?.trim();
  const dirs = options.filesystem_store_datadirs;
  if (dirs !== undefined) {
    // Glance refuses both; its default datadir makes it refuse datadirs unless datadir is emptied, which
    // Gaze, whose default directory is its own, does not ask for.
    if (dir) throw new ConfigError(`store ${storeId}: specify either filesystem_store_datadir or filesystem_store_datadirs`);
    const driver = new FileStoreDriver(dataDirs(storeId, dirs), mode);
    warnOfDirsNeverCreated(driver, warn);
    return driver;
  }
  if (dir === '') throw new ConfigError(`store ${storeId}: specify at least filesystem_store_datadir or filesystem_store_datadirs`);
  const driver = new FileStoreDriver(dir ?? config.dataPath('stores', storeId), mode);
  warnOfDirsNeverCreated(driver, warn);
  return driver;
}

/**
 * Said at start, as glance_store logs a store it could not configure: a directory that can never be
 * made, its nearest existing ancestor being no directory. (Looked at, not made: `config check` writes nothing.)
 */
function warnOfDirsNeverCreated(driver: FileStoreDriver, warn: Warn | undefined): void {
  for (const { path: dir } of driver.dirs) {
    for (let place = dir; ; place = path.dirname(place)) {
      let info;
      try {
        info = statSync(place, { throwIfNoEntry: false });
      } catch (err) {
        // Below something that is no directory: look further up. Anything else is not this check's to say.
        if ((err as NodeJS.ErrnoException).code !== 'ENOTDIR') break;
      }
      if (info) {
        if (!info.isDirectory())
          (warn ?? processWarning)(`the directory ${dir} cannot be created (${place} is no directory): adding images to this store is refused`);
        break;
      }
      if (path.dirname(place) === place) break;
    }
  }
}

/** filesystem_store_datadirs' lines, `path[:priority]` each, as glance_store reads them. */
function dataDirs(storeId: string, text: string): DataDir[] {
  const dirs: DataDir[] = [];
  for (const line of text.split('\n')) {
    const colon = line.lastIndexOf(':');
    const dir = (colon < 0 ? line : line.slice(0, colon)).trim();
    const priorityText = colon < 0 ? '' : line.slice(colon + 1).trim();
    if (priorityText !== '' && !/^[+-]?\d+$/.test(priorityText)) {
      throw new ConfigError(`store ${storeId}: filesystem_store_datadirs '${line}': the priority '${priorityText}' is not an integer`);
    }
    if (!dir) throw new ConfigError(`store ${storeId}: filesystem_store_datadirs '${line}' names no directory`);
    const priority = priorityText === '' ? 0 : Number(priorityText);
    const resolved = path.resolve(dir);
    const same = dirs.find((d) => d.path === resolved);
    // The same directory twice: harmless with the same priority (Glance warns), a contradiction otherwise.
    if (same && same.priority !== priority)
      throw new ConfigError(`store ${storeId}: filesystem_store_datadirs names ${dir} twice, with priorities ${same.priority} and ${priority}`);
    if (!same) dirs.push({ path: resolved, priority });
  }
  return dirs;
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

/**
 * filesystem_store_metadata_file's entries, read at start as glance_store validates them: one object or a
 * list, each with string `id` and `mountpoint`. A file that cannot be read or is not that stops start-up.
 */
function mountpointMetadata(storeId: string, file: string | undefined): MountpointMetadata[] {
  if (file === undefined || file.trim() === '') return [];
  const where = `store ${storeId}: filesystem_store_metadata_file ${file.trim()}`;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file.trim(), 'utf8'));
  } catch (err) {
    const reason = err instanceof SyntaxError ? `is not valid JSON (${err.message})` : `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    throw new ConfigError(`${where} ${reason}`);
  }
  const entries = Array.isArray(value) ? value : [value];
  for (const [i, entry] of entries.entries()) {
    const fields = entry as Record<string, unknown> | null;
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields) || typeof fields.id !== 'string' || typeof fields.mountpoint !== 'string') {
      throw new ConfigError(`${where}: entry ${i} is not an object with string "id" and "mountpoint"`);
    }
    if (!onlyText(fields)) throw new ConfigError(`${where}: entry ${i} holds a value that is not text, an object or a list (glance_store takes no other)`);
  }
  return entries as MountpointMetadata[];
}

/** glance_store's check_location_metadata: strings, and objects and lists of them, all the way down. */
function onlyText(value: unknown): boolean {
  if (typeof value === 'string') return true;
  if (Array.isArray(value)) return value.every(onlyText);
  return typeof value === 'object' && value !== null && Object.values(value).every(onlyText);
}
