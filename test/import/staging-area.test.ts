import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { StagingArea } from '../../src/import/staging-area.ts';
import { Store } from '../../src/stores/store.ts';
import type { StoreDriver } from '../../src/stores/driver.ts';

// Object staging (S3, Swift): the import plugins get a local copy of the staged object. A copy that
// fails half-way, or whose import is stopped, leaves no partial file behind and does not wait for the
// object's end.

const dir = mkdtempSync(path.join(tmpdir(), 'gaze-staging-area-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An object store whose reads send 1 MiB and then fail, or stall for good. */
function objectStaging(read: 'fails' | 'stalls', workDir: string): StagingArea {
  const driver: StoreDriver = {
    type: 'test',
    places: ['test:staging'],
    capabilities: { writable: true, rangeRead: false, adopt: false, localPartials: false, closable: false, list: true, orphans: false },
    write: async (key) => ({ url: `test://${key}`, size: 0 }),
    urlFor: (key) => `test://${key}`,
    read: async () =>
      new Readable({
        read() {
          if (this.readableLength > 0 || (this as { sent?: boolean }).sent) {
            if (read === 'fails') this.destroy(new Error('the object store went away'));
            return; // stalls: no more data, no end
          }
          (this as { sent?: boolean }).sent = true;
          this.push(Buffer.alloc(1024 * 1024, 1));
        },
      }),
    delete: async () => {},
    stat: async () => 2 * 1024 * 1024,
    owns: (url) => url.startsWith('test://'),
    list: async () => [],
  };
  return StagingArea.inStore(new Store('staging', driver), { workDir, hashAlgo: 'sha512', dedicated: true });
}

test('a local copy whose object read fails half-way is removed, and the error reaches the import', async () => {
  const workDir = path.join(dir, 'fails');
  const staging = objectStaging('fails', workDir);
  await assert.rejects(staging.checkOut('image-1', new AbortController().signal), /the object store went away/);
  assert.deepEqual(readdirSync(workDir), []);
});

test('a local copy whose import is stopped ends at once and is removed', async () => {
  const workDir = path.join(dir, 'stalls');
  const staging = objectStaging('stalls', workDir);
  const controller = new AbortController();
  const copying = staging.checkOut('image-2', controller.signal);
  await new Promise((r) => setTimeout(r, 50));
  controller.abort(new Error('Import cancelled by the user.'));
  await assert.rejects(copying, (err: unknown) => err instanceof Error && err.name === 'AbortError');
  assert.deepEqual(readdirSync(workDir), []);
});
