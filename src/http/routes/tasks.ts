import type { FastifyInstance } from 'fastify';
import { resource, locationOf } from '../server.ts';
import type { Api } from '../api.ts';
import { readJson, readUnusedBody } from '../body.ts';
import { taskStubView, taskView } from '../task-views.ts';
import { pagingLink, queryPairs, sendPage } from '../paging.ts';

/** The legacy tasks API (admin-only by default policy). */
export function taskRoutes(app: FastifyInstance, api: Api): void {
  resource(app, '/v2/tasks', {
    async GET(request, reply) {
      const pairs = queryPairs(request);
      const { tasks, hasMore } = await api.tasks.list(request.ctx, pairs, api.limits);
      const body: Record<string, unknown> = { tasks: tasks.map(taskStubView), first: pagingLink('/v2/tasks', pairs), schema: '/v2/schemas/tasks' };
      if (hasMore) body.next = pagingLink('/v2/tasks', pairs, tasks[tasks.length - 1]!.id);
      return sendPage(reply, body);
    },
    async POST(request, reply) {
      const task = await api.tasks.create(request.ctx, () => readJson(request));
      return reply
        .code(201)
        .header('location', locationOf(request, `/v2/tasks/${task.id}`))
        .send(taskView(task));
    },
  });

  resource(app, '/v2/tasks/:id', {
    async GET(request, reply) {
      await readUnusedBody(request);
      const { id } = request.params as { id: string };
      return reply.send(taskView(await api.tasks.show(request.ctx, id)));
    },
    async DELETE(request) {
      await readUnusedBody(request);
      api.tasks.refuseDelete(request.ctx);
    },
  });
}
