import { copiedProperties, fetchRemoteImage, openRemoteData, remoteEndpoint } from '../glance-download.ts';
import { ImportStopped } from '../failures.ts';
import { importCaller, saveInput } from '../job.ts';
import { countedPropertyKeys, NULL_VALUE, type PropertyWrites } from '../../domain/image.ts';
import type { ImportMethod } from './method.ts';
import { holdStaged } from './stage-quota.ts';

/**
 * glance-download: finds the remote region's Image service, copies the remote image's formats and
 * configured properties (remembering the previous values in the task, for the revert), and downloads
 * its data into staging. The stored data must then match the remote image's digest.
 */
export const glanceDownload: ImportMethod = {
  copying: false,
  takesData: true,
  from: 'queued',
  runsPlugins: true,
  async stage(job, image) {
    const { deps, staging, signal, input, caller } = job;
    if (!caller) throw new ImportStopped("glance-download was interrupted (the caller's token is never stored); start the import again.");
    // Checked at POST /import: the image id and region are there; the interface defaults to public.
    const method = input.import_req.method as unknown as { glance_image_id: string; glance_region: string; glance_service_interface?: string };
    const { regionEndpoints, extraProperties } = job.opts.glanceDownload;
    const remoteId = method.glance_image_id;
    const endpoint = remoteEndpoint(caller.catalog, regionEndpoints, method.glance_region, method.glance_service_interface ?? 'public');
    const remote = await fetchRemoteImage(endpoint, remoteId, caller.token, job.opts.download, signal);
    if (remote.size > deps.settings.imageSizeCap) throw new ImportStopped('The incoming image is too large: The provided image is too large.');
    // The remote size is known before any byte moves: quotas refuse now rather than after the download.
    await deps.quotas.refuseOversized(image.owner, image.id, { staged: remote.size, stored: remote.size * input.backend.length });
    const stageBudget = await deps.quotas.stageBudget(image.owner, image.id);

    // The importing user writes these properties: property protections apply as to a PATCH.
    const protections = deps.propertyProtections;
    const copied = Object.fromEntries(
      Object.entries(copiedProperties(remote.metadata, extraProperties)).filter(
        ([key]) => !protections || protections.mayWrite(key, Object.hasOwn(image.properties, key), importCaller(input)),
      ),
    );
    // What the remote image says must be what this cloud takes: its formats, and properties within quota.
    const formats = {
      disk_format: acceptedFormat(remote.metadata.disk_format, image.disk_format, job.opts.glanceDownload.diskFormats, 'disk_format'),
      container_format: acceptedFormat(remote.metadata.container_format, image.container_format, job.opts.glanceDownload.containerFormats, 'container_format'),
    };
    const { propertyQuota } = job.opts.glanceDownload;
    const adds = Object.keys(copied).some((key) => !Object.hasOwn(image.properties, key));
    const attempted = countedPropertyKeys({ ...image.properties, ...copied });
    if (adds && propertyQuota >= 0 && attempted > propertyQuota) {
      throw new ImportStopped(`The limit has been exceeded on the number of allowed image properties. Attempted: ${attempted}, Maximum: ${propertyQuota}`);
    }
    input.previous = {
      disk_format: image.disk_format,
      container_format: image.container_format,
      properties: Object.fromEntries(Object.keys(copied).map((k) => [k, Object.hasOwn(image.properties, k) ? (image.properties[k] ?? null) : null])),
      absent: Object.keys(copied).filter((k) => !Object.hasOwn(image.properties, k)),
    };
    await saveInput(job);
    // A remote null (kernel_id, ramdisk_id) is copied as null, as Glance does.
    const writes: PropertyWrites = Object.fromEntries(Object.entries(copied).map(([k, v]) => [k, v ?? NULL_VALUE]));
    await deps.images.requireUpdate(image.id, 'importing', formats, writes);

    await staging.remove(image.id);
    if (stageBudget) await deps.quotas.hold(image.owner, image.id, ['importing'], { staged_bytes: remote.size }, { staged: remote.size });
    // No more than the remote image's size: a remote that sends more cannot fill staging meanwhile.
    const response = await openRemoteData(remote, remoteId, caller.token, job.opts.download, signal, Math.min(remote.size, deps.settings.imageSizeCap));
    const staged = await staging.write({ source: response.body, key: image.id, sizeCap: deps.settings.imageSizeCap, signal, budget: stageBudget });
    if (stageBudget) await holdStaged(deps, image, staged.size);
    if (staged.size !== remote.size) {
      throw new ImportStopped(`Downloaded data size ${staged.size} is different from the remote image size ${remote.size}.`);
    }
    const expected =
      remote.metadata.os_hash_algo === deps.settings.hashingAlgorithm && typeof remote.metadata.os_hash_value === 'string'
        ? { algo: 'hash' as const, value: remote.metadata.os_hash_value }
        : typeof remote.metadata.checksum === 'string'
          ? { algo: 'md5' as const, value: remote.metadata.checksum }
          : null;
    // It now has the remote image's formats and properties.
    return { image: await deps.images.require(image.id), expected };
  },
};

/** The remote image's format (its own when the remote has none), if this cloud's formats list it. */
function acceptedFormat(remote: unknown, own: string | null, allowed: readonly string[], field: 'disk_format' | 'container_format'): string | null {
  if (remote === null || remote === undefined) return own;
  if (typeof remote !== 'string' || !allowed.includes(remote)) {
    const shown = typeof remote === 'string' ? remote.slice(0, 64) : JSON.stringify(remote).slice(0, 64);
    throw new ImportStopped(`The remote image's ${field} '${shown}' is not one of this cloud's: ${allowed.join(', ')}.`);
  }
  return remote;
}
