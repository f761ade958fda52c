import type { Kysely, Migration, MigrationProvider } from 'kysely';

// Ordered schema migrations; `gaze db sync` and the server's start apply the ones not yet applied.
const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('images')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(255)')
        .addColumn('status', 'varchar(30)', (c) => c.notNull())
        .addColumn('visibility', 'varchar(20)', (c) => c.notNull())
        .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('os_hidden', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('checksum', 'varchar(32)')
        .addColumn('os_hash_algo', 'varchar(64)')
        .addColumn('os_hash_value', 'varchar(128)')
        .addColumn('owner', 'varchar(255)')
        .addColumn('size', 'bigint')
        .addColumn('virtual_size', 'bigint')
        .addColumn('container_format', 'varchar(32)')
        .addColumn('disk_format', 'varchar(32)')
        .addColumn('min_ram', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('min_disk', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'varchar(26)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(26)', (c) => c.notNull())
        .addColumn('deleted_at', 'varchar(26)')
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('ix_images_owner').on('images').column('owner').execute();
      await db.schema.createIndex('ix_images_visibility').on('images').column('visibility').execute();
      await db.schema.createIndex('ix_images_created_at').on('images').columns(['created_at', 'id']).execute();

      await db.schema.createTable('image_properties')
        .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('pk_image_properties', ['image_id', 'name'])
        .execute();
      await db.schema.createIndex('ix_image_properties_name').on('image_properties').columns(['name', 'value']).execute();

      await db.schema.createTable('image_tags')
        .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
        .addColumn('value', 'varchar(255)', (c) => c.notNull())
        .addPrimaryKeyConstraint('pk_image_tags', ['image_id', 'value'])
        .execute();

      await db.schema.createTable('image_members')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
        .addColumn('member', 'varchar(255)', (c) => c.notNull())
        .addColumn('status', 'varchar(20)', (c) => c.notNull())
        .addColumn('created_at', 'varchar(26)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(26)', (c) => c.notNull())
        .addUniqueConstraint('uq_image_members', ['image_id', 'member'])
        .execute();
      await db.schema.createIndex('ix_image_members_member').on('image_members').columns(['member', 'status']).execute();

      await db.schema.createTable('image_locations')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('status', 'varchar(30)', (c) => c.notNull())
        .addColumn('created_at', 'varchar(26)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(26)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('ix_image_locations_image').on('image_locations').column('image_id').execute();

      await db.schema.createTable('tasks')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('type', 'varchar(30)', (c) => c.notNull())
        .addColumn('status', 'varchar(30)', (c) => c.notNull())
        .addColumn('owner', 'varchar(255)', (c) => c.notNull())
        .addColumn('input', 'text')
        .addColumn('result', 'text')
        .addColumn('message', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('image_id', 'varchar(36)')
        .addColumn('request_id', 'varchar(64)')
        .addColumn('user_id', 'varchar(64)')
        .addColumn('expires_at', 'varchar(26)')
        .addColumn('created_at', 'varchar(26)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(26)', (c) => c.notNull())
        .addColumn('deleted_at', 'varchar(26)')
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('lease_owner', 'varchar(255)')
        .addColumn('lease_expires_at', 'varchar(26)')
        .execute();
      await db.schema.createIndex('ix_tasks_image').on('tasks').column('image_id').execute();
      await db.schema.createIndex('ix_tasks_owner').on('tasks').columns(['owner', 'created_at']).execute();
    },
  },
  '0002_task_attempts': {
    async up(db: Kysely<any>) {
      // How many times a task was started; restart recovery resumes a task only a few times.
      await db.schema.alterTable('tasks').addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  '0003_image_reservations': {
    async up(db: Kysely<any>) {
      // Bytes an upload, stage or import is about to write, counted by the quotas while it runs, so
      // that writes running side by side cannot each take the whole remaining quota.
      await db.schema.alterTable('images').addColumn('reserved_bytes', 'bigint').execute();
    },
  },
  '0004_location_lifecycle': {
    async up(db: Kysely<any>) {
      // Locations are pending (a write under way), active, or pending_delete (data the scrubber still
      // has to remove); 'deleted' meant the last one.
      await db.updateTable('image_locations').set({ status: 'pending_delete' }).where('status', '=', 'deleted').execute();
      await db.schema.createIndex('ix_image_locations_status').on('image_locations').columns(['status', 'updated_at']).execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
