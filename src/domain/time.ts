// Timestamps are stored with microseconds (so creation order is stable) and shown as Glance shows them.

let clockOffsetMs = 0;

/**
 * Puts this process's timestamps on the shared database's clock (`db/clock.ts` measures the offset):
 * nodes on hosts whose clocks disagree then still agree on leases, liveness and ages.
 */
export function setClockOffset(ms: number): void {
  clockOffsetMs = ms;
}

/** Now, on the database server's clock when one was measured. */
export function clockNow(): Date {
  return new Date(Date.now() + clockOffsetMs);
}

export function nowTimestamp(date = clockNow()): string {
  return date.toISOString().replace('T', ' ').replace('Z', '000').slice(0, 26);
}

/** `2015-11-29T22:21:42Z`, the images/members/tasks API format. */
export function apiTime(stored: string): string;
export function apiTime(stored: string | null): string | null;
export function apiTime(stored: string | null): string | null {
  return stored === null ? null : `${stored.slice(0, 19).replace(' ', 'T')}Z`;
}

/** `2015-11-29T22:21:42.000000`, the raw-row format of GET /v2/images/{id}/tasks (Glance keeps whole seconds). */
export function rawRowTime(stored: string | null): string | null {
  return stored === null ? null : `${stored.slice(0, 19).replace(' ', 'T')}.000000`;
}

/** Parses an ISO 8601 timestamp; returns the stored-format string of its whole second, or null when invalid. */
export function parseIsoSecond(text: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00', zone] = m;
  let iso = `${y}-${mo}-${d}T${h}:${mi}:${s}`;
  if (zone && zone !== 'Z') iso += zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  else iso += 'Z';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return null;
  return nowTimestamp(date).slice(0, 19) + '.000000';
}

export function addSeconds(stored: string, seconds: number): string {
  const date = new Date(`${stored.slice(0, 19).replace(' ', 'T')}Z`);
  return nowTimestamp(new Date(date.getTime() + seconds * 1000));
}
