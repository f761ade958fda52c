import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stagedElsewhere, type StagingPlace } from '../../src/services/staging.ts';
import type { Image, ImageStatus } from '../../src/domain/image.ts';

const place: StagingPlace = { selfUrl: 'http://127.0.0.1:9292', shared: false, stageRunning: async () => false };
const image = (status: ImageStatus, stageHost?: string) =>
  ({ id: 'x', status, properties: stageHost ? { os_glance_stage_host: stageHost } : {} }) as unknown as Image;

test("requests about staged data go to the stage host only while the image is uploading, and only from another node's local staging", () => {
  assert.equal(stagedElsewhere(image('uploading', 'http://127.0.0.2:9292'), place), 'http://127.0.0.2:9292');
  assert.equal(stagedElsewhere(image('uploading', place.selfUrl!), place), null, 'staged here');
  assert.equal(stagedElsewhere(image('uploading'), place), null, 'no host recorded');
  assert.equal(stagedElsewhere(image('uploading', 'http://127.0.0.2:9292'), { ...place, shared: true }), null, 'staging every node shares');
  // A host left on an image no longer uploading (written before the status change ended it) holds nothing.
  for (const status of ['queued', 'importing', 'active'] as const) assert.equal(stagedElsewhere(image(status, 'http://127.0.0.2:9292'), place), null, status);
});
