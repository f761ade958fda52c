import type { JsonSchema } from './image.ts';

// The metadata-definition schemas Glance serves at /v2/schemas/metadefs/*: their structure (names,
// types, limits, required fields) is Glance's, which clients validate against; the descriptions are
// this project's.

const TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string', null];
const timestamp = (what: string): JsonSchema => ({ type: 'string', readOnly: true, description: what, format: 'date-time' });

function definitions(stringArrayMinItems: boolean): Record<string, JsonSchema> {
  return {
    positiveInteger: { type: 'integer', minimum: 0 },
    positiveIntegerDefault0: { allOf: [{ $ref: '#/definitions/positiveInteger' }, { default: 0 }] },
    stringArray: { type: 'array', items: { type: 'string' }, ...(stringArrayMinItems ? { minItems: 1 } : {}), uniqueItems: true },
  };
}

/** The fields of one property definition. */
const propertyFields: Record<string, JsonSchema> = {
  name: { type: 'string', maxLength: 80 },
  title: { type: 'string' },
  description: { type: 'string' },
  operators: { type: 'array', items: { type: 'string' } },
  type: { type: 'string', enum: TYPES },
  required: { $ref: '#/definitions/stringArray' },
  minimum: { type: 'number' },
  maximum: { type: 'number' },
  maxLength: { $ref: '#/definitions/positiveInteger' },
  minLength: { $ref: '#/definitions/positiveIntegerDefault0' },
  pattern: { type: 'string', format: 'regex' },
  enum: { type: 'array' },
  readonly: { type: 'boolean' },
  default: {},
  items: { type: 'object', properties: { type: { type: 'string', enum: TYPES }, enum: { type: 'array' } } },
  maxItems: { $ref: '#/definitions/positiveInteger' },
  minItems: { $ref: '#/definitions/positiveIntegerDefault0' },
  uniqueItems: { type: 'boolean', default: false },
  additionalItems: { type: 'boolean' },
};

/** Property definitions keyed by name (inside namespaces and objects). */
const propertyMap: JsonSchema = { type: 'object', additionalProperties: { type: 'object', required: ['title', 'type'], properties: propertyFields } };

const withPropertyDefinitions = { ...definitions(false), property: propertyMap };

export const associationSchema: JsonSchema = {
  name: 'resource_type_association',
  properties: {
    name: { type: 'string', description: 'The resource type, named as Heat names it where it can (OS::Glance::Image, OS::Nova::Flavor…).', maxLength: 80 },
    prefix: {
      type: 'string',
      description: "Prefix of the namespace's properties when applied to this resource type, separator included (hw_, os:).",
      maxLength: 80,
    },
    properties_target: {
      type: 'string',
      description: "Which of the resource's key/value sets the properties belong to, where it has several (Cinder volumes: image).",
      maxLength: 80,
    },
    created_at: timestamp('When the association was made'),
    updated_at: timestamp('When the association last changed'),
  },
  additionalProperties: false,
  required: ['name'],
};

export const namespaceSchema: JsonSchema = {
  name: 'namespace',
  properties: {
    namespace: { type: 'string', description: 'The unique name of the namespace.', maxLength: 80 },
    display_name: { type: 'string', description: 'A name for people, shown by user interfaces.', maxLength: 80 },
    description: { type: 'string', description: 'What the namespace describes.', maxLength: 500 },
    visibility: { type: 'string', description: 'Who sees the namespace: everyone (public) or its owner (private).', enum: ['public', 'private'] },
    protected: { type: 'boolean', description: 'Whether the namespace and its contents are kept from deletion.' },
    owner: { type: 'string', description: 'The project that owns the namespace.', maxLength: 255 },
    created_at: timestamp('When the namespace was created'),
    updated_at: timestamp('When the namespace last changed'),
    schema: { readOnly: true, type: 'string' },
    self: { readOnly: true, type: 'string' },
    resource_type_associations: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, prefix: { type: 'string' }, properties_target: { type: 'string' } } },
    },
    properties: { $ref: '#/definitions/property' },
    objects: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          description: { type: 'string' },
          required: { $ref: '#/definitions/stringArray' },
          properties: { $ref: '#/definitions/property' },
        },
      },
    },
    tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
  },
  additionalProperties: false,
  definitions: withPropertyDefinitions,
  required: ['namespace'],
};

export const objectSchema: JsonSchema = {
  name: 'object',
  properties: {
    name: { type: 'string', maxLength: 80 },
    description: { type: 'string' },
    required: { $ref: '#/definitions/stringArray' },
    properties: { $ref: '#/definitions/property' },
    schema: { readOnly: true, type: 'string' },
    self: { readOnly: true, type: 'string' },
    created_at: timestamp('When the object was created'),
    updated_at: timestamp('When the object last changed'),
  },
  additionalProperties: false,
  definitions: withPropertyDefinitions,
  required: ['name'],
};

export const propertySchema: JsonSchema = {
  name: 'property',
  properties: propertyFields,
  additionalProperties: false,
  definitions: definitions(true),
  required: ['type', 'title', 'name'],
};

export const tagSchema: JsonSchema = {
  name: 'tag',
  properties: {
    name: { type: 'string', maxLength: 80 },
    created_at: timestamp('When the tag was created'),
    updated_at: timestamp('When the tag last changed'),
  },
  additionalProperties: false,
  required: ['name'],
};

/** The body of a batch tag create (validated, not served). */
export const tagsRequestSchema: JsonSchema = {
  name: 'tags',
  properties: { tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false } } },
  additionalProperties: false,
};

const LINKS = [
  { rel: 'first', href: '{first}' },
  { rel: 'next', href: '{next}' },
  { rel: 'describedby', href: '{schema}' },
];

/** Glance's CollectionSchema: the items without their definitions, which move to the top. */
function collection(name: string, item: JsonSchema): JsonSchema {
  const { definitions: defs, ...rest } = item;
  return {
    name,
    properties: { [name]: { type: 'array', items: rest }, first: { type: 'string' }, next: { type: 'string' }, schema: { type: 'string' } },
    links: LINKS,
    ...(defs ? { definitions: defs } : {}),
  };
}

export const metadefSchemas: Record<string, JsonSchema> = {
  'metadefs/namespace': namespaceSchema,
  'metadefs/namespaces': collection('namespaces', namespaceSchema),
  'metadefs/object': objectSchema,
  'metadefs/objects': collection('objects', objectSchema),
  'metadefs/property': propertySchema,
  'metadefs/properties': (() => {
    const { definitions: defs, required, ...rest } = propertySchema;
    return {
      name: 'properties',
      properties: {
        properties: { type: 'object', additionalProperties: { ...rest, required: (required as string[]).filter((r) => r !== 'name') } },
        first: { type: 'string' },
        next: { type: 'string' },
        schema: { type: 'string' },
      },
      links: LINKS,
      definitions: defs,
    };
  })(),
  'metadefs/tag': tagSchema,
  'metadefs/tags': collection('tags', tagSchema),
  'metadefs/resource_type': associationSchema,
  'metadefs/resource_types': collection('resource_type_associations', associationSchema),
};
