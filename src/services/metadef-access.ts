import type { RequestContext } from '../auth/context.ts';
import type { Policy, PolicyTarget } from '../auth/policy.ts';
import type { Notifier } from '../notify/notifier.ts';
import type { MetadefNamespacesRepo } from '../db/repos/metadef-namespaces.ts';
import type { MetadefContentsRepo } from '../db/repos/metadef-contents.ts';
import type { SchemaValidator } from '../schemas/validate.ts';
import { gazeError, isGazeError, type ErrorCode } from '../domain/errors.ts';
import { limitParam } from './query.ts';
import { checkNoFourByteUnicode } from '../domain/image.ts';
import { canSeeNamespace, PROPERTY_FIELDS, type MetadefNamespace, type MetadefObject, type PropertyDefinition } from '../domain/metadefs.ts';
import { apiTime, nowTimestamp } from '../domain/time.ts';

/** What the metadefs use cases share. */
export interface MetadefDeps {
  namespaces: MetadefNamespacesRepo;
  contents: MetadefContentsRepo;
  policy: Policy;
  notifier: Notifier;
  validators: Record<'namespace' | 'object' | 'object_property' | 'property' | 'tag' | 'tags' | 'resource_type_association', SchemaValidator>;
  limits: { default: number; max: number };
}

type NamespaceNotFound = Extract<ErrorCode, 'MD_NAMESPACE_NOT_FOUND' | 'MD_NAMESPACE_NOT_FOUND_SHORT' | 'NOT_FOUND'>;

export function namespaceTarget(ns: MetadefNamespace): PolicyTarget {
  return { project_id: ns.owner, visibility: ns.visibility };
}

/**
 * Glance's metadef policy check: a denied rule is 404 (as if the namespace did not exist) when the
 * caller may not even see the namespace, 403 otherwise.
 */
export function enforce(deps: MetadefDeps, rule: string, ctx: RequestContext, ns: MetadefNamespace | null): void {
  const target = ns ? namespaceTarget(ns) : { project_id: ctx.projectId };
  if (deps.policy.check(rule, ctx, target)) return;
  if (rule === 'get_metadef_namespace' || !deps.policy.check('get_metadef_namespace', ctx, target)) throw gazeError('NOT_FOUND');
  throw gazeError('POLICY_DENIED', rule);
}

/**
 * The namespace a request names, if the caller may see it. Glance words the 404 per endpoint: `missing`
 * when the namespace does not exist, `hidden` when the caller may not see it.
 */
export async function findNamespace(
  deps: MetadefDeps,
  ctx: RequestContext,
  name: string,
  notFound: { missing: NamespaceNotFound; hidden: NamespaceNotFound },
): Promise<MetadefNamespace> {
  const ns = await deps.namespaces.get(name);
  const raise = (code: NamespaceNotFound) => (code === 'NOT_FOUND' ? gazeError('NOT_FOUND') : gazeError(code, name));
  if (!ns) throw raise(notFound.missing);
  if (!canSeeNamespace(ctx, ns)) throw raise(notFound.hidden);
  return ns;
}

/** The caller's namespace for writes: absent and hidden alike are "Namespace <ns> not found". */
export const WRITE_NOT_FOUND = { missing: 'MD_NAMESPACE_NOT_FOUND_SHORT', hidden: 'MD_NAMESPACE_NOT_FOUND_SHORT' } as const;

/** Fields a body may not set (403 "Attribute '<key>' is read-only."). */
export function refuseReadOnly(body: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of keys) if (key in body) throw gazeError('ATTRIBUTE_READ_ONLY', key);
}

/** Glance's 4-byte unicode refusal, with the write's own prefix ("Couldn't create metadata tag: …"). */
export function refuseFourByte(what: string, fields: Record<string, unknown>, nested: Array<Record<string, unknown>> = []): void {
  try {
    checkNoFourByteUnicode(fields);
    for (const map of nested) checkNoFourByteUnicode(map);
  } catch (err) {
    if (isGazeError(err)) throw gazeError('MD_WRITE_REFUSED', what, err.message);
    throw err;
  }
}

/**
 * What Glance's database layer sees of an object for its 4-byte check: name, description, the required
 * list (stored as text), then each property definition's text fields, but not the properties' names
 * (keys of a nested dict, which it skips).
 */
export function objectFourByteFields(object: { name: string; description: string | null; required: string[] }): Record<string, unknown> {
  return { name: object.name, description: object.description, required: JSON.stringify(object.required) };
}

/** A property definition's text fields (title, description, pattern, default…), as Glance checks them. */
export function definitionText(definition: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(definition).filter(([, value]) => typeof value === 'string'));
}

/** The body of a write, validated against its schema (an object: anything else is 400). */
/** A request body's fields ({} when the body is not a JSON object). */
export function bodyOf(raw: unknown): Record<string, unknown> {
  return raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
}

export function validated(deps: MetadefDeps, schema: keyof MetadefDeps['validators'], body: unknown): Record<string, unknown> {
  if (body === undefined) throw gazeError('BODY_EXPECTED');
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw gazeError('SCHEMA_MISMATCH', schema, `${JSON.stringify(body)} is not of type 'object'`);
  deps.validators[schema].validate(body);
  return body as Record<string, unknown>;
}

