// An option's value as `gaze config show` prints it and a debug log lists it: credentials as ****.

export interface ShownEntry {
  value: unknown;
  secret: boolean;
}

export function shownValue(entry: ShownEntry): string {
  const value = entry.value;
  if (entry.secret && value !== null) return '****';
  if (value === null) return '';
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  if (typeof value === 'object')
    return Object.entries(value)
      .map(([k, v]) => `${k}:${String(v)}`)
      .join(', ');
  return String(value);
}
