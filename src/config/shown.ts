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
