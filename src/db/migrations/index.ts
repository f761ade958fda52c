import {
  MysqlAdapter,
  PostgresAdapter,
  sql,
  type ColumnDefinitionBuilder,
  type CreateTableBuilder,
  type Kysely,
  type Migration,
  type MigrationProvider,
} from 'kysely';

// Ordered schema migrations; `gaze db sync` and the server's start apply the ones not yet applied.

/** Case- and trailing-space-sensitive, as strings are on SQLite and PostgreSQL (MariaDB's name for it). */
export const MYSQL_COLLATION = 'utf8mb4_nopad_bin';

const isMysql = (db: Kysely<any>) => db.getExecutor().adapter instanceof MysqlAdapter;

/**
 * A new table; on MySQL/MariaDB with the binary no-pad collation (strings compare as on the other engines,
 * whatever the server's default) and InnoDB (row locks and foreign keys).
 */
function createTable(db: Kysely<any>, name: string): CreateTableBuilder<string, never> {
  const table = db.schema.createTable(name) as CreateTableBuilder<string, never>;
  return isMysql(db) ? table.modifyEnd(sql.raw(`engine=InnoDB default charset=utf8mb4 collate=${MYSQL_COLLATION}`)) : table;
}

/** MySQL's and MariaDB's answers to a table, column or index made again. */
const ALREADY_MADE = new Set(['ER_TABLE_EXISTS_ERROR', 'ER_DUP_FIELDNAME', 'ER_DUP_KEYNAME']);

/**
 * One DDL statement of a migration. MySQL and MariaDB commit each one on its own (the server even
 * finishes an ALTER whose client died): a sync cut off midway leaves a migration made in part and not
 * recorded, and the next sync runs it again from its start. There a step already made is skipped; on
 * the other engines a migration is one transaction, whole or not at all.
 */
async function step(db: Kysely<any>, statement: { execute(): Promise<unknown> }): Promise<void> {
  try {
    await statement.execute();
  } catch (err) {
    if (!isMysql(db) || !ALREADY_MADE.has(String((err as { code?: unknown }).code))) throw err;
  }
}

