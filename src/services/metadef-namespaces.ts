import { refuseReadOnlyCaller, type RequestContext } from '../auth/context.ts';
import { gazeError } from '../domain/errors.ts';
import {
  normalizeProperty,
  type MetadefAssociation,
  type MetadefNamespace,
  type MetadefObject,
  type MetadefResourceType,
  type PropertyDefinition,
} from '../domain/metadefs.ts';
import { NAMESPACE_SORT_KEYS, type NamespaceSortKey } from '../db/repos/metadef-namespaces.ts';
import { isUniqueViolation } from '../db/connection.ts';
import {
  associationPayload,
  bodyOf,
  checkVisibilityParam,
  enforce,
  findNamespace,
  namespacePayload,
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
import { firstValue, lastValue, LIST_PARAMS, popFirst, type QueryPairs } from './query.ts';

/** A namespace with what GET shows of it. */
export interface NamespaceDetail {
  namespace: MetadefNamespace;
  associations: MetadefAssociation[];
  properties: Array<[string, PropertyDefinition]>;
  objects: MetadefObject[];
  tags: string[];
}

/** What a create echoes back: the namespace and its sections as the request gave them. */
export interface CreatedNamespace {
  namespace: MetadefNamespace;
  sections: {
    associations?: Array<{ name: string; prefix: string | null; properties_target: string | null }>;
    properties?: Record<string, PropertyDefinition>;
    /** Each with the fields the request gave, which the answer echoes (and only those). */
    objects?: Array<{ name: string; description: string | null; required: string[]; properties: Record<string, PropertyDefinition>; given: Set<string> }>;
    tags?: string[];
  };
}

const NAMESPACE_READ_ONLY = ['self', 'schema', 'created_at', 'updated_at'] as const;

function normalizeProperties(map: unknown, where: string): Record<string, PropertyDefinition> {
  return Object.fromEntries(
    Object.entries((map ?? {}) as Record<string, PropertyDefinition>).map(([name, def]) => [name, normalizeProperty(def, `${where} property ${name}`)]),
  );
}

function requireNames(items: unknown[] | undefined, section: string): void {
  for (const item of items ?? []) {
    if (typeof (item as { name?: unknown }).name !== 'string')
      throw gazeError('SCHEMA_MISMATCH', 'namespace', `'name' is a required property in every item of ${section}`);
  }
}

/** Namespaces and resource types of the metadata definitions API. */
export class MetadefNamespaceService {
  constructor(private readonly deps: MetadefDeps) {}

  async list(
    ctx: RequestContext,
    pairs: QueryPairs,
  ): Promise<{ namespaces: Array<{ namespace: MetadefNamespace; associations: MetadefAssociation[] }>; hasMore: boolean }> {
    // As Glance's deserializer pops them: the first limit, marker, direction and sort key; the other
    // parameters are filters, checked by their last value and applied by their first (visibility) or
    // last (resource_types), as its MultiDict hands them on.
    const { popped, rest } = popFirst(pairs, LIST_PARAMS);
    // Glance's order: the limit, the direction and the visibility; the policies and the marker; the sort
    // key when the database is asked.
    const limit = parseLimit(popped.get('limit'), this.deps.limits)!;
    const sortDir = parseSortDir(popped.get('sort_dir'));
    checkVisibilityParam(lastValue(rest, 'visibility'), ['public', 'private']);
    enforce(this.deps, 'get_metadef_namespaces', ctx, null);
    enforce(this.deps, 'list_metadef_resource_types', ctx, null);
    const markerName = popped.get('marker');
    let marker: MetadefNamespace | undefined;
    if (markerName !== undefined) {
      // An empty marker skips Glance's lookup by name, and its database finds no namespace of that id
      // (even when a namespace is named "").
      marker = markerName === '' ? undefined : ((await this.deps.namespaces.get(markerName)) ?? undefined);
      if (!marker) throw markerName === '' ? gazeError('MD_NAMESPACE_ID_NOT_FOUND', markerName) : gazeError('MD_NAMESPACE_NOT_FOUND', markerName);
      if (!ctx.isAdmin && marker.owner !== ctx.projectId && marker.visibility !== 'public') throw gazeError('MD_MARKER_NOT_VISIBLE', markerName);
    }
    const sortKey = popped.get('sort_key') ?? 'created_at';
    if (!(NAMESPACE_SORT_KEYS as readonly string[]).includes(sortKey)) throw gazeError('INVALID_SORT_KEY', sortKey, NAMESPACE_SORT_KEYS.join(', '));
    // An empty name matches no resource type (`?resource_types=` lists nothing), nor does an empty
    // visibility match a namespace, as in Glance.
    const visibility = firstValue(rest, 'visibility');
    const resourceTypes = lastValue(rest, 'resource_types')
      ?.split(',')
      .map((s) => s.trim());
    const rows = await this.deps.namespaces.list({
      caller: ctx,
      visibility,
      resourceTypes,
      sortKey: sortKey as NamespaceSortKey,
      sortDir,
      limit,
      marker,
    });
    const visible = rows.filter((ns) => this.deps.policy.check('get_metadef_namespace', ctx, { project_id: ns.owner, visibility: ns.visibility }));
    const associations = await this.deps.namespaces.associationsOf(visible.map((ns) => ns.id));
    return {
      namespaces: visible.map((ns) => ({ namespace: ns, associations: associations.get(ns.id) ?? [] })),
      hasMore: limit > 0 && visible.length === limit,
    };
  }

  async create(ctx: RequestContext, raw: unknown): Promise<CreatedNamespace> {
    refuseReadOnlyCaller(ctx);
    const body = bodyOf(raw);
    refuseReadOnly(body, NAMESPACE_READ_ONLY);
    validated(this.deps, 'namespace', raw);
    enforce(this.deps, 'add_metadef_namespace', ctx, null);
    const rules: Array<[string, string]> = [
      ['resource_type_associations', 'add_metadef_resource_type_association'],
      ['objects', 'add_metadef_object'],
      ['properties', 'add_metadef_property'],
      ['tags', 'add_metadef_tag'],
    ];
    for (const [section, rule] of rules) if (section in body) enforce(this.deps, rule, ctx, null);
    for (const section of ['resource_type_associations', 'objects', 'tags']) requireNames(body[section] as unknown[] | undefined, section);

    const name = body.namespace as string;
    const fields = {
      namespace: name,
      display_name: (body.display_name as string | undefined) ?? null,
      description: (body.description as string | undefined) ?? null,
      visibility: (body.visibility as string | undefined) ?? 'private',
      protected: (body.protected as boolean | undefined) ?? false,
      // Glance's create takes the caller's project only when no owner is given: an empty one stays empty.
      owner: (body.owner as string | undefined) ?? ctx.projectId ?? '',
    };
    const sections: CreatedNamespace['sections'] = {};
    if ('resource_type_associations' in body) {
      sections.associations = (body.resource_type_associations as Array<Record<string, string | undefined>>).map((a) => ({
        name: a.name!,
        prefix: a.prefix ?? null,
        properties_target: a.properties_target ?? null,
      }));
    }
    if ('properties' in body) sections.properties = normalizeProperties(body.properties, 'namespace');
    if ('objects' in body) {
      sections.objects = (body.objects as Array<Record<string, unknown>>).map((o) => ({
        name: o.name as string,
        description: (o.description as string | undefined) ?? null,
        required: (o.required as string[] | undefined) ?? [],
        properties: normalizeProperties(o.properties, `object ${String(o.name)}`),
        given: new Set(Object.keys(o)),
      }));
    }
    if ('tags' in body) sections.tags = (body.tags as Array<{ name: string }>).map((t) => t.name);
    // As Glance's database layer checks each part it writes (resource type associations it does not check).
    refuseFourByte('create metadata namespace', fields, [
      ...(sections.tags ?? []).map((t) => ({ name: t })),
      ...(sections.objects ?? []).flatMap((o) => [objectFourByteFields(o), ...Object.values(o.properties).map(definitionText)]),
      ...Object.entries(sections.properties ?? {}).map(([name, definition]) => ({ name, ...definitionText(definition) })),
    ]);
    const duplicate = <T>(items: T[], key: (t: T) => string) => items.map(key).find((k, i, all) => all.indexOf(k) !== i);
    const dupObject = duplicate(sections.objects ?? [], (o) => o.name);
    if (dupObject !== undefined) throw gazeError('MD_OBJECT_EXISTS', dupObject, name);
    const dupTag = duplicate(sections.tags ?? [], (t) => t.toLowerCase());
    if (dupTag !== undefined) throw gazeError('MD_TAG_EXISTS', dupTag, name);
    const dupAssociation = duplicate(sections.associations ?? [], (a) => a.name);
    if (dupAssociation !== undefined) throw gazeError('MD_ASSOCIATION_EXISTS', dupAssociation, name);

    // One transaction: the namespace exists with all of its contents, or not at all.
    let created: MetadefNamespace;
    let associations: MetadefAssociation[] = [];
    try {
      created = await this.deps.namespaces.transaction(async (trx) => {
        const ns = await this.deps.namespaces.insert(fields, trx);
        for (const a of sections.associations ?? []) associations.push(await this.deps.namespaces.associate(ns.id, a, trx));
        for (const o of sections.objects ?? []) await this.deps.contents.insertObject(ns.id, o, trx);
        for (const t of sections.tags ?? []) await this.deps.contents.insertTag(ns.id, t, trx);
        for (const [pname, def] of Object.entries(sections.properties ?? {})) await this.deps.contents.insertProperty(ns.id, pname, def, trx);
        return ns;
      });
    } catch (err) {
      associations = [];
      if (isUniqueViolation(err)) throw gazeError('MD_NAMESPACE_EXISTS', name);
      throw err;
    }
    const notify = this.deps.notifier;
    notify.info('metadef_namespace.create', namespacePayload(created));
    for (const a of associations) notify.info('metadef_resource_type.create', associationPayload(name, a));
    const givenObjects = (body.objects ?? []) as Array<Record<string, unknown>>;
    for (const [i, o] of (sections.objects ?? []).entries()) {
      const timed = { ...o, created_at: created.created_at, updated_at: created.created_at };
      notify.info('metadef_object.create', objectPayload(name, timed, { requiredGiven: givenObjects[i]?.required !== undefined }));
    }
    for (const t of sections.tags ?? [])
      notify.info('metadef_tag.create', tagPayload(name, { name: t, created_at: created.created_at, updated_at: created.created_at }));
    for (const [pname, def] of Object.entries(sections.properties ?? {})) notify.info('metadef_property.create', propertyPayload(name, pname, def));
    return { namespace: created, sections };
  }

  async show(ctx: RequestContext, name: string, pairs: QueryPairs): Promise<NamespaceDetail> {
    const get = (name: string) => lastValue(pairs, name);
    checkVisibilityParam(get('visibility'), ['public', 'private']);
    const ns = await findNamespace(this.deps, ctx, name, { missing: 'MD_NAMESPACE_NOT_FOUND', hidden: 'NOT_FOUND' });
    enforce(this.deps, 'get_metadef_namespace', ctx, ns);
    for (const rule of ['list_metadef_resource_types', 'get_metadef_objects', 'get_metadef_properties', 'get_metadef_tags']) enforce(this.deps, rule, ctx, ns);
    const associations = await this.deps.namespaces.associations(ns.id);
    const properties = (await this.deps.contents.properties(ns.id)).map((p): [string, PropertyDefinition] => [p.name, p.definition]);
    let objects = await this.deps.contents.objects(ns.id);
    const tags = (await this.deps.contents.tags(ns.id)).map((t) => t.name);
    // ?resource_type=: the namespace as that resource type sees it, its associated prefix applied.
    const prefix = associations.find((a) => a.name === get('resource_type'))?.prefix;
    if (prefix) {
      objects = objects.map((o) => ({
        ...o,
        required: o.required.map((r) => `${prefix}${r}`),
        properties: Object.fromEntries(Object.entries(o.properties).map(([k, v]) => [`${prefix}${k}`, v])),
      }));
      return { namespace: ns, associations, properties: properties.map(([k, v]) => [`${prefix}${k}`, v]), objects, tags };
    }
    return { namespace: ns, associations, properties, objects, tags };
  }

  /** PUT: the namespace's own fields are replaced (an absent one takes its default); its contents stay. */
  async update(ctx: RequestContext, name: string, raw: unknown): Promise<MetadefNamespace> {
    const body = bodyOf(raw);
    refuseReadOnly(body, NAMESPACE_READ_ONLY);
    validated(this.deps, 'namespace', raw);
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'modify_metadef_namespace', ctx, ns);
    const fields = {
      namespace: body.namespace as string,
      display_name: (body.display_name as string | undefined) ?? null,
      description: (body.description as string | undefined) ?? null,
      visibility: (body.visibility as string | undefined) ?? 'private',
      protected: (body.protected as boolean | undefined) ?? false,
      // Glance's `owner or context.owner`: an empty owner is the caller's project too.
      owner: (body.owner as string | undefined) || (ctx.projectId ?? ''),
    };
    refuseFourByte('update metadata namespace', fields);
    try {
      await this.deps.namespaces.update(ns.id, fields);
    } catch (err) {
      if (isUniqueViolation(err)) throw gazeError('MD_NAMESPACE_RENAME_CONFLICT', fields.namespace);
      throw err;
    }
    // Glance answers with the namespace as updated, but its updated_at from before.
    const updated = { ...ns, ...fields };
    this.deps.notifier.info('metadef_namespace.update', namespacePayload(updated, { old: name }));
    return updated;
  }

  async delete(ctx: RequestContext, name: string): Promise<void> {
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'delete_metadef_namespace', ctx, ns);
    if (ns.protected) throw gazeError('MD_PROTECTED', 'namespace', name);
    await this.deps.namespaces.delete(ns.id);
    this.deps.notifier.info('metadef_namespace.delete', namespacePayload(ns, { deleted: true }));
  }

  /** DELETE …/objects, …/properties, …/tags: everything of that kind in the namespace. */
  async deleteContents(ctx: RequestContext, name: string, kind: 'objects' | 'properties' | 'tags'): Promise<void> {
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'delete_metadef_namespace', ctx, ns);
    if (kind === 'tags') enforce(this.deps, 'delete_metadef_tags', ctx, ns);
    if (ns.protected) throw gazeError('MD_PROTECTED', 'namespace', name);
    await this.deps.contents.deleteAll(`metadef_${kind}`, ns.id);
    this.deps.notifier.info(`metadef_namespace.delete_${kind}`, namespacePayload(ns));
  }

  async resourceTypes(ctx: RequestContext): Promise<MetadefResourceType[]> {
    enforce(this.deps, 'list_metadef_resource_types', ctx, null);
    return this.deps.namespaces.resourceTypes();
  }

  async associations(ctx: RequestContext, name: string): Promise<MetadefAssociation[]> {
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'list_metadef_resource_types', ctx, ns);
    const visible = this.deps.policy.check('get_metadef_resource_type', ctx, { project_id: ns.owner, visibility: ns.visibility });
    return visible ? this.deps.namespaces.associations(ns.id) : [];
  }

  async associate(ctx: RequestContext, name: string, raw: unknown): Promise<MetadefAssociation> {
    const body = bodyOf(raw);
    refuseReadOnly(body, ['created_at', 'updated_at']);
    validated(this.deps, 'resource_type_association', raw);
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'add_metadef_resource_type_association', ctx, ns);
    const association = {
      name: body.name as string,
      prefix: (body.prefix as string | undefined) ?? null,
      properties_target: (body.properties_target as string | undefined) ?? null,
    };
    let created: MetadefAssociation;
    try {
      created = await this.deps.namespaces.transaction((trx) => this.deps.namespaces.associate(ns.id, association, trx));
    } catch (err) {
      if (isUniqueViolation(err)) throw gazeError('MD_ASSOCIATION_EXISTS', association.name, name);
      throw err;
    }
    this.deps.notifier.info('metadef_resource_type.create', associationPayload(name, created));
    return created;
  }

  async deassociate(ctx: RequestContext, name: string, resourceType: string): Promise<void> {
    const ns = await findNamespace(this.deps, ctx, name, WRITE_NOT_FOUND);
    enforce(this.deps, 'remove_metadef_resource_type_association', ctx, ns);
    if (ns.protected) throw gazeError('MD_PROTECTED', 'resource-type-association', resourceType);
    const association = (await this.deps.namespaces.associations(ns.id)).find((a) => a.name === resourceType);
    if (!association || !(await this.deps.namespaces.deassociate(ns.id, resourceType))) throw gazeError('MD_RESOURCE_TYPE_NOT_FOUND_TO_DELETE', resourceType);
    this.deps.notifier.info('metadef_resource_type.delete', associationPayload(name, association, true));
  }
}
