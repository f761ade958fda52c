// The image schema exactly as Glance serves it (spec images-api.md Appendix A), built from the
// configured disk and container formats.

const UUID_PATTERN = '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$';
const PROPERTY_KEYS_DOC = 'https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html';

export type JsonSchema = Record<string, unknown>;

/**
 * The custom properties of the schema-image.json Debian ships with Glance (and Glance's own tree), which
 * Glance merges into its image schema: Gaze's unless a schema-image.json beside the configuration files
 * says otherwise (schemas/custom-properties.ts).
 */
export const SHIPPED_CUSTOM_PROPERTIES: Record<string, JsonSchema> = {
  kernel_id: {
    type: ['null', 'string'],
    pattern: UUID_PATTERN,
    description: 'ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.',
  },
  ramdisk_id: {
    type: ['null', 'string'],
    pattern: UUID_PATTERN,
    description: 'ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.',
  },
  instance_uuid: {
    type: 'string',
    description:
      'Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)',
  },
  architecture: { description: `Operating system architecture as specified in ${PROPERTY_KEYS_DOC}`, type: 'string' },
  os_distro: { description: `Common name of operating system distribution as specified in ${PROPERTY_KEYS_DOC}`, type: 'string' },
  os_version: { description: 'Operating system version as specified by the distributor.', type: 'string' },
  description: { description: 'A human-readable string describing this image.', type: 'string' },
  cinder_encryption_key_id: {
    description:
      'Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image',
    type: 'string',
  },
  cinder_encryption_key_deletion_policy: {
    description:
      "States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service will take no action",
    type: 'string',
    enum: ['on_image_deletion', 'do_not_delete'],
  },
};

/**
 * `custom`: the schema-image.json properties, which Glance marks `is_base: false` after the base ones.
 * `listsStores`: whether the read-only `stores` is listed, as Glance always lists it. Debian's
 * python-glanceclient 4.1, given a token and an image URL but no auth URL, reads the schema it cached
 * for its options and then fails every command ("argument --stores: conflicting option string"),
 * against Glance too; its image-create-via-import --stores needs the property (it pops it from the
 * fields the schema names). So it is listed where several stores make --stores mean something.
 */
export function imageSchema(
  diskFormats: string[],
  containerFormats: string[],
  custom: Record<string, JsonSchema> = SHIPPED_CUSTOM_PROPERTIES,
  listsStores = true,
  /** [DEFAULT] allow_additional_image_properties: false makes Glance's strict schema (no other properties, no links). */
  additionalProperties = true,
): JsonSchema {
  return {
    name: 'image',
    properties: {
      id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
      name: { type: ['null', 'string'], description: 'Descriptive name for the image', maxLength: 255 },
      status: {
        type: 'string',
        readOnly: true,
        description: 'Status of the image',
        enum: ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'],
      },
      visibility: { type: 'string', description: 'Scope of image accessibility', enum: ['community', 'public', 'private', 'shared'] },
      protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
      os_hidden: { type: 'boolean', description: 'If true, image will not appear in default image list response.' },
      checksum: { type: ['null', 'string'], readOnly: true, description: 'md5 hash of image contents.', maxLength: 32 },
      os_hash_algo: { type: ['null', 'string'], readOnly: true, description: 'Algorithm to calculate the os_hash_value', maxLength: 64 },
      os_hash_value: {
        type: ['null', 'string'],
        readOnly: true,
        description: 'Hexdigest of the image contents using the algorithm specified by the os_hash_algo',
        maxLength: 128,
      },
      owner: { type: ['null', 'string'], description: 'Owner of the image', maxLength: 255 },
      size: { type: ['null', 'integer'], readOnly: true, description: 'Size of image file in bytes' },
      virtual_size: { type: ['null', 'integer'], readOnly: true, description: 'Virtual size of image in bytes' },
      container_format: { type: ['null', 'string'], description: 'Format of the container', enum: [null, ...containerFormats] },
      disk_format: { type: ['null', 'string'], description: 'Format of the disk', enum: [null, ...diskFormats] },
      created_at: { type: 'string', readOnly: true, description: 'Date and time of image registration' },
      updated_at: { type: 'string', readOnly: true, description: 'Date and time of the last image modification' },
      tags: { type: 'array', description: 'List of strings related to the image', items: { type: 'string', maxLength: 255 } },
      direct_url: { type: 'string', readOnly: true, description: 'URL to access the image file kept in external store' },
      min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
      min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
      self: { type: 'string', readOnly: true, description: 'An image self url' },
      file: { type: 'string', readOnly: true, description: 'An image file url' },
      ...(listsStores && {
        stores: {
          type: 'string',
          readOnly: true,
          description:
            'Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers.',
        },
      }),
      schema: { type: 'string', readOnly: true, description: 'An image schema url' },
      locations: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            url: { type: 'string', maxLength: 255 },
            metadata: { type: 'object' },
            validation_data: {
              description:
                "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.",
              type: 'object',
              writeOnly: true,
              additionalProperties: false,
              properties: {
                checksum: { type: 'string', minLength: 32, maxLength: 32 },
                os_hash_algo: { type: 'string', maxLength: 64 },
                os_hash_value: { type: 'string', maxLength: 128 },
              },
              required: ['os_hash_algo', 'os_hash_value'],
            },
          },
          required: ['url', 'metadata'],
        },
        description: 'A set of URLs to access the image file kept in external store',
      },
      ...withIsBase(custom),
    },
    ...(additionalProperties
      ? {
          additionalProperties: { type: 'string' },
          links: [
            { rel: 'self', href: '{self}' },
            { rel: 'enclosure', href: '{file}' },
            { rel: 'describedby', href: '{schema}' },
          ],
        }
      : { additionalProperties: false }),
  };
}

export function imagesSchema(image: JsonSchema): JsonSchema {
  return {
    name: 'images',
    properties: {
      // The image schema itself, as Glance's CollectionSchema nests it (its name, no type).
      images: {
        type: 'array',
        items: { name: image.name, properties: image.properties, additionalProperties: image.additionalProperties, links: image.links },
      },
      first: { type: 'string' },
      next: { type: 'string' },
      schema: { type: 'string' },
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

function withIsBase(custom: Record<string, JsonSchema>): Record<string, JsonSchema> {
  return Object.fromEntries(Object.entries(custom).map(([name, schema]) => [name, { ...schema, is_base: false }]));
}
