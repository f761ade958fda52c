#!/usr/bin/env node
// Runs every test file under test/ with node's test runner (TypeScript through tsx).
// `--unit` leaves out the files that start real services (Keystone, Swift, the OpenStack CLI) and runs
// the database tests on SQLite only.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const SLOW_DIRS = ['test/e2e'];
const unitOnly = process.argv.includes('--unit');
const extra = process.argv.slice(2).filter((a) => a !== '--unit');

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return find(full);
    return name.endsWith('.test.ts') ? [full] : [];
  });
}

let files = extra.length ? extra : find('test').sort();
const env = { ...process.env };
if (unitOnly) {
  files = files.filter((f) => !SLOW_DIRS.some((d) => f.startsWith(d)) && !/keystone|s3\.test|swift\.test/.test(f));
  env.GAZE_TEST_ENGINES = 'sqlite';
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
