// The format inspection engine (src/formats/inspector.ts), its qcow2/vhd/vhdx/vdi/qed/luks inspectors
// and the verdict (src/formats/verdict.ts), over real images made with qemu-img and hand-made ones.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { FormatDetector, InspectingStream, allInspectors, inspectFile } from '../../src/formats/inspector.ts';
import { judge, type FormatPolicy } from '../../src/formats/verdict.ts';
import type { FormatReport } from '../../src/formats/types.ts';
import { testCorpus } from '../helpers/corpus.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const STRICT: FormatPolicy = {
  requireFormatMatch: true,
  gptSafetyChecksNonfatal: [],
  vmdkAllowedTypes: ['streamOptimized', 'monolithicSparse'],
  requireRawFormatMatch: true,
  virtualSizeCap: 64 * 2 ** 40,
};
const LENIENT: FormatPolicy = { ...STRICT, requireFormatMatch: false };
/** Glance's leniency for raw claims only (require_raw_format_match = false). */
const RAW_LENIENT: FormatPolicy = { ...STRICT, requireRawFormatMatch: false };

let dir: string;
const file = (name: string) => path.join(dir, name);
const qemuImg = (...args: string[]) => run('qemu-img', ['create', '-q', ...args], { cwd: dir });

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gaze-inspector-'));
  await Promise.all([
    qemuImg('-f', 'raw', 'raw.img', '3M'),
    qemuImg('-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '64M'),
    qemuImg('-f', 'qcow2', '-o', 'compat=1.1', 'v3.qcow2', '64M').then(async () => {
      const v3 = await readFile(file('v3.qcow2'));
      v3[72] |= 0x80; // incompatible feature bit 63: unknown to anyone
      await writeFile(file('unknown-feature.qcow2'), v3);
      await qemuImg('-f', 'qcow2', '-b', 'v3.qcow2', '-F', 'qcow2', 'backing.qcow2');
    }),
    qemuImg('-f', 'qcow2', '-o', 'data_file=external.raw', 'datafile.qcow2', '64M'),
    qemuImg('-f', 'vpc', '-o', 'force_size=on', 'disk.vhd', '64M'),
    qemuImg('-f', 'vhdx', 'disk.vhdx', '64M'),
    qemuImg('-f', 'vdi', 'disk.vdi', '64M'),
    qemuImg('-f', 'qed', 'disk.qed', '64M'),
    // qemu-img's luks driver times its key derivation and fails now and then on a busy machine ("Unable
    // to get accurate CPU usage"): the corpus's hand-made LUKS1 header stands in for it.
    testCorpus().then((corpus) => copyFile(path.join(corpus, 'luks.img'), file('disk.luks'))),
  ]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Expected {
  format: string;
  virtualSize: number | 'size';
  failures?: Array<{ check: string; message: string }>;
}

const IMAGES: Record<string, Expected> = {
  'raw.img': { format: 'raw', virtualSize: 'size' },
  'v2.qcow2': { format: 'qcow2', virtualSize: 64 * MiB },
  'v3.qcow2': { format: 'qcow2', virtualSize: 64 * MiB },
  'backing.qcow2': { format: 'qcow2', virtualSize: 64 * MiB, failures: [{ check: 'backing_file', message: 'Image has a backing file' }] },
  'datafile.qcow2': { format: 'qcow2', virtualSize: 64 * MiB, failures: [{ check: 'data_file', message: 'Image has data_file set' }] },
  'unknown-feature.qcow2': {
    format: 'qcow2',
    virtualSize: 64 * MiB,
    failures: [{ check: 'unknown_features', message: 'Unknown QCOW2 features found' }],
  },
  'disk.vhd': { format: 'vhd', virtualSize: 64 * MiB },
  'disk.vhdx': { format: 'vhdx', virtualSize: 64 * MiB },
  'disk.vdi': { format: 'vdi', virtualSize: 64 * MiB },
  'disk.qed': { format: 'qed', virtualSize: 64 * MiB, failures: [{ check: 'banned', message: 'This file format is not allowed' }] },
  // qemu-img puts the payload after a ~2 MiB header; the virtual size is the payload.
  'disk.luks': { format: 'luks', virtualSize: 4 * MiB },
};

describe('inspectFile over qemu-img images', () => {
  for (const [name, want] of Object.entries(IMAGES)) {
    test(name, async () => {
      const size = (await readFile(file(name))).length;
      const report = await inspectFile(file(name));
      assert.deepEqual(report, {
        format: want.format,
        virtualSize: want.virtualSize === 'size' ? size : want.virtualSize,
        size,
        failures: want.failures ?? [],
        subformat: null,
        error: null,
      });
    });
  }
});

/** Small chunks over the regions inspectors read (first 320 KiB, vhdx metadata at 2–3 MiB, the tail). */
function* chunks(length: number, small: number): Iterable<[number, number]> {
  const windows: Array<[number, number]> = [
    [0, 320 * 1024],
    [2 * MiB, 2 * MiB + 72 * 1024],
    [3 * MiB, 3 * MiB + 72 * 1024],
    [length - 8192, length],
  ];
  let at = 0;
  while (at < length) {
    const inWindow = windows.some(([s, e]) => at >= s && at < e);
    const next = inWindow ? at + small : Math.min(...windows.map(([s]) => s).filter((s) => s > at), at + 65537);
    yield [at, Math.min(length, next)];
    at = Math.min(length, next);
  }
}

function detect(data: Buffer, pieces: Iterable<[number, number]>): FormatReport {
  const detector = new FormatDetector();
  for (const [s, e] of pieces) detector.feed(data.subarray(s, e));
  return detector.finish();
}

test('odd chunk sizes give the same report', async () => {
  for (const name of Object.keys(IMAGES)) {
    const data = await readFile(file(name));
    const reference = detect(data, [[0, data.length]]);
    for (const small of [1, 7, 64 * 1024]) {
      assert.deepEqual(detect(data, chunks(data.length, small)), reference, `${name} in ${small}-byte chunks`);
    }
  }
});

test('InspectingStream passes every byte through unchanged and reports at the end', async () => {
  const data = await readFile(file('v3.qcow2'));
  const inspecting = new InspectingStream();
  assert.throws(() => inspecting.report(), /before the stream ended/);
  const out: Buffer[] = [];
  const sink = new Writable({
    write: (c, _e, done) => {
      out.push(c);
      done();
    },
  });
  await pipeline(Readable.from([data.subarray(0, 3), data.subarray(3, 100_000), data.subarray(100_000)]), inspecting, sink);
  assert.ok(Buffer.concat(out).equals(data));
  assert.equal(inspecting.report().format, 'qcow2');
  assert.equal(inspecting.report().virtualSize, 64 * MiB);
});

test('allInspectors: one of each richer format', () => {
  assert.deepEqual(
    allInspectors()
      .map((i) => i.format)
      .sort(),
    ['gpt', 'iso', 'luks', 'qcow2', 'qed', 'vdi', 'vhd', 'vhdx', 'vmdk'],
  );
});

describe('hand-made data', () => {
  const qcow2Header = (): Buffer => {
    const d = Buffer.alloc(4096);
    d.write('QFI\xfb', 0, 'latin1');
    d.writeUInt32BE(3, 4);
    d.writeBigUInt64BE(BigInt(MiB), 24);
    return d;
  };

  test('two formats at once are a detection error, names sorted', () => {
    const d = qcow2Header();
    d.writeUInt32LE(0xbeda107f, 0x40); // a VDI signature inside the qcow2 header
    const report = detect(d, [[0, d.length]]);
    assert.equal(report.format, null);
    assert.equal(report.error, 'Multiple formats detected: qcow2,vdi');
    assert.equal(report.virtualSize, null);
    for (const policy of [STRICT, LENIENT]) {
      assert.deepEqual(judge(report, 'qcow2', policy), {
        accepted: false,
        kind: 'inspection',
        reason: 'Multiple formats detected: qcow2,vdi',
        warnings: [],
      });
    }
  });

  test('iso + gpt counts as iso', () => {
    const d = Buffer.alloc(64 * 1024);
    // Protective MBR: entry 0 type 0xEE from CHS 0/2/0, LBA 1.
    d.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], 446);
    d.writeUInt32LE(1, 446 + 8);
    d.writeUInt32LE(0xffffffff, 446 + 12);
    d[510] = 0x55;
    d[511] = 0xaa;
    // Primary volume descriptor at sector 16 (32 blocks of 2 KiB), then the set terminator.
    const pvd = 32 * 1024;
    d[pvd] = 1;
    d.write('CD001', pvd + 1, 'latin1');
    d.writeUInt32LE(32, pvd + 80);
    d.writeUInt16LE(2048, pvd + 128);
    d[pvd + 2048] = 255;
    d.write('CD001', pvd + 2049, 'latin1');
    const report = detect(d, [[0, d.length]]);
    assert.equal(report.error, null);
    assert.equal(report.format, 'iso');
    assert.equal(report.virtualSize, 64 * 1024);
  });

  test('qcow2 version and feature checks', () => {
    const failures = (edit: (d: Buffer) => void) => {
      const d = qcow2Header();
      edit(d);
      return detect(d, [[0, d.length]]).failures.map((f) => `${f.check}: ${f.message}`);
    };
    assert.deepEqual(
      failures(() => {}),
      [],
    );
    assert.deepEqual(
      failures((d) => d.writeUInt32BE(1, 4)),
      ['unknown_features: Unsupported qcow2 version'],
    );
    assert.deepEqual(
      failures((d) => (d[79] = 0x0b)),
      [],
    ); // dirty, corrupt, compression type: known bits
    assert.deepEqual(
      failures((d) => (d[79] = 0x10)),
      ['unknown_features: Unknown QCOW2 features found'],
    );
    assert.deepEqual(
      failures((d) => (d[79] = 0x04)),
      ['data_file: Image has data_file set'],
    );
    // Version 2 has no feature field: whatever follows its 72-byte header is not read as one.
    assert.deepEqual(
      failures((d) => {
        d.writeUInt32BE(2, 4);
        d[79] = 0xff;
      }),
      [],
    );
    assert.deepEqual(
      failures((d) => d.writeBigUInt64BE(512n, 8)),
      ['backing_file: Image has a backing file'],
    );
  });

  test('a stream too short for a header is raw, or judged as what its magic says', () => {
    assert.deepEqual(detect(Buffer.from('QF'), [[0, 2]]), {
      format: 'raw',
      virtualSize: 2,
      size: 2,
      failures: [],
      subformat: null,
      error: null,
    });
    const stub = detect(Buffer.from('QFI\xfb', 'latin1'), [[0, 4]]);
    assert.equal(stub.format, 'qcow2');
    assert.deepEqual(
      stub.failures.map((f) => f.check),
      ['unknown_features'],
    );
    assert.deepEqual(detect(Buffer.alloc(0), []), { format: 'raw', virtualSize: 0, size: 0, failures: [], subformat: null, error: null });
  });

  test('luks: only version 1', () => {
    const d = Buffer.alloc(8192);
    d.set([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0x00, 0x02]);
    d.writeUInt32BE(8, 104);
    const report = detect(d, [[0, d.length]]);
    assert.equal(report.format, 'luks');
    assert.equal(report.virtualSize, 8192 - 8 * 512);
    assert.deepEqual(report.failures, [{ check: 'version', message: 'LUKS version 2 is not supported' }]);
    assert.match((judge(report, 'raw', STRICT) as { reason: string }).reason, /^Image failed safety checks: LUKS version 2 is not supported$/);
  });

  test('vhdx whose metadata region lies behind the region table: format known, size not', async () => {
    const d = await readFile(file('disk.vhdx'));
    const entry = 0x30000 + 16 + 32; // qemu-img writes the metadata region's entry second
    d.writeBigUInt64LE(64n * 1024n, entry + 16);
    const report = detect(d, [[0, d.length]]);
    assert.equal(report.format, 'vhdx');
    assert.equal(report.virtualSize, null);
  });
});

