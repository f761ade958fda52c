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
 * The `<name>.conf.d` directories oslo.config reads when no --config-dir is given: each looked for in
 * ~/.glance, ~, /etc/glance and /etc, where it is first found. The `*.conf` files in them, in order.
 */
function implicitDirFiles(names: readonly string[], home: string | undefined, etc: string): string[] {
  const places = [home && path.join(home, '.glance'), home, path.join(etc, 'glance'), etc].filter((p): p is string => !!p);
  return names.flatMap((name) => {
    const found = places.map((place) => path.join(place, `${name}.conf.d`)).find((dir) => existsSync(dir));
    return found && statSync(found).isDirectory() ? confFilesOf(found) : [];
  });
}

/**
 * The files to read, later ones winning:
 *  - the --config-file / --config / --config-dir arguments, in the order given (directories expanded);
 *    without a --config-dir, first the files of the `glance.conf.d` and `glance-api.conf.d` directories
 *    found as glance-api's oslo.config finds them (so a named file wins over them, as in Glance);
 *  - else GAZE_CONFIG;
 *  - else Glance's layout in OS_GLANCE_CONFIG_DIR: glance-api-paste.ini and glance-image-import.conf
 *    when present, then glance-api.conf, then a `glance.conf.d` found as Glance's WSGI application finds it;
 *  - else none (the embedded defaults): /etc/glance's files are never read unless named.
 * `etc` stands for /etc (tests name another).
 */
export function configFiles(args: readonly ConfigArg[], env: NodeJS.ProcessEnv = process.env, etc = '/etc'): string[] {
  if (args.length) {
    const named = args.flatMap((a) => (a.kind === 'dir' ? confFilesOf(a.path) : [path.resolve(a.path)]));
    return args.some((a) => a.kind === 'dir') ? named : [...implicitDirFiles(['glance', 'glance-api'], env.HOME, etc), ...named];
  }
  if (env.GAZE_CONFIG) return [path.resolve(env.GAZE_CONFIG)];
  const glanceDir = env.OS_GLANCE_CONFIG_DIR?.trim();
  if (!glanceDir) return [];
  const api = path.resolve(glanceDir, 'glance-api.conf');
  if (!existsSync(api)) throw new ConfigError('OS_GLANCE_CONFIG_DIR names a directory without glance-api.conf', { file: glanceDir });
  const optional = ['glance-api-paste.ini', 'glance-image-import.conf'].map((n) => path.resolve(glanceDir, n)).filter((f) => existsSync(f));
  return [...optional, api, ...implicitDirFiles(['glance'], env.HOME, etc)];
}
