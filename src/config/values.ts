// The option types of oslo.config as Glance declares them, read from one (interpolated) value text.
// Each reader throws a plain Error with the reason; the loader adds the file, line and option.
//
// Lists: `a, b`, or in brackets `[a, b]` (which Glance requires for some lists), `[]` for none; items
// may be quoted ('hw_', "x"), and may span continuation lines. Dicts: `k1:v1, k2:v2`, keys and values
// optionally quoted (`"property1":"value1","property2":"value2"`). Booleans: true/false, yes/no, on/off,
// 1/0 in any case. Integers: decimal, with an optional sign. Where oslo.config would turn quotes or
// brackets into part of the value (a bracketed list where brackets are optional, a quoted dict), the
// meaning the operator wrote is taken instead.

export type OptionType = 'string' | 'int' | 'bool' | 'list' | 'intlist' | 'dict' | 'multistring';

export interface TypeValues {
  string: string;
  /** A MultiStrOpt: one value per line (the option set once per value; see ini.ts). */
  multistring: string[];
  int: number;
  bool: boolean;
  list: string[];
  intlist: number[];
  dict: Record<string, string>;
}

const QUOTES = new Set(['"', "'"]);

/** One pair of quotes around the whole text, as oslo's INI layer removes it. */
export function unquote(text: string): string {
  const t = text.trim();
  return t.length >= 2 && QUOTES.has(t.charAt(0)) && t.charAt(t.length - 1) === t.charAt(0) ? t.slice(1, -1) : t.length === 1 && QUOTES.has(t) ? '' : t;
}

/** Quotes around the whole text that are the only ones of their kind in it (so not item quotes). */
function unquoteWhole(text: string): string {
  const t = text.trim();
  if (t.length >= 2 && QUOTES.has(t.charAt(0)) && t.charAt(t.length - 1) === t.charAt(0) && !t.slice(1, -1).includes(t.charAt(0))) return t.slice(1, -1);
  return t;
}

/**
 * Splits on the separators outside quotes; a quote left open is an error. A quote opens a quoted part
 * at the start of a part, or right after one of `openers` (the ':' of a dict pair).
 */
function splitOutsideQuotes(text: string, separators: string, openers = ''): string[] {
  const parts: string[] = [];
  let current = '';
  let quote: string | null = null;
  for (const ch of text) {
    const before = current.trimEnd();
    if (quote) {
      current += ch;
      if (ch === quote) quote = null;
    } else if (QUOTES.has(ch) && (before === '' || openers.includes(before.charAt(before.length - 1)))) {
      quote = ch;
      current += ch;
    } else if (separators.includes(ch)) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (quote) throw new Error(`a quote is not closed: ${current.trim()}`);
  parts.push(current);
  return parts;
}

function item(text: string): string {
  const t = text.trim();
  if (t.length >= 1 && QUOTES.has(t.charAt(0)) && (t.length < 2 || t.charAt(t.length - 1) !== t.charAt(0))) throw new Error(`a quote is not closed: ${t}`);
  return unquote(t);
}

function bracketed(text: string, open: string, close: string): string {
  if (text.startsWith(open) && !text.endsWith(close)) throw new Error(`'${open}' is never closed: the value should end with '${close}'`);
  if (!text.startsWith(open) && text.endsWith(close) && text.includes(open) === false) throw new Error(`'${close}' without '${open}'`);
  return text.startsWith(open) ? text.slice(1, -1) : text;
}

function list(text: string): string[] {
  const inner = bracketed(unquoteWhole(text).replace(/,+$/, '').trim(), '[', ']');
  return splitOutsideQuotes(inner, ',\n')
    .map(item)
    .filter((s) => s !== '');
}

/**
 * The items oslo.config's ListOpt (without bounds) makes of a value: one pair of quotes around the
 * whole value removed (by its INI layer), split at every comma, each item trimmed and nothing else: brackets, quotes and empty
 * items stay.
 */
export function osloPlainList(text: string): string[] {
  const s = unquote(text).trim().replace(/,+$/, '');
  return s === '' ? [] : s.split(',').map((x) => x.trim());
}

function integer(text: string): number {
  const t = unquote(text).trim();
  if (!/^[+-]?\d+(_\d+)*$/.test(t)) throw new Error(`'${t}' is not an integer`);
  // oslo.config takes any integer (Debian's glance-api.conf gives 9223372036854775808 as the maximum
  // of image_size_cap); beyond 2^53 it is read as the largest integer counted exactly (8 PiB as bytes).
  const n = Number(t.replaceAll('_', ''));
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, n));
}

function boolean(text: string): boolean {
  const t = unquote(text).toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new Error(`'${unquote(text)}' is not a boolean (true or false, yes or no, on or off, 1 or 0)`);
}

function dict(text: string): Record<string, string> {
  const inner = bracketed(unquoteWhole(text).replace(/,+$/, '').trim(), '{', '}');
  const result: Record<string, string> = {};
  for (const pair of splitOutsideQuotes(inner, ',\n', ':')) {
    if (pair.trim() === '') continue;
    const [key, ...rest] = splitOutsideQuotes(pair, ':');
    if (rest.length === 0) throw new Error(`'${pair.trim()}' is not a key:value pair`);
    const name = item(key ?? '');
    if (name === '') throw new Error(`'${pair.trim()}' has an empty key`);
    if (name in result) throw new Error(`key '${name}' is given twice`);
    result[name] = item(rest.join(':'));
  }
  return result;
}

export function parseValue<T extends OptionType>(type: T, text: string): TypeValues[T] {
  switch (type) {
    case 'string':
      return unquote(text) as TypeValues[T];
    case 'multistring':
      return text.split('\n').map(unquote) as TypeValues[T];
    case 'int':
      return integer(text) as TypeValues[T];
    case 'bool':
      return boolean(text) as TypeValues[T];
    case 'list':
      return list(text) as TypeValues[T];
    case 'intlist':
      return list(text).map(integer) as TypeValues[T];
    case 'dict':
      return dict(text) as TypeValues[T];
  }
  throw new Error(`unknown option type ${String(type)}`);
}
