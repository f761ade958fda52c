// The import plugins on real files made by the real tools (qemu-img, gzip, bzip2, xz, zip,
// genisoimage), with a context that records what a plugin asks of the runner.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Image } from '../../src/domain/image.ts';
import type { FormatReport } from '../../src/formats/types.ts';
import { inspectFile } from '../../src/formats/inspector.ts';
import { judge as realJudge, type FormatPolicy, type Verdict } from '../../src/formats/verdict.ts';
import { createPlugins, type PluginOptions } from '../../src/import/plugins/index.ts';
import { PluginFailed, type ImportPlugin, type PluginContext } from '../../src/import/plugins/plugin.ts';
import { detectCompression } from '../../src/import/plugins/decompression.ts';
import { qemuImgInfo } from '../../src/import/plugins/qemu-img.ts';
import { imageRecord } from '../helpers/images.ts';
import { runLimited, ProcessOutputTooLarge } from '../../src/util/limited-process.ts';

const MiB = 1024 * 1024;
let dir: string;
let n = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gaze-plugins-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const OPTIONS: PluginOptions = {
  inject: {},
  ignoreUserRoles: ['admin'],
  outputFormat: 'raw',
  qemuImg: { infoCpuSeconds: 2, convertCpuSeconds: 30, addressSpaceMiB: 1024, convertAddressSpaceMiB: 4096 },
  vmdkAllowedTypes: ['streamOptimized', 'monolithicSparse'],
  refuse: (section, option, reason) => {
    throw new Error(`[${section}] ${option}: ${reason}`);
  },
};

function plugin(name: string, options: Partial<PluginOptions> = {}): ImportPlugin {
  const [p] = createPlugins([name], { ...OPTIONS, ...options });
  return p;
}

/** A fresh sub-directory per test, so "no temp files left" is checked on that test's files alone. */
async function workdir(): Promise<string> {
  const d = join(dir, `t${++n}`);
  await mkdir(d);
  return d;
}

