// The S3 side of the bench: what the bucket really holds, read through the S3 API of the bench's Swift
// (independently of Gaze), so the S3 figures are known to be of bytes that went to the object store.

import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

export interface S3Settings {
  endpoint: string;
  accessKey: string;
  secretKey: string;
}

/** Every object of `bucket` (key and size), following continuation tokens. */
export async function bucketObjects(s3: S3Settings, bucket: string): Promise<Array<{ key: string; size: number }>> {
  // The SDK warns once per process about Node 20 support ending in 2027: noise in the bench's output. The
  // switch is read when a client is made; it is put back at once so that servers started later get the
  // environment unchanged.
  const SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
  const before = process.env[SWITCH];
  process.env[SWITCH] = 'true';
  let client: S3Client;
  try {
    client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  } finally {
    if (before === undefined) delete process.env[SWITCH];
    else process.env[SWITCH] = before;
  }
  try {
    const found: Array<{ key: string; size: number }> = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) found.push({ key: o.Key ?? '', size: o.Size ?? NaN });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found;
  } finally {
    client.destroy();
  }
}
