import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { besideConfigOrAsGiven, findBesideConfig } from '../config/find-file.ts';

const DEFAULT_POLICY_FILE = 'policy.yaml';

/**
 * The policy files oslo.policy would read for this configuration, in order (later rules win):
 * `policy_file` (default `policy.yaml`), then every file of each `policy_dirs` directory (default
 * `policy.d`), in name order, dot-files and subdirectories left out. Both are looked for beside the
 * configuration files (findBesideConfig). A missing default is no error, also when a file writes the
 * default name out (as generated glance-api.conf files do); a policy_file that names another file that
 * cannot be found leaves the default rules in force, as in Glance, but said aloud (`warn`), where
 * oslo.policy says it only at debug level.
 */
export function policyFiles(opts: {
  configFiles: readonly string[];
  policyFile: string | null;
  policyDirs: readonly string[];
  warn: (message: string) => void;
}): string[] {
  const find = (name: string) => findBesideConfig(opts.configFiles, name);
  const files: string[] = [];
  if (!opts.policyFile) {
    const found = find(DEFAULT_POLICY_FILE);
    if (found) files.push(found);
  } else {
    // Beside the configuration files first, then from the working directory (as Gaze read it before).
    // The default name written out may be missing, as when it is not written.
    const found = besideConfigOrAsGiven(opts.configFiles, opts.policyFile);
    if (existsSync(found)) files.push(path.resolve(found));
    else if (opts.policyFile !== DEFAULT_POLICY_FILE) {
      opts.warn(
        `[oslo_policy] policy_file ${opts.policyFile} was not found (${path.resolve(found)}): its rules are not in force, only the defaults and policy_dirs, as in Glance`,
      );
    }
  }
  for (const name of opts.policyDirs) {
    const dir = find(name);
    if (!dir || !statSync(dir).isDirectory()) continue;
    for (const entry of readdirSync(dir).sort()) {
      const file = path.join(dir, entry);
      if (!entry.startsWith('.') && statSync(file).isFile()) files.push(file);
    }
  }
  return files;
}
