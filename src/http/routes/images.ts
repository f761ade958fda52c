import type { FastifyInstance } from 'fastify';
import { noContent, resource, locationOf } from '../server.ts';
import type { Api } from '../api.ts';
import { assertNoBody, declaredMediaType, readJson, readJsonObject } from '../body.ts';
import { imageView } from '../views.ts';
import { gazeError, GazeError } from '../../domain/errors.ts';
import { forwardToStageHost } from '../../net/forward.ts';
import { ACCEPT_PATCH, PATCH_MEDIA_TYPES } from '../../domain/patch.ts';
import { pagingLink, queryPairs, sendPage } from '../paging.ts';

type IdParams = { Params: { id: string } };

export function imageRoutes(app: FastifyInstance, api: Api): void {
  resource(app, '/v2/images', {
    // Glance's router lets a body through here (and on the task list and usage): it is ignored.
    async GET(request, reply) {
      const pairs = queryPairs(request);
      const { images, hasMore } = await api.imageList.list(request.ctx, pairs);
      const body: Record<string, unknown> = {
        images: images.map((i) => imageView(i, request.ctx, api.view)),
        first: pagingLink('/v2/images', pairs),
        schema: '/v2/schemas/images',
      };
      if (hasMore) body.next = pagingLink('/v2/images', pairs, images[images.length - 1]!.id);
      return sendPage(reply, body);
    },
    async POST(request, reply) {
      const body = await readJsonObject(request);
      const image = await api.images.create(request.ctx, body);
      reply.code(201).header('location', locationOf(request, `/v2/images/${image.id}`));
      if (api.importMethods.length) reply.header('openstack-image-import-methods', api.importMethods.join(','));
      if (api.storeIds.length) reply.header('openstack-image-store-ids', api.storeIds.join(','));
      return reply.send(imageView(image, request.ctx, api.view));
    },
  });

  resource(app, '/v2/images/:id', {
    async GET(request, reply) {
      assertNoBody(request);
      const { id } = request.params as IdParams['Params'];
      return reply.send(imageView(await api.images.show(request.ctx, id), request.ctx, api.view));
    },
    async PATCH(request, reply) {
      const { id } = request.params as IdParams['Params'];
      const mediaType = declaredMediaType(request);
      // Own keys only: `constructor` or `__proto__` is no dialect.
      const dialect = Object.hasOwn(PATCH_MEDIA_TYPES, mediaType) ? PATCH_MEDIA_TYPES[mediaType as keyof typeof PATCH_MEDIA_TYPES] : undefined;
      if (!dialect) {
        throw gazeError('PATCH_MEDIA_TYPE', ACCEPT_PATCH).withHeaders({ 'Accept-Patch': ACCEPT_PATCH });
      }
      const body = await readJson(request);
      if (body === undefined) throw gazeError('BODY_EXPECTED');
      const image = await api.imageUpdates.update(request.ctx, id, body, dialect);
      return reply.send(imageView(image, request.ctx, api.view));
    },
    async DELETE(request, reply) {
      assertNoBody(request);
      const { id } = request.params as IdParams['Params'];
      const { forwardTo } = await api.images.delete(request.ctx, id, { staging: api.staging.place });
      if (forwardTo) {
        try {
          const forwarded = await forwardToStageHost(forwardTo, request, undefined);
          if (forwarded.requestId) reply.header('x-openstack-request-id', forwarded.requestId);
        } catch (err) {
          // The stage host failed (5xx or unreachable): delete here anyway; its staged data stays behind.
          if (!(err instanceof GazeError) || err.status < 500) throw err;
          if (await api.images.exists(id)) await api.images.delete(request.ctx, id, { staging: api.staging.place, local: true });
        }
      }
      return noContent(reply);
    },
  });

  for (const action of ['deactivate', 'reactivate'] as const) {
    resource(app, `/v2/images/:id/actions/${action}`, {
      async POST(request, reply) {
        assertNoBody(request);
        const { id } = request.params as IdParams['Params'];
        await api.images[action](request.ctx, id);
        return noContent(reply);
      },
    });
  }

  resource(app, '/v2/images/:id/tags/:tag', {
    async PUT(request, reply) {
      assertNoBody(request);
      const { id, tag } = request.params as { id: string; tag: string };
      await api.images.addTag(request.ctx, id, tag);
      return noContent(reply);
    },
    async DELETE(request, reply) {
      assertNoBody(request);
      const { id, tag } = request.params as { id: string; tag: string };
      await api.images.removeTag(request.ctx, id, tag);
      return noContent(reply);
    },
  });
}
