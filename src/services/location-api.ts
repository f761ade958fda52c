import type { RequestContext } from '../auth/context.ts';
import { checkGivenDigest } from '../domain/locations.ts';
import { gazeError } from '../domain/errors.ts';
import type { ImportEngine } from '../import/port.ts';
import type { LocationImportInput } from '../import/location-import.ts';
import { SchemaValidator } from '../schemas/validate.ts';
import { LOCATION_API_SCHEMA } from '../schemas/location.ts';
import type { ServiceDeps } from './deps.ts';
import { passesFilterResolved } from '../net/safe-download.ts';
import type { UriFilterOptions } from '../net/uri-filter.ts';
import { authorizeOnImage, findVisibleImage, refuseUnlessOwner } from './access.ts';
import { startLockedTask, takeOverStaleLock } from './import-lock.ts';

const bodyValidator = new SchemaValidator('location', LOCATION_API_SCHEMA);

/**
 * The locations API of Glance 2024.2 (image API 2.17, spec images-api.md §16): POST registers data a
 * service wrote itself as a queued image's data, through a `location_import` task; GET lists the
 * locations for services.
 */
export class LocationApiService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly engine: ImportEngine,
    private readonly opts: { uriFilter: UriFilterOptions; resolveTimeoutMs: number },
  ) {}

  async add(ctx: RequestContext, id: string, body: unknown): Promise<void> {
    if (body === undefined) throw gazeError('BODY_EXPECTED');
    bodyValidator.validate({ add_location: body });
    const { url, validation_data: given = {} } = body as { url: string; validation_data?: LocationImportInput['validation_data'] };
    const image = await findVisibleImage(this.deps, ctx, id);
    if (image.status !== 'queued') throw gazeError('LOCATIONS_STATUS', 'add', image.status);
    await authorizeOnImage(this.deps, ctx, 'add_image_location', image);
    // The rule passes any service user; the data of another project's image is still not theirs to set
    // (Glance's database refuses a non-admin who does not own the image). Nova and Cinder call with the
    // user's token, whose project owns the image.
    refuseUnlessOwner(ctx, image);
    // Callers without the service role (their own, or their service token's) may only name data on a web
    // server (Glance's rule).
    if (![...ctx.roles, ...ctx.serviceRoles].includes('service') && !(url.startsWith('http') && this.deps.stores.all().some((s) => s.type === 'http'))) {
      throw gazeError('LOCATION_API_HTTP_ONLY');
    }
    checkGivenDigest(given, this.deps.settings.hashingAlgorithm);
    // A web server's url the import filter refuses is refused now, as a web-download's (Glance's fix of
    // LP #2161330), rather than by the task later with a bare "Invalid location".
    if (/^https?:/i.test(url) && !(await passesFilterResolved(url, this.opts.uriFilter, { timeoutMs: this.opts.resolveTimeoutMs }))) {
      throw gazeError('LOCATION_URI_FILTERED', url);
    }
    await takeOverStaleLock(this.deps, this.engine, image);
    const input: LocationImportInput = { image_id: id, loc_url: url, validation_data: given };
    await startLockedTask(this.deps, this.engine, ctx, id, 'location_import', input);
  }

  async list(ctx: RequestContext, id: string): Promise<Array<{ url: string; metadata: Record<string, unknown> }>> {
    const image = await findVisibleImage(this.deps, ctx, id);
    await authorizeOnImage(this.deps, ctx, 'fetch_image_location', image);
    return this.deps.stores.readOrder(image.locations).map((l) => ({ url: l.url, metadata: l.metadata }));
  }
}
