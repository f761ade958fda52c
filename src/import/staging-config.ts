import { readdir, rm } from 'node:fs/promises';
import type { Logger } from '../util/logger.ts';
import path from 'node:path';
import { ConfigError, fileUriToPath, type Config } from '../config/index.ts';
import { StoreRegistry } from '../stores/registry.ts';
import { processAlive } from '../util/process.ts';
import { StagingArea } from './staging-area.ts';
import { placeWithin } from '../stores/places.ts';
import { sqliteDatabaseFile } from '../db/connection.ts';

/**
 * The staging area the configuration asks for, in this order:
 * - `[DEFAULT] staging_store = <store>` (Gaze): an S3 or Swift store of this node's stores, which
 *   then keeps staged data beside images, under names of its own;
 * - `[os_glance_staging_store]` with S3 (`s3_store_host`, …) or Swift (`swift_store_auth_address`, …)
 *   options, as a store section takes them: a store for staged data only;
 * - files: `[os_glance_staging_store] filesystem_store_datadir` (multi-store, as Glance), else
 *   `node_staging_uri`, else `<data_dir>/staging`.
 */
export async function stagingAreaFromConfig(config: Config, stores: StoreRegistry, log?: Logger): Promise<StagingArea> {
  const hashAlgo = config.get('DEFAULT', 'hashing_algorithm');
  // Plugins' local copies of object-staged data; files are worked on where they are staged.
  const workDir = () => processWorkDir(config.dataPath('staging-work'));
  const named = config.get('DEFAULT', 'staging_store');
  if (named) {
    const store = stores.get(named);
    if (!store)
      return config.refuse(
        'DEFAULT',
        'staging_store',
        `no store '${named}' is configured (stores: ${stores
          .all()
          .map((s) => s.id)
          .join(', ')})`,
      );
    if (store.type !== 's3' && store.type !== 'swift') {
      return config.refuse(
        'DEFAULT',
        'staging_store',
        `store '${named}' is a ${store.type} store; staging in a store needs s3 or swift (files: node_staging_uri)`,
      );
    }
    const dir = await workDir();
    return configured(() => StagingArea.inStore(store, { workDir: dir, hashAlgo, dedicated: false }));
  }
  const section = config.section('os_glance_staging_store');
  // A Swift account is named inline or by a reference of glance-swift.conf.
  const type = section.s3_store_host ? 's3' : section.swift_store_auth_address || section.swift_store_config_file ? 'swift' : null;
  if (type) {
    const store = await StoreRegistry.standalone('os_glance_staging_store', type, section, config, log);
    refuseImagesWithin(config, store.driver.places, stores, ['os_glance_staging_store', type === 's3' ? 's3_store_bucket' : 'swift_store_container']);
    const dir = await workDir();
    return configured(() => StagingArea.inStore(store, { workDir: dir, hashAlgo, dedicated: true }));
  }
  const dir = path.resolve(stagingDir(config));
  const option: [string, string] = reservedStagingDir(config) ? ['os_glance_staging_store', 'filesystem_store_datadir'] : ['DEFAULT', 'node_staging_uri'];
  refuseImagesWithin(config, [`file:${dir}`], stores, option);
  const own = ownFiles(config).find((place) => placeWithin([`file:${place}`], [`file:${dir}`]));
  if (own)
    config.refuse(option[0], option[1], `the staging directory would hold ${own}, whose files its sweep would remove: give staging a directory of its own`);
  return StagingArea.onFiles(dir, hashAlgo);
}

/** The directories of the service's own files: data_dir, the image cache, a SQLite database's. */
function ownFiles(config: Config): string[] {
  const places = [config.dataPath()];
  const cache = config.get('DEFAULT', 'image_cache_dir');
  if (cache) places.push(cache);
  const connection = config.get('database', 'connection');
  const sqliteFile = connection ? sqliteDatabaseFile(connection) : null;
  if (sqliteFile) places.push(path.dirname(sqliteFile));
  return places.map((place) => path.resolve(place));
}

/**
 * A staging area of its own (every object in it is staged data) must not hold an image store's data:
 * the sweep of staged data nobody waits for would remove every image's.
 */
function refuseImagesWithin(config: Config, stagingPlaces: readonly string[], stores: StoreRegistry, [section, option]: [string, string]): void {
  for (const store of stores.all()) {
    const shared = placeWithin(store.driver.places, stagingPlaces);
    if (shared) {
      config.refuse(section, option, `staged data would be kept where store '${store.id}' keeps images (${shared}): give staging a place of its own`);
    }
  }
}

/** A staging area whose construction failed on its settings is a configuration error. */
function configured(make: () => StagingArea): StagingArea {
  try {
    return make();
  } catch (err) {
    throw new ConfigError(`staging: ${(err as Error).message}`);
  }
}

/** Multi-store mode names staging as a reserved store (Glance's os_glance_staging_store section). */
function reservedStagingDir(config: Config): string | null {
  const reserved = config.section('os_glance_staging_store').filesystem_store_datadir;
  return config.get('DEFAULT', 'enabled_backends').length > 0 && reserved ? reserved : null;
}

export function stagingDir(config: Config): string {
  const reserved = reservedStagingDir(config);
  if (reserved) return reserved;
  const uri = config.get('DEFAULT', 'node_staging_uri');
  return uri ? fileUriToPath(uri) : config.dataPath('staging');
}

/**
 * This process's directory for plugins' local copies of object-staged data (workers share the parent);
 * the directories of processes that are gone are removed.
 */
async function processWorkDir(base: string): Promise<string> {
  for (const name of await readdir(base).catch(() => [] as string[])) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) await rm(path.join(base, name), { recursive: true, force: true });
  }
  return path.join(base, String(process.pid));
}
