import { existsSync, opendirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { MetadefNamespacesRepo } from '../db/repos/metadef-namespaces.ts';
import type { MetadefContentsRepo } from '../db/repos/metadef-contents.ts';
import { normalizeProperty, type PropertyDefinition } from '../domain/metadefs.ts';

// glance-manage's metadefs commands: Glance's metadefs JSON files (Debian ships them in
// /etc/glance/metadefs) loaded into the database, unloaded, and exported back to files.

export interface LoadOptions {
  /** Add what is missing to namespaces that exist (default: leave them alone). */
  merge: boolean;
  /** With merge: what the files hold replaces what the database holds. */
  preferNew: boolean;
  /** With merge: namespaces that exist are dropped and loaded again from the files. */
  overwrite: boolean;
}

interface NamespaceFile {
  namespace: string;
  display_name?: string;
  description?: string;
  visibility?: string;
  protected?: boolean;
  owner?: string;
  resource_type_associations?: Array<{ name: string; prefix?: string; properties_target?: string }>;
  properties?: Record<string, PropertyDefinition>;
  objects?: Array<{ name: string; description?: string; properties?: Record<string, PropertyDefinition> }>;
  tags?: Array<{ name: string }>;
}

/**
 * The JSON files of a directory (not recursive), or the one file named. In the directory's own order,
 * as Python's os.listdir() gives Glance's loader them: the load order is the namespaces' default list
 * order (newest first).
 */
function filesAt(source: string): string[] {
  if (statSync(source).isFile()) return [source];
  const dir = opendirSync(source);
  const names: string[] = [];
  try {
    for (let entry = dir.readSync(); entry; entry = dir.readSync()) names.push(entry.name);
  } finally {
    dir.closeSync();
  }
  return names
    .filter((n) => n.endsWith('.json'))
    .map((n) => path.join(source, n))
    .filter((f) => statSync(f, { throwIfNoEntry: false })?.isFile() === true); // a dangling link is no file
}

const normalized = (map: Record<string, PropertyDefinition> | undefined, file: string) =>
  Object.fromEntries(
    Object.entries(map ?? {}).map(([k, v]) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`property ${k} is not a definition (a JSON object)`);
      return [k, normalizeProperty(v, `${file}: property ${k}`)];
    }),
  );

/** What a file must hold before any of it is written: a namespace, and a name for each thing in it. */
function checkShape(doc: NamespaceFile): void {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('it is not a namespace (a JSON object)');
  if (typeof doc.namespace !== 'string') throw new Error('it names no namespace');
  const named = (items: unknown, what: string, one: string) => {
    if (items === undefined) return;
    if (!Array.isArray(items)) throw new Error(`its ${what} are not a list`);
    if (items.some((item) => typeof (item as { name?: unknown } | null)?.name !== 'string')) throw new Error(`${one} has no name`);
  };
  named(doc.objects, 'objects', 'an object');
  named(doc.resource_type_associations, 'resource type associations', 'a resource type association');
  named(doc.tags, 'tags', 'a tag');
}

/**
 * Loads namespace files as `glance-manage db load_metadefs` does: idempotent by default (a namespace
 * that exists is skipped), `merge` adds what is missing, `preferNew` also overwrites what exists,
 * `overwrite` drops existing namespaces and loads them again. Loaded rows have no updated_at.
 */
