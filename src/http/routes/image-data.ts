import type { FastifyInstance } from 'fastify';
import { noContent, resource } from '../server.ts';
import type { Api } from '../api.ts';
import { assertNoBody, assertOctetStream } from '../body.ts';
import { watchUpload } from '../upload-watchdog.ts';

export function imageDataRoutes(app: FastifyInstance, api: Api): void {
  resource(app, '/v2/images/:id/file', {
    // GET first: Allow lists the methods in this order, as Glance's router does.
    async GET(request, reply) {
      assertNoBody(request);
      const { id } = request.params as { id: string };
      const {
        image,
        stream,
        range: served,
        delivered,
      } = await api.imageData.download(request.ctx, id, {
        range: request.headers.range,
        contentRange: request.headers['content-range'],
      });
      if (!stream) return reply.code(204).send(); // WebOb's HTTPNoContent: no content type
      reply.header('content-type', 'application/octet-stream');
      if (image.checksum) reply.header('content-md5', image.checksum);
      if (served) {
        reply
          .code(206)
          .header('content-range', `bytes ${served.start}-${served.end}/${image.size}`)
          .header('content-length', served.end - served.start + 1);
      } else {
        reply.code(200).header('content-length', image.size!);
      }
      // Only a body that went out whole counts (a client that hung up early is not told of).
      if (delivered) reply.raw.once('finish', delivered);
      return reply.send(stream);
    },
    async PUT(request, reply) {
      const { id } = request.params as { id: string };
      assertOctetStream(request);
      const store = request.headers['x-image-meta-store'] as string | undefined;
      const body = watchUpload(request.raw, reply.raw, api.uploadWatchdog);
      await api.imageData.upload(request.ctx, id, body, store, contentLength(request.headers['content-length']));
      return noContent(reply);
    },
  });
}

/** A declared Content-Length, as a size hint for the store (the stream itself is still counted). */
export function contentLength(header: string | undefined): number | undefined {
  return header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
}
