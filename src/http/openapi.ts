import { createRequire } from 'node:module';
import { OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/**
 * The OpenAPI 3.1 document of the REST routes. Each route file describes its routes next to
 * them, with the zod schemas its handlers validate with; a test checks that the document and
 * the app have the same routes.
 */
export function buildOpenApiDocument(routes: RouteConfig[]) {
  // An OpenAPIHono only to hold the registry and generate: the service's routes are plain Hono
  // routes that read bodies as JSON whatever their Content-Type, as the seed's clients expect.
  const holder = new OpenAPIHono();
  const registry = holder.openAPIRegistry;
  registry.registerComponent('securitySchemes', 'bearerKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'ACCESS_KEY (or ACCESS_KEY_SYSTEM where the system key is needed)',
  });
  registry.registerComponent('securitySchemes', 'queryKey', {
    type: 'apiKey',
    in: 'query',
    name: 'key',
    description: 'The same key as the `key` query parameter',
  });
  for (const route of routes) registry.registerPath(route);
  return holder.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'presently',
      version,
      description:
        'A durable user-presence service. The WebSocket protocol of GET /ws is described in docs/websocket.md.',
    },
    tags: [
      { name: 'presence', description: "The seed's routes: pings, lists, counts" },
      { name: 'history', description: 'Status now, history and reports' },
      { name: 'system', description: 'Operating the service' },
    ],
  });
}
