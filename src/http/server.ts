import { giveUpUnreadAnswers } from './send-timeout.ts';
import { glanceAsciiJson, glanceJson } from './glance-json.ts';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteHandlerMethod } from 'fastify';
import { existsSync } from 'node:fs';
import { METHODS as httpMethods } from 'node:http';
import type { Authenticator, RequestContext } from '../auth/context.ts';
import { gazeError } from '../domain/errors.ts';
import { renderError, sendError, statusTitle } from './errors.ts';
import { readUnusedBody } from './body.ts';
import { checkHeadLimits, checkTransferCoding, MAX_HEAD_SIZE } from './request-limits.ts';
import { awaitingContinue, continueOnFirstRead } from './expect-continue.ts';
import type { Socket } from 'node:net';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { healthcheckBody } from './healthcheck.ts';
import { MULTIPLE_CHOICES, VERSION_ROOT, versionDocument, versionRouter, type VersionOptions } from './versions.ts';
import { headerSafeUrl, publicBase } from './public-base.ts';
import { answerConnect, answerParserError, headerTimeouts, ResourceTable } from './parser-errors.ts';
import { corsHooks, type CorsOptions } from './cors.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';

declare module 'fastify' {
  interface FastifyRequest {
    ctx: RequestContext;
    requestId: string;
    /** The request's Content-Type as the client sent it (taken out of fastify's headers: see below). */
    declaredContentType: string | undefined;
    /** Scheme, host and prefix the client reached the service at (publicBase). */
    publicBase: string;
    /** client_socket_timeout in ms: a JSON body that sends nothing this long is given up (0: never). */
    bodyIdleMs: number;
  }
}

const SUPPORTED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;
type Method = (typeof SUPPORTED_METHODS)[number];
/**
 * Every method Node's parser accepts is routed (CONNECT has its own server event): on a known path the
 * API's methods run, OPTIONS answers 200 with Allow, anything else 405 with Allow, as Glance's router
 * does; on an unknown path an unknown method is 501.
 */
const ROUTED_METHODS = httpMethods.filter((m) => m !== 'CONNECT');
export type Handlers = Partial<Record<Method | 'OPTIONS', RouteHandlerMethod>>;

export interface ServerOptions {
  authenticator: Authenticator;
  versions: VersionOptions;
  maxRequestIdLength: number;
  /** [DEFAULT] max_header_line: the longest header line read (0: no limit). */
  maxHeaderLine?: number;
  healthcheckDisableFile: string;
  /** True once the node drains (stopping): /healthcheck answers 503 while requests are still served. */
  draining?: () => boolean;
  logger: Logger;
  cors: CorsOptions;
  metrics?: Metrics;
  /** [DEFAULT] http_keepalive: false closes each connection after its answer, as Glance's server then does. */
  keepAlive?: boolean;
  /** [DEFAULT] tcp_keepidle: TCP keepalive on each client connection after this many idle seconds (0: none). */
  tcpKeepIdleSeconds?: number;
  /** [oslo_middleware] enable_proxy_headers_parsing: believe a proxy's Forwarded and X-Forwarded-* headers. */
  proxyHeaders?: boolean;
  /** [DEFAULT] client_socket_timeout in ms, for JSON bodies (uploads have their own watchdog); 0: never. */
  bodyIdleMs?: number;
}

/** The request id a client sent (X-OpenStack-Request-ID), if any. */
function givenRequestId(headers: IncomingHttpHeaders): string | undefined {
  const incoming = headers['x-openstack-request-id'];
  return Array.isArray(incoming) ? incoming[0] : incoming;
}

/** One line per answered request, like Glance's access log (fastify's default writes two). */
class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    // Who asked and from where, and how much was sent, as Glance's access line has them.
    const ctx = request.ctx as RequestContext | null;
    const length = reply.getHeader('content-length');
    const fields = {
      method: request.method,
      url: request.originalUrl,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
      remote: request.socket?.remoteAddress,
      user: ctx?.userId ?? undefined,
      project: ctx?.projectId ?? undefined,
      bytes: length === undefined ? undefined : Number(length),
    };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    else reply.log.info(fields, 'request completed');
  }
}

const UNAUTHENTICATED = new Set(['/', '/versions', '/healthcheck', MULTIPLE_CHOICES]);

export function requestBase(request: FastifyRequest): string {
  return request.publicBase;
}

/** The Location header of a resource created at `path` (under /v2): absolute, as Glance writes it. */
export function locationOf(request: FastifyRequest, path: string): string {
  return headerSafeUrl(`${request.publicBase}${path}`);
}

