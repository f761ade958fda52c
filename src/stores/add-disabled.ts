import { ConfigError } from '../config/index.ts';
import { StoreError, type StoreDriver } from './driver.ts';

/**
 * Thrown by a driver factory for options glance_store answers with BadStoreConfiguration: Glance keeps
 * such a store with its add method disabled (writes get 410) instead of refusing to start, and so does
 * the registry. `readable`: a driver that still reads the store's locations, when the options allow one.
 */
export class StoreAddDisabled extends ConfigError {
  constructor(
    reason: string,
    readonly readable: StoreDriver | null,
  ) {
    super(reason);
  }
}

/**
 * Thrown by a driver factory for a store glance_store does not load at all (its loader skips a store
 * whose driver cannot be built): in multi-store mode the store is left out of the list, and the start
 * fails only when it is the default store, as Glance's does ("Store for identifier ... not found").
 */
export class StoreLeftOut extends ConfigError {}

/**
 * Stands for a store whose options name no place to reach: it owns no location. Declared writable so
 * that the store is listed and offered as Glance lists it; the facade refuses its writes (addDisabled).
 */
export function unconfiguredDriver(type: string): StoreDriver {
  const unavailable = (): never => {
    throw new StoreError('UNAVAILABLE', `the ${type} store is not configured`);
  };
  return {
    type,
    capabilities: { writable: true, rangeRead: false, adopt: false, localPartials: false, closable: false, list: false, orphans: false },
    places: [],
    write: async () => unavailable(),
    urlFor: unavailable,
    read: async () => unavailable(),
    delete: async () => unavailable(),
    stat: async () => unavailable(),
    owns: () => false,
  };
}
