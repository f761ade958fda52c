import { gazeError } from './errors.ts';

export const IMAGE_STATUSES = ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

export const VISIBILITIES = ['public', 'community', 'shared', 'private'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

export interface ImageLocation {
  id: string;
  url: string;
  metadata: Record<string, unknown>;
  status: string; // active | pending_delete | deleted
  /** The value the request that set this location wrote, as Glance's answer to that request shows it; never stored. */
  asGiven?: Record<string, unknown>;
}

export interface Image {
  id: string;
  name: string | null;
  status: ImageStatus;
  visibility: Visibility;
  protected: boolean;
  os_hidden: boolean;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  owner: string | null;
  size: number | null;
  virtual_size: number | null;
  container_format: string | null;
  disk_format: string | null;
  min_ram: number;
  min_disk: number;
  /** Internal timestamps: `YYYY-MM-DD HH:MM:SS.ffffff` in UTC (see domain/time.ts). */
  created_at: string;
  updated_at: string;
  properties: ImageProperties;
  tags: string[];
  locations: ImageLocation[];
}

/**
 * An image's extra properties. A value is null only where the image schema allows it (`kernel_id`,
 * `ramdisk_id`): Glance stores and shows that null.
 */
export type ImageProperties = Record<string, string | null>;

/** In a property write, a property kept with the value null (a plain null in a write removes the property). */
export const NULL_VALUE: unique symbol = Symbol('property whose value is null');

/** Properties to write: a string sets one, null removes one, NULL_VALUE keeps one whose value is null. */
export type PropertyWrites = Record<string, string | null | typeof NULL_VALUE>;

// The legal status transitions of spec README's state machine; anything else is refused.
const TRANSITIONS: Record<ImageStatus, readonly ImageStatus[]> = {
  queued: ['saving', 'uploading', 'importing', 'active', 'deleted'],
  saving: ['active', 'queued', 'killed', 'deleted'],
  uploading: ['importing', 'queued', 'deleted'],
  importing: ['active', 'queued', 'deleted'],
  active: ['deactivated', 'pending_delete', 'deleted'],
  deactivated: ['active', 'deleted'],
  killed: ['deleted'],
  pending_delete: ['deleted', 'active'],
  deleted: [],
};

/** The image was deleted (or left the status a write expected) while work on it went on. */
export class ImageGone extends Error {
  constructor(readonly imageId: string) {
    super(`image ${imageId} is gone`);
    this.name = 'ImageGone';
  }
}

export function canTransition(from: ImageStatus, to: ImageStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(from: ImageStatus, to: ImageStatus): void {
  if (!canTransition(from, to)) throw gazeError('STATUS_TRANSITION', from, to);
}

// Every status change of an image is one of the changes below: the status with every field that goes
// with it. The repository takes a status only in this shape (the brand) and checks it against the
// table above for each status it expects the image to be in.
declare const statusChangeBrand: unique symbol;
export interface ImageDataFields {
  size: number | null;
  virtual_size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  reserved_bytes: number | null;
  staged_bytes: number | null;
}
export type StatusChange = Partial<ImageDataFields> & { status: ImageStatus; readonly [statusChangeBrand]: true };

const change = (fields: Partial<ImageDataFields> & { status: ImageStatus }) => fields as StatusChange;

/** A change of status alone (start of a transfer, deactivate, reactivate), with bytes to hold against the quotas. */
export function moveTo(status: ImageStatus, reservedBytes?: number | null): StatusChange {
  return change(reservedBytes === undefined ? { status } : { status, reserved_bytes: reservedBytes });
}

/**
 * Back to `queued` after an upload, stage or import that failed or was interrupted: no data, no sizes,
 * nothing reserved. A digest given at create (os_hash_algo/os_hash_value) stays: it is still expected.
 */
export function resetToQueued(): StatusChange {
  return change({ status: 'queued', size: null, virtual_size: null, checksum: null, reserved_bytes: null, staged_bytes: null });
}

/** Active with the stored data's facts; the reservation ends. */
export function activation(
  data: { size: number; checksum: string; hashAlgo: string; hashValue: string; virtualSize: number | null },
  /** Bytes still held for the stores an import writes to after this one (all_stores_must_succeed off). */
  stillReserved: number | null = null,
): StatusChange {
  return change({
    status: 'active',
    size: data.size,
    checksum: data.checksum,
    os_hash_algo: data.hashAlgo,
    os_hash_value: data.hashValue,
    virtual_size: data.virtualSize,
    reserved_bytes: stillReserved,
    staged_bytes: null,
  });
}

/**
 * Active with data that was not written here but registered as a location: the size its store reports
 * and the digests the client vouched for, when it gave them (validation_data).
 */
export function locationActivation(size: number, digests: Partial<Pick<ImageDataFields, 'checksum' | 'os_hash_algo' | 'os_hash_value'>>): StatusChange {
  return change({ status: 'active', size, ...digests, reserved_bytes: null });
}

/**
 * The properties a status change ends, to be removed with it: who writes the data
 * (os_glance_upload_node) means something only while the image is saving or uploading, and the node
 * that holds its staged data (os_glance_stage_host) only while it is uploading.
 */
export function propertiesEndedBy(from: readonly ImageStatus[], to: ImageStatus): Record<string, null> {
  const writing = (status: ImageStatus) => status === 'saving' || status === 'uploading';
  return {
    ...(from.some(writing) && !writing(to) ? { [UPLOAD_NODE]: null } : {}),
    ...(from.includes('uploading') && to !== 'uploading' ? { [STAGE_HOST]: null } : {}),
  };
}

/**
 * The properties a whole stage ends with: its writer is forgotten (an import through any node may take
 * the data), and with local staging (`localHost`, this node's URL) the node that holds the data is named.
 */
export function stageEnded(localHost: string | null): Record<string, string | null> {
  return { [UPLOAD_NODE]: null, ...(localHost ? { [STAGE_HOST]: localHost } : {}) };
}

/** Refuses (as a programming error) a status write that the state machine does not allow. */
export function checkStatusChange(expected: readonly ImageStatus[] | null, to: ImageStatus): asserts expected is readonly ImageStatus[] {
  if (expected === null) throw new Error(`a status change to ${to} must name the status it leaves`);
  for (const from of expected) {
    if (from !== to && !canTransition(from, to)) throw new Error(`image status ${from} -> ${to} is not in the state machine`);
  }
}

/** Leaving queued/uploading for a state that holds data needs both formats (spec README). */
export function assertFormatsForData(image: Pick<Image, 'disk_format' | 'container_format'>): void {
  const missing: string[] = [];
  if (!image.disk_format) missing.push('disk_format');
  if (!image.container_format) missing.push('container_format');
  if (missing.length) throw gazeError('FORMATS_REQUIRED', missing);
}

/** Base attributes a user may set; everything not here and not reserved is an extra property. */
export const USER_BASE_PROPERTIES = [
  'name',
  'visibility',
  'protected',
  'os_hidden',
  'min_ram',
  'min_disk',
  'disk_format',
  'container_format',
  'tags',
  'owner',
] as const;

export const READ_ONLY_PROPERTIES = [
  'created_at',
  'updated_at',
  'status',
  'checksum',
  'size',
  'virtual_size',
  'direct_url',
  'self',
  'file',
  'schema',
  'id',
  'os_hash_algo',
  'os_hash_value',
] as const;

/**
 * Read-only keys refused on create; `id` is accepted on create (spec §3.2), and so are `os_hash_algo` with
 * `os_hash_value`: Gaze keeps them as the expected digest that uploaded or imported data must match.
 */
export const CREATE_DISALLOWED = ['direct_url', 'self', 'file', 'schema', 'stores'] as const;
export const CREATE_READ_ONLY = ['created_at', 'updated_at', 'status', 'checksum', 'size', 'virtual_size'] as const;

export const DIGEST_HEX_LENGTH: Record<string, number> = { md5: 32, sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128 };

/**
 * Checks an expected digest given on create: both fields, the service's algorithm, hex of the right
 * length. Both null is none given (a queued image's fields, as a client copying one sends them back).
 */
export function checkExpectedDigest(algo: unknown, value: unknown, hashingAlgorithm: string): void {
  if ((algo ?? null) === null && (value ?? null) === null) return;
  if (typeof algo !== 'string' || typeof value !== 'string') {
    throw gazeError('BAD_REQUEST', 'os_hash_algo and os_hash_value must be given together, as strings.');
  }
  if (algo !== hashingAlgorithm) throw gazeError('BAD_REQUEST', `os_hash_algo must be ${hashingAlgorithm}, not ${algo}`);
  const length = DIGEST_HEX_LENGTH[algo];
  if (!new RegExp(`^[0-9a-f]{${length}}$`).test(value)) {
    throw gazeError('BAD_REQUEST', `os_hash_value must be the ${length} lowercase hex digits of a ${algo} digest`);
  }
}
export const RESERVED_PROPERTIES = ['location', 'deleted', 'deleted_at'] as const;

/**
 * The node writing an image's data while it is `saving` or `uploading` (set with that status, as a
 * `util/process.ts` node name): a node's start leaves a live writer's upload or stage alone.
 */
export const UPLOAD_NODE = 'os_glance_upload_node';

/** The node whose local staging holds an image's staged data (`worker_self_reference_url`), as Glance names it. */
export const STAGE_HOST = 'os_glance_stage_host';

/** The task that holds an image's data while it imports (one at a time), as Glance names it. */
export const IMPORT_LOCK = 'os_glance_import_task';

/** Properties Gaze stores but never shows (spec §3.1). */
export const HIDDEN_PROPERTIES = [STAGE_HOST, 'os_glance_hash_op_host', UPLOAD_NODE] as const;

/** Whether the API and notifications leave this property out (one of HIDDEN_PROPERTIES). */
export function isHiddenProperty(key: string): boolean {
  return (HIDDEN_PROPERTIES as readonly string[]).includes(key);
}

export function isReservedNamespace(key: string): boolean {
  return key.startsWith('os_glance');
}

export function isBaseProperty(key: string): boolean {
  return (
    (USER_BASE_PROPERTIES as readonly string[]).includes(key) ||
    (READ_ONLY_PROPERTIES as readonly string[]).includes(key) ||
    key === 'locations' ||
    key === 'stores'
  );
}

/** Extra properties counted against image_property_quota (spec §3.2). */
export function countedPropertyKeys(properties: ImageProperties): number {
  return Object.keys(properties).filter((k) => !isReservedNamespace(k)).length;
}

/** min_ram/min_disk are 32-bit columns in Glance; JSON numbers beyond (even 1e400 = Infinity) are refused. */
export const MAX_INT32 = 2147483647;

/** Glance's image refuses a negative value as it is set. */
export function checkNotNegative(param: 'min_ram' | 'min_disk', value: unknown): void {
  if (typeof value === 'number' && value < 0) throw gazeError('NEGATIVE_VALUE', value, param);
}

/** Its database layer refuses what a 32-bit column cannot hold, when the image is saved. */
export function checkFitsColumn(param: 'min_ram' | 'min_disk', value: unknown): void {
  if (typeof value === 'number' && (!Number.isSafeInteger(value) || value > MAX_INT32)) throw gazeError('COLUMN_OUT_OF_RANGE', param, MAX_INT32);
}

export function checkMinimum(param: 'min_ram' | 'min_disk', value: unknown): void {
  checkNotNegative(param, value);
  checkFitsColumn(param, value);
}

/** Property names that would reach into JavaScript object internals. */
export function checkPropertyName(key: string): void {
  if (key === '__proto__' || key === 'constructor' || key === 'prototype') throw gazeError('PROPERTY_NAME_INVALID', key);
}

const FOUR_BYTE_UNICODE = /[\u{10000}-\u{10FFFF}]/u;

/** Python's str.title(), which Glance's message applies to the field name (os_distro → Os_Distro). */
function pythonTitle(text: string): string {
  return text.replace(/[A-Za-z]+/g, (word) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase());
}

/**
 * Glance's no_4byte_params (its schema predates utf8mb4): characters beyond the Basic Multilingual
 * Plane are refused in field names and string values of an image write, and in tags.
 */
export function checkNoFourByteUnicode(fields: Record<string, unknown>, tags: readonly string[] = []): void {
  for (const [key, value] of Object.entries(fields)) {
    if (FOUR_BYTE_UNICODE.test(key)) throw gazeError('BAD_REQUEST', "Property names can't contain 4 byte unicode.");
    if (typeof value === 'string' && FOUR_BYTE_UNICODE.test(value))
      throw gazeError('BAD_REQUEST', `${pythonTitle(key)} can't contain 4 byte unicode characters.`);
  }
  if (tags.some((tag) => FOUR_BYTE_UNICODE.test(tag))) throw gazeError('BAD_REQUEST', "Param values can't contain 4 byte unicode.");
}
