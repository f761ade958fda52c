import { gazeError } from './errors.ts';

// Metadata definitions (metadefs): namespaces of property, object and tag definitions, associated with
// resource types (OS::Glance::Image, OS::Nova::Flavor…), which Horizon uses to describe and edit image
// properties. The rules here are Glance's, as its API behaves.

export interface MetadefNamespace {
  id: number;
  namespace: string;
  display_name: string | null;
  description: string | null;
  /** null only for rows loaded from files without one: shown as private. */
  visibility: string | null;
  protected: boolean | null;
  owner: string;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefAssociation {
  name: string;
  prefix: string | null;
  properties_target: string | null;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefObject {
  id: number;
  name: string;
  description: string | null;
  required: string[];
  properties: Record<string, PropertyDefinition>;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefProperty {
  id: number;
  name: string;
  definition: PropertyDefinition;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefTag {
  id: number;
  name: string;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefResourceType {
  id: number;
  name: string;
  protected: boolean;
  created_at: string;
  updated_at: string | null;
}

export type PropertyDefinition = Record<string, unknown>;

/** Who may know a namespace exists: admins, its owner, everyone when public (or when it has no owner). */
export function canSeeNamespace(caller: { isAdmin: boolean; projectId: string | null }, ns: Pick<MetadefNamespace, 'owner' | 'visibility'>): boolean {
  return caller.isAdmin || ns.owner === null || ns.visibility === 'public' || (caller.projectId !== null && ns.owner === caller.projectId);
}

/** The order Glance writes a property definition's fields in. */
export const PROPERTY_FIELDS = [
  'name',
  'type',
  'title',
  'description',
  'operators',
  'default',
  'readonly',
  'minimum',
  'maximum',
  'enum',
  'pattern',
  'minLength',
  'maxLength',
  'confidential',
  'items',
  'uniqueItems',
  'minItems',
  'maxItems',
  'additionalItems',
] as const;

const INTEGER_FIELDS = new Set(['minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems']);

/** Python's str() of a scalar, as Glance stores a property's default. */
function pythonStr(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/** Glance's model keeps an enum of strings; a null among them (JSON's) it keeps too. */
function isTextEnum(value: unknown): boolean {
  return !Array.isArray(value) || value.every((v) => typeof v === 'string' || v === null);
}

/**
 * A property definition as Glance's model keeps it: `default` as text (true → "True", 3 → "3"; a list,
 * an object or null → null), numeric bounds as integers, `enum` of strings, `items` of type and enum
 * only. What Glance's model cannot hold (which it answers with a 500) is refused with 400 here.
 */
export function normalizeProperty(def: PropertyDefinition, where: string): PropertyDefinition {
  const out: PropertyDefinition = {};
  for (const field of PROPERTY_FIELDS) {
    if (!(field in def)) continue;
    let value = def[field];
    if (field === 'default') {
      value = value === null || typeof value === 'object' ? null : pythonStr(value as string | number | boolean);
    } else if (INTEGER_FIELDS.has(field) && typeof value === 'number') {
      value = Math.trunc(value);
    } else if (field === 'enum' && !isTextEnum(value)) {
      throw gazeError('BAD_REQUEST', `${where}: enum values must be strings`);
    } else if (field === 'items' && value && typeof value === 'object') {
      const extra = Object.keys(value).filter((k) => k !== 'type' && k !== 'enum');
      if (extra.length) throw gazeError('BAD_REQUEST', `${where}: items may only hold type and enum, not ${extra.join(', ')}`);
      if ('enum' in value && !isTextEnum((value as { enum: unknown }).enum)) throw gazeError('BAD_REQUEST', `${where}: items enum values must be strings`);
    }
    out[field] = value;
  }
  const unknown = Object.keys(def).filter((k) => !(PROPERTY_FIELDS as readonly string[]).includes(k));
  if (unknown.length) throw gazeError('BAD_REQUEST', `${where}: unknown property definition field ${unknown.join(', ')}`);
  return out;
}

/** A resource type's prefix applied to a namespace's properties and objects (show with ?resource_type=). */
export function withPrefix<T extends { properties: Record<string, PropertyDefinition> }>(item: T, prefix: string): T {
  return { ...item, properties: Object.fromEntries(Object.entries(item.properties).map(([k, v]) => [`${prefix}${k}`, v])) };
}
