// `[database] connection` as SQLAlchemy reads it (its RFC 1738 pattern), so that the URL of an
// operator's glance-api.conf names the same server, user and database to Gaze: a password may hold `/`
// or `#` as written, the host may be empty (a socket named in the query) or an IPv6 address in
// brackets, and the query's options are kept for the engine's client.

export interface DatabaseUrl {
  /** `postgresql+psycopg2`, `mysql+pymysql`, `sqlite`, … */
  scheme: string;
  username: string | null;
  password: string | null;
  /** Without the brackets of an IPv6 address. */
  host: string | null;
  port: number | null;
  /** As written: SQLAlchemy does not decode it. */
  database: string | null;
  /** Each option by its last value. */
  query: Map<string, string>;
}

const PATTERN =
  /^(?<scheme>[\w+]+):\/\/(?:(?<username>[^:/]*)(?::(?<password>[^@]*))?@)?(?:(?:\[(?<ipv6>[^/?]+)\]|(?<host>[^/:?]+))?(?::(?<port>[^/?]*))?)?(?:\/(?<database>[^?]*))?(?:\?(?<query>.*))?/s;

/** Parses as SQLAlchemy's make_url does; throws an Error saying what it cannot read. */
export function parseDatabaseUrl(text: string): DatabaseUrl {
  const m = PATTERN.exec(text);
  if (!m?.groups) throw new Error(`could not read the database URL '${databaseUrlShown(text)}'`);
  const g = m.groups;
  let port: number | null = null;
  if (g.port !== undefined) {
    // Not echoed: a password whose `@` is missing would read as the port.
    if (!/^\d+$/.test(g.port)) throw new Error(`the database URL's port (after ${g.scheme}://${g.ipv6 ?? g.host ?? ''}:) is not a number`);
    port = Number(g.port);
  }
  return {
    scheme: g.scheme!,
    username: g.username === undefined ? null : unquote(g.username),
    password: g.password === undefined ? null : unquote(g.password),
    host: g.ipv6 ?? g.host ?? null,
    port,
    database: g.database === undefined || g.database === '' ? null : g.database,
    // parse_qsl's: options without a value are left out.
    query: new Map([...new URLSearchParams(g.query ?? '')].filter(([, value]) => value !== '')),
  };
}

/** The URL as a message may show it: its password as ****, wherever the password's characters would end a URL's. */
export function databaseUrlShown(text: string): string {
  // Where SQLAlchemy ends it: at the first `@` after the user's `:` (the user may hold `@`, the password
  // `/`, `#`, `,` or `?`).
  const m = /^([\w+]+:\/\/[^:/]*:)[^@]*@/.exec(text);
  const shown = m ? `${m[1]}****@${text.slice(m[0].length)}` : text;
  // A client option may carry the password too (`?password=`).
  return shown.replace(/([?&]password=)[^&]*/gi, '$1****');
}

/** Python's urllib unquote: %XX sequences as UTF-8, anything else (`+` included) as written. */
function unquote(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}