export function createServer(opts: ServerOptions): FastifyInstance {
  const routedUrl = versionRouter(opts.versions);
  // Filled by resource() once the app exists; read by the parser's error handler, which the app is made with.
  const resources = new ResourceTable();
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    logController: new AccessLog(),
    // The OpenStack request id is the request's id, so every line logged for it carries it (reqId).
    genReqId(req) {
      const given = givenRequestId(req.headers);
      if (!given || given.length > opts.maxRequestIdLength) return `req-${crypto.randomUUID()}`;
      return given.startsWith('req-') ? given : `req-${given}`;
    },
    exposeHeadRoutes: false,
    // Image uploads may take hours; the request must never time out on the server side.
    requestTimeout: 0,
    // A request without Host is served, as Glance's eventlet server serves it (Node would answer a bare 400).
    // Headers that do not arrive within client_socket_timeout (Node's 60 s at most) are a 408.
    http: { requireHostHeader: false, maxHeaderSize: MAX_HEAD_SIZE, ...headerTimeouts(opts.bodyIdleMs ?? 0) },
    bodyLimit: 8 << 20,
    // Tags and member ids travel in the path; Glance validates their length itself (400, not 414).
    routerOptions: { maxParamLength: 8192 },
    // A path the router cannot decode, or a parameter beyond maxParamLength (eventlet's request-line
    // limit, which answers 414): Glance's error shape, not fastify's own JSON.
    frameworkErrors(err, request, reply) {
      // Answered on the raw response: fastify runs no hooks for these.
      const gz = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? gazeError('URI_TOO_LONG') : gazeError('BAD_URL');
      const { contentType, body } = renderError(gz.status, gz.message, request.headers.accept);
      reply.hijack();
      reply.raw
        .writeHead(gz.status, statusTitle(gz.status), {
          'content-type': contentType,
          'content-length': Buffer.byteLength(body),
          'x-openstack-request-id': request.id,
        })
        .end(body);
      // The access line fastify writes for no hijacked answer.
      const fields = { method: request.method, url: request.raw.url, status: gz.status, remote: request.socket?.remoteAddress };
      request.log.info(fields, 'request completed');
    },
    // A request Node's parser refuses (a bad Content-Length, broken framing) still gets Glance's error shape.
    clientErrorHandler: (err, socket) => answerParserError(err, socket, (url: string) => resources.allowOn(routedUrl(url))),
    // Version negotiation: /v2.N/... maps to /v2/...; an unknown version (or none) gets the 300 document.
    rewriteUrl: (req) => routedUrl(req.url ?? '/', req.headers.accept),
  });

  // Every body is read by the route itself (JSON whatever the Content-Type, or a raw image stream).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  RESOURCES.set(app, resources);
  app.decorateRequest('ctx', null as unknown as RequestContext);
  app.decorateRequest('requestId', '');
  app.decorateRequest('declaredContentType', undefined);
  app.decorateRequest('publicBase', '');
  app.decorateRequest('bodyIdleMs', 0);
  // Glance reads JSON whatever the Content-Type says, and ignores it where no body is read; fastify would
  // answer 415 to one it cannot parse ("garbage") before any route runs. The routes that care about
  // the type (uploads, PATCH) read the declared one.
  app.addHook('onRequest', (request, _reply, done) => {
    const { localAddress, localPort } = request.raw.socket ?? {};
    const local = localAddress && localPort ? `${localAddress.includes(':') ? `[${localAddress}]` : localAddress}:${localPort}` : '127.0.0.1';
    request.publicBase = publicBase(request.raw.headers, opts.proxyHeaders ?? false, local);
    request.bodyIdleMs = opts.bodyIdleMs ?? 0;
    request.declaredContentType = request.raw.headers['content-type'];
    delete request.raw.headers['content-type'];
    // fastify answers 400 to a QUERY without a type (RFC 10008) before the router; Glance's router
    // answers it as any other method (the version documents, 405 elsewhere).
    if (request.method === 'QUERY') request.raw.headers['content-type'] = 'application/octet-stream';
    done();
  });

  // Requests pipelined on one connection run one after another, as Glance's server runs them: Node would
  // start the next (a DELETE after an upload's body, say) while the one before it is still at work.
  const lastOnConnection = new WeakMap<Socket, Promise<void>>();
  app.addHook('onRequest', async (request, reply) => {
    const socket = request.raw.socket;
    if (!socket) return;
    const before = lastOnConnection.get(socket);
    lastOnConnection.set(socket, new Promise<void>((resolve) => reply.raw.once('close', () => resolve())));
    if (before) await before;
  });

  // An Expect other than 100-continue is ignored, as by Glance's server: Node would answer a bare 417.
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => app.server.emit('request', req, res));
  continueOnFirstRead(app.server);
  app.server.on('connect', (req: IncomingMessage, socket: Socket) => answerConnect(req, socket, (url: string) => resources.allowOn(routedUrl(url))));
  // A client that sent its whole request and closed its side (shutdown, or close before reading) is
  // answered, as Glance's server answers it: Node would abort the requests under way and end the
  // connection, losing a stage whose body had all arrived. A body cut short is still a parse error.
  // (A property of Node's http.Server since its first versions that its types leave out.)
  (app.server as typeof app.server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;

  const keepIdle = opts.tcpKeepIdleSeconds ?? 0;
  // As Glance's server: a client that vanished without closing (a rebooted host) is found and let go.
  if (keepIdle > 0) app.server.on('connection', (socket: Socket) => socket.setKeepAlive(true, keepIdle * 1000));

  if (opts.keepAlive === false) {
    app.addHook('onRequest', (_request, reply, done) => {
      // Node then sends `Connection: close` and closes the socket after the answer, however it is written.
      reply.raw.shouldKeepAlive = false;
      done();
    });
  }

  for (const method of ROUTED_METHODS) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true });
  }

  const { metrics } = opts;
  if (metrics) {
    app.addHook('onResponse', async (request, reply) => {
      // The route's pattern, never the path itself: one series per resource, not per image.
      const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
      metrics.requests.inc(labels);
      metrics.requestSeconds.observe(labels, reply.elapsedTime / 1000);
    });
  }

  app.addHook('onRequest', async (request, reply) => {
    checkHeadLimits(request.raw, opts.maxHeaderLine ?? 16384);
    checkTransferCoding(request.raw);
    // OPTIONS is answered without credentials (as Glance does; a CORS preflight carries none).
    if (request.method === 'OPTIONS' || UNAUTHENTICATED.has(request.url.split('?')[0] ?? '')) return;
    // Every answer carries the request's id, a refusal of the client's own one too (a fresh one then).
    request.requestId = request.id;
    reply.header('x-openstack-request-id', request.requestId);
    const given = givenRequestId(request.headers);
    if (given && given.length > opts.maxRequestIdLength) throw gazeError('REQUEST_ID_TOO_LONG', opts.maxRequestIdLength);
    request.ctx = await opts.authenticator.authenticate(request.headers, request.requestId, { method: request.method, path: request.url.split('?')[0] ?? '' });
  });

  // Glance answers `application/json` without a charset parameter, and closes a connection whose
  // client still waits for 100 Continue (it will send the body nobody reads, or nothing).
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.getHeader('content-type') === 'application/json; charset=utf-8') reply.header('content-type', 'application/json');
    if (awaitingContinue(request.raw)) reply.raw.shouldKeepAlive = false;
    if (reply.statusCode === 204) reply.header('content-length', '0'); // as WebOb sends a 204 (an HTTP/1.0 client then keeps its connection)
    return payload;
  });

  corsHooks(app, opts.cors);

  // An answer given before the body was read (413, 400, 408, a refusal): the client may still be
  // sending, and most clients only read the answer once they have sent everything.
  app.addHook('onResponse', async (request) => drainUnreadBody(request.raw));
  giveUpUnreadAnswers(app, opts.bodyIdleMs ?? 0);

  app.setReplySerializer((payload) => glanceJson(payload));
  app.setErrorHandler((err, request, reply) => sendError(request, reply, err));
  app.setNotFoundHandler(answerNoRoute);

  const versions = (status: number) => async (request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(status)
      .header('content-type', 'application/json')
      .send(glanceAsciiJson(versionDocument(opts.versions, requestBase(request))));
  // Glance's version documents and its healthcheck answer whatever the method (OPTIONS on / an empty 200).
  resource(
    app,
    '/',
    everyMethod(versions(300), async (_request, reply) => reply.code(200).send()),
  );
  resource(app, MULTIPLE_CHOICES, everyMethod(versions(300)));
  resource(app, '/versions', everyMethod(versions(200), versions(200)));
  // Behind the authentication, as in Glance (its router answers after the auth middleware).
  resource(
    app,
    VERSION_ROOT,
    everyMethod(async (request, reply) =>
      reply.code(302).header('content-type', 'text/plain; charset=utf8').header('location', locationOf(request, '/v2/')).send(),
    ),
  );
  const healthcheck: RouteHandlerMethod = async (request, reply) => {
    const reason = existsSync(opts.healthcheckDisableFile) ? 'DISABLED BY FILE' : opts.draining?.() ? 'DRAINING' : 'OK';
    const healthy = reason === 'OK';
    if (request.method === 'HEAD') return reply.code(healthy ? 204 : 503).send();
    const { contentType, body } = healthcheckBody(reason, request.headers.accept);
    return reply
      .code(healthy ? 200 : 503)
      .header('content-type', contentType)
      .send(body);
  };
  resource(app, '/healthcheck', everyMethod(healthcheck, healthcheck));
  return app;
}

