/** Where a configuration value came from: a file and line, or an environment variable. */
export interface ConfigPlace {
  file?: string;
  line?: number;
  /** The environment variable that set the value. */
  env?: string;
  section?: string;
  option?: string;
}

/**
 * A configuration that cannot be used: one line naming the file and line (or the environment variable),
 * the option and the reason, e.g. `/etc/glance/glance-api.conf:12: [DEFAULT] workers: 'many' is not an
 * integer`. The service stops with exit code 2.
 */
export class ConfigError extends Error {
  constructor(
    readonly reason: string,
    readonly place: ConfigPlace = {},
  ) {
    super(describe(reason, place));
    this.name = 'ConfigError';
  }
}

function describe(reason: string, place: ConfigPlace): string {
  const where = place.env ? `environment ${place.env}` : place.file ? `${place.file}${place.line ? `:${place.line}` : ''}` : '';
  const what = place.section && place.option ? `[${place.section}] ${place.option}` : '';
  return [where, what, reason].filter(Boolean).join(': ');
}
