import path from 'node:path';
import { ConfigError, type ConfigPlace } from './errors.ts';
import { sectionKey, type RawValue } from './ini.ts';
import { interpolate } from './interpolate.ts';
import { parseValue, unquote } from './values.ts';
import { MULTI_VALUED, OPTIONS, READ_OPTION_NAMES, type OptionName, type OptionSpec, type OptionValue, type SectionName } from './options.ts';
import { GLANCE_OPTION_NAMES } from './glance-option-names.ts';
import { envLayer, overrideLayer, readLayer, type Layer, type RawSections } from './layers.ts';
import {
  AUTH_SECTION_OPTIONS,
  FOREIGN_SECTIONS,
  nearStoreSection,
  STORE_OPTION_NAMES,
  STORE_SECTION_OPTIONS,
  TASKS_STORE_SECTION_OPTIONS,
  warnIfBracketsMissing,
  warnIfOsloListDiffers,
  type FreeFormOptions,
} from './glance-reading.ts';
import { loginOptionIsSecret, storeOptionIsSecret } from './shown.ts';

export { ConfigError } from './errors.ts';
export { configFiles } from './sources.ts';
export { boolOption, fileUriToPath, intOption } from './free-options.ts';

export type { RawSections } from './layers.ts';

/** Typed view of the configuration: declared options parsed, other sections (per-store) kept as text. */
export interface Config {
  get<S extends SectionName, O extends OptionName<S>>(section: S, option: O): OptionValue<S, O>;
  /** Options of a section that has no fixed schema (one store's section under enabled_backends). */
  section(name: string): Record<string, string>;
  /** Absolute path resolved against data_dir. */
  dataPath(...parts: string[]): string;
  warnings: string[];
  /** The files read, in order (later ones win). */
  files: readonly string[];
  /** Every declared option, its value and where that came from (`gaze config show`). */
  entries(): Array<{ section: string; option: string; value: unknown; from: string; secret: boolean }>;
  /** Refuses an option's value that parsed but cannot be used, naming where it was set. */
  refuse(section: string, option: string, reason: string): never;
}

// Sections a config may hold besides Gaze's and Glance's own: the paste-deploy pipeline of
// glance-api-paste.ini (Glance reads that file as configuration too), extra CORS origins, and Glance's
// reserved stores.
const PASTE_SECTION = /^(pipeline|filter|app|composite|filter-app|server|loader):/;
const DECLARED: Record<string, Record<string, OptionSpec>> = OPTIONS;
// Options Glance's generated samples list under a section its code does not read them from.
const SAMPLE_MISPLACED: Partial<Record<string, string>> = { 'glance_download_opts.extra_properties': '[glance_download_properties]' };

function placeOf(raw: RawValue, section: string, option: string): ConfigPlace {
  return raw.file.startsWith('environment ')
    ? { env: raw.file.slice('environment '.length), section, option }
    : { file: raw.file, line: raw.line || undefined, section, option };
}

/** Where a value was set, as `gaze config show` says it: file:line, the environment's variable, or overrides. */
function fromText(raw: RawValue): string {
  return raw.file === 'overrides' ? 'overrides' : raw.line ? `${raw.file}:${raw.line}` : raw.file;
}

/** Sections only older names of options live in ([sql], [rpc_notifier2]). */
const READ_SECTIONS: ReadonlySet<string> = new Set([...READ_OPTION_NAMES].map((name) => name.slice(0, name.indexOf('.'))));

/** oslo.config's IntOpt bounds, and those of an integer list's items, in its words. */
function checkBounds(spec: OptionSpec, value: unknown): void {
  if (Array.isArray(value)) return value.forEach((item) => checkBounds(spec, item));
  if (typeof value !== 'number') return;
  if (spec.min !== undefined && value < spec.min) throw new Error(`${value} is not valid: Should be greater than or equal to ${spec.min}`);
  if (spec.max !== undefined && value > spec.max) throw new Error(`${value} is not valid: Should be less than or equal to ${spec.max}`);
}

/** The warning for an option Gaze does not read: one Glance knows (`known`), or a misspelling. */
function ignoredOption(section: string, option: string, known: boolean): string {
  return known ? `[${section}] ${option} is a Glance option Gaze does not implement; it is ignored` : `unknown option [${section}] ${option} ignored`;
}

