// oslo.config's `$` interpolation of option values, done on the text before it is typed:
//   $option, ${option}      the option of the same section, else of [DEFAULT]
//   ${section.option}       an option of another section (a dotted name: `$a.b` is section a, option b)
//   $$ or \$                a literal $
// A `$` not followed by a name stays as it is. A name that refers to no option is an error.

const NAME = /^[_a-zA-Z][._a-zA-Z0-9]*/;

/** Replaces the references in `text`; `resolve` gives a referenced option's (interpolated) text. */
export function interpolate(text: string, resolve: (name: string) => string): string {
  if (!text.includes('$')) return text;
  const source = text.replaceAll('\\$', () => '$$'); // a function: '$$' in a replacement string means '$'
  let out = '';
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch !== '$') {
      out += ch;
      continue;
    }
    const rest = source.slice(i + 1);
    if (rest.startsWith('$')) {
      out += '$';
      i += 1;
      continue;
    }
    if (rest.startsWith('{')) {
      const close = rest.indexOf('}');
      const name = close > 0 ? rest.slice(1, close) : '';
      if (close > 0 && NAME.exec(name)?.[0] === name) {
        out += resolve(name);
        i += close + 1;
        continue;
      }
      out += '$';
      continue;
    }
    const name = NAME.exec(rest)?.[0];
    if (name) {
      out += resolve(name);
      i += name.length;
      continue;
    }
    out += '$';
  }
  return out;
}
