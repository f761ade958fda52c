import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseIni } from 'ini';
import { OPTIONS, type OptionSpec } from './options.ts';

export type RawSections = Record<string, Record<string, string>>;

export class ConfigError extends Error {}

/** Typed view of the configuration: known options parsed, other sections (per-store) kept raw. */
export interface Config {
  get<T = unknown>(section: string, option: string): T;
  /** Options of a section that has no fixed schema (e.g. one store's section under enabled_backends). */
  section(name: string): Record<string, string>;
  /** Absolute path resolved against data_dir. */
  dataPath(...parts: string[]): string;
  warnings: string[];
}

function parseValue(spec: OptionSpec, raw: string, where: string): unknown {
  const text = raw.trim();
  switch (spec.type) {
    case 'string':
      return text;
    case 'int': {
      if (!/^-?\d+$/.test(text)) throw new ConfigError(`${where}: '${text}' is not an integer`);
      return Number(text);
    }
    case 'bool': {
      const lower = text.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(lower)) return true;
      if (['false', '0', 'no', 'off'].includes(lower)) return false;
      throw new ConfigError(`${where}: '${text}' is not a boolean`);
    }
    case 'list':
      return text === '' ? [] : text.split(',').map((s) => s.trim()).filter((s) => s !== '');
    case 'intlist':
      return text === '' ? [] : text.split(',').map((s) => {
        const n = Number(s.trim());
        if (!Number.isInteger(n)) throw new ConfigError(`${where}: '${s}' is not an integer`);
        return n;
      });
    case 'dict': {
      // oslo.config's DictOpt: `k1:v1,k2:v2`.
      const entries = text === '' ? [] : text.split(',').map((s) => s.trim()).filter((s) => s !== '').map((pair) => {
        const at = pair.indexOf(':');
        if (at <= 0) throw new ConfigError(`${where}: '${pair}' is not a key:value pair`);
        return [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
      });
      return Object.fromEntries(entries);
    }
  }
}

function readSections(file: string | undefined): RawSections {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  const parsed = parseIni(text) as Record<string, unknown>;
  const sections: RawSections = { DEFAULT: {} };
  for (const [key, value] of Object.entries(parsed)) {
    if (value !== null && typeof value === 'object') {
      sections[key] = Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, String(v)]));
    } else {
      sections.DEFAULT[key] = String(value);
    }
  }
  return sections;
}

/** `GAZE__SECTION__OPTION=value` overrides the file, e.g. `GAZE__DEFAULT__bind_port=9393`. */
function applyEnvOverrides(sections: RawSections, env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) {
    const m = /^GAZE__([^_].*?)__(.+)$/.exec(name);
    if (!m || value === undefined) continue;
    const section = Object.keys(OPTIONS).find((s) => s.toLowerCase() === m[1].toLowerCase()) ?? m[1];
    (sections[section] ??= {})[m[2].toLowerCase()] = value;
  }
}

export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env, overrides: RawSections = {}): Config {
  const sections = readSections(file);
  applyEnvOverrides(sections, env);
  for (const [s, opts] of Object.entries(overrides)) Object.assign((sections[s] ??= {}), opts);

  const values = new Map<string, unknown>();
  const warnings: string[] = [];
  for (const [section, specs] of Object.entries(OPTIONS)) {
    for (const [option, spec] of Object.entries(specs)) {
      const raw = sections[section]?.[option];
      values.set(`${section}.${option}`, raw === undefined ? spec.default : parseValue(spec, raw, `[${section}] ${option}`));
    }
  }
  const storeSections = new Set(
    (values.get('DEFAULT.enabled_backends') as string[]).map((entry) => entry.split(':')[0].trim()),
  );
  for (const [section, opts] of Object.entries(sections)) {
    if (storeSections.has(section) || section.startsWith('os_glance_')) continue;
    for (const option of Object.keys(opts)) {
      if (!OPTIONS[section]?.[option]) warnings.push(`unknown option [${section}] ${option} ignored`);
    }
  }

  const dataDir = path.resolve(values.get('DEFAULT.data_dir') as string);
  return {
    get<T>(section: string, option: string): T {
      const key = `${section}.${option}`;
      if (!values.has(key)) throw new Error(`option [${section}] ${option} is not declared`);
      return values.get(key) as T;
    },
    section: (name) => ({ ...(sections[name] ?? {}) }),
    dataPath: (...parts) => path.join(dataDir, ...parts),
    warnings,
  };
}

/** An optional boolean option of a section without a fixed schema (a store's), read as oslo.config does. */
export function boolOption(value: string | undefined, fallback: boolean, where: string): boolean {
  if (value === undefined || value.trim() === '') return fallback;
  return parseValue({ type: 'bool', default: null }, value, where) as boolean;
}

/** `file:///abs/dir` (Glance's form) to a directory path. */
export function fileUriToPath(uri: string): string {
  if (!uri.startsWith('file://')) throw new ConfigError(`'${uri}' is not a file:// URI`);
  return path.resolve(decodeURIComponent(uri.slice('file://'.length)));
}
