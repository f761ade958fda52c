import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';

// PyMySQL's read_default_file: a MySQL option file (my.cnf) whose group ([client] unless
// read_default_group names another; /etc/my.cnf when only the group is given) fills in what the URL
// leaves out. A file that cannot be read adds nothing, as Python's configparser skips it.

/** The option names PyMySQL reads from the group, under the names the URL gives them. */
const FROM_FILE = { user: 'user', password: 'password', host: 'host', database: 'database', port: 'port', socket: 'unix_socket' } as const;
const TLS_FROM_FILE = { 'ssl-ca': 'ssl_ca', 'ssl-cert': 'ssl_cert', 'ssl-key': 'ssl_key' } as const;

export type OptionFileValues = Partial<Record<(typeof FROM_FILE)[keyof typeof FROM_FILE] | (typeof TLS_FROM_FILE)[keyof typeof TLS_FROM_FILE], string>>;

/** The values of the option file a URL's query names (none without read_default_file or read_default_group). */
export function mysqlOptionFile(query: ReadonlyMap<string, string>): OptionFileValues {
  const group = query.get('read_default_group') || 'client';
  const file = query.get('read_default_file') || (query.has('read_default_group') ? '/etc/my.cnf' : undefined);
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file.replace(/^~(?=\/|$)/, homedir()), 'utf8');
  } catch {
    return {};
  }
  const options = groupOptions(text, group);
  const values: OptionFileValues = {};
  for (const [name, as] of [...Object.entries(FROM_FILE), ...Object.entries(TLS_FROM_FILE)] as Array<[string, keyof OptionFileValues]>) {
    const value = options.get(name);
    if (value) values[as] = value;
  }
  return values;
}

/** One group of an option file as configparser reads it: names in lower case, one pair of quotes off a value. */
function groupOptions(text: string, group: string): Map<string, string> {
  const options = new Map<string, string>();
  let inGroup = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      inGroup = header[1] === group;
      continue;
    }
    if (!inGroup) continue;
    const at = line.search(/[=:]/);
    if (at < 0) continue; // a name alone (a switch, or !include) sets no value PyMySQL reads
    const value = line.slice(at + 1).trim();
    options.set(line.slice(0, at).trim().toLowerCase(), /^(["']).*\1$/.test(value) && value.length >= 2 ? value.slice(1, -1) : value);
  }
  return options;
}