function defaultText(spec: OptionSpec): string {
  const d = spec.default;
  if (d === null) return '';
  if (Array.isArray(d)) return d.join(spec.type === 'multistring' ? '\n' : ',');
  if (typeof d === 'object')
    return Object.entries(d)
      .map(([k, v]) => `${k}:${v}`)
      .join(',');
  return String(d);
}

/**
 * Reads the configuration: the files in order (later ones win, as oslo.config's --config-file), then
 * the environment, then `overrides`. Without files, the embedded defaults apply. Stops with a
 * ConfigError naming the file, line and option for anything it cannot use.
 */
export function loadConfig(files?: string | readonly string[], env: NodeJS.ProcessEnv = process.env, overrides: RawSections = {}): Config {
  const fileList = files === undefined ? [] : typeof files === 'string' ? [files] : [...files];
  const layers: Layer[] = [...fileList.map(readLayer), envLayer(env), overrideLayer(overrides)];
  const warnings: string[] = layers.flatMap((layer) => layer.warnings ?? []);

  /** The newest value of any name of the option, with the name it was found under. */
  const find = (candidates: ReadonlyArray<readonly [string, string]>): { raw: RawValue; name: readonly [string, string] } | null => {
    for (let i = layers.length - 1; i >= 0; i--) {
      for (const name of candidates) {
        const raw = layers[i]!.sections.get(name[0])?.get(name[1]);
        if (raw) return { raw, name };
      }
    }
    return null;
  };

  // Interpolated texts, resolved on demand; `resolving` catches a reference cycle.
  const texts = new Map<string, string>();
  const resolving: string[] = [];
  const textOf = (section: string, option: string, place: ConfigPlace): string | null => {
    const key = `${section}.${option}`;
    const known = texts.get(key);
    if (known !== undefined) return known;
    const spec = DECLARED[section]?.[option];
    const found = find([[section, option], ...(spec?.aliases ?? [])]);
    if (!found && !spec) return null;
    if (resolving.includes(key)) throw new ConfigError(`$ references loop: ${[...resolving, key].join(' -> ')}`, place);
    resolving.push(key);
    try {
      const at = found ? placeOf(found.raw, section, option) : place;
      const text = found ? interpolate(found.raw.text, (ref) => reference(section, ref, at)) : defaultText(spec!);
      texts.set(key, text);
      return text;
    } finally {
      resolving.pop();
    }
  };
  const reference = (section: string, ref: string, place: ConfigPlace): string => {
    const dot = ref.indexOf('.');
    const resolved =
      dot > 0 ? textOf(sectionKey(ref.slice(0, dot)), ref.slice(dot + 1), place) : (textOf(section, ref, place) ?? textOf('DEFAULT', ref, place));
    if (resolved === null) throw new ConfigError(`$${ref} refers to no option`, place);
    // oslo.config substitutes the value its INI layer read, without the quotes around it.
    return unquote(resolved);
  };

  /**
   * A multi-valued option's values, one per line, each interpolated: those of every file in order, under
   * any of its names (oslo.config's MultiStrOpt: in each file, its older names' values come before its
   * own), unless the environment or the overrides set it, which replace them.
   */
  const multiValues = (names: ReadonlyArray<readonly [string, string]>, read: (text: string) => string = (t) => t): string | undefined => {
    const given = (layer: Layer, [section, option]: readonly [string, string]) => layer.sections.get(section)?.get(option);
    const replacing = layers.filter((l) => l.file === null && names.some((name) => given(l, name))).at(-1);
    const olderFirst = [...names].reverse();
    const raws = (replacing ? [replacing] : layers.filter((l) => l.file !== null)).flatMap((l) =>
      olderFirst.flatMap((name) => {
        const raw = given(l, name);
        return raw ? [{ raw, name }] : [];
      }),
    );
    if (raws.length === 0) return undefined;
    const one =
      ({ raw, name: [section, option] }: { raw: RawValue; name: readonly [string, string] }) =>
      (text: string) =>
        read(interpolate(text, (ref) => reference(section, ref, placeOf(raw, section, option))));
    return raws.flatMap((found) => found.raw.text.split('\n').map(one(found))).join('\n');
  };

  const values = new Map<string, { value: unknown; from: string; place: ConfigPlace }>();
  for (const [section, specs] of Object.entries(DECLARED)) {
    for (const [option, spec] of Object.entries(specs)) {
      const found = find([[section, option], ...(spec.aliases ?? [])]);
      if (!found) {
        values.set(`${section}.${option}`, { value: spec.default, from: 'default', place: { section, option } });
        continue;
      }
      const place = placeOf(found.raw, section, option);
      if (found.name[0] !== section || found.name[1] !== option) {
        warnings.push(`[${found.name[0]}] ${found.name[1]} is another name of [${section}] ${option}; it was read as that`);
      }
      const text = spec.type === 'multistring' ? multiValues([[section, option], ...(spec.aliases ?? [])])! : textOf(section, option, place)!;
      let value: unknown;
      try {
        // An integer set to nothing is oslo.config's None: the option's default applies.
        value = spec.type === 'int' && unquote(text).trim() === '' ? spec.default : parseValue(spec.type, text);
        checkBounds(spec, value);
        if (spec.type === 'list' && !spec.bracketed) warnIfOsloListDiffers(section, option, text, value as string[], warnings);
        if (spec.bracketed) warnIfBracketsMissing(section, option, text, warnings);
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        throw new ConfigError((err as Error).message, place);
      }
      values.set(`${section}.${option}`, { value, place, from: fromText(found.raw) });
    }
  }

  // Sections and options nothing reads: an unknown section stops the service (a misspelt section
  // would silently lose every option in it); an unknown option only warns, once.
  const stores = new Set((values.get('DEFAULT.enabled_backends')!.value as string[]).map((e) => sectionKey((e.split(':')[0] ?? '').trim())));
  // keystoneauth reads a login's plugin options from the section its auth_section names.
  const authSections = new Set(
    (['keystone_authtoken', 'oslo_limit'] as const).flatMap((owner) => {
      const named = values.get(`${owner}.auth_section`)!.value as string | null;
      return named ? [sectionKey(named)] : [];
    }),
  );
  const freeFormChecks = new Map<string, FreeFormOptions>([
    ['os_glance_tasks_store', TASKS_STORE_SECTION_OPTIONS],
    ...[...authSections].filter((section) => !DECLARED[section]).map((section) => [section, AUTH_SECTION_OPTIONS] as const),
  ]);
  const freeForm = (section: string) =>
    stores.has(section) || section.startsWith('os_glance_') || PASTE_SECTION.test(section) || section.startsWith('cors.') || authSections.has(section);
  const warned = new Set<string>();
  // A file none of whose sections Glance reads, nor looks like one misspelt, is another tool's, read
  // because it sits in a --config-dir (glance-swift.conf, property-protections-*.conf):
  // oslo.config ignores what it does not know, and so is it here, said once.
  const glanceLike = (section: string) =>
    freeForm(section) ||
    FOREIGN_SECTIONS.has(section) ||
    !!DECLARED[section] ||
    !!GLANCE_OPTION_NAMES[section] ||
    READ_SECTIONS.has(section) ||
    section.toUpperCase() === 'DEFAULT' ||
    nearStoreSection(section, stores);
  for (const layer of layers) {
    if (layer.file && layer.sections.size > 0 && ![...layer.sections.keys()].some(glanceLike)) {
      warnings.push(`${layer.file} is ignored: none of its sections is one Glance reads (a file of another tool's beside the configuration)`);
      continue;
    }
    for (const [section, options] of layer.sections) {
      // A store's section holds store options, an auth_section's a login's: one misspelt would leave
      // the store on its default, or the login without it.
      const allowed = stores.has(section) || section === 'os_glance_staging_store' ? STORE_SECTION_OPTIONS : freeFormChecks.get(section);
      if (allowed) {
        for (const option of options.keys()) {
          const key = `${section}.${option}`;
          if (allowed.read.has(option) || warned.has(key)) continue;
          warned.add(key);
          warnings.push(ignoredOption(section, option, allowed.known.has(option)));
        }
        continue;
      }
      if (freeForm(section)) continue;
      if (FOREIGN_SECTIONS.has(section)) {
        if (!warned.has(section)) warnings.push(`[${section}] is ignored: Glance 25 reads nothing in it (a section of an older sample or of another service)`);
        warned.add(section);
        continue;
      }
      // A store's section left behind when its store was taken out of enabled_backends: Glance ignores it.
      if (
        !DECLARED[section] &&
        options.size > 0 &&
        !nearStoreSection(section, stores) &&
        [...options.keys()].every((option) => STORE_OPTION_NAMES.has(option))
      ) {
        if (!warned.has(section)) warnings.push(`[${section}] is ignored: it holds store options, but enabled_backends names no store ${section}`);
        warned.add(section);
        continue;
      }
      if (!DECLARED[section] && !GLANCE_OPTION_NAMES[section] && !READ_SECTIONS.has(section)) {
        // A header left with nothing under it (older generated samples have [matchmaker_redis]) loses nothing.
        if (options.size === 0) {
          if (!warned.has(section)) warnings.push(`unknown section [${section}] ignored: it sets nothing`);
          warned.add(section);
          continue;
        }
        const hint = section.toUpperCase() === 'DEFAULT' ? ' (the default section is spelt [DEFAULT])' : '';
        throw new ConfigError(`unknown section [${section}]${hint}`, { file: layer.file ?? [...options.values()][0]?.file, line: layer.headers.get(section) });
      }
      for (const option of options.keys()) {
        const key = `${section}.${option}`;
        if (READ_OPTION_NAMES.has(key) || warned.has(key)) continue;
        warned.add(key);
        const readFrom = SAMPLE_MISPLACED[key];
        warnings.push(
          readFrom
            ? `[${section}] ${option} is ignored, as Glance ignores it there: it is read from ${readFrom} (Glance's sample file shows it in the wrong section)`
            : ignoredOption(section, option, GLANCE_OPTION_NAMES[section]?.includes(option) === true),
        );
      }
    }
  }

  // Zed's two switches of its new rules must agree: Glance 25 stops when they do not, and so does Gaze
  // rather than pick one.
  const secureRbac = find([['DEFAULT', 'enforce_secure_rbac']]);
  const newDefaults = find([['oslo_policy', 'enforce_new_defaults']]);
  if (secureRbac && newDefaults) {
    const place = placeOf(secureRbac.raw, 'DEFAULT', 'enforce_secure_rbac');
    const asBool = (raw: RawValue, section: string, option: string) => {
      try {
        return parseValue('bool', raw.text);
      } catch (err) {
        throw new ConfigError((err as Error).message, placeOf(raw, section, option));
      }
    };
    if (asBool(secureRbac.raw, 'DEFAULT', 'enforce_secure_rbac') !== asBool(newDefaults.raw, 'oslo_policy', 'enforce_new_defaults')) {
      throw new ConfigError(
        '[DEFAULT] enforce_secure_rbac does not match [oslo_policy] enforce_new_defaults: set both to true for the new rules, or both to false',
        place,
      );
    }
  }

  const dataDir = path.resolve(values.get('DEFAULT.data_dir')!.value as string);
  /** A section without a fixed schema, as `entries` lists it: each option set, with where. */
  const sectionAsSet = (section: string, isSecret: (option: string) => boolean) => {
    const from = new Map<string, string>();
    for (const layer of layers) for (const [option, raw] of layer.sections.get(section) ?? []) from.set(option, fromText(raw));
    return Object.entries(config.section(section)).map(([option, value]) => ({ section, option, value, from: from.get(option)!, secret: isSecret(option) }));
  };
  const config: Config = {
    get<S extends SectionName, O extends OptionName<S>>(section: S, option: O): OptionValue<S, O> {
      const entry = values.get(`${section}.${option}`);
      if (!entry) throw new Error(`option [${section}] ${option} is not declared`);
      return entry.value as OptionValue<S, O>;
    },
    section(name: string): Record<string, string> {
      const section = sectionKey(name);
      const merged: Record<string, string> = {};
      for (const layer of layers) {
        for (const [option, raw] of layer.sections.get(section) ?? []) {
          // A multi-valued option's values come from every layer at once: read once.
          if (MULTI_VALUED.has(option)) merged[option] ??= multiValues([[section, option]], unquote)!;
          else merged[option] = unquote(interpolate(raw.text, (ref) => reference(section, ref, placeOf(raw, section, option))));
        }
      }
      return merged;
    },
    dataPath: (...parts) => path.join(dataDir, ...parts),
    warnings,
    files: fileList,
    refuse(section: string, option: string, reason: string): never {
      throw new ConfigError(reason, values.get(`${section}.${option}`)?.place ?? { section, option });
    },
    entries: () => [
      ...[...values].map(([key, { value, from }]) => {
        const dot = key.indexOf('.');
        const section = key.slice(0, dot);
        const option = key.slice(dot + 1);
        return { section, option, value, from, secret: DECLARED[section]?.[option]?.secret === true };
      }),
      // Each store's own section, and the sections logins read their options from, as set.
      ...[...stores].flatMap((section) => sectionAsSet(section, storeOptionIsSecret)),
      ...[...authSections].flatMap((section) => sectionAsSet(section, loginOptionIsSecret)),
    ],
  };
  return config;
}
