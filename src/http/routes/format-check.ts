import type { FastifyInstance } from 'fastify';
import { resource } from '../server.ts';
import type { Api } from '../api.ts';
import { gazeError } from '../../domain/errors.ts';
import { assertOctetStream } from '../body.ts';
import { watchUpload } from '../upload-watchdog.ts';

/** Where Gaze's own API extensions live: a prefix Glance does not use, so no client confuses them. */
export const EXTENSION_PREFIX = '/v2/x-gaze';

/** The dry-run format check: what the service would detect for some bytes, before an image exists. */
export function formatCheckRoutes(app: FastifyInstance, api: Api): void {
  resource(app, `${EXTENSION_PREFIX}/format-check`, {
    async POST(request, reply) {
      assertOctetStream(request);
      const query = request.query as Record<string, string | string[] | undefined>;
      if (Array.isArray(query.disk_format)) throw gazeError('BAD_REQUEST', 'disk_format may be given only once.');
      const diskFormat = typeof query.disk_format === 'string' && query.disk_format !== '' ? query.disk_format : null;
      const body = watchUpload(request.raw, reply.raw, api.uploadWatchdog);
      return reply.send(await api.formatCheck.check(request.ctx, body, diskFormat));
    },
  });
}
