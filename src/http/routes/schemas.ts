import type { FastifyInstance } from 'fastify';
import { resource } from '../server.ts';
import type { Api } from '../api.ts';
import { assertNoBody } from '../body.ts';

export function schemaRoutes(app: FastifyInstance, api: Api): void {
  for (const [name, schema] of Object.entries(api.schemas)) {
    resource(app, `/v2/schemas/${name}`, {
      async GET(request, reply) {
        // Glance lets the task schemas through with a body; the others refuse one.
        if (!name.startsWith('task')) assertNoBody(request);
        return reply.send(schema);
      },
    });
  }
}
