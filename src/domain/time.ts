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

/** Seconds as a timer's milliseconds: Node runs a longer timer at once (its limit is 2^31 - 1 ms, 24.8 days). */
export function timerMs(seconds: number): number {
  return Math.min(seconds * 1000, 2 ** 31 - 1);
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

/** `2015-11-29T22:21:42.000000`, the raw-row format of GET /v2/images/{id}/tasks (whole seconds, as Glance's MySQL DATETIME keeps them). */
export function rawRowTime(stored: string | null): string | null {
  return stored === null ? null : `${stored.slice(0, 19).replace(' ', 'T')}.000000`;
}

// The ISO 8601 forms Glance's filters read (oslo's parse_isotime, through the iso8601 library): a year
// alone, month and day with dashes (one or two digits) or without, a time with or without colons and
// fraction (`.` or `,`), Z or an offset with optional minutes. Python's `$` also matches before a final
// newline.
const ISO8601 =
  /^(?<year>[0-9]{4})(?:(?:-(?<monthDash>[0-9]{1,2})|(?<month>[0-9]{2})(?!\n?$))(?:(?:-(?<dayDash>[0-9]{1,2})|(?<day>[0-9]{2}))(?:[ T](?<hour>[0-9]{2})(?::?(?<minute>[0-9]{2}))?(?::?(?<second>[0-9]{1,2})(?:[.,](?<fraction>[0-9]+))?)?(?<zone>Z|(?<sign>[-+])(?<zoneHour>[0-9]{2}):?(?<zoneMinute>[0-9]{2})?)?)?)?)?\n?$/;

/** An instant read as Glance reads a time filter: its whole second (the stored format) and whether microseconds follow it. */
export interface FilterTime {
  second: string;
  fractional: boolean;
}

/** Parses a time filter's value as Glance does; null where Glance answers 400 (no match, or no such date, as Python's datetime judges it). */
export function parseFilterTime(text: string): FilterTime | null {
  const g = ISO8601.exec(text)?.groups;
  if (!g) return null;
  const num = (value: string | undefined, fallback: number) => (value === undefined ? fallback : Number(value));
  const year = num(g.year, 0);
  const month = num(g.month ?? g.monthDash, 1);
  const day = num(g.day ?? g.dayDash, 1);
  const [hour, minute, second] = [num(g.hour, 0), num(g.minute, 0), num(g.second, 0)];
  const offsetMinutes = g.sign ? (g.sign === '-' ? -1 : 1) * (Number(g.zoneHour) * 60 + num(g.zoneMinute, 0)) : 0;
  if (year < 1 || hour > 23 || minute > 59 || second > 59 || Math.abs(offsetMinutes) >= 24 * 60) return null;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  // A month or a day the calendar lacks (13, 0, February 30) rolls over to another: no such date.
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null;
  date.setUTCHours(hour, minute - offsetMinutes, second, 0);
  if (date.getUTCFullYear() < 1 || date.getUTCFullYear() > 9999) return null;
  // Python keeps six digits of the fraction; only those can move the instant past its second.
  const fractional = Number((g.fraction ?? '').padEnd(6, '0').slice(0, 6)) > 0;
  return { second: nowTimestamp(date).slice(0, 19) + '.000000', fractional };
}

export function addSeconds(stored: string, seconds: number): string {
  const date = new Date(`${stored.slice(0, 19).replace(' ', 'T')}Z`);
  return nowTimestamp(new Date(date.getTime() + seconds * 1000));
}
