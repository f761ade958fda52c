import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

// Cross-origin requests as oslo.middleware's CORS filter answers them in front of Glance (its [cors]
// options, with the defaults Glance sets): what a browser needs for Horizon's direct upload mode. Off
// unless allowed_origin names an origin or `*`.

export interface CorsOptions {
  allowedOrigins: string[];
  allowCredentials: boolean;
  exposeHeaders: string[];
  maxAge: number;
  allowMethods: string[];
  allowHeaders: string[];
}

// Headers a browser may always send (the CORS "simple" headers oslo.middleware adds to allow_headers).
const SIMPLE_HEADERS = ['Accept', 'Accept-Language', 'Content-Type', 'Cache-Control', 'Content-Language', 'Expires', 'Last-Modified', 'Pragma'];

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function corsHooks(app: FastifyInstance, opts: CorsOptions): void {
  if (opts.allowedOrigins.length === 0) return;
  const permittedHeaders = new Set([...opts.allowHeaders, ...SIMPLE_HEADERS].map((h) => h.toUpperCase()));

  /** The origin to answer with (itself, or * when only * is listed), or null when it is not allowed. */
  const allowed = (origin: string): string | null => {
    if (opts.allowedOrigins.includes(origin)) return origin;
    return opts.allowedOrigins.includes('*') ? '*' : null;
  };

  /** A preflight (section 6.2 of the CORS spec): permits the method and headers the browser asks for. */
  const preflight = (request: FastifyRequest, reply: FastifyReply, origin: string): void => {
    const method = header(request, 'access-control-request-method');
    if (!method || !opts.allowMethods.includes(method)) return;
    const requested = (header(request, 'access-control-request-headers') ?? '')
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    if (requested.some((h) => !permittedHeaders.has(h.toUpperCase()))) return;
    reply.header('vary', 'Origin').header('access-control-allow-origin', origin);
    if (opts.allowCredentials) reply.header('access-control-allow-credentials', 'true');
    if (opts.maxAge) reply.header('access-control-max-age', String(opts.maxAge));
    reply.header('access-control-allow-methods', method);
    if (requested.length) reply.header('access-control-allow-headers', requested.join(','));
  };

  app.addHook('onSend', async (request, reply, payload) => {
    const requestOrigin = header(request, 'origin');
    if (!requestOrigin || reply.hasHeader('access-control-allow-origin')) return payload;
    const origin = allowed(requestOrigin);
    if (!origin) return payload;
    if (request.method === 'OPTIONS') {
      preflight(request, reply, origin);
      return payload;
    }
    const vary = reply.getHeader('vary');
    reply.header('vary', vary ? `${String(vary)},Origin` : 'Origin').header('access-control-allow-origin', origin);
    if (opts.allowCredentials) reply.header('access-control-allow-credentials', 'true');
    if (opts.exposeHeaders.length) reply.header('access-control-expose-headers', opts.exposeHeaders.join(','));
    return payload;
  });
}