/** Each app's resources (see createServer). */
const RESOURCES = new WeakMap<FastifyInstance, ResourceTable>();

/** A path no route takes: OPTIONS 200, an unknown method 501, anything else Glance's bare 404. */
function answerNoRoute(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (request.method === 'OPTIONS') return reply.code(200).send();
  if (!(SUPPORTED_METHODS as readonly string[]).includes(request.method)) return sendError(request, reply, gazeError('NOT_IMPLEMENTED', request.method));
  return sendError(request, reply, gazeError('NOT_FOUND'));
}

/** An empty parameter (a trailing slash: `/images/x/tags/`) matches none of Glance's routes. */
function routable(params: unknown): boolean {
  return Object.values((params ?? {}) as Record<string, string>).every((value) => value !== '');
}

/**
 * The same handler for every method routed, HEAD included. OPTIONS stays the Allow answer unless
 * `options` answers it (Glance's middleware answering whatever the method).
 */
function everyMethod(handler: RouteHandlerMethod, options?: RouteHandlerMethod): Handlers {
  const handlers: Handlers = Object.fromEntries(ROUTED_METHODS.filter((m) => m !== 'OPTIONS').map((m) => [m, handler]));
  return options ? { ...handlers, OPTIONS: options } : handlers;
}

/** A 204 as Glance's serializers answer it: WebOb's default content type, on no body. */
export function noContent(reply: FastifyReply): FastifyReply {
  return reply.code(204).header('content-type', 'text/html; charset=UTF-8').send();
}

