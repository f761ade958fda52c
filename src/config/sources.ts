import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.ts';

/** A config file or directory named on the command line, in the order given. */
export interface ConfigArg {
  kind: 'file' | 'dir';
  path: string;
}

/** Every `*.conf` of a directory (not hidden, not recursive), sorted, as oslo.config's --config-dir. */
function confFilesOf(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new ConfigError(`cannot read the config directory: ${(err as Error).message}`, { file: dir });
  }
  return names
    .filter((n) => n.endsWith('.conf') && !n.startsWith('.'))
    .map((n) => path.resolve(dir, n))
    .filter((f) => statSync(f).isFile())
    .sort();
}

/**
 * The files to read, later ones winning:
 *  - the --config-file / --config / --config-dir arguments, in the order given (directories expanded);
 *  - else GAZE_CONFIG;
 *  - else Glance's layout in OS_GLANCE_CONFIG_DIR: glance-api-paste.ini and glance-image-import.conf
 *    when present, then glance-api.conf;
 *  - else none (the embedded defaults). /etc/glance is never read unless named.
 */
export function configFiles(args: readonly ConfigArg[], env: NodeJS.ProcessEnv = process.env): string[] {
  if (args.length) return args.flatMap((a) => (a.kind === 'dir' ? confFilesOf(a.path) : [path.resolve(a.path)]));
  if (env.GAZE_CONFIG) return [path.resolve(env.GAZE_CONFIG)];
  const glanceDir = env.OS_GLANCE_CONFIG_DIR?.trim();
  if (!glanceDir) return [];
  const api = path.resolve(glanceDir, 'glance-api.conf');
  if (!existsSync(api)) throw new ConfigError('OS_GLANCE_CONFIG_DIR names a directory without glance-api.conf', { file: glanceDir });
  const optional = ['glance-api-paste.ini', 'glance-image-import.conf'].map((n) => path.resolve(glanceDir, n)).filter((f) => existsSync(f));
  return [...optional, api];
}
