import type { FastifyInstance } from 'fastify';
import { resource } from '../server.ts';
import type { Api } from '../api.ts';
import { assertNoBody, readJson } from '../body.ts';
import { memberView } from '../views.ts';

export function memberRoutes(app: FastifyInstance, api: Api): void {
  resource(app, '/v2/images/:id/members', {
    async GET(request, reply) {
      assertNoBody(request);
      const { id } = request.params as { id: string };
      const members = await api.members.list(request.ctx, id);
      return reply.send({ members: members.map(memberView), schema: '/v2/schemas/members' });
    },
    async POST(request, reply) {
      const { id } = request.params as { id: string };
      const row = await api.members.add(request.ctx, id, await readJson(request));
      return reply.code(200).send(memberView(row));
    },
  });

  resource(app, '/v2/images/:id/members/:member', {
    async GET(request, reply) {
      assertNoBody(request);
      const { id, member } = request.params as { id: string; member: string };
      return reply.send(memberView(await api.members.show(request.ctx, id, member)));
    },
    async PUT(request, reply) {
      const { id, member } = request.params as { id: string; member: string };
      const row = await api.members.update(request.ctx, id, member, await readJson(request));
      return reply.send(memberView(row));
    },
    async DELETE(request, reply) {
      assertNoBody(request);
      const { id, member } = request.params as { id: string; member: string };
      await api.members.remove(request.ctx, id, member);
      return reply.code(204).send();
    },
  });
}
