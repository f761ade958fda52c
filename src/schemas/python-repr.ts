// Python's repr() and pprint.pformat() of JSON values, as Glance's schema errors print them (jsonschema
// words an error with repr, then shows the schema and the instance with pformat(width=72)).

type Json = unknown;

/** Python's str.isprintable(): no Other (Cc, Cf, Cs, Co, Cn) or Separator (Zl, Zp, Zs) but the space. */
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

function strRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && NOT_PRINTABLE.test(ch)) {
      const code = ch.codePointAt(0)!;
      const hex = code.toString(16);
      out += code < 0x100 ? `\\x${hex.padStart(2, '0')}` : code < 0x10000 ? `\\u${hex.padStart(4, '0')}` : `\\U${hex.padStart(8, '0')}`;
    } else out += ch;
  }
  return out + quote;
}

/** A JSON number as Python shows it: an integer as an int, anything else as a float's shortest repr. */
function numberRepr(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (Number.isInteger(n) && Math.abs(n) < 2 ** 63) return BigInt(n).toString();
  const [mantissa = '', exp = '0'] = n.toExponential().split('e');
  const e = Number(exp);
  if (e < -4 || e >= 16) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = n < 0 ? '-' : '';
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  const whole = digits.slice(0, e + 1).padEnd(e + 1, '0');
  const fraction = digits.slice(e + 1);
  return `${sign}${whole}.${fraction || '0'}`;
}

/**
 * How deep a value is shown; deeper containers print as `...`, as pprint's `depth` does. Glance itself
 * fails (500) on bodies nested some hundreds deep; Gaze answers them with this much shown.
 */
const MAX_DEPTH = 100;
/** Beyond this many characters on one line, a value is not laid out again over several (each layout step re-measures its part). */
const MAX_PRETTY = 64 * 1024;

/** Python's repr(): dicts in their keys' order (`sorted`: as pprint writes them, keys sorted). */
export function pyRepr(value: Json, sorted = false, depth = 0): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return strRepr(value);
  if (typeof value === 'number') return numberRepr(value);
  if (typeof value !== 'object') return String(value);
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? '[...]' : '{...}';
  if (Array.isArray(value)) return `[${value.map((v) => pyRepr(v, sorted, depth + 1)).join(', ')}]`;
  const entries = Object.entries(value as Record<string, Json>).filter(([, v]) => v !== undefined);
  if (sorted) entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${strRepr(k)}: ${pyRepr(v, sorted, depth + 1)}`).join(', ')}}`;
}

/** Whether a JSON value is false for Python (`not value`): None, False, 0, "", [] and {}. */
export function isPythonFalsy(value: Json): boolean {
  return !value || (typeof value === 'object' && Object.keys(value).length === 0);
}

/** Python's str() of a JSON value, as `%s` formats it: a string as it is, anything else as its repr. */
export function pyStr(value: Json): string {
  return typeof value === 'string' ? value : pyRepr(value);
}

