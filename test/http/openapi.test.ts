import { Validator } from '@seriousme/openapi-schema-validator';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { App } from '../../src/http/app.js';
import { useTestDatabase } from '../helpers/database.js';
import { KEYS, request, testApp } from '../helpers/http.js';

// /openapi.json is generated from the routes' own zod schemas: it must be valid OpenAPI 3.1,
// describe exactly the routes the app has, and what it promises must be what the routes answer.

const database = useTestDatabase();
let app: App;
// biome-ignore lint/suspicious/noExplicitAny: the document is walked field by field
let document: any;

/** Routes that serve the documentation or the dashboard, not the API. */
const NOT_API = /^\/(openapi\.json|docs(\/.*)?|dashboard(\/.*)?)?$/;

beforeAll(async () => {
  app = testApp(database.db);
  const answer = await request(app, 'GET', '/openapi.json', { key: null });
  expect(answer.status).toBe(200);
  document = answer.body;
});

describe('/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(document.openapi).toBe('3.1.0');
    const result = await new Validator().validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('lists every route of the app, and only those', () => {
    const documented = Object.entries(document.paths as Record<string, object>).flatMap(
      ([path, operations]) =>
        Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const served = app.routes
      .filter((route) => route.method !== 'ALL' && !NOT_API.test(route.path))
      .map((route) => `${route.method} ${route.path.replaceAll(/:(\w+)/g, '{$1}')}`);
    expect(new Set(served)).toEqual(new Set(documented));
  });

  it('describes what the routes answer', async () => {
    await sql`select presently.clear_all()`.execute(database.db);
    const schemaOf = (path: string, method = 'get') =>
      document.paths[path][method].responses['200'].content['application/json'].schema;
    const checks: [string, string, object | undefined][] = [
      ['POST', '/users/ping', { id: 7, status: 'busy' }],
      ['GET', '/users/list/all', undefined],
      ['GET', '/users/list/all?limit=1', undefined],
      ['POST', '/users/status', { users: [7] }],
      ['GET', '/users/count', undefined],
      ['GET', '/users/7/status', undefined],
      ['GET', '/users/7/history', undefined],
      ['GET', '/reports/activity', undefined],
    ];
    for (const [method, path, body] of checks) {
      const answer = await request(app, method, path, { body });
      expect(answer.status, path).toBe(200);
      const template = Object.keys(document.paths).find((p) =>
        new RegExp(`^${p.replaceAll(/\{\w+\}/g, '[^/]+')}$`).test(path.split('?')[0] ?? ''),
      );
      expect(template, path).toBeDefined();
      expect(
        matches(answer.body, schemaOf(template as string, method.toLowerCase()), document),
      ).toBe(true);
    }
  });

  it('describes each input in the words of its rule, with examples', () => {
    const ID =
      'The user: a string of 1 to 128 characters, or an integer (1 and "1" are the same user)';
    const ID_TEXT =
      'The user id (URL-encoded), 1 to 128 characters; no control, format or separator characters, not only blanks';
    const SESSION =
      'The session (device) pinging, 1 to 128 characters; absent or "default": the default session';
    const TIMEOUT =
      'Seconds (1 to 86400, fractions allowed) after which this session lapses without a new ping; absent: AWAY_TIMEOUT_SECONDS';
    const bodyOf = (path: string) =>
      document.paths[path].post.requestBody.content['application/json'].schema;
    const parameter = (path: string, method: string, name: string) =>
      document.paths[path][method].parameters.find((p: { name: string }) => p.name === name);
    const ping = {
      type: 'object',
      properties: {
        id: expect.objectContaining({ description: ID, examples: ['alice', 42] }),
        status: { type: 'string', enum: ['available', 'busy'] },
        session: expect.objectContaining({ description: SESSION, examples: ['phone'] }),
        timeout: expect.objectContaining({ description: TIMEOUT }),
      },
      required: ['id', 'status'],
    };
    expect(bodyOf('/users/ping')).toMatchObject(ping);
    expect(bodyOf('/users/pings')).toMatchObject({
      description: "1 to 1000 pings, each as POST /users/ping's body, stored in order",
      properties: { pings: { type: 'array', minItems: 1, maxItems: 1000, items: ping } },
      required: ['pings'],
    });
    expect(bodyOf('/users/status')).toMatchObject({
      description: "1 to 1000 ids, each as a ping's id",
      properties: {
        users: { type: 'array', minItems: 1, maxItems: 1000, items: { description: ID } },
      },
      required: ['users'],
    });
    expect(parameter('/users/{id}/status', 'get', 'id').schema).toMatchObject({
      description: ID_TEXT,
      examples: ['alice', '42'],
    });
    expect(parameter('/users/{id}/sessions/{session}', 'delete', 'session').schema).toMatchObject({
      description: SESSION,
    });
    expect(parameter('/users/list/{status}', 'get', 'status').schema).toMatchObject({
      enum: ['available', 'busy', 'away', 'all'],
      description: 'Which users: those with this status, or all',
    });
    expect(parameter('/users/list/{status}', 'get', 'prefix').schema).toMatchObject({
      description: 'Only users whose id starts with this (1 to 128 characters)',
    });
  });

  it('needs no key, and lists the keys each route takes', async () => {
    expect(document.components.securitySchemes).toMatchObject({
      bearerKey: { type: 'http', scheme: 'bearer' },
      queryKey: { type: 'apiKey', in: 'query', name: 'key' },
    });
    expect(document.paths['/users/ping'].post.security).toEqual([
      { bearerKey: [] },
      { queryKey: [] },
    ]);
    expect((await request(app, 'GET', '/openapi.json', { key: KEYS.access })).status).toBe(200);
  });
});

