import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/index.ts';
import { parseIni } from '../config/ini.ts';
import { StoreAddDisabled, StoreLeftOut } from './add-disabled.ts';

// glance-swift.conf (swift_store_config_file): one section per Swift account, named by a reference
// (default_swift_reference picks the one a store writes with), so that no credentials are kept in
// glance-api.conf or in the locations. Glance reads it with Python's configparser: option names in any
// case, values taken out of one pair of quotes, [DEFAULT] options shared by every reference, and
// `%(option)s` and `%%` expanded.

/** An option of one reference (any case), after interpolation and quote removal, as configparser's get() reads it. */
export type SwiftReference = (option: string) => string | undefined;

export function readSwiftReference(file: string, reference: string): SwiftReference {
  // glance_store's reading: a file that is not there, or that configparser cannot parse, leaves the
  // store out; one that is there but cannot be opened reads as empty (configparser skips it), and the
  // store has no account to add with.
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreLeftOut(`swift config file ${file} cannot be read: it does not exist`);
    throw new StoreAddDisabled(`swift config file ${file} cannot be read (${(err as Error).message}): it names no reference [${reference}]`, null);
  }
  let sections: ReturnType<typeof parseIni>['sections'];
  try {
    sections = parseIni(text, file).sections;
  } catch (err) {
    if (err instanceof ConfigError) throw new StoreLeftOut(err.message);
    throw err;
  }
  const lowered = (name: string) => new Map([...(sections.get(name) ?? new Map()).entries()].map(([key, value]) => [key.toLowerCase(), value.text]));
  const defaults = lowered('DEFAULT');
  const wanted = reference.toLowerCase();
  if (wanted === 'default' || !sections.has(wanted)) {
    const known = [...sections.keys()].filter((s) => s !== 'DEFAULT');
    // glance_store then has no auth address: the store stays, with adding disabled.
    throw new StoreAddDisabled(
      `swift config file ${file} has no reference [${reference}] (default_swift_reference); it has ${known.length ? known.map((s) => `[${s}]`).join(', ') : 'none'}`,
      null,
    );
  }
  const raw = new Map([...defaults, ...lowered(wanted)]);
  // Read when asked, as configparser does: a mistake in an option nobody reads stops nothing.
  return (option) => {
    const key = option.toLowerCase();
    return raw.has(key) ? unquote(interpolate(raw, key, file, reference, 0), file, reference, key) : undefined;
  };
}

// configparser's BasicInterpolation: %(name)s is another option of the same reference (or of
// [DEFAULT]), %% a percent sign; any other % is an error, as it stops Glance at start.
function interpolate(raw: Map<string, string>, key: string, file: string, reference: string, depth: number): string {
  if (depth > 10) throw new ConfigError(`swift config file ${file}: [${reference}] ${key} refers to itself through %(...)s`);
  const value = raw.get(key)!;
  return value.replace(/%(%|\(([^)]*)\)s|)/g, (whole, _all: string, name: string | undefined) => {
    if (whole === '%%') return '%';
    if (name === undefined) throw new ConfigError(`swift config file ${file}: [${reference}] ${key} has a '%' that is not '%%' or '%(option)s'`);
    if (!raw.has(name.toLowerCase())) throw new ConfigError(`swift config file ${file}: [${reference}] ${key} refers to %(${name})s, which is not set`);
    return interpolate(raw, name.toLowerCase(), file, reference, depth + 1);
  });
}

function unquote(value: string, file: string, reference: string, key: string): string {
  const first = value[0];
  if (first !== '"' && first !== "'") return value;
  if (value.length === 1 || value[value.length - 1] !== first)
    throw new ConfigError(`swift config file ${file}: [${reference}] ${key} has a quote that is not closed`);
  return value.slice(1, -1);
}
