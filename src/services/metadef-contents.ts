import type { RequestContext } from '../auth/context.ts';
import { gazeError } from '../domain/errors.ts';
import { normalizeProperty, type MetadefObject, type MetadefProperty, type MetadefTag, type PropertyDefinition } from '../domain/metadefs.ts';
import { TAG_SORT_KEYS, type TagSortKey } from '../db/repos/metadef-contents.ts';
import { isUniqueViolation } from '../db/connection.ts';
import { retryOnDeadlock } from '../db/deadlock.ts';
import {
  bodyOf,
  checkVisibilityParam,
  enforce,
  findNamespace,
  objectPayload,
  parseLimit,
  parseSortDir,
  propertyPayload,
  refuseFourByte,
  objectFourByteFields,
  definitionText,
  refuseReadOnly,
  tagPayload,
  validated,
  WRITE_NOT_FOUND,
  type MetadefDeps,
} from './metadef-access.ts';
import { lastValue, LIST_PARAMS, popFirst, type QueryPairs } from './query.ts';

const OBJECT_READ_ONLY = ['self', 'schema', 'created_at', 'updated_at'] as const;
const OBJECT_NOT_FOUND = { missing: 'MD_NAMESPACE_NOT_FOUND', hidden: 'MD_NAMESPACE_NOT_FOUND_SHORT' } as const;

/** Glance's truthy header values (oslo_utils.strutils.bool_from_string). */
export function truthy(value: string | undefined): boolean {
  return ['1', 't', 'true', 'on', 'y', 'yes'].includes((value ?? '').trim().toLowerCase());
}

/** Objects, properties and tags of a namespace. */
export class MetadefContentService {
  constructor(private readonly deps: MetadefDeps) {}

  // --- objects

  async objects(ctx: RequestContext, name: string, pairs: QueryPairs): Promise<MetadefObject[]> {
    const { popped, rest } = popFirst(pairs, LIST_PARAMS);
    // Checked as Glance checks them, then (as in Glance) not used: objects come in creation order.
    // An empty limit is no integer here (Glance reads any limit given).
    const limitText = popped.get('limit');
    if (limitText === '') throw gazeError('LIMIT_NOT_INTEGER');
    if (parseLimit(limitText, null) === 0) throw gazeError('LIMIT_NOT_POSITIVE');
    parseSortDir(popped.get('sort_dir'));
    checkVisibilityParam(lastValue(rest, 'visibility'), ['public', 'private', 'shared']);
    const ns = await findNamespace(this.deps, ctx, name, OBJECT_NOT_FOUND);
    enforce(this.deps, 'get_metadef_objects', ctx, ns);
    return this.deps.policy.check('get_metadef_object', ctx, { project_id: ns.owner, visibility: ns.visibility }) ? this.deps.contents.objects(ns.id) : [];
  }

  private objectFields(body: Record<string, unknown>) {
    return {
      name: body.name as string,
      description: (body.description as string | undefined) ?? null,
      required: (body.required as string[] | undefined) ?? [],
      properties: Object.fromEntries(
        Object.entries((body.properties ?? {}) as Record<string, PropertyDefinition>).map(([k, v]) => [k, normalizeProperty(v, `property ${k}`)]),
      ),
    };
  }

  /** POST …/objects; the answer shows description, required and properties only when they were given. */
  async createObject(ctx: RequestContext, name: string, raw: unknown): Promise<{ object: MetadefObject; given: Set<string> }> {
    const body = bodyOf(raw);
    refuseReadOnly(body, OBJECT_READ_ONLY);
    validated(this.deps, 'object', raw);
    for (const property of Object.values((body.properties ?? {}) as Record<string, unknown>)) validated(this.deps, 'object_property', property);
    const ns = await findNamespace(this.deps, ctx, name, OBJECT_NOT_FOUND);
    enforce(this.deps, 'add_metadef_object', ctx, ns);
    const fields = this.objectFields(body);
    refuseFourByte('create metadata object', objectFourByteFields(fields), Object.values(fields.properties).map(definitionText));
    if (await this.deps.contents.object(ns.id, fields.name)) throw gazeError('MD_OBJECT_EXISTS', fields.name, name);
    const object = await this.insertUnique(
      () => this.deps.contents.insertObject(ns.id, fields),
      () => gazeError('MD_OBJECT_EXISTS', fields.name, name),
    );
    this.deps.notifier.info('metadef_object.create', objectPayload(name, object, { requiredGiven: 'required' in body }));
    return { object, given: new Set(Object.keys(body)) };
  }

