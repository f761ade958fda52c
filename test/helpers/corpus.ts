// The disk-image test corpus: real images made by scripts/make-test-images.sh (qemu-img, genisoimage,
// sfdisk) plus hostile variants, built once per test process into a temp dir removed at exit.
//
//   const dir = await testCorpus();
//   for (const entry of CORPUS) { ...upload path.join(dir, entry.file) with entry.disk_format... }
//
// CORPUS lists uploads (a file with the disk_format/container_format to claim) and what the API must
// do with each; CORPUS_FILES lists what inspecting each file's whole stream finds.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/make-test-images.sh', import.meta.url));
const MiB = 1024 * 1024;

/** A virtual size: bytes, 'file-size' (the file's byte count, i.e. the image's `size`), or none. */
export type ExpectedSize = number | 'file-size' | null;

export interface Failure {
  check: string;
  message: string;
}

/** What inspectFile (the whole-stream inspection of src/formats/inspector.ts) reports for a file. */
export interface CorpusFile {
  /** report.format: the single detected format ('raw' when nothing richer matched; null on error). */
  detected: string | null;
  /** Every non-raw inspector that matches the data (more than one only for iso+gpt and polyglots). */
  matches: string[];
  /** report.virtualSize; left out where the value is not pinned down (qed, multiple matches). */
  virtualSize?: ExpectedSize;
  /** report.failures, with oslo.utils' check names and messages. */
  failures: Failure[];
  /** report.subformat where the format has one (vmdk createType). */
  subformat?: string;
  /** A fragment of report.error, when detection fails. */
  error?: string;
  note: string;
}

const none: Failure[] = [];

