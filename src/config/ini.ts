import { ConfigError } from './errors.ts';
import { MULTI_VALUED, READ_OPTION_NAMES } from './options.ts';
import { GLANCE_OPTION_NAMES } from './glance-option-names.ts';

// oslo.config's INI dialect, as its iniparser reads Glance's files:
//  - `[section]` headers; a section name is lower-cased, except the exact name DEFAULT;
//  - `key = value` or `key: value` (the first of `=` and `:` separates); keys are exact-case;
//  - comments are whole lines starting with `#` or `;` (no inline comments);
//  - a line starting with a space or a tab continues the value above (joined with a newline); a blank
//    line ends it;
//  - one pair of quotes around a value is removed (by the typed readers here, which know when the
//    quotes mean more, as in `"k":"v","k2":"v2"`).
// The same option twice in one section of one file: oslo.config keeps the last value without a word,
// which is almost always a mistake. Glance's own files are read as Glance reads them (the last value,
// and a warning naming both lines); Python's configparser, which reads Glance's other files
// (glance-swift.conf), refuses it, and so does parseIni without `onRepeat`. Options that oslo declares
// multi-valued (MultiStrOpt) are the exception: each line adds a value, kept one per line; Glance's
// options Gaze does not read keep their last value without a warning (oslo.messaging's pre_settled is
// multi-valued).

function isIgnoredGlanceOption(section: string, key: string): boolean {
  return GLANCE_OPTION_NAMES[section]?.includes(key) === true && !READ_OPTION_NAMES.has(`${section}.${key}`);
}

/** One value as written: where it came from, and its text (continuation lines joined with \n). */
export interface RawValue {
  text: string;
  file: string;
  line: number;
}

/** section → option → value, for one file. */
export type IniSections = Map<string, Map<string, RawValue>>;

export function sectionKey(name: string): string {
  return name === 'DEFAULT' ? name : name.toLowerCase();
}

export function parseIni(text: string, file: string, onRepeat?: (warning: string) => void): { sections: IniSections; headers: Map<string, number> } {
  const sections: IniSections = new Map();
  const headers = new Map<string, number>();
  let section: string | null = null;
  let pending: { key: string; parts: string[]; line: number } | null = null;

  const fail = (line: number, reason: string): never => {
    throw new ConfigError(reason, { file, line });
  };
  const flush = () => {
    if (!pending) return;
    if (section === null) fail(pending.line, `'${pending.key}' is set before any [section]`);
    const options = sections.get(section!)!;
    const earlier = options.get(pending.key);
    const text = pending.parts.join('\n');
    if (earlier && MULTI_VALUED.has(pending.key)) {
      options.set(pending.key, { ...earlier, text: `${earlier.text}\n${text}` });
      pending = null;
      return;
    }
    if (earlier && !isIgnoredGlanceOption(section!, pending.key)) {
      const repeated = `[${section}] ${pending.key} is set twice in this file (also at line ${earlier.line})`;
      if (onRepeat) onRepeat(`${file}:${pending.line}: ${repeated}; the last value is used, as oslo.config uses it`);
      else fail(pending.line, repeated);
    }
    options.set(pending.key, { text, file, line: pending.line });
    pending = null;
  };

  const lines = text.split(/\r\n|\r|\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.replace(/\s+$/, '');
    if (line === '') {
      flush();
      return;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!pending) fail(lineNo, `unexpected continuation line '${line.trim()}' (an indented line continues the value above it)`);
      pending!.parts.push(line.trimStart());
      return;
    }
    flush();
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) fail(lineNo, `invalid section header '${line}' (must end with ']')`);
      if (line.length <= 2) fail(lineNo, 'empty section name');
      section = sectionKey(line.slice(1, -1));
      if (!sections.has(section)) sections.set(section, new Map());
      if (!headers.has(section)) headers.set(section, lineNo);
      return;
    }
    if (line.startsWith('#') || line.startsWith(';')) return;
    const eq = line.indexOf('=');
    const colon = line.indexOf(':');
    const at = eq < 0 ? colon : colon < 0 ? eq : Math.min(eq, colon);
    if (at < 0) fail(lineNo, `'${line}' is neither a [section] nor an 'option = value' line`);
    const key = line.slice(0, at).trim();
    if (key === '') fail(lineNo, `'${line}' has no option name`);
    pending = { key, parts: [line.slice(at + 1).trim()], line: lineNo };
  });
  flush();
  return { sections, headers };
}
