import type { JsonSchema } from './image.ts';

// Member, task and metadata-definition schemas as Glance serves them.

const UUID_PATTERN = '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$';

export const memberSchema: JsonSchema = {
  name: 'member',
  properties: {
    member_id: { type: 'string', description: 'An identifier for the image member (tenantId)' },
    image_id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
    created_at: { type: 'string', description: 'Date and time of image member creation' },
    updated_at: { type: 'string', description: 'Date and time of last modification of image member' },
    status: { type: 'string', description: 'The status of this image member', enum: ['pending', 'accepted', 'rejected'] },
    schema: { readOnly: true, type: 'string' },
  },
};

export const membersSchema: JsonSchema = {
  name: 'members',
  properties: {
    members: { type: 'array', items: memberSchema },
    schema: { type: 'string' },
  },
  links: [{ rel: 'describedby', href: '{schema}' }],
};

const taskProperties: Record<string, JsonSchema> = {
  id: { description: 'An identifier for the task', pattern: UUID_PATTERN, type: 'string' },
  type: { description: 'The type of task represented by this content', enum: ['import', 'api_image_import'], type: 'string' },
  status: { description: 'The current status of this task', enum: ['pending', 'processing', 'success', 'failure'], type: 'string' },
  input: { description: 'The parameters required by task, JSON blob', type: ['null', 'object'] },
  result: { description: 'The result of current task, JSON blob', type: ['null', 'object'] },
  owner: { description: 'An identifier for the owner of this task', type: 'string' },
  message: { description: 'Human-readable informative message only included when appropriate (usually on failure)', type: 'string' },
  image_id: { description: 'Image associated with the task', type: 'string' },
  request_id: { description: 'Human-readable informative request-id', type: 'string' },
  user_id: { description: 'User associated with the task', type: 'string' },
  expires_at: { description: 'Datetime when this resource would be subject to removal', type: ['null', 'string'] },
  created_at: { description: 'Datetime when this resource was created', type: 'string' },
  updated_at: { description: 'Datetime when this resource was updated', type: 'string' },
  self: { readOnly: true, type: 'string' },
  schema: { readOnly: true, type: 'string' },
};

export const taskSchema: JsonSchema = { name: 'task', properties: taskProperties };

export const tasksSchema: JsonSchema = {
  name: 'tasks',
  properties: {
    tasks: {
      type: 'array',
      items: {
        name: 'task',
        properties: Object.fromEntries(Object.entries(taskProperties).filter(([k]) => !['input', 'result', 'message'].includes(k))),
      },
    },
    schema: { type: 'string' },
    first: { type: 'string' },
    next: { type: 'string' },
  },
  links: [{ rel: 'first', href: '{first}' }, { rel: 'next', href: '{next}' }, { rel: 'describedby', href: '{schema}' }],
};

// The glance CLI downloads these two at every start; the metadata-definitions API itself is not built yet.
const resourceTypeAssociation: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'Resource type names should be aligned with Heat resource types whenever possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html', maxLength: 80 },
    prefix: { type: 'string', description: 'Specifies the prefix to use for the given resource type. Any properties in the namespace should be prefixed with this prefix when being applied to the specified resource type. Must include prefix separator (e.g. a colon :).', maxLength: 80 },
    properties_target: { type: 'string', description: 'Some resource types allow more than one key / value pair per instance.  For example, Cinder allows user and image metadata on volumes. Only the image properties metadata is evaluated by Nova (scheduling or drivers). This property allows a namespace target to remove the ambiguity.', maxLength: 80 },
    created_at: { type: 'string', readOnly: true, description: 'Date and time of resource type association', format: 'date-time' },
    updated_at: { type: 'string', readOnly: true, description: 'Date and time of the last resource type association modification', format: 'date-time' },
  },
  required: ['name'],
  additionalProperties: false,
};

export const metadefResourceTypeSchema: JsonSchema = { name: 'resource_type_association', ...resourceTypeAssociation };

export const metadefNamespaceSchema: JsonSchema = {
  name: 'namespace',
  properties: {
    namespace: { type: 'string', description: 'The unique namespace text.', maxLength: 80 },
    display_name: { type: 'string', description: 'The user friendly name for the namespace. Used by UI if available.', maxLength: 80 },
    description: { type: 'string', description: 'Provides a user friendly description of the namespace.', maxLength: 500 },
    visibility: { type: 'string', description: 'Scope of namespace accessibility.', enum: ['public', 'private'] },
    protected: { type: 'boolean', description: 'If true, namespace will not be deletable.' },
    owner: { type: 'string', description: 'Owner of the namespace.', maxLength: 255 },
    created_at: { type: 'string', readOnly: true, description: 'Date and time of namespace creation', format: 'date-time' },
    updated_at: { type: 'string', readOnly: true, description: 'Date and time of the last namespace modification', format: 'date-time' },
    schema: { readOnly: true, type: 'string' },
    self: { readOnly: true, type: 'string' },
    resource_type_associations: { type: 'array', items: { type: 'object', properties: resourceTypeAssociation.properties } },
    properties: { type: 'object', additionalProperties: { type: 'object' } },
    objects: { type: 'array', items: { type: 'object' } },
    tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
  },
  required: ['namespace'],
  additionalProperties: false,
};