const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<any>) {
      await step(
        db,
        createTable(db, 'images')
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
          .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0)),
      );
      await step(db, db.schema.createIndex('ix_images_owner').on('images').column('owner'));
      await step(db, db.schema.createIndex('ix_images_visibility').on('images').column('visibility'));
      await step(db, db.schema.createIndex('ix_images_created_at').on('images').columns(['created_at', 'id']));

      await step(
        db,
        createTable(db, 'image_properties')
          .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
          .addColumn('name', 'varchar(255)', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('pk_image_properties', ['image_id', 'name']),
      );
      // MySQL indexes a TEXT column by a prefix only; 255 characters tell values apart as well as needed.
      const byNameAndValue = db.schema.createIndex('ix_image_properties_name').on('image_properties');
      await step(db, isMysql(db) ? byNameAndValue.expression(sql`name, value(255)`) : byNameAndValue.columns(['name', 'value']));

      await step(
        db,
        createTable(db, 'image_tags')
          .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
          .addColumn('value', 'varchar(255)', (c) => c.notNull())
          .addPrimaryKeyConstraint('pk_image_tags', ['image_id', 'value']),
      );

      await step(
        db,
        createTable(db, 'image_members')
          .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
          .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
          .addColumn('member', 'varchar(255)', (c) => c.notNull())
          .addColumn('status', 'varchar(20)', (c) => c.notNull())
          .addColumn('created_at', 'varchar(26)', (c) => c.notNull())
          .addColumn('updated_at', 'varchar(26)', (c) => c.notNull())
          .addUniqueConstraint('uq_image_members', ['image_id', 'member']),
      );
      await step(db, db.schema.createIndex('ix_image_members_member').on('image_members').columns(['member', 'status']));

      await step(
        db,
        createTable(db, 'image_locations')
          .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
          .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
          .addColumn('position', 'integer', (c) => c.notNull())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('metadata', 'text', (c) => c.notNull())
          .addColumn('status', 'varchar(30)', (c) => c.notNull())
          .addColumn('created_at', 'varchar(26)', (c) => c.notNull())
          .addColumn('updated_at', 'varchar(26)', (c) => c.notNull()),
      );
      await step(db, db.schema.createIndex('ix_image_locations_image').on('image_locations').column('image_id'));

      await step(
        db,
        createTable(db, 'tasks')
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
          .addColumn('lease_expires_at', 'varchar(26)'),
      );
      await step(db, db.schema.createIndex('ix_tasks_image').on('tasks').column('image_id'));
      await step(db, db.schema.createIndex('ix_tasks_owner').on('tasks').columns(['owner', 'created_at']));
    },
  },
  '0002_task_attempts': {
    async up(db: Kysely<any>) {
      // How many times a task was started; restart recovery resumes a task only a few times.
      await step(
        db,
        db.schema.alterTable('tasks').addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0)),
      );
    },
  },
  '0003_image_reservations': {
    async up(db: Kysely<any>) {
      // Bytes an upload, stage or import is about to write, counted by the quotas while it runs, so
      // that writes running side by side cannot each take the whole remaining quota.
      await step(db, db.schema.alterTable('images').addColumn('reserved_bytes', 'bigint'));
    },
  },
  '0004_location_lifecycle': {
    async up(db: Kysely<any>) {
      // Locations are pending (a write under way), active, or pending_delete (data the scrubber still
      // has to remove); 'deleted' meant the last one.
      await db.updateTable('image_locations').set({ status: 'pending_delete' }).where('status', '=', 'deleted').execute();
      await step(db, db.schema.createIndex('ix_image_locations_status').on('image_locations').columns(['status', 'updated_at']));
    },
  },
  '0005_metadefs': {
    async up(db: Kysely<any>) {
      // Glance's metadata definitions tables. Integer ids that grow with each row: lists come back in
      // creation order, and `id` breaks ties as in Glance. Names are the keys the API uses.
      const serial = db.getExecutor().adapter instanceof PostgresAdapter;
      const withId = (table: string) => {
        const t = createTable(db, table);
        return serial ? t.addColumn('id', 'serial', (c) => c.primaryKey()) : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
      };
      const timestamps = <T extends CreateTableBuilder<string, never>>(t: T) =>
        t.addColumn('created_at', 'varchar(26)', (c) => c.notNull()).addColumn('updated_at', 'varchar(26)');
      const toNamespace = (c: ColumnDefinitionBuilder) => c.notNull().references('metadef_namespaces.id').onDelete('cascade');

      await step(
        db,
        timestamps(
          withId('metadef_namespaces')
            .addColumn('namespace', 'varchar(80)', (c) => c.notNull().unique())
            .addColumn('display_name', 'varchar(80)')
            .addColumn('description', 'text')
            .addColumn('visibility', 'varchar(32)')
            .addColumn('protected', 'integer')
            .addColumn('owner', 'varchar(255)', (c) => c.notNull()),
        ),
      );
      await step(db, db.schema.createIndex('ix_metadef_namespaces_owner').on('metadef_namespaces').column('owner'));

      await step(
        db,
        timestamps(
          withId('metadef_objects')
            .addColumn('namespace_id', 'integer', toNamespace)
            .addColumn('name', 'varchar(80)', (c) => c.notNull())
            .addColumn('description', 'text')
            .addColumn('required', 'text') // JSON array
            .addColumn('json_schema', 'text', (c) => c.notNull()) // JSON object: property definitions by name
            .addUniqueConstraint('uq_metadef_objects_namespace_id_name', ['namespace_id', 'name']),
        ),
      );

      await step(
        db,
        timestamps(
          withId('metadef_properties')
            .addColumn('namespace_id', 'integer', toNamespace)
            .addColumn('name', 'varchar(80)', (c) => c.notNull())
            .addColumn('json_schema', 'text', (c) => c.notNull())
            .addUniqueConstraint('uq_metadef_properties_namespace_id_name', ['namespace_id', 'name']),
        ),
      );

      await step(
        db,
        timestamps(
          withId('metadef_resource_types')
            .addColumn('name', 'varchar(80)', (c) => c.notNull().unique())
            .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0)),
        ),
      );

      await step(
        db,
        timestamps(
          createTable(db, 'metadef_namespace_resource_types')
            .addColumn('resource_type_id', 'integer', (c) => c.notNull().references('metadef_resource_types.id'))
            .addColumn('namespace_id', 'integer', toNamespace)
            .addColumn('properties_target', 'varchar(80)')
            .addColumn('prefix', 'varchar(80)')
            // The order associations were made in, which is the order Glance lists them in.
            .addColumn('position', 'integer', (c) => c.notNull().defaultTo(0))
            .addPrimaryKeyConstraint('pk_metadef_namespace_resource_types', ['resource_type_id', 'namespace_id']),
        ),
      );

      // Tag names are unique per namespace whatever their case (Glance says so in its message). MariaDB has
      // no index on an expression: there it is a generated column's.
      const tags = withId('metadef_tags')
        .addColumn('namespace_id', 'integer', toNamespace)
        .addColumn('name', 'varchar(80)', (c) => c.notNull());
      await step(db, timestamps(isMysql(db) ? tags.addColumn('name_key', 'varchar(80)', (c) => c.generatedAlwaysAs(sql`lower(name)`).stored()) : tags));
      await step(
        db,
        db.schema
          .createIndex('uq_metadef_tags_namespace_id_name')
          .on('metadef_tags')
          .unique()
          .expression(isMysql(db) ? sql`namespace_id, name_key` : sql`namespace_id, lower(name)`),
      );
    },
  },
  '0006_nodes': {
    async up(db: Kysely<any>) {
      // Each running node renews its row; an upload whose writer stopped renewing is taken back by the
      // other nodes, whatever host the writer ran on.
      await step(
        db,
        createTable(db, 'nodes')
          .addColumn('name', 'varchar(255)', (c) => c.primaryKey())
          .addColumn('alive_until', 'varchar(26)', (c) => c.notNull()),
      );
    },
  },
  '0007_images_status': {
    async up(db: Kysely<any>) {
      // Every node's recovery passes look up the images in a status (saving, uploading, importing)
      // every few seconds: a handful among all images, found without reading the whole table.
      await step(db, db.schema.createIndex('ix_images_status').on('images').columns(['status', 'deleted']));
    },
  },
  '0008_null_property_values': {
    async up(db: Kysely<any>) {
      // The image schema lets kernel_id and ramdisk_id be null, and Glance keeps that null as the value.
      const adapter = db.getExecutor().adapter;
      if (adapter instanceof PostgresAdapter) {
        await sql`alter table image_properties alter column value drop not null`.execute(db);
      } else if (adapter instanceof MysqlAdapter) {
        await sql`alter table image_properties modify value text null`.execute(db);
      } else {
        // SQLite cannot drop a NOT NULL: the table is made again, with its rows and index, in the
        // migration's transaction (connection.ts): a crash leaves the old table whole, and no other
        // process writes a property between the copy and the switch.
        await db.schema.dropTable('image_properties_new').ifExists().execute();
        await createTable(db, 'image_properties_new')
          .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
          .addColumn('name', 'varchar(255)', (c) => c.notNull())
          .addColumn('value', 'text')
          .addPrimaryKeyConstraint('pk_image_properties', ['image_id', 'name'])
          .execute();
        await sql`insert into image_properties_new (image_id, name, value) select image_id, name, value from image_properties`.execute(db);
        await db.schema.dropTable('image_properties').execute();
        await db.schema.alterTable('image_properties_new').renameTo('image_properties').execute();
        await db.schema.createIndex('ix_image_properties_name').on('image_properties').columns(['name', 'value']).execute();
      }
    },
  },
  '0009_property_positions': {
    async up(db: Kysely<any>) {
      // Glance lists an image's properties in the order they were first set; rows written before this
      // have 0 and keep the order by name.
      await step(
        db,
        db.schema.alterTable('image_properties').addColumn('position', 'integer', (c) => c.notNull().defaultTo(0)),
      );
    },
  },
  '0010_property_slots': {
    async up(db: Kysely<any>) {
      // Glance only marks a removed property's row deleted: set again, the property gets its row, and
      // its place in the list, back. Here a removed property leaves its place behind in this table.
      await step(
        db,
        createTable(db, 'image_property_slots')
          .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('images.id'))
          .addColumn('name', 'varchar(255)', (c) => c.notNull())
          .addColumn('position', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('pk_image_property_slots', ['image_id', 'name']),
      );
    },
  },
  '0011_staged_bytes': {
    async up(db: Kysely<any>) {
      // The bytes a stage or a download into staging holds against image_stage_total while the image
      // has no size yet, apart from reserved_bytes: an import writing to several stores holds those
      // stores' bytes, and its staged data must still count once.
      await step(db, db.schema.alterTable('images').addColumn('staged_bytes', 'bigint'));
    },
  },
  '0012_locations_by_image_and_status': {
    async up(db: Kysely<any>) {
      // An image's active locations, in order, for every image a list returns: without it SQLite reads
      // them through ix_image_locations_status, every active location of every image for each image,
      // which made a list filtered by status (all its rows sorted before the limit) grow with the square
      // of the images.
      await step(db, db.schema.createIndex('ix_image_locations_image_status').on('image_locations').columns(['image_id', 'status', 'position']));
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
