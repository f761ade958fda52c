import type { FastifyInstance } from 'fastify';
import { noContent, resource } from '../server.ts';
import type { Api } from '../api.ts';
import { assertNoBody, assertOctetStream, readJson } from '../body.ts';
import { taskRawView } from '../task-views.ts';
import { forwardToStageHost } from '../../net/forward.ts';
import { watchUpload } from '../upload-watchdog.ts';
import { contentLength } from './image-data.ts';

export function importRoutes(app: FastifyInstance, api: Api): void {
  resource(app, '/v2/images/:id/stage', {
    async PUT(request, reply) {
      const { id } = request.params as { id: string };
      api.staging.assertAvailable();
      assertOctetStream(request);
      const body = watchUpload(request.raw, reply.raw, api.uploadWatchdog);
      await api.staging.stage(request.ctx, id, body, contentLength(request.headers['content-length']));
      return noContent(reply);
    },
  });

  resource(app, '/v2/images/:id/import', {
    async POST(request, reply) {
      const { id } = request.params as { id: string };
      const body = await readJson(request);
      const { forwardTo } = await api.imports.start(request.ctx, id, body, request.headers['x-image-meta-store'] as string | undefined);
      if (forwardTo) {
        const forwarded = await forwardToStageHost(forwardTo, request, body);
        if (forwarded.requestId) reply.header('x-openstack-request-id', forwarded.requestId);
      }
      // Glance answers 202 with an empty body; clients poll the image (and its tasks).
      return reply.code(202).header('content-type', 'text/html; charset=UTF-8').send('');
    },
    // Gaze's extension: stop the running import of this image (the image goes back to where it was).
    async DELETE(request, reply) {
      assertNoBody(request);
      const { id } = request.params as { id: string };
      await api.imports.cancel(request.ctx, id);
      return reply.code(202).header('content-type', 'text/html; charset=UTF-8').send('');
    },
  });

  // The locations API (2.17): services register data they wrote; 202 and an empty body, as import.
  resource(app, '/v2/images/:id/locations', {
    async POST(request, reply) {
      const { id } = request.params as { id: string };
      await api.locations.add(request.ctx, id, await readJson(request));
      return reply.code(202).header('content-type', 'text/html; charset=UTF-8').send('');
    },
    async GET(request, reply) {
      const { id } = request.params as { id: string };
      return reply.send(await api.locations.list(request.ctx, id));
    },
  });

  resource(
    app,
    '/v2/images/:id/tasks',
    {
      async GET(request, reply) {
        assertNoBody(request);
        const { id } = request.params as { id: string };
        const tasks = await api.tasks.forImage(request.ctx, id);
        return reply.send({ tasks: tasks.map(taskRawView) });
      },
    },
    { othersUnrouted: true },
  );
}
