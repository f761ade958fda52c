import { boolOption, ConfigError, intOption, type Config } from '../config/index.ts';
import type { Warn } from './driver.ts';
import { S3StoreDriver } from './s3.ts';
import { StoreAddDisabled } from './add-disabled.ts';

const MiB = 1024 * 1024;
// S3's bounds on a part of a multipart upload (glance_store checks the lower one).
const MIN_CHUNK_MiB = 5;
const MAX_CHUNK_MiB = 5 * 1024;

/**
 * The registry factory. Options of the store's section, with Glance's s3 store names:
 *   s3_store_host                     endpoint URL (http://host:port; http:// is assumed without a scheme, as glance_store does)
 *   s3_store_access_key / s3_store_secret_key
 *   s3_store_bucket
 *   s3_store_create_bucket_on_put     create the bucket on the first write (default false)
 *   s3_store_large_object_size        data of a known size below this many MiB is one PutObject (default 100)
 *   s3_store_large_object_chunk_size  part size in MiB (default 64: objects up to 625 GiB in 10,000 parts)
 *   s3_store_thread_pools             parts uploaded at once per write (default 2; Glance's default is 10)
 *   s3_store_region_name              signing region (default: an AWS host's own, s3-<region>.amazonaws.com, as
 *                                     glance_store finds it; else us-east-1)
 *   s3_store_bucket_url_format        'path' (default) or 'virtual'; 'auto' means path here
 */
export function createS3Driver(storeId: string, options: Record<string, string>, _config: Config, warn?: Warn): S3StoreDriver {
  const where = (option: string) => `store ${storeId}: ${option}`;
  // Values oslo.config cannot read stop the start, as in Glance; values glance_store then refuses
  // (missing, or out of range), and sizes S3 cannot take, disable writing to the store (add-disabled.ts).
  const chunkMiB = intOption(options.s3_store_large_object_chunk_size, 64, where('s3_store_large_object_chunk_size'), -Infinity);
  const largeMiB = intOption(options.s3_store_large_object_size, 100, where('s3_store_large_object_size'), -Infinity);
  const threads = intOption(options.s3_store_thread_pools, 2, where('s3_store_thread_pools'), -Infinity);
  const createBucketOnPut = boolOption(options.s3_store_create_bucket_on_put, false, where('s3_store_create_bucket_on_put'));
  const format = (options.s3_store_bucket_url_format ?? 'path').trim().toLowerCase() || 'path';
  if (!['path', 'virtual', 'auto'].includes(format)) {
    throw new ConfigError(`store ${storeId}: s3_store_bucket_url_format must be path, virtual or auto`);
  }
  const given = (option: string) => options[option]?.trim() ?? '';
  const placeOptions = ['s3_store_host', 's3_store_access_key', 's3_store_secret_key', 's3_store_bucket'];
  const missing = placeOptions.find((option) => given(option) === '');
  const sizeProblem = outOfRange(largeMiB, chunkMiB, threads);
  const driver = (sizes: boolean) =>
    new S3StoreDriver({
      endpoint: given('s3_store_host'),
      accessKey: given('s3_store_access_key'),
      secretKey: given('s3_store_secret_key'),
      bucket: given('s3_store_bucket'),
      region: options.s3_store_region_name?.trim() || awsRegionOf(given('s3_store_host')) || 'us-east-1',
      createBucketOnPut,
      partSize: sizes ? chunkMiB * MiB : undefined,
      largeObjectSize: sizes ? largeMiB * MiB : undefined,
      queueSize: sizes ? threads : undefined,
      forcePathStyle: format !== 'virtual',
      warn,
    });
  if (missing) throw new StoreAddDisabled(`Could not find ${missing} in configuration options.`, null);
  // Sizes out of range: the store's locations are still read, with the default sizes.
  if (sizeProblem) throw new StoreAddDisabled(sizeProblem, driver(false));
  return driver(true);
}

/**
 * What glance_store says of sizes it refuses (a zero reads to it as a missing option), and of two it
 * takes but S3 would fail every write with (a negative large object size, parts above 5 GiB); null when none.
 */
function outOfRange(largeMiB: number, chunkMiB: number, threads: number): string | null {
  const notFound = (option: string) => `Could not find ${option} in configuration options.`;
  if (largeMiB === 0) return notFound('s3_store_large_object_size');
  if (largeMiB < 0) return `s3_store_large_object_size must be positive. ${largeMiB}`;
  if (chunkMiB === 0) return notFound('s3_store_large_object_chunk_size');
  if (chunkMiB < MIN_CHUNK_MiB) return `s3_store_large_object_chunk_size must be at least ${MIN_CHUNK_MiB} MB.`;
  if (chunkMiB > MAX_CHUNK_MiB) return `s3_store_large_object_chunk_size must be at most ${MAX_CHUNK_MiB} MB (S3 takes no larger part).`;
  if (threads === 0) return notFound('s3_store_thread_pools');
  if (threads < 0) return `s3_store_thread_pools must be a positive integer. ${threads}`;
  return null;
}

/** The region of an AWS endpoint named as s3-<region>.amazonaws.com[.cn] (glance_store reads it from the host); null for others. */
export function awsRegionOf(host: string): string | null {
  const bare = host
    .replace(/^https?:\/\//i, '')
    .replace(/\/$/, '')
    .replace(/:\d+$/, '')
    .toLowerCase();
  return /^s3-([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$/.exec(bare)?.[1] ?? null;
}
