import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * oslo.config's find_file(), for the files Glance finds that way (policy.yaml, policy.d,
 * schema-image.json, property_protection_file): an absolute name if it exists, else the name beside
 * the configuration files read, the last one's directory first (oslo.config searches the files'
 * directories in reverse). The standard directories (/etc/glance and others) are not searched: without
 * configuration files the embedded defaults apply. Null when not found.
 */
export function findBesideConfig(configFiles: readonly string[], name: string): string | null {
  // An empty value names no file (path.join would make it the directory itself).
  if (name === '') return null;
  if (path.isAbsolute(name)) return existsSync(name) ? name : null;
  for (const dir of new Set([...configFiles].reverse().map((f) => path.dirname(path.resolve(f))))) {
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** A file named in the configuration: found beside the configuration files first, else the name as given (from the working directory). */
export function besideConfigOrAsGiven(configFiles: readonly string[], name: string): string {
  return findBesideConfig(configFiles, name) ?? name;
}
