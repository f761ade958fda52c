import type { Config } from '../config/index.ts';
import { ConfigError } from '../config/index.ts';
import { createFileDriver } from './file-options.ts';
import { Store } from './store.ts';
import { processWarning, type ByteRange, type StoreDriver, type Warn } from './driver.ts';
import { StoreAddDisabled, StoreLeftOut, unconfiguredDriver } from './add-disabled.ts';
import type { Logger } from '../util/logger.ts';
import type { Readable } from 'node:stream';
import { withoutPasswords } from '../config/redact.ts';

export type DriverFactory = (storeId: string, options: Record<string, string>, config: Config, warn: Warn) => StoreDriver;

/** A driver's warnings in the log, naming its store; without a log, as process warnings. */
function warnerFor(storeId: string, log: Logger | undefined): Warn {
  return log ? (message) => log.warn({ store: storeId }, message) : (message) => processWarning(`store ${storeId}: ${message}`);
}

// Drivers by enabled_backends type name. Loaded only when a store uses them: the AWS SDK alone costs
// a few tens of MiB that a file-only service need not carry.
const factories: Record<string, () => Promise<DriverFactory>> = {
  file: async () => createFileDriver,
  s3: async () => (await import('./s3-options.ts')).createS3Driver,
  swift: async () => (await import('./swift-options.ts')).createSwiftDriver,
  http: async () => (await import('./http.ts')).createHttpDriver,
};

// The names glance_store finds a store by in single-store mode: the schemes of its locations
// (default_store's choices) and the entry points `[glance_store] stores` may list, old ones included.
const STORE_NAMES: Record<string, string> = {
  file: 'file',
  filesystem: 'file',
  'glance.store.filesystem.Store': 'file',
  http: 'http',
  https: 'http',
  'glance.store.http.Store': 'http',
  swift: 'swift',
  'swift+http': 'swift',
  'swift+https': 'swift',
  'swift+config': 'swift',
  'glance.store.swift.Store': 'swift',
  s3: 's3',
  's3+http': 's3',
  's3+https': 's3',
  'glance.store.s3.Store': 's3',
};

/** The driver type of a store name of single-store mode; null for a store Gaze has no driver for (rbd, cinder, vsphere). */
function storeTypeOf(name: string): string | null {
  return Object.hasOwn(STORE_NAMES, name) ? STORE_NAMES[name]! : null;
}

/** Single-store mode: the store `[glance_store] default_store` names (`filesystem` is `file`). */
function singleStoreType(config: Config): string {
  const name = config.get('glance_store', 'default_store');
  const type = storeTypeOf(name);
  if (!type) throw new ConfigError(`[glance_store] default_store: unknown store type '${name}': use file, s3, swift or http`);
  return type;
}

/**
 * Single-store mode: the other stores `[glance_store] stores` lists (Glance's default `file, http`
 * adds the read-only http store), each read with [glance_store]'s options, so that locations written
 * there are read and deleted (as when moving from one store to another). Stores Gaze has no driver for
 * are named in the log.
 */
function singleStoreExtras(config: Config, warn: Warn): string[] {
  const defaultType = singleStoreType(config);
  const extras = new Set<string>();
  for (const name of config.get('glance_store', 'stores')) {
    const type = storeTypeOf(name);
    if (type === null) warn(`[glance_store] stores lists '${name}', a store Gaze has no driver for: its locations cannot be read`);
    else if (type !== defaultType) extras.add(type);
  }
  return [...extras];
}

/**
 * The stores of this node. Single-store mode (no enabled_backends): one store named after
 * `[glance_store] default_store`. Multi-store: `enabled_backends = id:type, ...`, one section per id.
 */
export class StoreRegistry {
  private readonly stores = new Map<string, Store>();
  readonly multistore: boolean;
  readonly defaultId: string;
  /** location_strategy = store_type: the store types a read tries first, in this order. Null: the list's order. */
  private readonly typePreference: string[] | null;

  /** Loads the drivers the configuration names, then builds the registry. */
  static async create(
    config: Config,
    opts: { countBytes?: (store: string, direction: 'in' | 'out', bytes: number) => void; log?: Logger } = {},
  ): Promise<StoreRegistry> {
    const backends = config.get('DEFAULT', 'enabled_backends');
    const types = backends.length ? backends.map((e) => e.split(':')[1]?.trim() ?? '') : [singleStoreType(config), ...singleStoreExtras(config, () => {})];
    const loaded: Record<string, DriverFactory> = {};
    for (const type of new Set(types)) {
      const load = factories[type];
      if (!load) throw new ConfigError(`unknown store type '${type}': use file, s3, swift or http`);
      loaded[type] = await load();
    }
    return new StoreRegistry(config, loaded, opts);
  }

  /**
   * A store outside the registry (not an image store: the staging area's own), of the given type, from
   * options written as in a store's section.
   */
  static async standalone(id: string, type: string, options: Record<string, string>, config: Config, log?: Logger): Promise<Store> {
    const load = factories[type];
    if (!load) throw new ConfigError(`unknown store type '${type}' for ${id}`);
    return new Store(id, (await load())(id, options, config, warnerFor(id, log)));
  }

