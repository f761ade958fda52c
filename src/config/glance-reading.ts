// Where Gaze reads a configuration as it was plainly meant, or as Glance 25 in effect does, while
// oslo.config's letter says otherwise: sections Glance reads nothing in, a store's section left
// behind, lists oslo.config would split otherwise.

import { osloPlainList, unquote } from './values.ts';
import { OPTIONS } from './options.ts';
import { GLANCE_OPTION_NAMES } from './glance-option-names.ts';

/** Options of a store's own section (multi-store): glance_store's, which [glance_store] holds too. */
export const STORE_OPTION_NAMES: ReadonlySet<string> = new Set([
  ...(GLANCE_OPTION_NAMES.glance_store ?? []),
  ...Object.keys(OPTIONS.glance_store),
  'read_only',
  'store_description',
]);

/** The options a store's own section may set that Gaze's drivers read: [glance_store]'s, and the two only a store section has. */
export const STORE_OPTIONS_READ: ReadonlySet<string> = new Set([...Object.keys(OPTIONS.glance_store), 'read_only', 'store_description']);

/** keystoneauth's plugin options Gaze reads in a section an auth_section names (password, v3password, v3applicationcredential). */
const AUTH_PLUGIN_OPTIONS_READ: ReadonlySet<string> = new Set([
  'auth_type',
  'auth_plugin',
  'auth_url',
  'user_id',
  'username',
  'password',
  'user_domain_id',
  'user_domain_name',
  'project_id',
  'project_name',
  'project_domain_id',
  'project_domain_name',
  'default_domain_id',
  'default_domain_name',
  'application_credential_id',
  'application_credential_name',
  'application_credential_secret',
  'system_scope',
]);

/** What a section without a fixed schema may hold: the options Gaze reads, and the others Glance's libraries know. */
export interface FreeFormOptions {
  read: ReadonlySet<string>;
  known: ReadonlySet<string>;
}

/** A store's own section, and the reserved staging store's (Gaze reads its store options). */
export const STORE_SECTION_OPTIONS: FreeFormOptions = { read: STORE_OPTIONS_READ, known: STORE_OPTION_NAMES };
/** The reserved tasks store's: Glance's legacy tasks' work directory, which Gaze has no use for. */
export const TASKS_STORE_SECTION_OPTIONS: FreeFormOptions = { read: STORE_OPTION_NAMES, known: STORE_OPTION_NAMES };
/** A section an auth_section names: keystoneauth's plugin options (the password and application credential plugins'). */
export const AUTH_SECTION_OPTIONS: FreeFormOptions = {
  read: AUTH_PLUGIN_OPTIONS_READ,
  known: new Set([...AUTH_PLUGIN_OPTIONS_READ, 'domain_id', 'domain_name', 'trust_id']),
};

/**
 * Whether a section name is a near miss of a section store options belong in (an enabled store's,
 * [glance_store], the reserved stores'): a misspelling, whose store would silently run on defaults.
 */
export function nearStoreSection(section: string, enabledStores: ReadonlySet<string>): boolean {
  const candidates = [...enabledStores, 'glance_store', 'os_glance_staging_store', 'os_glance_tasks_store'];
  const allowed = section.length < 4 ? 1 : 2;
  return candidates.some((known) => editDistance(section.toLowerCase(), known.toLowerCase()) <= allowed);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Sections of older samples and of other OpenStack services' libraries that operators' files still
 * carry (oslo.messaging's removed drivers, os-brick's privsep, keystonemiddleware's audit, oslo.service's
 * TLS): Glance 25 reads nothing in them, so they only warn.
 */
export const FOREIGN_SECTIONS: ReadonlySet<string> = new Set([
  'matchmaker_redis',
  'matchmaker_ring',
  'oslo_messaging_zmq',
  'oslo_messaging_qpid',
  'privsep',
  'privsep_osbrick',
  'audit_middleware_notifications',
  'ssl',
  'service_user',
  'coordination',
]);

/**
 * Gaze reads a list as it was plainly meant (brackets, quoted items, items on lines of their own);
 * oslo.config keeps brackets, quotes and empty items as parts of the items of the lists Glance
 * declares without brackets, so Glance may read the same line as other items: said at start.
 */
export function warnIfOsloListDiffers(section: string, option: string, text: string, value: string[], warnings: string[]): void {
  const glance = osloPlainList(text);
  if (glance.length === value.length && glance.every((item, i) => item === value[i])) return;
  warnings.push(
    `[${section}] ${option}: Glance (oslo.config) reads this list as ${pythonList(glance)}, keeping its brackets, quotes or empty ` +
      `items as written; Gaze reads ${pythonList(value)}. Write it as plain comma-separated items so that both read the same.`,
  );
}

/**
 * A list Glance declares with brackets (oslo.config's bounds=True) cannot be read by Glance without them,
 * empty included ("Value should start with \"[\""): it fails when it first reads the option. Gaze reads
 * what was written, and says so.
 */
export function warnIfBracketsMissing(section: string, option: string, text: string, warnings: string[]): void {
  const written = unquote(text).trim();
  if (written.startsWith('[')) return;
  const consequence = section === 'import_filtering_opts' ? ' (every web-download and http location is then refused)' : '';
  warnings.push(
    `[${section}] ${option}: Glance (oslo.config) reads this list only in brackets and fails on it when it first reads the option${consequence}; ` +
      `Gaze reads it as written. Write it as [${written}] so that both read the same.`,
  );
}

/** A list of strings as Python prints it. */
function pythonList(items: string[]): string {
  return `[${items.map((item) => (item.includes("'") && !item.includes('"') ? `"${item}"` : `'${item.replaceAll("'", "\\'")}'`)).join(', ')}]`;
}
