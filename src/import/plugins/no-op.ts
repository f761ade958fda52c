import type { ImportPlugin } from './plugin.ts';

/** Glance's `no_op`: proves the plugin chain runs, changes nothing. */
export class NoOpPlugin implements ImportPlugin {
  readonly name = 'no_op';

  async run(): Promise<void> {}
}
