import type { RequestContext } from '../auth/context.ts';
import { gazeError } from '../domain/errors.ts';
import { pyRepr } from '../schemas/python-repr.ts';
import { assertFormatsForData, assertTransition, locationActivation, type Image, type ImageLocation } from '../domain/image.ts';
import { addPosition, removePosition, sameLocation, sameUrls, validationDataChanges, type LocationInput, type ValidationData } from '../domain/locations.ts';
import type { PatchOp } from '../domain/patch.ts';
import type { ServiceDeps } from './deps.ts';
import { authorizeOnImage } from './access.ts';
import { checkExternalLocation, withStoreId } from '../ingest/external-location.ts';

const VERBS = { add: 'add', remove: 'remove', replace: 'update' } as const;

/**
 * A location's value as the request wrote it, in its key order and with its validation_data: Glance's
 * answer shows the dicts it was given (with the store named in the metadata); a later read shows url
 * and metadata.
 */
function asGiven(input: LocationInput, metadata: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).map(([key, value]) => [key, key === 'metadata' ? metadata : value]));
}

/**
 * JSON-patch operations on `/locations` (spec images-api.md §5.4), applied to the working copy of a PATCH:
 * Glance's rules, order of checks and messages (the store checks: ingest/external-location.ts).
 */
export class LocationEditor {
  constructor(private readonly deps: ServiceDeps) {}

  async apply(ctx: RequestContext, image: Image, op: PatchOp): Promise<void> {
    if (op.op === 'replace' && Array.isArray(op.value) && op.value.length === 0) throw gazeError('LOCATIONS_EMPTY');
    // Glance asks the policy before it looks whether locations are shown at all.
    await authorizeOnImage(this.deps, ctx, op.op === 'remove' ? 'delete_image_location' : 'set_image_location', image);
    if (!this.deps.settings.showMultipleLocations) throw gazeError('LOCATIONS_INVISIBLE', VERBS[op.op]);
    switch (op.op) {
      case 'replace':
        return this.replace(image, op.value as LocationInput[]);
      case 'add':
        return this.add(image, op.path[1]!, op.value as LocationInput);
      case 'remove':
        return this.remove(image, op.path[1]!);
    }
  }

  private async add(image: Image, segment: string, input: LocationInput): Promise<void> {
    if (image.status !== 'active' && image.status !== 'queued') throw gazeError('LOCATIONS_STATUS', 'add', image.status);
    const digests = validationDataChanges(image, [input], this.deps.settings.hashingAlgorithm);
    const position = addPosition(segment, image.locations.length);
    if (position === null) throw gazeError('LOCATION_ADD_POSITION');
    this.checkQuota(image.locations.length + 1);
    const { size, ...location } = await this.checked(image, input);
    if (image.locations.some((l) => sameLocation(l, location))) throw gazeError('LOCATION_DUPLICATE', location.url);
    if (image.status === 'active') {
      // One more location of the image's data counts against the project's storage, as Glance's
      // locations quota proxy checks it on every add.
      const budget = await this.deps.quotas.storeBudget(image.owner, null);
      const more = image.size ?? size;
      if (budget && more > budget.bytes) throw budget.exceeded(more);
    }
    image.locations.splice(position, 0, { ...location, asGiven: asGiven(input, location.metadata) });
    await this.activateIfQueued(image, size, digests);
  }

  private async replace(image: Image, inputs: LocationInput[]): Promise<void> {
    if (image.status !== 'active' && image.status !== 'queued') throw gazeError('LOCATIONS_STATUS', 'replace', image.status);
    const digests = validationDataChanges(image, inputs, this.deps.settings.hashingAlgorithm);
    this.checkQuota(inputs.length);
    const current = image.locations;
    if (sameUrls(current, inputs)) {
      // The same urls, in another order or with other metadata: nothing to check in the stores.
      const unused = [...current];
      image.locations = inputs.map((input) => {
        const match = unused.splice(
          unused.findIndex((l) => l.url === input.url),
          1,
        )[0]!;
        const metadata = withStoreId(this.deps, input.url, input.metadata);
        return { ...match, metadata, asGiven: asGiven(input, metadata) };
      });
      return;
    }
    // Glance's words show its location rows as Python writes them (theirs with an integer id).
    const rows = current.map((l) => ({ id: l.id, url: l.url, metadata: l.metadata, status: l.status }));
    if (current.length > 0) throw gazeError('LOCATIONS_NOT_EMPTY', pyRepr(rows));
    const checked: Array<ImageLocation & { size: number }> = [];
    for (const input of inputs) {
      const location = await this.checked(image, input);
      if (inputs.filter((other) => sameLocation(other, location)).length > 1 || checked.some((l) => sameLocation(l, location))) {
        throw gazeError('LOCATION_DUPLICATE', location.url);
      }
      checked.push(location);
    }
    image.locations = checked.map(({ size: _size, ...location }, i) => ({ ...location, asGiven: asGiven(inputs[i]!, location.metadata) }));
    await this.activateIfQueued(image, checked[0]!.size, digests);
  }

  private remove(image: Image, segment: string): void {
    if (image.status !== 'active') throw gazeError('LOCATIONS_STATUS', 'remove', image.status);
    if (image.locations.length === 1) throw gazeError('LOCATION_LAST');
    const index = removePosition(segment, image.locations.length);
    if (index === null) throw gazeError('LOCATION_REMOVE_POSITION');
    image.locations.splice(index, 1);
  }

  private checkQuota(attempted: number): void {
    const max = this.deps.settings.imageLocationQuota;
    if (max >= 0 && attempted > max) throw gazeError('LOCATION_QUOTA', attempted, max);
  }

  private async checked(image: Image, input: LocationInput): Promise<ImageLocation & { size: number }> {
    const { location, size } = await checkExternalLocation(this.deps, image, input.url, input.metadata);
    return { ...location, size };
  }

  /** A queued image becomes active with its first location (Glance: formats needed, digests as vouched). */
  private async activateIfQueued(image: Image, size: number, digests: ValidationData): Promise<void> {
    if (image.status !== 'queued') return;
    assertFormatsForData(image);
    assertTransition('queued', 'active');
    const budget = await this.deps.quotas.storeBudget(image.owner, image.id);
    if (budget && size > budget.bytes) throw budget.exceeded(size);
    Object.assign(image, locationActivation(size, digests));
  }
}
