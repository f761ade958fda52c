import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { toStoreError } from './s3-errors.ts';
import type { KeepKey } from './driver.ts';

/**
 * The multipart uploads a crash left in a bucket: a process killed mid-write never aborts its upload,
 * and its parts stay stored (and billed) until someone does. An upload is left alone when `keep` says
 * so (an image being written, staged, imported or copied, by any node; a key that is no image of this
 * service's) or when it began less than `minAgeMs` ago (its image may have turned `saving` after the
 * caller looked). Returns what to abort.
 */
export async function orphanedUploads(client: S3Client, bucket: string, keep: KeepKey, minAgeMs: number): Promise<Array<{ key: string; uploadId: string }>> {
  const orphans: Array<{ key: string; uploadId: string }> = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  try {
    for (;;) {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId) continue;
        if (!upload.Initiated || Date.now() - upload.Initiated.getTime() < minAgeMs) continue;
        if (await keep(upload.Key)) continue;
        orphans.push({ key: upload.Key, uploadId: upload.UploadId });
      }
      if (!page.IsTruncated) return orphans;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  } catch (err) {
    const mapped = toStoreError(err, `listing the multipart uploads of bucket ${bucket}`);
    if (mapped.code === 'NOT_FOUND') return orphans; // no bucket yet: nothing in it
    throw mapped;
  }
}
