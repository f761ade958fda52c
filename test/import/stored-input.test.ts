import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImportInput, previousPropertyWrites } from '../../src/import/job.ts';
import { NULL_VALUE } from '../../src/domain/image.ts';

// An import task's input is read back from the database by whichever process resumes or reverts it:
// it is checked, not trusted.

test('a stored import input the engine wrote is read back whole', () => {
  const input = {
    image_id: 'i',
    import_req: { method: { name: 'web-download', uri: 'http://x/' }, all_stores_must_succeed: false },
    backend: ['fast', null],
    roles: ['member'],
    previous: { disk_format: 'raw', container_format: null, properties: { hw_a: 'b', gone: null } },
  };
  assert.deepEqual(parseImportInput(JSON.stringify(input)), input);
});

test('a stored input that is not what the engine wrote stops the task with a clear message', () => {
  const cases: Array<[string | null, RegExp]> = [
    [null, /stored input is not valid: \/ must be object/],
    ['not json', /stored input is not valid JSON/],
    ['{}', /stored input is not valid: \/ must have required property 'image_id'/],
    ['{"image_id":"i","import_req":{"method":{}},"backend":[]}', /\/import_req\/method must have required property 'name'/],
    ['{"image_id":"i","import_req":{"method":{"name":"glance-direct"}},"backend":[3]}', /\/backend\/0 must be string,null/],
    [
      '{"image_id":"i","import_req":{"method":{"name":"x"}},"backend":[],"previous":{"disk_format":1,"container_format":null,"properties":{}}}',
      /\/previous\/disk_format must be string,null/,
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseImportInput(text),
      (err: Error) => message.test(err.message),
      String(text),
    );
  }
});

test('the revert tells a property that was null from one the image did not have', () => {
  const properties = { hw_a: 'b', kernel_id: null, gone: null };
  assert.deepEqual(previousPropertyWrites({ disk_format: null, container_format: null, properties, absent: ['gone'] }), {
    hw_a: 'b',
    kernel_id: NULL_VALUE,
    gone: null,
  });
  // An input written before `absent` existed meant "absent" by null.
  assert.deepEqual(previousPropertyWrites({ disk_format: null, container_format: null, properties }), { hw_a: 'b', kernel_id: null, gone: null });
  assert.deepEqual(previousPropertyWrites(undefined), {});
});
