import { OPTIONS, type OptionSpec } from './options.ts';
import { withoutPasswords } from './redact.ts';

// An option's value as `gaze config show` prints it and a debug log lists it: credentials as ****.

export interface ShownEntry {
  value: unknown;
  secret: boolean;
}

export function shownValue(entry: ShownEntry): string {
  const value = entry.value;
  if (entry.secret && value !== null) return '****';
  if (value === null) return '';
  // Any URL an option holds (a store's endpoint, region_endpoints) may carry a password.
  if (Array.isArray(value)) return `[${value.map((item) => withoutPasswords(String(item))).join(', ')}]`;
  if (typeof value === 'object')
    return Object.entries(value)
      .map(([k, v]) => `${k}:${withoutPasswords(String(v))}`)
      .join(', ');
  return withoutPasswords(String(value));
}

/** A store section's option that holds a credential: Gaze's secret ones, and Glance's other stores' users, keys and passwords. */
export function storeOptionIsSecret(option: string): boolean {
  return ((OPTIONS.glance_store as Record<string, OptionSpec>)[option]?.secret ?? false) || /(password|secret|key|user|user_name|username)$/.test(option);
}

/** An auth_section's option that holds a credential (keystoneauth's password and secrets). */
export function loginOptionIsSecret(option: string): boolean {
  return ((OPTIONS.keystone_authtoken as Record<string, OptionSpec>)[option]?.secret ?? false) || /(password|secret)$/.test(option);
}
