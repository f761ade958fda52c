import type { FastifyInstance, FastifyRequest } from 'fastify';
import { noContent, resource, locationOf } from '../server.ts';
import type { Api } from '../api.ts';
import { assertNoBody, readJson, readUnusedBody } from '../body.ts';
import { pagingLink, queryPairs, sendPage } from '../paging.ts';
import { truthy } from '../../services/metadef-contents.ts';
import { associationView, namespaceBase, namespaceLinks, objectFieldsView, objectView, propertiesView, propertyView, tagView } from '../metadef-views.ts';

// The metadata definitions API (/v2/metadefs/…), as Glance routes it.

// The path parameters of these routes (each route has the ones its pattern names).
type P = Readonly<Record<'namespace' | 'object' | 'property' | 'resourceType' | 'tag', string>>;
const params = (request: FastifyRequest) => request.params as P;
const NS = '/v2/metadefs/namespaces/:namespace';

export function metadefRoutes(app: FastifyInstance, api: Api): void {
  const { metadefNamespaces: namespaces, metadefContents: contents } = api;

  resource(app, '/v2/metadefs/namespaces', {
    async GET(request, reply) {
      const pairs = queryPairs(request);
      const { namespaces: found, hasMore } = await namespaces.list(request.ctx, pairs);
      const body: Record<string, unknown> = {
        namespaces: found.map(({ namespace, associations }) => ({
          ...namespaceBase(namespace),
          ...(associations.length ? { resource_type_associations: associations.map(associationView) } : {}),
          ...namespaceLinks(namespace.namespace),
        })),
      };
      if (hasMore) {
        // A page ending with a namespace named "" gets Glance's empty `next` (its falsy marker makes no
        // link), which ends a client's walk: a link without a marker would start it over.
        const last = found[found.length - 1]!.namespace.namespace;
        body.next = last === '' ? '' : pagingLink('/v2/metadefs/namespaces', pairs, last);
      }
      body.schema = '/v2/schemas/metadefs/namespaces';
      body.first = pagingLink('/v2/metadefs/namespaces', pairs);
      return sendPage(reply, body);
    },
    async POST(request, reply) {
      const { namespace, sections } = await namespaces.create(request.ctx, await readJson(request));
      const body: Record<string, unknown> = { ...namespaceBase(namespace) };
      if (sections.associations) body.resource_type_associations = sections.associations.map(associationView);
      if (sections.properties) body.properties = propertiesView(sections.properties);
      if (sections.objects) {
        body.objects = sections.objects.map((o) => objectFieldsView(o, o.given));
      }
      if (sections.tags) body.tags = sections.tags.map((name) => ({ name }));
      Object.assign(body, namespaceLinks(namespace.namespace));
      return reply
        .code(201)
        .header('location', locationOf(request, `/v2/metadefs/namespaces/${namespace.namespace}`))
        .send(body);
    },
  });

  resource(app, NS, {
    async GET(request, reply) {
      assertNoBody(request);
      const detail = await namespaces.show(request.ctx, params(request).namespace, queryPairs(request));
      const body: Record<string, unknown> = { ...namespaceBase(detail.namespace) };
      if (detail.associations.length) body.resource_type_associations = detail.associations.map(associationView);
      if (detail.properties.length) body.properties = propertiesView(detail.properties);
      if (detail.objects.length) body.objects = detail.objects.map((o) => objectView(detail.namespace.namespace, o));
      if (detail.tags.length) body.tags = detail.tags.map((name) => ({ name }));
      return reply.send({ ...body, ...namespaceLinks(detail.namespace.namespace) });
    },
    async PUT(request, reply) {
      const updated = await namespaces.update(request.ctx, params(request).namespace, await readJson(request));
      return reply.send({ ...namespaceBase(updated), ...namespaceLinks(updated.namespace) });
    },
    async DELETE(request, reply) {
      assertNoBody(request);
      await namespaces.delete(request.ctx, params(request).namespace);
      return noContent(reply);
    },
  });

  resource(app, `${NS}/objects`, {
    async GET(request, reply) {
      const { namespace } = params(request);
      const objects = await contents.objects(request.ctx, namespace, queryPairs(request));
      // Glance's objects list names its schema without the leading slash.
      return reply.send({ objects: objects.map((o) => objectView(namespace, o)), schema: 'v2/schemas/metadefs/objects' });
    },
    async POST(request, reply) {
      const { namespace } = params(request);
      const { object, given } = await contents.createObject(request.ctx, namespace, await readJson(request));
      return reply.code(201).send(objectView(namespace, object, given));
    },
    async DELETE(request, reply) {
      await readUnusedBody(request); // Glance's default deserializer reads it
      await namespaces.deleteContents(request.ctx, params(request).namespace, 'objects');
      return noContent(reply);
    },
  });

  resource(app, `${NS}/objects/:object`, {
    async GET(request, reply) {
      assertNoBody(request);
      const { namespace, object } = params(request);
      return reply.send(objectView(namespace, await contents.object(request.ctx, namespace, object)));
    },
    async PUT(request, reply) {
      const { namespace, object } = params(request);
      const updated = await contents.updateObject(request.ctx, namespace, object, await readJson(request));
      return reply.send(objectView(namespace, updated.object, updated.given));
    },
    async DELETE(request, reply) {
      assertNoBody(request);
      const { namespace, object } = params(request);
      await contents.deleteObject(request.ctx, namespace, object);
      return noContent(reply);
    },
  });

  resource(app, `${NS}/properties`, {
    async GET(request, reply) {
      assertNoBody(request);
      const properties = await contents.properties(request.ctx, params(request).namespace);
      return reply.send({ properties: Object.fromEntries(properties.map((p) => [p.name, propertyView(p.definition)])) });
    },
    async POST(request, reply) {
      const property = await contents.createProperty(request.ctx, params(request).namespace, await readJson(request));
      return reply.code(201).send(propertyView(property.definition, property.name));
    },
    async DELETE(request, reply) {
      await readUnusedBody(request); // Glance's default deserializer reads it
      await namespaces.deleteContents(request.ctx, params(request).namespace, 'properties');
      return noContent(reply);
    },
  });

  resource(app, `${NS}/properties/:property`, {
    async GET(request, reply) {
      const { namespace, property } = params(request);
      const resourceType = queryPairs(request)
        .filter(([k]) => k === 'resource_type')
        .map(([, v]) => v)
        .pop();
      const found = await contents.property(request.ctx, namespace, property, resourceType);
      return reply.send(propertyView(found.definition, found.name));
    },
    async PUT(request, reply) {
      const { namespace, property } = params(request);
      const updated = await contents.updateProperty(request.ctx, namespace, property, await readJson(request));
      return reply.send(propertyView(updated.definition, updated.name));
    },
    async DELETE(request, reply) {
      await readUnusedBody(request); // Glance's default deserializer reads it
      const { namespace, property } = params(request);
      await contents.deleteProperty(request.ctx, namespace, property);
      return noContent(reply);
    },
  });

  resource(app, `${NS}/tags`, {
    async GET(request, reply) {
      const tags = await contents.tags(request.ctx, params(request).namespace, queryPairs(request));
      return reply.send({ tags: tags.map((t) => ({ name: t.name })) });
    },
    async POST(request, reply) {
      const append = truthy(request.headers['x-openstack-append'] as string | undefined);
      const names = await contents.createTags(request.ctx, params(request).namespace, await readJson(request), append);
      return reply.code(201).send({ tags: names.map((name) => ({ name })) });
    },
    async DELETE(request, reply) {
      await readUnusedBody(request); // Glance's default deserializer reads it
      await namespaces.deleteContents(request.ctx, params(request).namespace, 'tags');
      return noContent(reply);
    },
  });

  resource(app, `${NS}/tags/:tag`, {
    async GET(request, reply) {
      assertNoBody(request);
      const { namespace, tag } = params(request);
      return reply.send(tagView(await contents.tag(request.ctx, namespace, tag)));
    },
    async POST(request, reply) {
      assertNoBody(request);
      const { namespace, tag } = params(request);
      return reply.code(201).send(tagView(await contents.createTag(request.ctx, namespace, tag)));
    },
    async PUT(request, reply) {
      const { namespace, tag } = params(request);
      return reply.send(tagView(await contents.updateTag(request.ctx, namespace, tag, await readJson(request))));
    },
    async DELETE(request, reply) {
      assertNoBody(request);
      const { namespace, tag } = params(request);
      await contents.deleteTag(request.ctx, namespace, tag);
      return noContent(reply);
    },
  });

  resource(app, '/v2/metadefs/resource_types', {
    async GET(request, reply) {
      assertNoBody(request);
      const types = await namespaces.resourceTypes(request.ctx);
      return reply.send({ resource_types: types.map((t) => associationView({ name: t.name, created_at: t.created_at, updated_at: t.updated_at })) });
    },
  });

  resource(app, `${NS}/resource_types`, {
    async GET(request, reply) {
      assertNoBody(request);
      const associations = await namespaces.associations(request.ctx, params(request).namespace);
      return reply.send({ resource_type_associations: associations.map(associationView) });
    },
    async POST(request, reply) {
      const created = await namespaces.associate(request.ctx, params(request).namespace, await readJson(request));
      return reply.code(201).send(associationView(created));
    },
  });

  resource(app, `${NS}/resource_types/:resourceType`, {
    async DELETE(request, reply) {
      assertNoBody(request);
      const { namespace, resourceType } = params(request);
      await namespaces.deassociate(request.ctx, namespace, resourceType);
      return noContent(reply);
    },
  });
}
