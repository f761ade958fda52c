import type { FastifyInstance } from 'fastify';
import { noContent, resource } from '../server.ts';
import type { Api } from '../api.ts';
import { assertNoBody, readUnusedBody } from '../body.ts';

/** The cache API of image API 2.14–2.16 (spec images-api.md, Glance's cached_images controller). */
export function cacheRoutes(app: FastifyInstance, api: Api): void {
  resource(app, '/v2/cache', {
    async GET(request, reply) {
      assertNoBody(request);
      return reply.send(await api.cache.state(request.ctx));
    },
    async DELETE(request, reply) {
      await readUnusedBody(request);
      await api.cache.clear(request.ctx, request.headers['x-image-cache-clear-target'] as string | undefined);
      return noContent(reply);
    },
  });

  resource(app, '/v2/cache/:id', {
    // DELETE first: Allow lists the methods in this order, as Glance's router does.
    async DELETE(request, reply) {
      await readUnusedBody(request);
      const { id } = request.params as { id: string };
      await api.cache.remove(request.ctx, id);
      return noContent(reply);
    },
    async PUT(request, reply) {
      await readUnusedBody(request);
      const { id } = request.params as { id: string };
      await api.cache.queue(request.ctx, id);
      return reply.code(202).header('content-type', 'text/html; charset=UTF-8').send('');
    },
  });
}
