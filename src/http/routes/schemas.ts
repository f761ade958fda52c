import type { FastifyInstance } from 'fastify';
import { resource } from '../server.ts';
import type { Api } from '../api.ts';
import { assertNoBody, readUnusedBody } from '../body.ts';
import { sendAsciiJson } from '../glance-json.ts';

export function schemaRoutes(app: FastifyInstance, api: Api): void {
  for (const [name, schema] of Object.entries(api.schemas)) {
    resource(app, `/v2/schemas/${name}`, {
      async GET(request, reply) {
        // Glance refuses a body on every schema but the task ones, whose default deserializer reads it.
        if (name.startsWith('task')) await readUnusedBody(request);
        else assertNoBody(request);
        return sendAsciiJson(reply, schema);
      },
    });
  }
}