describe('judge', () => {
  const report = async (name: string) => inspectFile(file(name));

  test("claimed format matches: the virtual size is the inspector's", async () => {
    assert.deepEqual(judge(await report('v2.qcow2'), 'qcow2', STRICT), { accepted: true, virtualSize: 64 * MiB, warnings: [] });
    assert.deepEqual(judge(await report('disk.vhdx'), 'vhdx', STRICT), { accepted: true, virtualSize: 64 * MiB, warnings: [] });
    const raw = await report('raw.img');
    assert.deepEqual(judge(raw, 'raw', STRICT), { accepted: true, virtualSize: raw.size, warnings: [] });
  });

  test('mismatch: refused when required, else accepted with a warning and no virtual size', async () => {
    const qcow2 = await report('v3.qcow2');
    assert.deepEqual(judge(qcow2, 'vmdk', STRICT), {
      accepted: false,
      kind: 'mismatch',
      reason: 'Image disk_format vmdk does not match stream data qcow2',
      warnings: [],
    });
    const lenient = judge(qcow2, 'vmdk', LENIENT);
    assert.equal(lenient.accepted, true);
    assert.equal(lenient.accepted && lenient.virtualSize, null);
    assert.match(lenient.warnings.join(), /Image disk_format vmdk does not match stream data qcow2/);
    const raw = await report('raw.img');
    assert.deepEqual(judge(raw, 'qcow2', STRICT), {
      accepted: false,
      kind: 'mismatch',
      reason: 'Image disk_format qcow2 does not match stream data raw',
      warnings: [],
    });
    assert.equal(judge(raw, 'iso', STRICT).accepted, false);
  });

  test('raw data under a format nobody inspects: accepted, no virtual size', async () => {
    const raw = await report('raw.img');
    for (const claimed of ['ami', 'ari', 'aki', 'ploop', null]) {
      assert.deepEqual(judge(raw, claimed, STRICT), { accepted: true, virtualSize: null, warnings: [] }, String(claimed));
    }
    assert.equal(judge(await report('v3.qcow2'), 'ami', STRICT).accepted, false);
  });

  test("rich content claimed raw: refused by default; with Glance's leniency accepted with a warning, virtual size = byte count, safety still applies", async () => {
    const qcow2 = await report('v3.qcow2');
    assert.deepEqual(judge(qcow2, 'raw', STRICT), {
      accepted: false,
      kind: 'mismatch',
      reason: 'Image disk_format raw does not match stream data qcow2',
      warnings: [],
    });
    for (const policy of [RAW_LENIENT, LENIENT]) {
      const v = judge(qcow2, 'raw', policy);
      assert.equal(v.accepted, true);
      assert.equal(v.accepted && v.virtualSize, qcow2.size);
      assert.deepEqual(v.warnings, ["Image claims 'raw' disk_format but is actually 'qcow2'"]);
    }
    // LUKS and partitioned disks have no disk_format of their own: raw they are.
    const luks = await report('disk.luks');
    assert.deepEqual(judge(luks, 'raw', STRICT), {
      accepted: true,
      virtualSize: luks.size,
      warnings: ["Image claims 'raw' disk_format but is actually 'luks'"],
    });
    assert.deepEqual(judge(await report('backing.qcow2'), 'raw', RAW_LENIENT), {
      accepted: false,
      kind: 'safety',
      reason: 'Image failed safety checks: Image has a backing file',
      warnings: ["Image claims 'raw' disk_format but is actually 'qcow2'"],
    });
    const gpt: FormatReport = { format: 'gpt', virtualSize: 4 * MiB, size: 4 * MiB, failures: [], subformat: null, error: null };
    assert.deepEqual(judge(gpt, 'raw', STRICT), { accepted: true, virtualSize: 4 * MiB, warnings: [] });
  });

  test('a virtual size that is unknown, not exactly representable or above virtual_size_cap refuses the data', () => {
    const qcow2 = (virtualSize: number | null): FormatReport => ({ format: 'qcow2', virtualSize, size: 196608, failures: [], subformat: null, error: null });
    const tooBig = {
      accepted: false,
      kind: 'safety',
      reason: 'Image failed safety checks: the virtual size exceeds the limit of 70368744177664 bytes',
      warnings: [],
    };
    assert.deepEqual(judge(qcow2(Infinity), 'qcow2', STRICT), tooBig);
    assert.deepEqual(judge(qcow2(2 ** 46 + 1), 'qcow2', STRICT), tooBig);
    assert.deepEqual(judge(qcow2(2 ** 46), 'qcow2', STRICT), { accepted: true, virtualSize: 2 ** 46, warnings: [] });
    assert.deepEqual(judge(qcow2(2 ** 50), 'qcow2', { ...STRICT, virtualSizeCap: 2 ** 50 }), { accepted: true, virtualSize: 2 ** 50, warnings: [] });
    assert.deepEqual(judge(qcow2(null), 'qcow2', STRICT), {
      accepted: false,
      kind: 'safety',
      reason: 'Image failed safety checks: the virtual size of the qcow2 data cannot be determined',
      warnings: [],
    });
    // even where mismatches are let through
    assert.equal(judge(qcow2(Infinity), 'raw', LENIENT).accepted, true, 'claimed raw with leniency: the byte count is the size');
    assert.equal(judge(qcow2(Infinity), 'qcow2', LENIENT).accepted, false);
  });

  test('safety failures refuse whatever the claim and require_image_format_match say', async () => {
    const reasons = {
      'backing.qcow2': 'Image failed safety checks: Image has a backing file',
      'datafile.qcow2': 'Image failed safety checks: Image has data_file set',
      'unknown-feature.qcow2': 'Image failed safety checks: Unknown QCOW2 features found',
      'disk.qed': 'Image failed safety checks: This file format is not allowed',
    };
    for (const [name, reason] of Object.entries(reasons)) {
      const r = await report(name);
      for (const [claimed, policy] of [
        [r.format, STRICT],
        ['raw', RAW_LENIENT],
        ['vmdk', LENIENT],
      ] as const) {
        const v = judge(r, claimed, policy);
        assert.equal(v.accepted, false, `${name} as ${claimed}`);
        assert.equal(!v.accepted && v.kind, 'safety');
        assert.equal(!v.accepted && v.reason, reason);
      }
    }
  });

  test('gpt_safety_checks_nonfatal only excuses gpt', () => {
    const failures = [{ check: 'mbr', message: 'MBR PTE 0 has invalid boot flag' }];
    const gpt: FormatReport = { format: 'gpt', virtualSize: MiB, size: MiB, failures, subformat: null, error: null };
    assert.deepEqual(judge(gpt, 'raw', STRICT), {
      accepted: false,
      kind: 'safety',
      reason: 'Image failed safety checks: MBR PTE 0 has invalid boot flag',
      warnings: [],
    });
    const relaxed = { ...STRICT, gptSafetyChecksNonfatal: ['mbr'] };
    const v = judge(gpt, 'raw', relaxed);
    assert.equal(v.accepted, true);
    assert.equal(v.accepted && v.virtualSize, MiB);
    assert.match(v.warnings.join(), /invalid boot flag/);
    const vmdk: FormatReport = { ...gpt, format: 'vmdk', failures: [{ check: 'mbr', message: 'x' }], subformat: 'streamOptimized' };
    assert.equal(judge(vmdk, 'vmdk', relaxed).accepted, false);
  });

  test('vmdk_allowed_types', () => {
    const vmdk: FormatReport = { format: 'vmdk', virtualSize: MiB, size: 4096, failures: [], subformat: 'monolithicSparse', error: null };
    assert.deepEqual(judge(vmdk, 'vmdk', STRICT), { accepted: true, virtualSize: MiB, warnings: [] });
    const onlyStream = judge(vmdk, 'vmdk', { ...STRICT, vmdkAllowedTypes: ['streamOptimized'] });
    assert.equal(onlyStream.accepted, false);
    assert.equal(!onlyStream.accepted && onlyStream.reason, 'Image failed safety checks: Invalid VMDK create-type specified: monolithicSparse');
    const none = judge(vmdk, 'raw', { ...RAW_LENIENT, vmdkAllowedTypes: [] });
    assert.equal(none.accepted, false);
    assert.equal(!none.accepted && none.kind, 'safety');
    assert.equal(judge({ ...vmdk, subformat: null }, 'vmdk', STRICT).accepted, false);
  });

  test('an empty upload gets no virtual size', () => {
    const empty: FormatReport = { format: 'raw', virtualSize: 0, size: 0, failures: [], subformat: null, error: null };
    assert.deepEqual(judge(empty, 'raw', STRICT), { accepted: true, virtualSize: null, warnings: [] });
  });
});
