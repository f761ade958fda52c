import { Transform, type Readable } from 'node:stream';
import { boolOption, type Config } from '../config/index.ts';
import { readPemFile } from '../net/tls-fetch.ts';
import { DownloadError, downloadOptionsFromConfig, safeDownload, safeHead, type SafeDownloadOptions } from '../net/safe-download.ts';
import { StoreError, isNetworkFailure, type ByteRange, type StoreDriver, type StoreErrorCode } from './driver.ts';

type FetchLimits = Pick<SafeDownloadOptions, 'filter' | 'connectTimeoutMs' | 'readTimeoutMs' | 'maxRedirects' | 'lookup' | 'tls'>;

/**
 * Glance's read-only `http` store: image data that lives on some web server, registered as a location.
 * Unlike Glance, every URL and every redirect goes through the web-download filter
 * ([import_filtering_opts]) and its pinned name resolution, on each read, not only when it is added.
 */
export class HttpStoreDriver implements StoreDriver {
  readonly type = 'http';
  readonly places = [];
  readonly capabilities = { writable: false, rangeRead: true, adopt: false, localPartials: false, closable: false, list: false, orphans: false };

  constructor(private readonly limits: FetchLimits) {}

  owns(url: string): boolean {
    return /^https?:\/\//i.test(url);
  }

  urlFor(key: string): string {
    throw new StoreError('READ_ONLY', `the http store cannot hold new data (${key})`);
  }

  write(): Promise<never> {
    return Promise.reject(new StoreError('READ_ONLY', 'the http store is read-only'));
  }

  delete(): Promise<never> {
    return Promise.reject(new StoreError('READ_ONLY', 'the http store is read-only'));
  }

  /** Content-Length of a HEAD: null when the server says the data is not there, 0 when it does not say. */
  async stat(url: string): Promise<number | null> {
    try {
      return (await safeHead(url, this.limits)).contentLength ?? 0;
    } catch (err) {
      if (err instanceof DownloadError && err.code === 'HTTP_STATUS' && (err.status === 404 || err.status === 410)) return null;
      throw storeError(err, url);
    }
  }

  async read(url: string, range?: ByteRange, wholeLength?: number): Promise<Readable> {
    const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end}` } : {};
    let answer;
    try {
      answer = await safeDownload(url, { ...this.limits, headers });
    } catch (err) {
      throw storeError(err, url);
    }
    // The web server's file changed since it became the image's data: refused before a byte is sent.
    const announced = answer.status === 200 ? answer.contentLength : null;
    if (wholeLength !== undefined && announced !== null && announced !== wholeLength) {
      answer.body.destroy();
      throw new StoreError('FAILED', `${url} holds ${announced} bytes now, the image has ${wholeLength}`);
    }
    if (!range) return answer.body;
    if (answer.status === 206) {
      const given = /^bytes (\d+)-(\d+)\//.exec(String(answer.headers['content-range'] ?? ''));
      if (given && Number(given[1]) === range.start && Number(given[2]) === range.end) return answer.body;
      answer.body.destroy();
      throw new StoreError('FAILED', `${url} answered another range than bytes ${range.start}-${range.end}`);
    }
    // A server without Range support sends the whole object: keep only the part asked for.
    return byteWindow(answer.body, range);
  }
}

/** Bytes start..end (inclusive) of `body`; the rest of the body is not read. */
function byteWindow(body: Readable, range: ByteRange): Readable {
  let offset = 0;
  let done = false;
  const window = new Transform({
    transform(chunk: Buffer, _enc, next) {
      if (done) return next();
      const from = Math.max(range.start - offset, 0);
      const to = Math.min(range.end + 1 - offset, chunk.length);
      offset += chunk.length;
      if (to > from) this.push(chunk.subarray(from, to));
      if (offset > range.end) {
        done = true;
        this.push(null);
        body.unpipe(window);
        body.destroy();
        window.end();
      }
      next();
    },
  });
  body.on('error', (err) => window.destroy(err));
  window.on('close', () => body.destroy()); // a reader that stops early stops the download too
  return body.pipe(window);
}

const DOWNLOAD_TO_STORE: Partial<Record<DownloadError['code'], StoreErrorCode>> = {
  FILTERED: 'INVALID_URL',
  REDIRECT_FILTERED: 'PERMISSION',
  TOO_MANY_REDIRECTS: 'FAILED',
  CONNECT_TIMEOUT: 'UNAVAILABLE',
  READ_TIMEOUT: 'UNAVAILABLE',
  TOO_SLOW: 'UNAVAILABLE',
  DNS: 'UNAVAILABLE',
  NETWORK: 'UNAVAILABLE',
  ABORTED: 'ABORTED',
};

function storeError(err: unknown, url: string): StoreError {
  if (err instanceof StoreError) return err;
  if (err instanceof DownloadError) {
    const code = err.code === 'HTTP_STATUS' && (err.status === 404 || err.status === 410) ? 'NOT_FOUND' : (DOWNLOAD_TO_STORE[err.code] ?? 'FAILED');
    return new StoreError(code, `${url}: ${err.message}`, { cause: err });
  }
  return new StoreError(isNetworkFailure(err) ? 'UNAVAILABLE' : 'FAILED', `${url}: ${String(err)}`, { cause: err });
}

/**
 * Options with Glance's names: https_ca_certificates_file, the CA certificates (PEM) web servers' https
 * certificates are checked against (then https_insecure is ignored, as in Glance); https_insecure, no
 * check at all. Glance's default for https_insecure is True; Gaze's is false: servers are checked
 * against the system's CAs unless the operator says otherwise.
 */
export function createHttpDriver(storeId: string, options: Record<string, string>, config: Config): HttpStoreDriver {
  const caFile = options.https_ca_certificates_file?.trim();
  const ca = caFile ? readPemFile(caFile, `store ${storeId}: https_ca_certificates_file`) : undefined;
  const insecure = !ca && boolOption(options.https_insecure, false, `store ${storeId}: https_insecure`);
  return new HttpStoreDriver({ ...downloadOptionsFromConfig(config), tls: { ca, insecure } });
}