describe('/docs', () => {
  it('serves the interactive reference and its assets from the service itself', async () => {
    const page = await app.request('/docs');
    expect(page.status).toBe(200);
    const html = await page.text();
    for (const asset of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      const url = asset[1] as string;
      expect(url.startsWith('/')).toBe(true);
      const answer = await app.request(url);
      expect(answer.status, url).toBe(200);
      expect(answer.headers.get('content-type'), url).toMatch(/text\/(css|javascript)/);
    }
    expect((await app.request('/docs/assets/package.json')).status).toBe(404);
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])(
    'answers 404 for the asset %j, a name every plain object has',
    async (name) => {
      const answer = await request(app, 'GET', `/docs/assets/${name}`, { key: null });
      expect(answer.status).toBe(404);
      expect(answer.body.error.code).toBe('not_found');
    },
  );
});

/** A small JSON Schema check, enough for the schemas zod-to-openapi writes here. */
// biome-ignore lint/suspicious/noExplicitAny: JSON Schema is walked generically
function matches(value: unknown, schema: any, doc: any): boolean {
  if (schema.$ref) return matches(value, resolve(schema.$ref, doc), doc);
  if (schema.anyOf) return schema.anyOf.some((s: object) => matches(value, s, doc));
  if (schema.enum) return schema.enum.includes(value);
  if (schema.const !== undefined) return value === schema.const;
  const types: string[] = [schema.type].flat().filter(Boolean);
  const typeOf = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  const typeOk =
    types.length === 0 ||
    types.some((t) => t === typeOf || (t === 'integer' && Number.isInteger(value)));
  if (!typeOk) return false;
  if (typeOf === 'array') return (value as unknown[]).every((v) => matches(v, schema.items, doc));
  if (typeOf === 'object' && schema.properties) {
    const object = value as Record<string, unknown>;
    const required: string[] = schema.required ?? [];
    return (
      required.every((key) => key in object) &&
      Object.entries(object).every(
        ([key, v]) =>
          schema.properties[key] !== undefined && matches(v, schema.properties[key], doc),
      )
    );
  }
  return true;
}

// biome-ignore lint/suspicious/noExplicitAny: see above
function resolve(ref: string, doc: any): z.core.JSONSchema.BaseSchema {
  return ref
    .replace(/^#\//, '')
    .split('/')
    .reduce((node, key) => node[key], doc);
}
