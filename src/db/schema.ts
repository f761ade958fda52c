import type { TaskRecord } from '../domain/task.ts';
import type { Generated } from 'kysely';

// Row types of every table. Timestamps are TEXT (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC) and booleans are
// 0/1 integers on both engines, so SQLite and PostgreSQL rows look the same to the repositories.

export interface ImagesTable {
  id: string;
  name: string | null;
  status: string;
  visibility: string;
  protected: number;
  os_hidden: number;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  owner: string | null;
  size: number | null;
  virtual_size: number | null;
  container_format: string | null;
  disk_format: string | null;
  min_ram: number;
  min_disk: number;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  deleted: number;
  /** Bytes a running upload, stage or import reserved against the quotas; null when none runs. */
  reserved_bytes: number | null;
  /** Bytes a running stage or download into staging holds against the staging quota, while the image has no size. */
  staged_bytes: number | null;
}

export interface ImagePropertiesTable {
  image_id: string;
  name: string;
  value: string | null;
  /** The order in which the image's properties were first set (Glance lists them so); 0 before 0009. */
  position: Generated<number>;
}

/** The place a removed property had in its image's list, given back when it is set again. */
export interface ImagePropertySlotsTable {
  image_id: string;
  name: string;
  position: number;
}

export interface ImageTagsTable {
  image_id: string;
  value: string;
}

export interface ImageMembersTable {
  id: string;
  image_id: string;
  member: string;
  status: string;
  created_at: string;
  updated_at: string;
}

export interface ImageLocationsTable {
  id: string;
  image_id: string;
  position: number;
  url: string;
  metadata: string; // JSON object
  status: string;
  created_at: string;
  updated_at: string;
}

export type TasksTable = TaskRecord;

// Metadata definitions: integer ids (generated), JSON kept as text.
export interface MetadefNamespacesTable {
  id: Generated<number>;
  namespace: string;
  display_name: string | null;
  description: string | null;
  visibility: string | null;
  protected: number | null;
  owner: string;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefObjectsTable {
  id: Generated<number>;
  namespace_id: number;
  name: string;
  description: string | null;
  required: string | null;
  json_schema: string;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefPropertiesTable {
  id: Generated<number>;
  namespace_id: number;
  name: string;
  json_schema: string;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefResourceTypesTable {
  id: Generated<number>;
  name: string;
  protected: number;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefNamespaceResourceTypesTable {
  resource_type_id: number;
  namespace_id: number;
  properties_target: string | null;
  prefix: string | null;
  position: number;
  created_at: string;
  updated_at: string | null;
}

export interface MetadefTagsTable {
  id: Generated<number>;
  namespace_id: number;
  name: string;
  created_at: string;
  updated_at: string | null;
}

/** A running node (`host:pid:boot:random`) and until when it vouches for its uploads; renewed while it runs. */
export interface NodesTable {
  name: string;
  alive_until: string;
}

export interface Database {
  images: ImagesTable;
  image_properties: ImagePropertiesTable;
  image_property_slots: ImagePropertySlotsTable;
  image_tags: ImageTagsTable;
  image_members: ImageMembersTable;
  image_locations: ImageLocationsTable;
  tasks: TasksTable;
  metadef_namespaces: MetadefNamespacesTable;
  metadef_objects: MetadefObjectsTable;
  metadef_properties: MetadefPropertiesTable;
  metadef_resource_types: MetadefResourceTypesTable;
  metadef_namespace_resource_types: MetadefNamespaceResourceTypesTable;
  metadef_tags: MetadefTagsTable;
  nodes: NodesTable;
}
