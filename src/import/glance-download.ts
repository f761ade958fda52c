import { text } from 'node:stream/consumers';
import type { CatalogService } from '../auth/context.ts';
import { safeDownload, DownloadError, type SafeDownloadOptions } from '../net/safe-download.ts';

// glance-download: copy an image from another region's Image service, found in the caller's service
// catalog and called with the caller's own token (spec import.md §5.3).

export class GlanceDownloadFailed extends Error {}

export interface RemoteImage {
  endpoint: string;
  metadata: Record<string, unknown>;
  size: number;
}

/**
 * The remote Image endpoint: the first `image` service's endpoint in that region (any case) with that
 * interface; without a catalog (no-auth mode), the configured `region_endpoints` table.
 */
export function remoteEndpoint(catalog: CatalogService[], regionTable: string[], region: string, iface: string): string {
  for (const service of catalog.filter((s) => s.type === 'image')) {
    const match = service.endpoints.find((e) => (e.region ?? e.region_id ?? '').toLowerCase() === region.toLowerCase() && e.interface === iface);
    if (match) return match.url.replace(/\/+$/, '');
  }
  if (catalog.length === 0) {
    for (const entry of regionTable) {
      const colon = entry.indexOf(':');
      if (colon > 0 && entry.slice(0, colon).trim().toLowerCase() === region.toLowerCase())
        return entry
          .slice(colon + 1)
          .trim()
          .replace(/\/+$/, '');
    }
  }
  throw new GlanceDownloadFailed(`${iface} glance endpoint not found for region ${region}`);
}

type Limits = Pick<SafeDownloadOptions, 'filter' | 'connectTimeoutMs' | 'readTimeoutMs' | 'maxRedirects'>;

/**
 * The remote endpoint comes from the caller's Keystone catalog or the operator's region table, never
 * from the request: the operator's filter applies, but not Gaze's default refusal of internal
 * addresses (regions commonly reach each other on internal networks). Only the endpoint's own origin:
 * a redirect from it to elsewhere (the metadata service, say) is filtered as any other URL.
 */
function trusted(limits: Limits, url: string): Limits & Pick<SafeDownloadOptions, 'trustedOrigin'> {
  return { ...limits, trustedOrigin: new URL(url).origin };
}

/** GET <endpoint>/v2/images/<id> with the caller's token; the remote image must be active with a size. */
export async function fetchRemoteImage(endpoint: string, imageId: string, token: string | null, limits: Limits, signal: AbortSignal): Promise<RemoteImage> {
  const url = `${endpoint}/v2/images/${imageId}`;
  let body: string;
  try {
    const response = await safeDownload(url, { ...trusted(limits, url), maxBytes: 1 << 20, signal, headers: authHeaders(token, 'application/json') });
    body = await text(response.body);
  } catch (err) {
    throw describe(err, url, imageId);
  }
  let metadata: Record<string, unknown>;
  try {
    metadata = JSON.parse(body);
  } catch {
    throw new GlanceDownloadFailed(`The remote Image service at ${endpoint} answered something that is not an image.`);
  }
  if (metadata.status !== 'active') throw new GlanceDownloadFailed(`Source image status should be active instead of ${String(metadata.status)}`);
  if (!Number.isSafeInteger(metadata.size)) throw new GlanceDownloadFailed(`Size attribute of remote image ${imageId} could not be determined.`);
  return { endpoint, metadata, size: metadata.size as number };
}

/** The remote image's data stream, from <endpoint>/v2/images/<id>/file with the caller's token. */
export async function openRemoteData(remote: RemoteImage, imageId: string, token: string | null, limits: Limits, signal: AbortSignal, maxBytes: number) {
  const url = `${remote.endpoint}/v2/images/${imageId}/file`;
  try {
    return await safeDownload(url, { ...trusted(limits, url), maxBytes, signal, headers: authHeaders(token, 'application/octet-stream') });
  } catch (err) {
    throw describe(err, url, imageId);
  }
}

/** The remote properties glance-download copies: matching a configured prefix, never os_glance*; a null stays null. */
export function copiedProperties(metadata: Record<string, unknown>, prefixes: string[]): Record<string, string | null> {
  const copied: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (key.startsWith('os_glance') || (typeof value !== 'string' && value !== null)) continue;
    if (prefixes.some((prefix) => key.startsWith(prefix))) copied[key] = value;
  }
  return copied;
}

function authHeaders(token: string | null, accept: string): Record<string, string> {
  return token ? { 'x-auth-token': token, accept } : { accept };
}

function describe(err: unknown, url: string, imageId: string): Error {
  if (!(err instanceof DownloadError)) return err as Error;
  if (err.code === 'FILTERED') return new GlanceDownloadFailed(`Processed URI for glance-download does not pass filtering: ${url}`);
  if (err.code === 'HTTP_STATUS' && err.status === 404) return new GlanceDownloadFailed(`Remote image ${imageId} was not found (HTTP 404 from ${url}).`);
  if (err.code === 'HTTP_STATUS' && (err.status === 401 || err.status === 403)) {
    return new GlanceDownloadFailed(`The remote Image service refused access to image ${imageId} (HTTP ${err.status} from ${url}).`);
  }
  return new GlanceDownloadFailed(`glance-download from ${url} failed: ${err.message}`);
}
