import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';

// `/openapi.json` and `/docs`, an interactive reference (Swagger UI) served from the
// swagger-ui-dist package itself: no CDN, so it works offline and behind strict firewalls.

// A Map, not an object: the name comes from the client, and every object answers to
// `constructor`, `__proto__` or `toString`.
const ASSETS = new Map([
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
]);

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>presently API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// A file of its own rather than an inline script, so the page runs under a strict CSP.
const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#docs', deepLinking: true });\n`;

const CSP =
  "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";

export function docsRoutes(document: object) {
  const assetsDir = path.dirname(
    createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'),
  );
  const json = JSON.stringify(document);
  return new Hono()
    .get('/openapi.json', (c) => c.body(json, 200, { 'Content-Type': 'application/json' }))
    .get('/docs', (c) => c.html(PAGE, 200, { 'Content-Security-Policy': CSP }))
    .get('/docs/init.js', (c) =>
      c.body(INIT, 200, { 'Content-Type': 'text/javascript; charset=utf-8' }),
    )
    .get('/docs/assets/:file', async (c) => {
      const file = c.req.param('file');
      const type = ASSETS.get(file);
      if (!type) return c.notFound();
      const body = await fs.readFile(path.join(assetsDir, file));
      return c.body(body, 200, {
        'Content-Type': type,
        'Cache-Control': 'public, max-age=86400',
      });
    });
}