export async function loadMetadefs(
  repos: { namespaces: MetadefNamespacesRepo; contents: MetadefContentsRepo },
  source: string,
  opts: LoadOptions,
  log: (line: string) => void,
): Promise<{ loaded: number; skipped: number; failed: number }> {
  if ((opts.preferNew || opts.overwrite) && !opts.merge) throw new Error('--prefer-new and --overwrite are used together with --merge');
  if (opts.preferNew && opts.overwrite) throw new Error('give at most one of --prefer-new and --overwrite');
  const files = filesAt(source);
  if (files.length === 0) throw new Error(`no metadefs JSON files in ${source}`);
  const counts = { loaded: 0, skipped: 0, failed: 0 };
  const { namespaces, contents } = repos;
  for (const file of files) {
    let doc: NamespaceFile;
    let properties: Record<string, PropertyDefinition>;
    let objects: Array<{ name: string; description: string | null; required: string[]; properties: Record<string, PropertyDefinition> }>;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as NamespaceFile;
      checkShape(doc);
      properties = normalized(doc.properties, file);
      // As glance-manage does, an object's `required` is not loaded.
      objects = (doc.objects ?? []).map((o) => ({
        name: o.name,
        description: o.description ?? null,
        required: [],
        properties: normalized(o.properties, file),
      }));
    } catch (err) {
      log(`${file}: skipped: ${(err as Error).message}`);
      counts.failed += 1;
      continue;
    }
    const fields = {
      namespace: doc.namespace,
      display_name: doc.display_name ?? null,
      description: doc.description ?? null,
      visibility: doc.visibility ?? null,
      protected: doc.protected ?? null,
      owner: doc.owner ?? 'admin',
    };
    // One file is one transaction: one the database refuses is named and left out, and the others load.
    const outcome = await namespaces
      .transaction(async (trx) => {
        let ns = await namespaces.get(doc.namespace, trx);
        if (ns && opts.overwrite) {
          await namespaces.delete(ns.id, trx);
          ns = null;
        }
        if (ns && !opts.merge) return 'skipped' as const;
        if (!ns) ns = await namespaces.insert(fields, trx, { updated: false });
        else if (opts.preferNew) await namespaces.update(ns.id, fields, trx);
        const prefer = opts.preferNew;
        const associations = await namespaces.associations(ns.id, trx);
        for (const a of doc.resource_type_associations ?? []) {
          const wanted = { name: a.name, prefix: a.prefix ?? null, properties_target: a.properties_target ?? null };
          if (!associations.some((x) => x.name === a.name)) await namespaces.associate(ns.id, wanted, trx, { protectedType: true, updated: false });
          else if (prefer) await namespaces.updateAssociation(ns.id, a.name, wanted, trx);
        }
        for (const [name, def] of Object.entries(properties)) {
          const existing = await contents.property(ns.id, name, trx);
          if (!existing) await contents.insertProperty(ns.id, name, def, trx, { updated: false });
          else if (prefer) await contents.updateProperty(existing.id, name, def, trx);
        }
        for (const o of objects) {
          const existing = await contents.object(ns.id, o.name, trx);
          if (!existing) await contents.insertObject(ns.id, o, trx, { updated: false });
          else if (prefer) await contents.updateObject(existing.id, o, trx);
        }
        for (const t of doc.tags ?? []) {
          const existing = await contents.tag(ns.id, t.name, trx);
          if (!existing) await contents.insertTag(ns.id, t.name, trx, { updated: false });
          else if (prefer) await contents.renameTag(existing.id, t.name, trx);
        }
        return 'loaded' as const;
      })
      .catch((err: unknown) => {
        log(`${file}: refused: ${(err as Error).message}`);
        return 'failed' as const;
      });
    if (outcome === 'skipped') log(`Skipping namespace ${doc.namespace}. It already exists in the database.`);
    counts[outcome] += 1;
  }
  return counts;
}

/** Every metadef row goes (`glance-manage db unload_metadefs`). */
export async function unloadMetadefs(namespaces: MetadefNamespacesRepo): Promise<void> {
  await namespaces.deleteEverything();
}

/**
 * One JSON file per namespace in `dir`, named after its display name (letters and digits only), as
 * `glance-manage db export_metadefs` writes them (owners are not exported, nor objects' required).
 */
export async function exportMetadefs(
  repos: { namespaces: MetadefNamespacesRepo; contents: MetadefContentsRepo },
  dir: string,
  log: (line: string) => void = () => {},
): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const all = await repos.namespaces.list({ caller: { isAdmin: true, projectId: null }, sortKey: 'id', sortDir: 'asc', limit: Number.MAX_SAFE_INTEGER });
  for (const ns of all) {
    const doc = {
      namespace: ns.namespace,
      display_name: ns.display_name,
      description: ns.description,
      visibility: ns.visibility,
      protected: ns.protected,
      resource_type_associations: (await repos.namespaces.associations(ns.id)).map((a) => ({
        name: a.name,
        prefix: a.prefix,
        properties_target: a.properties_target,
      })),
      properties: Object.fromEntries((await repos.contents.properties(ns.id)).map((p) => [p.name, p.definition])),
      objects: (await repos.contents.objects(ns.id)).map((o) => ({ name: o.name, description: o.description, properties: o.properties })),
      tags: (await repos.contents.tags(ns.id)).map((t) => ({ name: t.name })),
    };
    // Python's \W, as glance-manage's pattern: letters and digits of every script are kept.
    const file = path.join(dir, `${(ns.display_name ?? ns.namespace).replace(/[^\p{L}\p{N}]/gu, '') || `namespace${ns.id}`}.json`);
    // A file there already (an earlier export, or a namespace whose name maps to the same file) is
    // said, as glance-manage says it.
    if (existsSync(file)) log(`Overwriting: ${file}`);
    writeFileSync(file, JSON.stringify(doc));
    written.push(file);
  }
  return written;
}
