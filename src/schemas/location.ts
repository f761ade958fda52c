import type { JsonSchema } from './image.ts';

/** The body of POST /v2/images/{id}/locations, as Glance 2024.2 validates it (wrapped as `add_location`). */
export const LOCATION_API_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    add_location: {
      type: 'object',
      properties: {
        url: { type: 'string' },
        validation_data: {
          type: 'object',
          additionalProperties: false,
          properties: {
            os_hash_algo: { type: 'string', maxLength: 64, enum: ['sha1', 'sha256', 'sha512', 'md5'] },
            os_hash_value: { type: 'string', maxLength: 128 },
          },
        },
      },
      required: ['url'],
    },
  },
};