export const CORPUS_FILES: Record<string, CorpusFile> = {
  'raw.img': { detected: 'raw', matches: [], virtualSize: 4 * MiB, failures: none, note: '4 MiB of zeros' },
  'qcow2-v2.qcow2': { detected: 'qcow2', matches: ['qcow2'], virtualSize: 16 * MiB, failures: none, note: 'compat=0.10' },
  'qcow2-v3.qcow2': { detected: 'qcow2', matches: ['qcow2'], virtualSize: 32 * MiB, failures: none, note: 'compat=1.1' },
  'vmdk-sparse.vmdk': {
    detected: 'vmdk',
    matches: ['vmdk'],
    virtualSize: 8 * MiB,
    failures: none,
    subformat: 'monolithicSparse',
    note: 'qemu-img monolithicSparse',
  },
  'vmdk-stream.vmdk': {
    detected: 'vmdk',
    matches: ['vmdk'],
    virtualSize: 8 * MiB,
    failures: none,
    subformat: 'streamOptimized',
    note: 'qemu-img convert streamOptimized (grain directory in the header, no footer)',
  },
  'vmdk-stream-footer.vmdk': {
    detected: 'vmdk',
    matches: ['vmdk'],
    virtualSize: 8 * MiB,
    failures: none,
    subformat: 'streamOptimized',
    note: 'streamOptimized with gdOffset = GD_AT_END and a valid footer',
  },
  'vhd.vhd': { detected: 'vhd', matches: ['vhd'], virtualSize: 8 * MiB, failures: none, note: 'vpc, force_size' },
  'vhdx.vhdx': { detected: 'vhdx', matches: ['vhdx'], virtualSize: 16 * MiB, failures: none, note: '' },
  'vdi.vdi': { detected: 'vdi', matches: ['vdi'], virtualSize: 8 * MiB, failures: none, note: '' },
  'iso.iso': { detected: 'iso', matches: ['iso'], virtualSize: 'file-size', failures: none, note: 'genisoimage' },
  'iso-with-qcow2-member.iso': {
    detected: 'iso',
    matches: ['iso'],
    virtualSize: 'file-size',
    failures: none,
    note: 'harmless: a qcow2 file inside the ISO filesystem',
  },
  'iso-gpt-hybrid.iso': {
    detected: 'iso',
    matches: ['gpt', 'iso'],
    virtualSize: 'file-size',
    failures: none,
    note: 'protective MBR in the system area; iso+gpt counts as iso',
  },
  'gpt.img': { detected: 'gpt', matches: ['gpt'], virtualSize: 4 * MiB, failures: none, note: 'sfdisk GPT' },
  'mbr.img': { detected: 'gpt', matches: ['gpt'], virtualSize: 4 * MiB, failures: none, note: 'sfdisk DOS label' },
  'luks.img': {
    detected: 'luks',
    matches: ['luks'],
    virtualSize: 4 * MiB,
    failures: none,
    note: 'LUKS1 header + 4 MiB payload (virtual size = bytes after the payload offset)',
  },
  'bomb.raw.gz': { detected: 'raw', matches: [], virtualSize: 'file-size', failures: none, note: '256 MiB of zeros, gzipped' },
  'qcow2.gz': { detected: 'raw', matches: [], virtualSize: 'file-size', failures: none, note: 'gzip of qcow2-v2.qcow2' },
  'raw.zip': { detected: 'raw', matches: [], virtualSize: 'file-size', failures: none, note: 'zip, one member' },
  'two-members.zip': { detected: 'raw', matches: [], virtualSize: 'file-size', failures: none, note: 'zip, two members' },
  'raw.img.bz2': { detected: 'raw', matches: [], virtualSize: 'file-size', failures: none, note: 'bzip2 of raw.img' },
  'raw.img.xz': { detected: 'raw', matches: [], virtualSize: 'file-size', failures: none, note: 'xz of raw.img' },
  'qcow2-backing.qcow2': {
    detected: 'qcow2',
    matches: ['qcow2'],
    virtualSize: 1 * MiB,
    failures: [{ check: 'backing_file', message: 'Image has a backing file' }],
    note: 'backing file /etc/passwd',
  },
  'qcow2-datafile.qcow2': {
    detected: 'qcow2',
    matches: ['qcow2'],
    virtualSize: 1 * MiB,
    failures: [{ check: 'data_file', message: 'Image has data_file set' }],
    note: 'external data file',
  },
  'qcow2-unknown-feature.qcow2': {
    detected: 'qcow2',
    matches: ['qcow2'],
    virtualSize: 1 * MiB,
    failures: [{ check: 'unknown_features', message: 'Unknown QCOW2 features found' }],
    note: 'incompatible feature bit 40',
  },
  'vmdk-flat-passwd.vmdk': {
    detected: 'vmdk',
    matches: ['vmdk'],
    virtualSize: 1 * MiB,
    subformat: 'monolithicFlat',
    failures: [{ check: 'descriptor', message: 'Unsupported subformat' }],
    note: 'text descriptor whose FLAT extent is /etc/passwd (virtual size: the extent, 2048 sectors)',
  },
  'vmdk-url-extent.vmdk': {
    detected: 'vmdk',
    matches: ['vmdk'],
    virtualSize: 1 * MiB,
    subformat: 'monolithicSparse',
    failures: [{ check: 'descriptor', message: 'Invalid extent filenames found' }],
    note: 'text descriptor with a URL extent',
  },
  'vmdk-sparse-evil-extent.vmdk': {
    detected: 'vmdk',
    matches: ['vmdk'],
    virtualSize: 8 * MiB,
    subformat: 'monolithicSparse',
    failures: [{ check: 'descriptor', message: 'Invalid extent filenames found' }],
    note: 'sparse header, embedded descriptor names /etc/passwd',
  },
  'vmdk-sparse-flat-type.vmdk': {
    detected: 'vmdk',
    matches: ['vmdk'],
    virtualSize: 8 * MiB,
    subformat: 'monolithicFlat',
    failures: [{ check: 'descriptor', message: 'Unsupported subformat' }],
    note: 'sparse header, embedded descriptor says monolithicFlat',
  },
  'vmdk-stream-bad-footer.vmdk': {
    detected: 'vmdk',
    matches: ['vmdk'],
    virtualSize: 8 * MiB,
    subformat: 'streamOptimized',
    failures: [{ check: 'footer', message: 'Footer specifies a different descriptor than header' }],
    note: 'GD_AT_END header; the footer names another descriptor',
  },
  'qed.qed': {
    detected: 'qed',
    matches: ['qed'],
    failures: [{ check: 'banned', message: 'This file format is not allowed' }],
    note: 'qed is always refused',
  },
  'luks2.img': {
    detected: 'luks',
    matches: ['luks'],
    failures: [{ check: 'version', message: 'LUKS version 2 is not supported' }],
    note: 'LUKS2 header',
  },
  'gpt-bad-bootflag.img': {
    detected: 'gpt',
    matches: ['gpt'],
    virtualSize: 4 * MiB,
    failures: [{ check: 'mbr', message: 'MBR PTE 0 has invalid boot flag' }],
    note: 'boot flag 0x01 in PTE 0',
  },
  'iso-qcow2-polyglot.iso': {
    detected: null,
    matches: ['iso', 'qcow2'],
    failures: none,
    error: 'Multiple formats detected',
    note: 'qcow2 header over the ISO system area',
  },
  'qcow2-exabyte.qcow2': {
    detected: 'qcow2',
    matches: ['qcow2'],
    virtualSize: Infinity,
    failures: none,
    note: 'header claims 2^60 bytes',
  },
  'qcow2-100t.qcow2': {
    detected: 'qcow2',
    matches: ['qcow2'],
    virtualSize: 100 * 2 ** 40,
    failures: none,
    note: 'a real 100 TiB qcow2',
  },
  'liar.vmdk': {
    detected: 'qcow2',
    matches: ['qcow2'],
    virtualSize: 32 * MiB,
    failures: none,
    note: 'qcow2 named .vmdk',
  },
};

