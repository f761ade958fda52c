import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IMAGE_STATUSES, assertTransition, canTransition, assertFormatsForData, propertiesEndedBy } from '../../src/domain/image.ts';
import { GazeError } from '../../src/domain/errors.ts';

test('the status table allows exactly the transitions of the spec', () => {
  const allowed = new Set([
    'queued>saving',
    'queued>uploading',
    'queued>importing',
    'queued>active',
    'queued>deleted',
    'saving>active',
    'saving>queued',
    'saving>killed',
    'saving>deleted',
    'uploading>importing',
    'uploading>queued',
    'uploading>deleted',
    'importing>active',
    'importing>queued',
    'importing>deleted',
    'active>deactivated',
    'active>pending_delete',
    'active>deleted',
    'deactivated>active',
    'deactivated>deleted',
    'killed>deleted',
    'pending_delete>deleted',
    'pending_delete>active',
  ]);
  for (const from of IMAGE_STATUSES) {
    for (const to of IMAGE_STATUSES) assert.equal(canTransition(from, to), allowed.has(`${from}>${to}`), `${from} → ${to}`);
  }
});

test('a refused transition says which, as Glance does', () => {
  assert.throws(
    () => assertTransition('active', 'saving'),
    (err: unknown) => err instanceof GazeError && err.status === 409 && err.message === 'Image status transition from active to saving is not allowed',
  );
  assert.doesNotThrow(() => assertTransition('queued', 'saving'));
});

test('data needs both formats', () => {
  assert.throws(
    () => assertFormatsForData({ disk_format: null, container_format: null }),
    /Properties disk_format, container_format must be set prior to saving data\./,
  );
  assert.throws(
    () => assertFormatsForData({ disk_format: 'raw', container_format: null }),
    /^GazeError: Property container_format must be set prior to saving data\.$|Property container_format must be set/,
  );
  assert.doesNotThrow(() => assertFormatsForData({ disk_format: 'raw', container_format: 'bare' }));
});

test("leaving saving or uploading ends the writer's property, leaving uploading the stage host's; other changes end nothing", () => {
  const writerEnds = { os_glance_upload_node: null };
  const stageEnds = { os_glance_upload_node: null, os_glance_stage_host: null };
  assert.deepEqual(propertiesEndedBy(['saving'], 'queued'), writerEnds);
  assert.deepEqual(propertiesEndedBy(['saving'], 'active'), writerEnds);
  assert.deepEqual(propertiesEndedBy(['uploading'], 'importing'), stageEnds);
  assert.deepEqual(propertiesEndedBy(['importing', 'uploading'], 'queued'), stageEnds);
  assert.deepEqual(propertiesEndedBy(['importing'], 'queued'), {});
  assert.deepEqual(propertiesEndedBy(['queued'], 'saving'), {});
  assert.deepEqual(propertiesEndedBy(['queued'], 'uploading'), {});
  assert.deepEqual(propertiesEndedBy(['importing'], 'active'), {});
  assert.deepEqual(propertiesEndedBy(['active'], 'deactivated'), {});
});
