import type { FastifyInstance } from 'fastify';
import { noContent, resource } from '../server.ts';
import type { Api } from '../api.ts';
import { assertNoBody, readUnusedBody } from '../body.ts';
import { gazeError } from '../../domain/errors.ts';
import { sendAsciiJson } from '../glance-json.ts';

/** Discovery (import methods, stores, usage: spec import.md §1) and removing data from one store. */
export function infoRoutes(app: FastifyInstance, api: Api): void {
  resource(app, '/v2/info/import', {
    async GET(request, reply) {
      assertNoBody(request);
      return sendAsciiJson(reply, { 'import-methods': { description: 'Import methods available.', type: 'array', value: api.importMethods } });
    },
  });

  resource(app, '/v2/info/stores', {
    async GET(request, reply) {
      assertNoBody(request);
      if (!api.storeInfo.multistore) throw gazeError('MULTISTORE_UNSUPPORTED');
      return sendAsciiJson(reply, { stores: api.storeInfo.list(false) });
    },
  });

  resource(app, '/v2/info/stores/detail', {
    async GET(request, reply) {
      assertNoBody(request);
      if (!api.storeInfo.multistore) throw gazeError('MULTISTORE_UNSUPPORTED');
      api.storeInfo.authorizeDetail(request.ctx);
      return sendAsciiJson(reply, { stores: api.storeInfo.list(true) });
    },
  });

  resource(app, '/v2/stores/:store/:id', {
    async DELETE(request, reply) {
      assertNoBody(request);
      const { store, id } = request.params as { store: string; id: string };
      await api.storeInfo.deleteFromStore(request.ctx, store, id);
      return noContent(reply);
    },
  });

  resource(
    app,
    '/v2/info/usage',
    {
      async GET(request, reply) {
        await readUnusedBody(request);
        // Empty without unified limits, as Glance answers; Gaze's [project_limits] count as unified limits.
        return reply.send({ usage: await api.quotas.report(request.ctx.projectId) });
      },
    },
    { othersUnrouted: true },
  );
}
