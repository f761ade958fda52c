import { boolOption, ConfigError, intOption, type Config } from '../config/index.ts';
import type { Warn } from './driver.ts';
import { S3StoreDriver } from './s3.ts';

const MiB = 1024 * 1024;

/**
 * The registry factory. Options of the store's section, with Glance's s3 store names:
 *   s3_store_host                     endpoint URL (http://host:port; https:// is assumed without a scheme)
 *   s3_store_access_key / s3_store_secret_key
 *   s3_store_bucket
 *   s3_store_create_bucket_on_put     create the bucket on the first write (default false)
 *   s3_store_large_object_size        data of a known size below this many MiB is one PutObject (default 100)
 *   s3_store_large_object_chunk_size  part size in MiB (default 64: objects up to 625 GiB in 10,000 parts)
 *   s3_store_thread_pools             parts uploaded at once per write (default 2; Glance's default is 10)
 *   s3_store_region_name              signing region (default us-east-1)
 *   s3_store_bucket_url_format        'path' (default) or 'virtual'; 'auto' means path here
 */
export function createS3Driver(storeId: string, options: Record<string, string>, _config: Config, warn?: Warn): S3StoreDriver {
  const need = (option: string): string => {
    const value = options[option]?.trim();
    if (!value) throw new ConfigError(`store ${storeId}: ${option} is required for an s3 store`);
    return value;
  };
  const chunkMiB = intOption(options.s3_store_large_object_chunk_size, undefined, `store ${storeId}: s3_store_large_object_chunk_size`, 1);
  const format = (options.s3_store_bucket_url_format ?? 'path').trim().toLowerCase() || 'path';
  if (!['path', 'virtual', 'auto'].includes(format)) {
    throw new ConfigError(`store ${storeId}: s3_store_bucket_url_format must be path, virtual or auto`);
  }
  return new S3StoreDriver({
    endpoint: need('s3_store_host'),
    accessKey: need('s3_store_access_key'),
    secretKey: need('s3_store_secret_key'),
    bucket: need('s3_store_bucket'),
    region: options.s3_store_region_name?.trim() || 'us-east-1',
    createBucketOnPut: boolOption(options.s3_store_create_bucket_on_put, false, `store ${storeId}: s3_store_create_bucket_on_put`),
    partSize: chunkMiB === undefined ? undefined : chunkMiB * MiB,
    largeObjectSize: intOption(options.s3_store_large_object_size, 100, `store ${storeId}: s3_store_large_object_size`, 1) * MiB,
    queueSize: intOption(options.s3_store_thread_pools, undefined, `store ${storeId}: s3_store_thread_pools`, 1),
    forcePathStyle: format !== 'virtual',
    warn,
  });
}
