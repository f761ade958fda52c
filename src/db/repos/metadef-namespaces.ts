import type { Transaction } from 'kysely';
import type { Database, MetadefNamespacesTable } from '../schema.ts';
import type { Db } from '../connection.ts';
import { retryOnDeadlock } from '../deadlock.ts';
import { insertReturningId, orderNullsLow } from '../dialect.ts';
import { afterMarker } from '../keyset.ts';
import type { MetadefAssociation, MetadefNamespace, MetadefResourceType } from '../../domain/metadefs.ts';
import { nowTimestamp } from '../../domain/time.ts';

/** Glance's sortable namespace columns. */
export const NAMESPACE_SORT_KEYS = ['id', 'namespace', 'display_name', 'description', 'visibility', 'protected', 'owner', 'created_at', 'updated_at'] as const;
export type NamespaceSortKey = (typeof NAMESPACE_SORT_KEYS)[number];

export interface NamespaceListQuery {
  /** Admins see every namespace; others their project's and the public ones. */
  caller: { isAdmin: boolean; projectId: string | null };
  /** Namespaces of exactly this visibility (an empty one matches none). */
  visibility?: string;
  /** Only namespaces associated with one of these resource types. */
  resourceTypes?: string[];
  sortKey: NamespaceSortKey;
  sortDir: 'asc' | 'desc';
  limit: number;
  /** The namespace the page starts after. */
  marker?: MetadefNamespace;
}

export type NamespaceFields = Omit<MetadefNamespace, 'id' | 'created_at' | 'updated_at'>;

function toNamespace(row: Omit<MetadefNamespacesTable, 'id'> & { id: number }): MetadefNamespace {
  return { ...row, protected: row.protected === null ? null : Boolean(row.protected) };
}

function fromFields(fields: NamespaceFields) {
  return { ...fields, protected: fields.protected === null ? null : Number(fields.protected) };
}

/** Namespaces, resource types and their associations. */
export class MetadefNamespacesRepo {
  constructor(private readonly db: Db) {}

  private get k() {
    return this.db.kysely;
  }

