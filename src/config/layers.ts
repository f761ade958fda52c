// The sources of values, each a layer of sections: a file (UTF-8, as oslo.config reads it), the
// environment (GAZE__section__option, oslo.config's OS_SECTION__OPTION), and a test's overrides.

import { readFileSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { ConfigError } from './errors.ts';
import { parseIni, sectionKey, type IniSections } from './ini.ts';
import { OPTIONS } from './options.ts';

export type RawSections = Record<string, Record<string, string>>;

/** One source of values: a file, the environment, or the overrides a test passes. */
export interface Layer {
  sections: IniSections;
  headers: Map<string, number>;
  file: string | null;
  /** Warnings of the file itself (an option set twice). */
  warnings?: string[];
}

export function readLayer(file: string): Layer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new ConfigError(`cannot read the config file: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`, {
      file,
    });
  }
  // Not UTF-8 stops Glance (a UnicodeDecodeError): a Latin-1 password would otherwise be read wrong.
  if (!isUtf8(bytes)) throw new ConfigError('the file is not UTF-8 text', { file, line: firstLineNotUtf8(bytes) });
  const text = bytes.toString('utf8');
  const warnings: string[] = [];
  return { ...parseIni(text, file, (warning) => warnings.push(warning)), file, warnings };
}

/** The number of the first line that is not UTF-8. */
function firstLineNotUtf8(bytes: Buffer): number {
  let line = 1;
  for (let start = 0; start < bytes.length; line++) {
    const end = bytes.indexOf(0x0a, start);
    const stop = end < 0 ? bytes.length : end;
    if (!isUtf8(bytes.subarray(start, stop))) return line;
    start = stop + 1;
  }
  return line;
}

/**
 * `GAZE__<section>__<option>=value` (any section) and oslo.config's `OS_<SECTION>__<OPTION>=value` (for
 * the options Gaze declares) override the files.
 */
export function envLayer(env: NodeJS.ProcessEnv): Layer {
  const sections: IniSections = new Map();
  const put = (section: string, option: string, text: string, name: string) => {
    if (!sections.has(section)) sections.set(section, new Map());
    sections.get(section)!.set(option, { text, file: `environment ${name}`, line: 0 });
  };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const gaze = /^GAZE__([^_].*?)__(.+)$/.exec(name);
    if (gaze) {
      const [, section = '', option = ''] = gaze;
      const declared = Object.keys(OPTIONS).find((s) => s.toLowerCase() === section.toLowerCase());
      put(declared ?? sectionKey(section), option.toLowerCase(), value, name);
      continue;
    }
    const oslo = /^OS_([A-Z0-9_]+?)__([A-Z0-9_]+)$/.exec(name);
    if (!oslo) continue;
    const section = Object.keys(OPTIONS).find((s) => s.toUpperCase() === oslo[1]);
    const option = (oslo[2] ?? '').toLowerCase();
    if (section && (OPTIONS as Record<string, Record<string, unknown>>)[section]?.[option]) put(section, option, value, name);
  }
  return { sections, headers: new Map(), file: null };
}

export function overrideLayer(overrides: RawSections): Layer {
  const sections: IniSections = new Map();
  for (const [section, options] of Object.entries(overrides)) {
    sections.set(sectionKey(section), new Map(Object.entries(options).map(([k, v]) => [k, { text: v, file: 'overrides', line: 0 }])));
  }
  return { sections, headers: new Map(), file: null };
}