export type CorpusExpectation = { format: string; virtualSize: ExpectedSize } | { rejected: true; reasonIncludes: string };

/** One upload: a corpus file claimed as disk_format/container_format, and what the API must do. */
export interface CorpusEntry {
  file: string;
  disk_format: string;
  container_format: string;
  /**
   * Accepted: the image goes active with this disk_format (uploads never change the claim) and this
   * virtual_size. Rejected: PUT /file answers 415 and the image returns to queued; the reason
   * (response body) contains `reasonIncludes`.
   */
  expected: CorpusExpectation;
  note?: string;
}

const ok = (format: string, virtualSize: ExpectedSize): CorpusExpectation => ({ format, virtualSize });
const rejected = (reasonIncludes: string): CorpusExpectation => ({ rejected: true, reasonIncludes });

export const CORPUS: CorpusEntry[] = [
  // Good images claimed as what they are.
  { file: 'raw.img', disk_format: 'raw', container_format: 'bare', expected: ok('raw', 4 * MiB) },
  { file: 'qcow2-v2.qcow2', disk_format: 'qcow2', container_format: 'bare', expected: ok('qcow2', 16 * MiB) },
  { file: 'qcow2-v3.qcow2', disk_format: 'qcow2', container_format: 'bare', expected: ok('qcow2', 32 * MiB) },
  { file: 'vmdk-sparse.vmdk', disk_format: 'vmdk', container_format: 'bare', expected: ok('vmdk', 8 * MiB) },
  { file: 'vmdk-stream.vmdk', disk_format: 'vmdk', container_format: 'bare', expected: ok('vmdk', 8 * MiB) },
  { file: 'vmdk-stream-footer.vmdk', disk_format: 'vmdk', container_format: 'bare', expected: ok('vmdk', 8 * MiB) },
  { file: 'vhd.vhd', disk_format: 'vhd', container_format: 'bare', expected: ok('vhd', 8 * MiB) },
  { file: 'vhdx.vhdx', disk_format: 'vhdx', container_format: 'bare', expected: ok('vhdx', 16 * MiB) },
  { file: 'vdi.vdi', disk_format: 'vdi', container_format: 'bare', expected: ok('vdi', 8 * MiB) },
  { file: 'iso.iso', disk_format: 'iso', container_format: 'bare', expected: ok('iso', 'file-size') },
  { file: 'iso-with-qcow2-member.iso', disk_format: 'iso', container_format: 'bare', expected: ok('iso', 'file-size') },
  {
    file: 'iso-gpt-hybrid.iso',
    disk_format: 'iso',
    container_format: 'bare',
    expected: ok('iso', 'file-size'),
    note: 'iso+gpt is the one multiple match allowed (bootable ISOs carry an MBR/GPT)',
  },
  // gpt and luks are not disk_formats: such disks are uploaded as raw (rich content claimed raw is
  // accepted, virtual size = byte count, but the detected format's safety checks still run).
  { file: 'gpt.img', disk_format: 'raw', container_format: 'bare', expected: ok('raw', 4 * MiB) },
  { file: 'mbr.img', disk_format: 'raw', container_format: 'bare', expected: ok('raw', 4 * MiB) },
  { file: 'luks.img', disk_format: 'raw', container_format: 'bare', expected: ok('raw', 'file-size') },
  {
    file: 'qcow2-v3.qcow2',
    disk_format: 'raw',
    container_format: 'bare',
    expected: rejected('Image disk_format raw does not match stream data qcow2'),
    note: 'a qcow2 claimed raw: refused (Glance accepts it with a warning; require_raw_format_match = false does too)',
  },
  { file: 'iso.iso', disk_format: 'raw', container_format: 'bare', expected: rejected('Image disk_format raw does not match stream data iso') },
  {
    file: 'raw.img',
    disk_format: 'ami',
    container_format: 'bare',
    expected: ok('ami', null),
    note: 'raw data under a format without an inspector: accepted, no virtual size',
  },
  // container_format other than bare: not inspected, no virtual size (image_decompression material).
  { file: 'bomb.raw.gz', disk_format: 'raw', container_format: 'compressed', expected: ok('raw', null) },
  { file: 'qcow2.gz', disk_format: 'qcow2', container_format: 'compressed', expected: ok('qcow2', null) },
  { file: 'raw.zip', disk_format: 'raw', container_format: 'compressed', expected: ok('raw', null) },
  { file: 'two-members.zip', disk_format: 'raw', container_format: 'compressed', expected: ok('raw', null) },
  { file: 'raw.img.bz2', disk_format: 'raw', container_format: 'compressed', expected: ok('raw', null) },
  { file: 'raw.img.xz', disk_format: 'raw', container_format: 'compressed', expected: ok('raw', null) },
  // Mismatches ("Image disk_format <claimed> does not match stream data <detected>").
  { file: 'raw.img', disk_format: 'qcow2', container_format: 'bare', expected: rejected('does not match') },
  {
    file: 'liar.vmdk',
    disk_format: 'vmdk',
    container_format: 'bare',
    expected: rejected('does not match'),
    note: 'the liar: qcow2 content claimed as vmdk',
  },
  { file: 'gpt.img', disk_format: 'iso', container_format: 'bare', expected: rejected('does not match') },
  // Hostile images.
  { file: 'qcow2-backing.qcow2', disk_format: 'qcow2', container_format: 'bare', expected: rejected('backing file') },
  {
    file: 'qcow2-backing.qcow2',
    disk_format: 'raw',
    container_format: 'bare',
    expected: rejected('does not match stream data qcow2'),
    note: 'claiming raw does not get a qcow2 through (nor skip its safety checks when raw claims are lenient)',
  },
  { file: 'qcow2-exabyte.qcow2', disk_format: 'qcow2', container_format: 'bare', expected: rejected('virtual size exceeds the limit of 70368744177664 bytes') },
  { file: 'qcow2-100t.qcow2', disk_format: 'qcow2', container_format: 'bare', expected: rejected('virtual size exceeds the limit of 70368744177664 bytes') },
  { file: 'qcow2-datafile.qcow2', disk_format: 'qcow2', container_format: 'bare', expected: rejected('data_file') },
  {
    file: 'qcow2-unknown-feature.qcow2',
    disk_format: 'qcow2',
    container_format: 'bare',
    expected: rejected('Unknown QCOW2 features'),
  },
  { file: 'vmdk-flat-passwd.vmdk', disk_format: 'vmdk', container_format: 'bare', expected: rejected('Unsupported subformat') },
  { file: 'vmdk-url-extent.vmdk', disk_format: 'vmdk', container_format: 'bare', expected: rejected('Invalid extent filenames') },
  {
    file: 'vmdk-sparse-evil-extent.vmdk',
    disk_format: 'vmdk',
    container_format: 'bare',
    expected: rejected('Invalid extent filenames'),
  },
  {
    file: 'vmdk-sparse-flat-type.vmdk',
    disk_format: 'vmdk',
    container_format: 'bare',
    expected: rejected('Unsupported subformat'),
  },
  {
    file: 'vmdk-stream-bad-footer.vmdk',
    disk_format: 'vmdk',
    container_format: 'bare',
    expected: rejected('different descriptor'),
  },
  { file: 'qed.qed', disk_format: 'raw', container_format: 'bare', expected: rejected('does not match stream data qed') },
  { file: 'luks2.img', disk_format: 'raw', container_format: 'bare', expected: rejected('not supported') },
  { file: 'gpt-bad-bootflag.img', disk_format: 'raw', container_format: 'bare', expected: rejected('invalid boot flag') },
  {
    file: 'iso-qcow2-polyglot.iso',
    disk_format: 'iso',
    container_format: 'bare',
    expected: rejected('Multiple formats detected'),
  },
];

let corpus: Promise<string> | null = null;

/** The corpus directory, built on first use (once per process) and removed when the process exits. */
export function testCorpus(): Promise<string> {
  corpus ??= (async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gaze-corpus-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await new Promise<void>((resolve, reject) => {
      execFile('bash', [SCRIPT, dir], { timeout: 60_000 }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`make-test-images.sh failed: ${err.message}\n${stderr}`));
        else resolve();
      });
    });
    return dir;
  })();
  return corpus;
}

/** Turns an ExpectedSize into bytes for a file of the corpus. */
export async function resolveSize(dir: string, file: string, size: ExpectedSize): Promise<number | null> {
  if (size !== 'file-size') return size;
  return (await stat(path.join(dir, file))).size;
}