// Notification payloads, as Glance's notifier formats them.

const deletion = (deleted: boolean) => ({ deleted, deleted_at: deleted ? apiTime(nowTimestamp()) : null });

export function namespacePayload(ns: MetadefNamespace, opts: { old?: string; deleted?: boolean } = {}): Record<string, unknown> {
  return {
    namespace: ns.namespace,
    namespace_old: opts.old ?? ns.namespace,
    display_name: ns.display_name,
    protected: ns.protected ?? false,
    visibility: ns.visibility ?? 'private',
    owner: ns.owner,
    description: ns.description,
    created_at: apiTime(ns.created_at),
    updated_at: ns.updated_at ? apiTime(ns.updated_at) : null,
    ...deletion(opts.deleted ?? false),
  };
}

// Glance's notifications leave out a property's name (given beside it), its operators and readonly.
const NOT_IN_PAYLOAD: ReadonlySet<string> = new Set(['name', 'operators', 'readonly']);
const PAYLOAD_PROPERTY_FIELDS = PROPERTY_FIELDS.filter((f) => !NOT_IN_PAYLOAD.has(f));

/** A property definition's fields as Glance's property notifications show them (null where absent). */
const payloadFields = (def: PropertyDefinition) => Object.fromEntries(PAYLOAD_PROPERTY_FIELDS.map((f) => [f, def[f] ?? null]));

/** The same inside an object's notification, where Glance writes `value or None`: what Python finds false is null. */
const objectPropertyFields = (def: PropertyDefinition) => Object.fromEntries(PAYLOAD_PROPERTY_FIELDS.map((f) => [f, pythonFalsy(def[f]) ? null : def[f]]));

function pythonFalsy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0;
  if (value !== null && typeof value === 'object') return Object.keys(value).length === 0;
  return !value;
}

export function propertyPayload(ns: string, name: string, def: PropertyDefinition, opts: { old?: string; deleted?: boolean } = {}): Record<string, unknown> {
  return {
    namespace: ns,
    name,
    name_old: opts.old ?? name,
    ...payloadFields(def),
    ...deletion(opts.deleted ?? false),
  };
}

/**
 * An object's notification. Glance builds it from the request on create and update, where a `required`
 * the request did not give is null (`requiredGiven: false`), and from its database on delete (a list).
 */
export function objectPayload(
  ns: string,
  obj: Omit<MetadefObject, 'id'>,
  opts: { old?: string; deleted?: boolean; requiredGiven?: boolean } = {},
): Record<string, unknown> {
  return {
    namespace: ns,
    name: obj.name,
    name_old: opts.old ?? obj.name,
    properties: Object.entries(obj.properties).map(([name, def]) => ({ name, ...objectPropertyFields(def) })),
    required: opts.requiredGiven === false ? null : obj.required,
    description: obj.description,
    created_at: apiTime(obj.created_at),
    updated_at: obj.updated_at ? apiTime(obj.updated_at) : null,
    ...deletion(opts.deleted ?? false),
  };
}

export function tagPayload(
  ns: string,
  tag: { name: string; created_at: string; updated_at: string | null },
  opts: { old?: string; deleted?: boolean } = {},
): Record<string, unknown> {
  return {
    namespace: ns,
    name: tag.name,
    name_old: opts.old ?? tag.name,
    created_at: apiTime(tag.created_at),
    updated_at: tag.updated_at ? apiTime(tag.updated_at) : null,
    ...deletion(opts.deleted ?? false),
  };
}

export function associationPayload(
  ns: string,
  a: { name: string; prefix: string | null; properties_target: string | null; created_at: string; updated_at: string | null },
  deleted = false,
): Record<string, unknown> {
  return {
    namespace: ns,
    name: a.name,
    name_old: a.name,
    prefix: a.prefix,
    properties_target: a.properties_target,
    created_at: apiTime(a.created_at),
    updated_at: a.updated_at ? apiTime(a.updated_at) : null,
    ...deletion(deleted),
  };
}

/** Query values of a list: limit as Glance checks it. */
export function parseLimit(text: string | undefined, limits: { default: number; max: number } | null): number | undefined {
  if (text === undefined || text === '') return limits?.default;
  const n = limitParam(text);
  // Uncapped (the tag list, as in Glance) still within what every database takes as a LIMIT.
  return Math.min(n, limits?.max ?? Number.MAX_SAFE_INTEGER);
}

export function parseSortDir(text: string | undefined): 'asc' | 'desc' {
  const dir = text ?? 'desc';
  if (dir !== 'asc' && dir !== 'desc') throw gazeError('INVALID_SORT_DIR', dir);
  return dir;
}

/** A visibility parameter as Glance checks it: only a value that is not empty. */
export function checkVisibilityParam(text: string | undefined, allowed: readonly string[]): void {
  if (text && !allowed.includes(text)) throw gazeError('MD_INVALID_VISIBILITY', text);
}