  /**
   * Runs `fn` in one transaction (namespace create with its contents is all or nothing), again when the
   * database chose it as a deadlock's victim (a tags replace beside a tags delete, on MariaDB and PostgreSQL).
   */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return retryOnDeadlock(() => this.k.transaction().execute(fn));
  }

  async get(name: string, trx: Transaction<Database> | null = null): Promise<MetadefNamespace | null> {
    const row = await (trx ?? this.k).selectFrom('metadef_namespaces').selectAll().where('namespace', '=', name).executeTakeFirst();
    return row ? toNamespace(row) : null;
  }

  async list(q: NamespaceListQuery): Promise<MetadefNamespace[]> {
    let query = this.k.selectFrom('metadef_namespaces').selectAll('metadef_namespaces');
    const { caller } = q;
    if (!caller.isAdmin) {
      query = query.where((eb) =>
        caller.projectId === null ? eb('visibility', '=', 'public') : eb.or([eb('owner', '=', caller.projectId), eb('visibility', '=', 'public')]),
      );
    }
    if (q.visibility !== undefined) query = query.where('visibility', '=', q.visibility);
    if (q.resourceTypes?.length) {
      query = query.where((eb) =>
        eb.exists(
          eb
            .selectFrom('metadef_namespace_resource_types as a')
            .innerJoin('metadef_resource_types as r', 'r.id', 'a.resource_type_id')
            .select('a.namespace_id')
            .whereRef('a.namespace_id', '=', 'metadef_namespaces.id')
            .where('r.name', 'in', q.resourceTypes!),
        ),
      );
    }
    // Glance's order: the sort key, then created_at and id, all the same way.
    const keys = [...new Set<NamespaceSortKey>([q.sortKey, 'created_at', 'id'])];
    if (q.marker) {
      const marker = q.marker as unknown as Record<string, unknown>;
      const value = (key: string) => (key === 'protected' && marker.protected !== null ? Number(marker.protected) : marker[key]);
      query = query.where((eb) =>
        afterMarker(
          eb,
          keys.map((column) => ({ column, dir: q.sortDir })),
          value,
        ),
      );
    }
    for (const key of keys) query = query.orderBy(orderNullsLow(this.db.engine, key, q.sortDir));
    return (await query.limit(q.limit).execute()).map(toNamespace);
  }

  async insert(fields: NamespaceFields, trx: Transaction<Database> | null = null, timestamps?: { updated: boolean }): Promise<MetadefNamespace> {
    const now = nowTimestamp();
    const row = { ...fromFields(fields), created_at: now, updated_at: timestamps?.updated === false ? null : now };
    const id = await insertReturningId(this.db.engine, (trx ?? this.k).insertInto('metadef_namespaces').values(row));
    return toNamespace({ ...row, id });
  }

  /** Replaces the namespace's own fields (its name too); false when it is gone. */
  async update(id: number, fields: NamespaceFields, trx: Transaction<Database> | null = null): Promise<boolean> {
    const res = await (trx ?? this.k)
      .updateTable('metadef_namespaces')
      .set({ ...fromFields(fields), updated_at: nowTimestamp() })
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Deletes a namespace with all its contents and associations (resource types stay). */
  async delete(id: number, trx: Transaction<Database> | null = null): Promise<void> {
    const run = async (t: Transaction<Database>) => {
      for (const table of ['metadef_tags', 'metadef_objects', 'metadef_properties', 'metadef_namespace_resource_types'] as const) {
        await t.deleteFrom(table).where('namespace_id', '=', id).execute();
      }
      await t.deleteFrom('metadef_namespaces').where('id', '=', id).execute();
    };
    await (trx ? run(trx) : this.transaction(run));
  }

  async resourceTypes(): Promise<MetadefResourceType[]> {
    const rows = await this.k.selectFrom('metadef_resource_types').selectAll().orderBy('id').execute();
    return rows.map((r) => ({ ...r, protected: Boolean(r.protected) }));
  }

  async resourceType(name: string, trx: Transaction<Database> | null = null): Promise<MetadefResourceType | null> {
    const row = await (trx ?? this.k).selectFrom('metadef_resource_types').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? { ...row, protected: Boolean(row.protected) } : null;
  }

  /** The id of a resource type, created when missing (association creates them, as in Glance). */
  async ensureResourceType(name: string, trx: Transaction<Database>, opts: { protected: boolean; touch?: boolean }): Promise<number> {
    const existing = await this.resourceType(name, trx);
    if (existing) {
      if (opts.touch) await trx.updateTable('metadef_resource_types').set({ updated_at: nowTimestamp() }).where('id', '=', existing.id).execute();
      return existing.id;
    }
    const now = nowTimestamp();
    const id = await insertReturningId(
      this.db.engine,
      trx.insertInto('metadef_resource_types').values({ name, protected: opts.protected ? 1 : 0, created_at: now, updated_at: opts.protected ? null : now }),
    );
    return id;
  }

  async associations(namespaceId: number, trx: Transaction<Database> | null = null): Promise<MetadefAssociation[]> {
    return (trx ?? this.k)
      .selectFrom('metadef_namespace_resource_types as a')
      .innerJoin('metadef_resource_types as r', 'r.id', 'a.resource_type_id')
      .select(['r.name', 'a.prefix', 'a.properties_target', 'a.created_at', 'a.updated_at'])
      .where('a.namespace_id', '=', namespaceId)
      .orderBy('a.position')
      .execute();
  }

  /** Associations of many namespaces at once, for lists. */
  async associationsOf(namespaceIds: number[]): Promise<Map<number, MetadefAssociation[]>> {
    const byId = new Map<number, MetadefAssociation[]>();
    if (namespaceIds.length === 0) return byId;
    const rows = await this.k
      .selectFrom('metadef_namespace_resource_types as a')
      .innerJoin('metadef_resource_types as r', 'r.id', 'a.resource_type_id')
      .select(['a.namespace_id', 'r.name', 'a.prefix', 'a.properties_target', 'a.created_at', 'a.updated_at'])
      .where('a.namespace_id', 'in', namespaceIds)
      .orderBy('a.namespace_id')
      .orderBy('a.position')
      .execute();
    for (const { namespace_id: id, ...association } of rows) byId.set(id, [...(byId.get(id) ?? []), association]);
    return byId;
  }

  async associate(
    namespaceId: number,
    association: { name: string; prefix: string | null; properties_target: string | null },
    trx: Transaction<Database>,
    opts: { protectedType?: boolean; updated?: boolean } = {},
  ): Promise<MetadefAssociation> {
    const typeId = await this.ensureResourceType(association.name, trx, { protected: opts.protectedType ?? false });
    const now = nowTimestamp();
    const last = await trx
      .selectFrom('metadef_namespace_resource_types')
      .select((eb) => eb.fn.max('position').as('p'))
      .where('namespace_id', '=', namespaceId)
      .executeTakeFirst();
    const row = {
      resource_type_id: typeId,
      namespace_id: namespaceId,
      prefix: association.prefix,
      properties_target: association.properties_target,
      position: Number(last?.p ?? -1) + 1,
      created_at: now,
      updated_at: opts.updated === false ? null : now,
    };
    await trx.insertInto('metadef_namespace_resource_types').values(row).execute();
    return { name: association.name, prefix: row.prefix, properties_target: row.properties_target, created_at: now, updated_at: row.updated_at };
  }

  async updateAssociation(
    namespaceId: number,
    name: string,
    fields: { prefix: string | null; properties_target: string | null },
    trx: Transaction<Database>,
  ): Promise<void> {
    const type = await this.resourceType(name, trx);
    if (!type) return;
    await trx
      .updateTable('metadef_namespace_resource_types')
      .set({ prefix: fields.prefix, properties_target: fields.properties_target, updated_at: nowTimestamp() })
      .where('namespace_id', '=', namespaceId)
      .where('resource_type_id', '=', type.id)
      .execute();
  }

  /** Removes an association; false when there was none. */
  async deassociate(namespaceId: number, name: string): Promise<boolean> {
    const type = await this.resourceType(name);
    if (!type) return false;
    const res = await this.k
      .deleteFrom('metadef_namespace_resource_types')
      .where('namespace_id', '=', namespaceId)
      .where('resource_type_id', '=', type.id)
      .executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  /** Every metadef row (unload_metadefs). */
  async deleteEverything(): Promise<void> {
    await this.transaction(async (t) => {
      for (const table of [
        'metadef_properties',
        'metadef_objects',
        'metadef_tags',
        'metadef_namespace_resource_types',
        'metadef_namespaces',
        'metadef_resource_types',
      ] as const) {
        await t.deleteFrom(table).execute();
      }
    });
  }
}