  private constructor(
    config: Config,
    private readonly loaded: Record<string, DriverFactory>,
    private readonly opts: { countBytes?: (store: string, direction: 'in' | 'out', bytes: number) => void; log?: Logger },
  ) {
    const strategy = config.get('DEFAULT', 'location_strategy');
    if (strategy !== 'location_order' && strategy !== 'store_type') {
      throw new ConfigError(`[DEFAULT] location_strategy must be location_order or store_type (got '${strategy}')`);
    }
    this.typePreference = strategy === 'store_type' ? config.get('store_type_location_strategy', 'store_type_preference') : null;
    const backends = config.get('DEFAULT', 'enabled_backends');
    this.multistore = backends.length > 0;
    if (!this.multistore) {
      const type = singleStoreType(config);
      const options = { ...config.section('glance_store') };
      if (options.filesystem_store_datadirs === undefined) options.filesystem_store_datadir ??= config.dataPath('images');
      this.add(type, type, options, config);
      // The other stores' options (https_insecure, swift_store_*, …) are [glance_store]'s too. One that
      // cannot be set up with them is left out, as glance_store leaves it out, and said.
      const warn = warnerFor('glance_store', this.opts.log);
      for (const extra of singleStoreExtras(config, warn)) {
        try {
          this.add(extra, extra, options, config, { leaveOutUnreadable: true });
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          warn(`the ${extra} store that [glance_store] stores lists is left out, its locations unread: ${err.message}`);
        }
      }
      this.defaultId = type;
      return;
    }
    const leftOut = new Map<string, string>();
    for (const entry of backends) {
      const [id, type] = entry.split(':').map((s) => s.trim());
      if (!id || !type) throw new ConfigError(`enabled_backends entry '${entry}' is not id:type`);
      if (id.startsWith('os_glance_')) throw new ConfigError(`store id ${id} is reserved`);
      // A dict option to oslo.config: a key given twice stops Glance ("Duplicate key").
      if (this.stores.has(id) || leftOut.has(id)) throw new ConfigError(`enabled_backends names store ${id} twice`);
      try {
        this.add(id, type, config.section(id), config);
      } catch (err) {
        if (!(err instanceof StoreLeftOut)) throw err;
        warnerFor(id, this.opts.log)(`the store is left out, its locations unread: ${err.message}`);
        leftOut.set(id, err.message);
      }
    }
    const wanted = config.get('glance_store', 'default_backend');
    const whyNot = wanted ? leftOut.get(wanted) : undefined;
    if (whyNot) throw new ConfigError(`[glance_store] default_backend ${wanted} cannot be set up: ${whyNot}`);
    if (!wanted || !this.stores.has(wanted)) {
      throw new ConfigError(`[glance_store] default_backend must name one of enabled_backends (got '${wanted ?? ''}')`);
    }
    this.defaultId = wanted;
  }

  /** `leaveOutUnreadable`: a store whose options disable adding and name no place to read is not added (thrown instead). */
  private add(id: string, type: string, options: Record<string, string>, config: Config, opts: { leaveOutUnreadable?: boolean } = {}): void {
    const factory = this.loaded[type];
    if (!factory) throw new ConfigError(`store ${id}: unknown store type '${type}'`);
    const readOnly = /^(true|1|yes)$/i.test(options.read_only ?? '') || type === 'http';
    const count = this.opts.countBytes;
    const warn = warnerFor(id, this.opts.log);
    let driver: StoreDriver;
    let addDisabled: string | undefined;
    try {
      driver = factory(id, options, config, warn);
    } catch (err) {
      if (!(err instanceof StoreAddDisabled) || (opts.leaveOutUnreadable && !err.readable)) throw err;
      warn(`Failed to configure store correctly: ${err.reason.replace(/[^.]$/, '$&.')} Disabling add method.`);
      driver = err.readable ?? unconfiguredDriver(type);
      addDisabled = err.reason;
    }
    this.stores.set(
      id,
      new Store(id, driver, {
        readOnly,
        addDisabled,
        description: options.store_description,
        countBytes: count && ((direction, bytes) => count(id, direction, bytes)),
      }),
    );
  }

  get(id: string): Store | undefined {
    return this.stores.get(id);
  }

  default(): Store {
    return this.stores.get(this.defaultId)!;
  }

  all(): Store[] {
    return [...this.stores.values()];
  }

  /** Releases every store's connections (the service is stopping). */
  async close(): Promise<void> {
    await Promise.all(this.all().map((store) => store.close()));
  }

  /**
   * The order in which a read tries an image's locations (Glance's location_strategy): as listed, or
   * with store_type, the types of store_type_preference first in its order, the rest after, as listed.
   * Answers list locations, direct_url and stores in this order too, as Glance's do.
   */
  readOrder<L extends { url: string; metadata: Record<string, unknown> }>(locations: L[]): L[] {
    const preference = this.typePreference;
    if (!preference) return locations;
    const rank = (l: L) => {
      const at = preference.indexOf(this.forLocation(l)?.type ?? '');
      return at < 0 ? preference.length : at;
    };
    return [...locations].sort((a, b) => rank(a) - rank(b));
  }

  /**
   * The data of the first of an image's locations, in read order, that its store opens; null when none
   * does (each failure is reported to `failed`, with the location as a message may show it: its
   * password masked). `size` as for Store.read.
   */
  async openFirst(
    locations: Array<{ url: string; metadata: Record<string, unknown> }>,
    opts: { range?: ByteRange; size: number; failed(url: string, err: unknown): void },
  ): Promise<Readable | null> {
    for (const location of this.readOrder(locations)) {
      const store = this.forLocation(location);
      if (!store) continue;
      try {
        return await store.read(location.url, opts.range, opts.size);
      } catch (err) {
        opts.failed(withoutPasswords(location.url), err);
      }
    }
    return null;
  }

  /** The store that holds a location: by its recorded store id, else by url. */
  forLocation(location: { url: string; metadata: Record<string, unknown> }): Store | undefined {
    const byId = typeof location.metadata.store === 'string' ? this.stores.get(location.metadata.store) : undefined;
    return byId ?? this.all().find((s) => s.driver.owns(location.url));
  }
}
