#!/usr/bin/env node
// Runs the bundle in dist/ (made by `npm run build`, which `npm ci` runs) when it is newer than every
// source file; otherwise the TypeScript sources directly, so that an edit is never served stale.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(full) : statSync(full).mtimeMs);
  }
  return newest;
}

function bundleIsFresh() {
  try {
    return statSync(path.join(root, 'dist', 'BUILT')).mtimeMs >= newestSource(path.join(root, 'src'));
  } catch {
    return false;
  }
}

if (process.env.GAZE_FROM_SOURCE !== '1' && bundleIsFresh()) {
  await import('../dist/cli.mjs');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
