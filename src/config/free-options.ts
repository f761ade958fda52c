import path from 'node:path';
import { ConfigError } from './errors.ts';
import { parseValue } from './values.ts';

// Options of sections without a fixed schema (a store's, the staging URI), read as oslo.config reads
// their types, with the place named by the caller.

/** An optional boolean option of a section without a fixed schema (a store's), read as oslo.config does. */
export function boolOption(value: string | undefined, fallback: boolean, where: string): boolean {
  if (value === undefined || value.trim() === '') return fallback;
  try {
    return parseValue('bool', value);
  } catch (err) {
    throw new ConfigError(`${where}: ${(err as Error).message}`);
  }
}

/** An optional integer option of a section without a fixed schema, at least `min` (oslo.config's IntOpt with min). */
export function intOption<T extends number | undefined>(value: string | undefined, fallback: T, where: string, min: number, max = Infinity): number | T {
  if (value === undefined || value.trim() === '') return fallback;
  let n: number;
  try {
    n = parseValue('int', value);
  } catch (err) {
    throw new ConfigError(`${where}: ${(err as Error).message}`);
  }
  if (n < min) throw new ConfigError(`${where}: ${n} is less than the minimum of ${min}`);
  if (n > max) throw new ConfigError(`${where}: ${n} is greater than the maximum of ${max}`);
  return n;
}

/** `file:///abs/dir` (Glance's form) to a directory path. */
export function fileUriToPath(uri: string): string {
  if (!uri.startsWith('file://')) throw new ConfigError(`'${uri}' is not a file:// URI`);
  return path.resolve(decodeURIComponent(uri.slice('file://'.length)));
}