/** pprint.pformat(value, width): CPython's PrettyPrinter (indent 1, dicts sorted) for JSON values. */
export function pformat(value: Json, width = 80): string {
  const whole = pyRepr(value, true);
  if (whole.length > MAX_PRETTY) return whole;
  const out: string[] = [];
  format(value, 0, 0, 1);
  return out.join('');

  function format(object: Json, indent: number, allowance: number, level: number): void {
    const rep = pyRepr(object, true, level - 1);
    if (rep.length > width - indent - allowance && level <= MAX_DEPTH) {
      if (Array.isArray(object) && object.length > 0) {
        out.push('[');
        formatItems(object, indent, allowance + 1, level);
        out.push(']');
        return;
      }
      if (object !== null && typeof object === 'object' && !Array.isArray(object) && Object.values(object).some((v) => v !== undefined)) {
        out.push('{');
        formatDictItems(object as Record<string, Json>, indent, allowance + 1, level);
        out.push('}');
        return;
      }
      if (typeof object === 'string' && object.length > 0) {
        formatString(object, indent, allowance, level);
        return;
      }
    }
    out.push(rep);
  }

  function formatDictItems(object: Record<string, Json>, indent: number, allowance: number, level: number): void {
    const items = Object.entries(object)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    indent += 1;
    items.forEach(([key, entry], i) => {
      const last = i === items.length - 1;
      const rep = strRepr(key);
      out.push(rep, ': ');
      format(entry, indent + rep.length + 2, last ? allowance : 1, level + 1);
      if (!last) out.push(`,\n${' '.repeat(indent)}`);
    });
  }

  function formatItems(items: Json[], indent: number, allowance: number, level: number): void {
    indent += 1;
    items.forEach((entry, i) => {
      const last = i === items.length - 1;
      if (i > 0) out.push(`,\n${' '.repeat(indent)}`);
      format(entry, indent, last ? allowance : 1, level + 1);
    });
  }

  /** A long string as adjacent literals, split at whitespace (and at line ends), one per line. */
  function formatString(object: string, indent: number, allowance: number, level: number): void {
    const chunks: string[] = [];
    const lines = object.match(/[^\n]*\n|[^\n]+$/g) ?? [object];
    if (level === 1) {
      indent += 1;
      allowance += 1;
    }
    let maxWidth1 = width - indent;
    const maxWidth = maxWidth1;
    lines.forEach((line, i) => {
      const rep = strRepr(line);
      if (i === lines.length - 1) maxWidth1 -= allowance;
      if (rep.length <= maxWidth1) {
        chunks.push(rep);
        return;
      }
      const parts = line.match(/\S*\s*/g)!.filter((p, j, all) => j < all.length - 1 || p !== '');
      let maxWidth2 = maxWidth;
      let current = '';
      parts.forEach((part, j) => {
        const candidate = current + part;
        if (j === parts.length - 1 && i === lines.length - 1) maxWidth2 -= allowance;
        if (strRepr(candidate).length > maxWidth2) {
          if (current) chunks.push(strRepr(current));
          current = part;
        } else current = candidate;
      });
      if (current) chunks.push(strRepr(current));
    });
    if (chunks.length === 1) {
      out.push(strRepr(object));
      return;
    }
    if (level === 1) out.push('(');
    chunks.forEach((chunk, i) => {
      if (i > 0) out.push(`\n${' '.repeat(indent)}`);
      out.push(chunk);
    });
    if (level === 1) out.push(')');
  }
}

// The spaces int() ignores around a number (JavaScript's \s differs: it has U+FEFF and lacks U+0085).
const PY_SPACE = '[\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*';
const PY_INT = new RegExp(`^${PY_SPACE}([+-]?)(\\p{Nd}+(?:_\\p{Nd}+)*)${PY_SPACE}$`, 'u');
/** Python refuses to read an integer of more digits than this (sys.int_info.default_max_str_digits). */
export const PY_INT_MAX_DIGITS = 4300;

/**
 * Python's int() of a string, as Glance reads a query's numbers: spaces around, a sign, decimal digits of
 * any script (`２` is 2; Node's Unicode tables may know a few digit sets newer than the Python a Glance
 * runs on) with single underscores between them. Null where Python raises ValueError.
 */
export function pythonInt(text: string): number | null {
  const m = PY_INT.exec(text);
  if (!m) return null;
  const digits = [...m[2]!.replace(/_/g, '')].map(digitValue).join('');
  if (digits.length > PY_INT_MAX_DIGITS) return null;
  return Number(`${m[1]}${digits}`) + 0; // -0 is 0
}

/** The value of a decimal digit of any script: Unicode puts each script's 0–9 in runs of ten. */
function digitValue(ch: string): number {
  let cp = ch.codePointAt(0)!;
  let run = 0;
  while (/\p{Nd}/u.test(String.fromCodePoint(cp - 1))) {
    cp--;
    run++;
  }
  return run % 10;
}