/**
 * One path, its methods: OPTIONS answers 200 with Allow, anything else 405 with Allow, as Glance's
 * router does (HEAD included, unless a handler is given for it). With `othersUnrouted`, another method is
 * answered as on an unknown path (404, or 501 for a method HTTP does not define), where Glance's router
 * has no 405 route for the path (/v2/info/usage, an image's tasks). Allow lists the handlers in their
 * order, which is Glance's router's.
 */
export function resource(app: FastifyInstance, url: string, handlers: Handlers, opts: { othersUnrouted?: boolean } = {}): void {
  const allow = Object.keys(handlers).join(', ');
  RESOURCES.get(app)?.add(url, opts.othersUnrouted ? null : allow);
  app.route({
    method: ROUTED_METHODS,
    url,
    handler(request, reply) {
      if (!routable(request.params)) return answerNoRoute(request, reply);
      if (request.method === 'OPTIONS' && !handlers.OPTIONS) return reply.code(200).header('allow', allow).send();
      // HEAD is no method of the API's resources: Glance's router answers it 405, as any other.
      const handler = handlers[request.method as keyof Handlers];
      if (!handler) {
        if (opts.othersUnrouted) return answerNoRoute(request, reply);
        return refuseMethod(request, allow);
      }
      return handler.call(this, request, reply);
    },
  });
}

/** 405, once the body is read: Glance's refusing controller reads it first, as any of its actions does. */
async function refuseMethod(request: FastifyRequest, allow: string): Promise<never> {
  await readUnusedBody(request);
  throw gazeError('METHOD_NOT_ALLOWED', request.method).withHeaders({ Allow: allow });
}

// How much of a body left unread is still read (and thrown away) after the answer, so that a client
// that sends everything before it reads (python-requests, openstacksdk) sees the answer and not a
// reset; beyond either bound the connection is closed.
const DRAIN_MAX_BYTES = 64 << 20;
const DRAIN_MAX_MS = 10_000;

function drainUnreadBody(req: IncomingMessage): void {
  if (req.complete || req.destroyed || req.socket.destroyed || awaitingContinue(req)) return;
  req.unpipe();
  let drained = 0;
  const stop = () => req.socket.destroy();
  const timer = setTimeout(stop, DRAIN_MAX_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_MAX_BYTES) stop();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.on('error', () => clearTimeout(timer));
  req.resume();
}