function sh(cmd: string, args: string[], cwd: string): Buffer {
  return execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

const policy: FormatPolicy = {
  vmdkAllowedTypes: ['streamOptimized', 'monolithicSparse'],
  requireFormatMatch: true,
  gptSafetyChecksNonfatal: [],
  requireRawFormatMatch: true,
  virtualSizeCap: 64 * 2 ** 40,
};

interface Recorder {
  ctx: PluginContext;
  updates: Array<Record<string, unknown>>;
  props: Array<Record<string, string>>;
  warnings: string[];
}

function context(stagedPath: string, image: Partial<Image> = {}, over: Partial<PluginContext> = {}): Recorder {
  const updates: Array<Record<string, unknown>> = [];
  const props: Array<Record<string, string>> = [];
  const warnings: string[] = [];
  const full: Image = imageRecord({
    id: 'f0000000-0000-4000-8000-000000000001',
    name: 'x',
    status: 'importing',
    owner: 'p1',
    container_format: 'bare',
    disk_format: 'raw',
    ...image,
  });
  const ctx: PluginContext = {
    image: full,
    stagedPath,
    roles: ['member', 'reader'],
    signal: new AbortController().signal,
    sizeCap: 1024 * MiB,
    async updateImage(fields) {
      updates.push(fields);
    },
    async setProperties(p) {
      props.push(p);
    },
    mayWriteProperty: () => true,
    inspectFile,
    judge: (report: FormatReport, claimed: string | null): Verdict => realJudge(report, claimed, policy),
    warn: (m) => warnings.push(m),
    ...over,
  };
  return { ctx, updates, props, warnings };
}

async function rejectsWith(p: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof PluginFailed, `expected PluginFailed, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

/** A file whose bytes are recognisable, so a round trip is checked byte for byte. */
function pattern(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4096) b.write(`block ${i / 4096}\n`, i);
  return b;
}

// ---------------------------------------------------------------------------------------------- factory

test('createPlugins builds the list in order and refuses unknown names and output formats', () => {
  assert.deepEqual(
    createPlugins(['no_op', 'image_decompression', 'inject_image_metadata', 'image_conversion'], OPTIONS).map((p) => p.name),
    ['no_op', 'image_decompression', 'inject_image_metadata', 'image_conversion'],
  );
  assert.throws(() => createPlugins(['no_op', 'web_download'], OPTIONS), /web_download/);
  assert.throws(() => createPlugins(['image_conversion'], { ...OPTIONS, outputFormat: 'vhd' }), /output_format.*vhd/);
  // output_format only matters when the conversion plugin is on.
  assert.equal(createPlugins(['no_op'], { ...OPTIONS, outputFormat: 'vhd' }).length, 1);
});

test('no_op changes nothing', async () => {
  const d = await workdir();
  const staged = join(d, 'img');
  await writeFile(staged, 'data');
  const r = context(staged);
  await plugin('no_op').run(r.ctx);
  assert.deepEqual([r.updates, r.props], [[], []]);
  assert.equal(await readFile(staged, 'utf8'), 'data');
});

// -------------------------------------------------------------------------------------- inject metadata

test('inject_image_metadata writes the configured pairs, dropping os_glance* and protected keys', async () => {
  const inject = { hw_a: '1', os_glance_x: 'no', secret_k: 'v', b: '2' };
  const r = context(
    '/nonexistent',
    { properties: { b: 'old' } },
    {
      mayWriteProperty: (name, exists) => name !== 'secret_k' && (name !== 'b' || exists),
    },
  );
  await plugin('inject_image_metadata', { inject }).run(r.ctx);
  assert.deepEqual(r.props, [{ hw_a: '1', b: '2' }]);
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings.join('\n'), /os_glance_x/);
  assert.match(r.warnings.join('\n'), /secret_k/);
});

test('inject_image_metadata skips users with an ignored role, and an empty inject', async () => {
  const admin = context('/nonexistent', {}, { roles: ['admin', 'member'] });
  await plugin('inject_image_metadata', { inject: { a: '1' }, ignoreUserRoles: ['Admin'] }).run(admin.ctx);
  assert.deepEqual(admin.props, []);
  const empty = context('/nonexistent');
  await plugin('inject_image_metadata', { inject: {} }).run(empty.ctx);
  assert.deepEqual(empty.props, []);
});

// ----------------------------------------------------------------------------------------- decompression

async function compressed(kind: 'gzip' | 'bzip2' | 'xz' | 'zip', content: Buffer): Promise<{ d: string; staged: string }> {
  const d = await workdir();
  await writeFile(join(d, 'disk.img'), content);
  if (kind === 'zip') sh('zip', ['-q', 'staged', 'disk.img'], d);
  else sh(kind, ['-k', '-1', 'disk.img'], d);
  const made = { gzip: 'disk.img.gz', bzip2: 'disk.img.bz2', xz: 'disk.img.xz', zip: 'staged.zip' }[kind];
  const staged = join(d, 'staged');
  await copyFile(join(d, made), staged);
  return { d, staged };
}

for (const kind of ['gzip', 'bzip2', 'xz', 'zip'] as const) {
  test(`image_decompression unpacks ${kind} in place`, async () => {
    const content = pattern(MiB);
    const { d, staged } = await compressed(kind, content);
    const r = context(staged);
    await plugin('image_decompression').run(r.ctx);
    assert.ok((await readFile(staged)).equals(content));
    assert.deepEqual(r.updates, []);
    assert.ok(!existsSync(`${staged}.uc`));
    void d;
  });
}

test('image_decompression leaves compressed containers and plain data alone', async () => {
  const { staged } = await compressed('gzip', pattern(64 * 1024));
  const before = await readFile(staged);
  await plugin('image_decompression').run(context(staged, { container_format: 'compressed' }).ctx);
  assert.ok((await readFile(staged)).equals(before));
  const d = await workdir();
  const plain = join(d, 'plain');
  await writeFile(plain, pattern(8192));
  await plugin('image_decompression').run(context(plain).ctx);
  assert.ok((await readFile(plain)).equals(pattern(8192)));
});

test('image_decompression refuses a zip with two members and LHA archives, keeping the staged file', async () => {
  const d = await workdir();
  await writeFile(join(d, 'a'), 'a');
  await writeFile(join(d, 'b'), 'b');
  sh('zip', ['-q', 'two.zip', 'a', 'b'], d);
  const staged = join(d, 'two.zip');
  const before = await readFile(staged);
  await rejectsWith(plugin('image_decompression').run(context(staged).ctx), 'Archive contains more than one file.');
  assert.ok((await readFile(staged)).equals(before));

  const lha = join(d, 'lha');
  await writeFile(lha, Buffer.concat([Buffer.from([0x20, 0x00]), Buffer.from('-lh5-'), Buffer.alloc(100)]));
  await rejectsWith(plugin('image_decompression').run(context(lha).ctx), /LHA.*not supported/);
  assert.deepEqual((await readdir(d)).sort(), ['a', 'b', 'lha', 'two.zip']);
});

for (const kind of ['gzip', 'xz', 'zip'] as const) {
  test(`a ${kind} bomb fails at image_size_cap, leaving the staged file and no temp file`, async () => {
    const { d, staged } = await compressed(kind, Buffer.alloc(64 * MiB));
    const before = await readFile(staged);
    const listing = (await readdir(d)).sort();
    const r = context(staged, {}, { sizeCap: 16 * MiB });
    await rejectsWith(plugin('image_decompression').run(r.ctx), `The decompressed image is larger than image_size_cap (${16 * MiB} bytes)`);
    assert.ok((await readFile(staged)).equals(before));
    assert.deepEqual((await readdir(d)).sort(), listing);
  });
}

test('image_decompression fails cleanly on corrupt data', async () => {
  const { d, staged } = await compressed('gzip', pattern(MiB));
  const data = await readFile(staged);
  await writeFile(staged, data.subarray(0, data.length >> 1));
  await rejectsWith(plugin('image_decompression').run(context(staged).ctx), /^The gzip data could not be decompressed/);
  const bz = join(d, 'bz');
  await writeFile(bz, Buffer.concat([Buffer.from('BZh9'), Buffer.alloc(64, 7)]));
  await rejectsWith(plugin('image_decompression').run(context(bz).ctx), /^The bzip2 data could not be decompressed: (?!.*\/)/);
  assert.ok(!existsSync(`${staged}.uc`) && !existsSync(`${bz}.uc`));
});

test('an aborted decompression leaves the staged file and no temp file', async () => {
  for (const kind of ['gzip', 'xz'] as const) {
    const { d, staged } = await compressed(kind, pattern(MiB));
    const before = await readFile(staged);
    const listing = (await readdir(d)).sort();
    const controller = new AbortController();
    controller.abort();
    const r = context(staged, {}, { signal: controller.signal });
    await assert.rejects(plugin('image_decompression').run(r.ctx), { name: 'AbortError' });
    assert.ok((await readFile(staged)).equals(before));
    assert.deepEqual((await readdir(d)).sort(), listing);
  }
});

test('compression magic numbers', () => {
  assert.equal(detectCompression(Buffer.from('BZh91AY&SY')), 'bzip2');
  assert.equal(detectCompression(Buffer.from('BZhx')), null);
  assert.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 4])), 'xz');
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0])), 'gzip');
  assert.equal(detectCompression(Buffer.from('PK\x03\x04')), 'zip');
  assert.equal(detectCompression(Buffer.alloc(8)), null);
});

// -------------------------------------------------------------------------------------------- conversion

/** A raw disk with recognisable data, and the same disk as `format`. */
async function disk(format: string, size = 4 * MiB): Promise<{ d: string; raw: string; staged: string }> {
  const d = await workdir();
  const raw = join(d, 'orig.raw');
  await writeFile(raw, pattern(size));
  const staged = join(d, 'staged');
  if (format === 'raw') await copyFile(raw, staged);
  else sh('qemu-img', ['convert', '-f', 'raw', '-O', format, raw, staged], d);
  return { d, raw, staged };
}

function qemuFormat(path: string): string {
  return JSON.parse(sh('qemu-img', ['info', '--output=json', path], '/').toString()).format;
}

test('image_conversion turns qcow2 into raw', async () => {
  const { d, raw, staged } = await disk('qcow2');
  const r = context(staged, { disk_format: 'qcow2' });
  await plugin('image_conversion').run(r.ctx);
  assert.ok((await readFile(staged)).equals(await readFile(raw)));
  assert.deepEqual(r.updates, [{ disk_format: 'raw', container_format: 'bare', virtual_size: 4 * MiB }]);
  assert.deepEqual((await readdir(d)).sort(), ['orig.raw', 'staged']);
});

test('image_conversion turns raw into qcow2 when that is the output format', async () => {
  const { d, raw, staged } = await disk('raw');
  const r = context(staged, { disk_format: 'raw' });
  await plugin('image_conversion', { outputFormat: 'qcow2' }).run(r.ctx);
  assert.equal(qemuFormat(staged), 'qcow2');
  sh('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', staged, raw], d);
  assert.deepEqual(r.updates, [{ disk_format: 'qcow2', container_format: 'bare', virtual_size: 4 * MiB }]);
});

test('image_conversion keeps data already in the output format, setting virtual_size', async () => {
  const { staged } = await disk('qcow2');
  const before = await readFile(staged);
  const r = context(staged, { disk_format: 'qcow2' });
  await plugin('image_conversion', { outputFormat: 'qcow2' }).run(r.ctx);
  assert.ok((await readFile(staged)).equals(before));
  assert.deepEqual(r.updates, [{ virtual_size: 4 * MiB }]);
});

test('image_conversion refuses data that is not what disk_format claims', async () => {
  const { staged } = await disk('qcow2');
  await rejectsWith(
    plugin('image_conversion').run(context(staged, { disk_format: 'vmdk' }).ctx),
    'Image format mismatch: disk_format vmdk, but the data is qcow2',
  );
  // disk_format raw with qcow2 content: accepted on upload with a warning, but never converted.
  await rejectsWith(
    plugin('image_conversion').run(context(staged, { disk_format: 'raw' }).ctx),
    'Image format mismatch: disk_format raw, but the data is qcow2',
  );
});

test('image_conversion refuses backing files and external data files', async () => {
  const d = await workdir();
  sh('qemu-img', ['create', '-q', '-f', 'raw', 'base.raw', '1M'], d);
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', 'backed.qcow2'], d);
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'data_file=data.raw', 'datafile.qcow2', '1M'], d);
  const backed = join(d, 'backed.qcow2');
  const dataFile = join(d, 'datafile.qcow2');
  // Our inspector catches both before qemu-img runs...
  const backedCtx = context(backed, { disk_format: 'qcow2' });
  await rejectsWith(plugin('image_conversion').run(backedCtx.ctx), 'Image has disallowed configuration: Image has a backing file');
  const dataFileCtx = context(dataFile, { disk_format: 'qcow2' });
  await rejectsWith(plugin('image_conversion').run(dataFileCtx.ctx), 'Image has disallowed configuration: Image has data_file set');
  // ...and qemu-img's own view catches them should the inspector ever miss one.
  const lenient = { judge: (): Verdict => ({ accepted: true, virtualSize: null, warnings: [] }) };
  await rejectsWith(plugin('image_conversion').run(context(backed, { disk_format: 'qcow2' }, lenient).ctx), 'QCOW images with backing files are not allowed');
  await rejectsWith(plugin('image_conversion').run(context(dataFile, { disk_format: 'qcow2' }, lenient).ctx), 'QCOW images with data-file set are not allowed');
  assert.deepEqual((await readdir(d)).sort(), ['backed.qcow2', 'base.raw', 'data.raw', 'datafile.qcow2']);
});

test('image_conversion checks the vmdk create-type qemu-img reports', async () => {
  const { staged } = await disk('vmdk', MiB);
  const r = context(staged, { disk_format: 'vmdk' });
  await plugin('image_conversion').run(r.ctx);
  assert.equal(r.updates[0].disk_format, 'raw');
  const { staged: other } = await disk('vmdk', MiB);
  const lenient = { judge: (): Verdict => ({ accepted: true, virtualSize: null, warnings: [] }) };
  await rejectsWith(
    plugin('image_conversion', { vmdkAllowedTypes: ['streamOptimized'] }).run(context(other, { disk_format: 'vmdk' }, lenient).ctx),
    'Invalid VMDK create-type specified',
  );
});

test('image_conversion checks the output format, and reports qemu-img failures without server paths', async () => {
  const { d, staged } = await disk('qcow2');
  // An inspector that sees something else in the converted file.
  const forged = {
    inspectFile: async (path: string): Promise<FormatReport> =>
      path === staged ? inspectFile(path) : { ...(await inspectFile(path)), format: 'vmdk', subformat: 'monolithicSparse' },
  };
  await rejectsWith(plugin('image_conversion').run(context(staged, { disk_format: 'qcow2' }, forged).ctx), 'Converted image in unexpected format');
  assert.deepEqual((await readdir(d)).sort(), ['orig.raw', 'staged']);
  // An inspector fooled into calling raw data qcow2: qemu-img, told -f qcow2, refuses it.
  const raw = join(d, 'orig.raw');
  const fooled = { inspectFile: async (path: string): Promise<FormatReport> => ({ ...(await inspectFile(path)), format: 'qcow2' }) };
  await rejectsWith(plugin('image_conversion').run(context(raw, { disk_format: 'qcow2' }, fooled).ctx), /^qemu-img: .*orig\.raw.*qcow2/);
  await assert.rejects(plugin('image_conversion').run(context(raw, { disk_format: 'qcow2' }, fooled).ctx), (err: Error) => !err.message.includes(d));
});

test('image_conversion skips ISO images claimed as iso and refuses them claimed as anything else', async () => {
  const d = await workdir();
  await writeFile(join(d, 'file.txt'), 'hello');
  sh('genisoimage', ['-quiet', '-o', 'staged.iso', 'file.txt'], d);
  const staged = join(d, 'staged.iso');
  const before = await readFile(staged);
  const r = context(staged, { disk_format: 'iso' });
  await plugin('image_conversion').run(r.ctx);
  assert.deepEqual(r.updates, []);
  assert.ok((await readFile(staged)).equals(before));
  await rejectsWith(
    plugin('image_conversion').run(context(staged, { disk_format: 'raw' }).ctx),
    'Image has disallowed configuration: the data is an ISO, not raw',
  );
});

test('image_conversion refuses a raw output larger than image_size_cap before writing it', async () => {
  const d = await workdir();
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', 'big.qcow2', '64M'], d);
  const r = context(join(d, 'big.qcow2'), { disk_format: 'qcow2' }, { sizeCap: 16 * MiB });
  await rejectsWith(plugin('image_conversion').run(r.ctx), `The converted image is larger than image_size_cap (${16 * MiB} bytes)`);
  assert.deepEqual(await readdir(d), ['big.qcow2']);
});

test('qemu-img info that does not finish (a FIFO it waits on) is killed after its wall-clock limit, and the task told', async () => {
  const d = await workdir();
  const fifo = join(d, 'waits');
  execFileSync('mkfifo', [fifo]);
  const limits = { infoCpuSeconds: 8, convertCpuSeconds: 30, addressSpaceMiB: 1024, convertAddressSpaceMiB: 2048, infoWallSeconds: 1 };
  await assert.rejects(
    qemuImgInfo(fifo, 'raw', limits, new AbortController().signal),
    (err: unknown) => err instanceof PluginFailed && err.message === 'qemu-img info did not finish within 1 seconds',
  );
  assert.deepEqual(await processesMentioning(fifo), [], 'qemu-img is gone');
});

/** Pids of running processes whose command line mentions `needle`. */
async function processesMentioning(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) found.push(Number(entry));
  }
  return found;
}

test('aborting a conversion kills qemu-img and leaves no temp file', async () => {
  const d = await workdir();
  const raw = join(d, 'staged');
  // Large enough for qemu-img to take a few hundred milliseconds writing a vmdk.
  await writeFile(raw, Buffer.alloc(128 * MiB, 1));
  const controller = new AbortController();
  const r = context(raw, { disk_format: 'raw' }, { signal: controller.signal });
  const running = plugin('image_conversion', { outputFormat: 'vmdk' }).run(r.ctx);
  // Abort as soon as qemu-img has created its output.
  const started = Date.now();
  while (!existsSync(`${raw}.vmdk`) && Date.now() - started < 5000) await new Promise((res) => setTimeout(res, 2));
  assert.ok(existsSync(`${raw}.vmdk`), 'qemu-img convert never started');
  assert.ok((await processesMentioning(d)).length > 0, 'qemu-img should be running');
  controller.abort();
  await assert.rejects(running, { name: 'AbortError' });
  assert.deepEqual(await processesMentioning(d), []);
  assert.deepEqual(await readdir(d), ['staged']);
  assert.deepEqual(r.updates, []);
});

// ------------------------------------------------------------------------------------ limited processes

test('runLimited: abort kills the process, output is bounded, failures carry stderr', async () => {
  const controller = new AbortController();
  const t0 = Date.now();
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(runLimited('sleep', ['30'], { signal: controller.signal, limits: { cpuSeconds: 5 } }), { name: 'AbortError' });
  assert.ok(Date.now() - t0 < 5000);
  await assert.rejects(runLimited('yes', [], { maxOutputBytes: 4096 }), ProcessOutputTooLarge);
  await assert.rejects(runLimited('sh', ['-c', 'echo nope >&2; exit 3']), /exited with status 3: nope/);
  assert.deepEqual(await runLimited('sh', ['-c', 'echo out; echo err >&2'], { limits: { addressSpaceBytes: 512 * MiB } }), {
    stdout: 'out\n',
    stderr: 'err\n',
  });
});