  async object(ctx: RequestContext, name: string, objectName: string): Promise<MetadefObject> {
    const ns = await findNamespace(this.deps, ctx, name, OBJECT_NOT_FOUND);
    enforce(this.deps, 'get_metadef_object', ctx, ns);
    const object = await this.deps.contents.object(ns.id, objectName);
    if (!object) throw gazeError('MD_OBJECT_NOT_FOUND', objectName);
    return object;
  }

  /** PUT: the whole object is replaced (renamed too); the answer keeps the updated_at from before. */
  async updateObject(ctx: RequestContext, name: string, objectName: string, raw: unknown): Promise<{ object: MetadefObject; given: Set<string> }> {
    const body = bodyOf(raw);
    refuseReadOnly(body, OBJECT_READ_ONLY);
    validated(this.deps, 'object', raw);
    const ns = await findNamespace(this.deps, ctx, name, OBJECT_NOT_FOUND);
    enforce(this.deps, 'modify_metadef_object', ctx, ns);
    const current = await this.deps.contents.object(ns.id, objectName);
    if (!current) throw gazeError('MD_OBJECT_NOT_FOUND', objectName);
    const fields = this.objectFields(body);
    refuseFourByte('update metadata object', objectFourByteFields(fields), Object.values(fields.properties).map(definitionText));
    const conflict = () => gazeError('MD_OBJECT_RENAME_CONFLICT', current.name, name);
    if (fields.name !== current.name && (await this.deps.contents.object(ns.id, fields.name))) throw conflict();
    await this.insertUnique(() => this.deps.contents.updateObject(current.id, fields), conflict);
    const object = { ...current, ...fields };
    this.deps.notifier.info('metadef_object.update', objectPayload(name, object, { old: current.name, requiredGiven: 'required' in body }));
    return { object, given: new Set(Object.keys(body)) };
  }

  async deleteObject(ctx: RequestContext, name: string, objectName: string): Promise<void> {
    const ns = await findNamespace(this.deps, ctx, name, OBJECT_NOT_FOUND);
    enforce(this.deps, 'delete_metadef_object', ctx, ns);
    const object = await this.deps.contents.object(ns.id, objectName);
    if (!object) throw gazeError('MD_OBJECT_NOT_FOUND', objectName);
    if (ns.protected) throw gazeError('MD_PROTECTED', 'object', objectName);
    await this.deps.contents.deleteOne('metadef_objects', object.id);
    this.deps.notifier.info('metadef_object.delete', objectPayload(name, object, { deleted: true }));
  }

  // --- properties

