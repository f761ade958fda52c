import { apiTime } from '../domain/time.ts';
import {
  PROPERTY_FIELDS,
  type MetadefAssociation,
  type MetadefNamespace,
  type MetadefObject,
  type MetadefTag,
  type PropertyDefinition,
} from '../domain/metadefs.ts';

// Metadefs as Glance's API shows them: a field without a value is left out (never null), timestamps
// are `YYYY-MM-DDTHH:MM:SSZ`, links are built from names without escaping, as Glance builds them.

type View = Record<string, unknown>;

/** Copies the set values only, in the given order. */
function present(entries: Array<[string, unknown]>): View {
  return Object.fromEntries(entries.filter(([, v]) => v !== null && v !== undefined));
}

const time = (t: string | null) => (t ? apiTime(t) : null);

export function namespaceBase(ns: MetadefNamespace): View {
  return present([
    ['namespace', ns.namespace],
    ['display_name', ns.display_name],
    ['description', ns.description],
    ['visibility', ns.visibility ?? 'private'],
    ['protected', ns.protected ?? false],
    ['owner', ns.owner],
    ['created_at', time(ns.created_at)],
    ['updated_at', time(ns.updated_at)],
  ]);
}

export function namespaceLinks(name: string): View {
  return { self: `/v2/metadefs/namespaces/${name}`, schema: '/v2/schemas/metadefs/namespace' };
}

export function associationView(a: Partial<MetadefAssociation> & { name: string }): View {
  return present([
    ['name', a.name],
    ['prefix', a.prefix],
    ['properties_target', a.properties_target],
    ['created_at', time(a.created_at ?? null)],
    ['updated_at', time(a.updated_at ?? null)],
  ]);
}

/** A property definition in Glance's field order; `default` is the one field shown even when null. */
export function propertyView(def: PropertyDefinition, name?: string): View {
  const view: View = {};
  for (const field of PROPERTY_FIELDS) {
    const value = field === 'name' ? (name ?? def.name) : def[field];
    if (value !== undefined && (value !== null || field === 'default')) view[field] = value;
  }
  return view;
}

export function propertiesView(properties: Array<[string, PropertyDefinition]> | Record<string, PropertyDefinition>): View {
  const entries = Array.isArray(properties) ? properties : Object.entries(properties);
  return Object.fromEntries(entries.map(([name, def]) => [name, propertyView(def)]));
}

/** An object's own fields; with `given`, only those a request gave (what Glance echoes on a write). */
export function objectFieldsView(o: Pick<MetadefObject, 'name' | 'required' | 'description' | 'properties'>, given?: Set<string>): View {
  const show = (field: string) => !given || given.has(field);
  return present([
    ['name', o.name],
    ['required', show('required') ? o.required : undefined],
    ['description', show('description') ? o.description : undefined],
    ['properties', show('properties') ? propertiesView(o.properties) : undefined],
  ]);
}

export function objectView(ns: string, o: MetadefObject, given?: Set<string>): View {
  return {
    ...objectFieldsView(o, given),
    ...present([
      ['created_at', time(o.created_at)],
      ['updated_at', time(o.updated_at)],
      ['self', `/v2/metadefs/namespaces/${ns}/objects/${o.name}`],
      ['schema', '/v2/schemas/metadefs/object'],
    ]),
  };
}

export function tagView(t: MetadefTag): View {
  return present([
    ['name', t.name],
    ['created_at', time(t.created_at)],
    ['updated_at', time(t.updated_at)],
  ]);
}