  async properties(ctx: RequestContext, name: string): Promise<MetadefProperty[]> {
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'get_metadef_properties', ctx, ns);
    return this.deps.contents.properties(ns.id);
  }

  private propertyBody(raw: unknown): PropertyDefinition {
    const body = bodyOf(raw);
    refuseReadOnly(body, ['created_at', 'updated_at']);
    validated(this.deps, 'property', raw);
    return normalizeProperty(body, 'property');
  }

  async createProperty(ctx: RequestContext, name: string, raw: unknown): Promise<MetadefProperty> {
    const definition = this.propertyBody(raw);
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'add_metadef_property', ctx, ns);
    const pname = definition.name as string;
    refuseFourByte('create metadata property', { name: pname, ...definitionText(definition) });
    if (await this.deps.contents.property(ns.id, pname)) throw gazeError('MD_PROPERTY_EXISTS', pname, name);
    const property = await this.insertUnique(
      () => this.deps.contents.insertProperty(ns.id, pname, definition),
      () => gazeError('MD_PROPERTY_EXISTS', pname, name),
    );
    this.deps.notifier.info('metadef_property.create', propertyPayload(name, pname, definition));
    return property;
  }

  /** GET a property; with ?resource_type=, by its prefixed name (the association's prefix). */
  async property(ctx: RequestContext, name: string, propertyName: string, resourceType?: string): Promise<MetadefProperty> {
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    let stored = propertyName;
    // An empty ?resource_type= is no filter to Glance (it tests the value, not its presence).
    if (resourceType) {
      enforce(this.deps, 'get_metadef_resource_type', ctx, ns);
      if (!(await this.deps.namespaces.resourceType(resourceType))) throw gazeError('MD_RESOURCE_TYPE_NOT_FOUND', resourceType);
      const association = (await this.deps.namespaces.associations(ns.id)).find((a) => a.name === resourceType);
      if (!association) throw gazeError('MD_ASSOCIATION_NOT_FOUND', resourceType, name);
      if (!association.prefix || !propertyName.startsWith(association.prefix)) throw gazeError('MD_PROPERTY_PREFIX', propertyName, association.prefix);
      stored = propertyName.slice(association.prefix.length);
    }
    enforce(this.deps, 'get_metadef_property', ctx, ns);
    const property = await this.deps.contents.property(ns.id, stored);
    if (!property) throw gazeError('MD_PROPERTY_NOT_FOUND', stored);
    return property;
  }

  async updateProperty(ctx: RequestContext, name: string, propertyName: string, raw: unknown): Promise<MetadefProperty> {
    const definition = this.propertyBody(raw);
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'modify_metadef_property', ctx, ns);
    const current = await this.deps.contents.property(ns.id, propertyName);
    if (!current) throw gazeError('MD_PROPERTY_NOT_FOUND', propertyName);
    const pname = definition.name as string;
    refuseFourByte('update metadata property', { name: pname, ...definitionText(definition) });
    const conflict = () => gazeError('MD_PROPERTY_RENAME_CONFLICT', current.name, name);
    if (pname !== current.name && (await this.deps.contents.property(ns.id, pname))) throw conflict();
    await this.insertUnique(() => this.deps.contents.updateProperty(current.id, pname, definition), conflict);
    this.deps.notifier.info('metadef_property.update', propertyPayload(name, pname, definition, { old: current.name }));
    return { ...current, name: pname, definition };
  }

  async deleteProperty(ctx: RequestContext, name: string, propertyName: string): Promise<void> {
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'remove_metadef_property', ctx, ns);
    const property = await this.deps.contents.property(ns.id, propertyName);
    if (!property) throw gazeError('MD_PROPERTY_NOT_FOUND', propertyName);
    if (ns.protected) throw gazeError('MD_PROTECTED', 'property', propertyName);
    await this.deps.contents.deleteOne('metadef_properties', property.id);
    this.deps.notifier.info('metadef_property.delete', propertyPayload(name, property.name, property.definition, { deleted: true }));
  }

  // --- tags

  async tags(ctx: RequestContext, name: string, pairs: QueryPairs): Promise<MetadefTag[]> {
    const { popped, rest } = popFirst(pairs, LIST_PARAMS);
    // Glance's order: the direction, the visibility and the limit; the sort key once the namespace is found.
    const sortDir = parseSortDir(popped.get('sort_dir'));
    checkVisibilityParam(lastValue(rest, 'visibility'), ['public', 'private', 'shared']);
    const limit = parseLimit(popped.get('limit'), null);
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'get_metadef_tags', ctx, ns);
    const sortKey = popped.get('sort_key') ?? 'created_at';
    if (!(TAG_SORT_KEYS as readonly string[]).includes(sortKey)) throw gazeError('INVALID_SORT_KEY', sortKey, TAG_SORT_KEYS.join(', '));
    // An empty marker is none, as Glance reads it.
    const markerName = popped.get('marker') || undefined;
    const marker = markerName === undefined ? undefined : await this.deps.contents.tag(ns.id, markerName);
    if (marker === null) throw gazeError('MD_TAG_NOT_FOUND', markerName!);
    return this.deps.contents.tags(ns.id, { sortKey: sortKey as TagSortKey, sortDir, limit, marker });
  }

  async createTag(ctx: RequestContext, name: string, tagName: string): Promise<MetadefTag> {
    this.deps.validators.tag.validate({ name: tagName });
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'add_metadef_tag', ctx, ns);
    refuseFourByte('create metadata tag', { name: tagName });
    if (await this.deps.contents.tag(ns.id, tagName)) throw gazeError('MD_TAG_EXISTS', tagName, name);
    const tag = await this.insertUnique(
      () => this.deps.contents.insertTag(ns.id, tagName),
      () => gazeError('MD_TAG_EXISTS', tagName, name),
    );
    this.deps.notifier.info('metadef_tag.create', tagPayload(name, tag));
    return tag;
  }

  /** POST …/tags: replaces every tag of the namespace, or adds to them with X-Openstack-Append. */
  async createTags(ctx: RequestContext, name: string, raw: unknown, append: boolean): Promise<string[]> {
    const body = bodyOf(raw);
    refuseReadOnly(body, ['created_at', 'updated_at']);
    validated(this.deps, 'tags', raw);
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'add_metadef_tags', ctx, ns);
    // The served schema does not require the list; Glance's controller finds the namespace first.
    if (!Array.isArray(body.tags)) throw gazeError('SCHEMA_MISMATCH', 'tags', "'tags' is a required property");
    const names = (body.tags as Array<{ name: string }>).map((t) => t.name);
    if (names.length === 0) return [];
    const dup = names.map((n) => n.toLowerCase()).findIndex((n, i, all) => all.indexOf(n) !== i);
    if (dup >= 0) throw gazeError('MD_TAG_EXISTS', names[dup]!, name);
    const created = await this.deps.namespaces
      .transaction(async (trx) => {
        if (!append) await this.deps.contents.deleteAll('metadef_tags', ns.id, trx);
        const out: MetadefTag[] = [];
        for (const tagName of names) {
          if (append && (await this.deps.contents.tag(ns.id, tagName, trx))) throw gazeError('MD_TAG_EXISTS', tagName, name);
          out.push(await this.deps.contents.insertTag(ns.id, tagName, trx));
        }
        return out;
      })
      .catch((err: unknown) => {
        if (isUniqueViolation(err)) throw gazeError('MD_TAG_EXISTS', names[0]!, name);
        throw err;
      });
    for (const tag of created) this.deps.notifier.info('metadef_tag.create', tagPayload(name, tag));
    return names;
  }

  async tag(ctx: RequestContext, name: string, tagName: string): Promise<MetadefTag> {
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'get_metadef_tag', ctx, ns);
    const tag = await this.deps.contents.tag(ns.id, tagName);
    if (!tag) throw gazeError('MD_TAG_NOT_FOUND', tagName);
    return tag;
  }

  async updateTag(ctx: RequestContext, name: string, tagName: string, raw: unknown): Promise<MetadefTag> {
    const body = bodyOf(raw);
    refuseReadOnly(body, ['created_at', 'updated_at']);
    validated(this.deps, 'tag', raw);
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'modify_metadef_tag', ctx, ns);
    const current = await this.deps.contents.tag(ns.id, tagName);
    if (!current) throw gazeError('MD_TAG_NOT_FOUND', tagName);
    const newName = body.name as string;
    refuseFourByte('update metadata tag', { name: newName });
    const other = await this.deps.contents.tag(ns.id, newName);
    const conflict = () => gazeError('MD_TAG_EXISTS', newName, name);
    if (other && other.id !== current.id) throw conflict();
    await this.insertUnique(() => this.deps.contents.renameTag(current.id, newName), conflict);
    const tag = { ...current, name: newName };
    this.deps.notifier.info('metadef_tag.update', tagPayload(name, tag, { old: current.name }));
    return tag;
  }

  async deleteTag(ctx: RequestContext, name: string, tagName: string): Promise<void> {
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'delete_metadef_tag', ctx, ns);
    const tag = await this.deps.contents.tag(ns.id, tagName);
    if (!tag) throw gazeError('MD_TAG_NOT_FOUND', tagName);
    if (ns.protected) throw gazeError('MD_PROTECTED', 'tag', tagName);
    await this.deps.contents.deleteOne('metadef_tags', tag.id);
    this.deps.notifier.info('metadef_tag.delete', tagPayload(name, tag, { deleted: true }));
  }

  /** A write that a concurrent one can beat to a name: the unique constraint decides, with the caller's 409. */
  private async insertUnique<T>(write: () => Promise<T>, conflict: () => Error): Promise<T> {
    try {
      return await retryOnDeadlock(write);
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict();
      throw err;
    }
  }
}
