import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Context, Hono } from 'hono';
import { AppError } from '../../errors.js';
import { errorResponse, methodNotAllowed } from '../errors.js';

/** The built dashboard (`npm run build`), from src/http/routes or dist/http/routes alike. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../../dist/dashboard/', import.meta.url));

const TYPES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
} as const;
type FileName = keyof typeof TYPES;

/**
 * The page loads its own script and style, and talks to this service only (REST and socket).
 * `'self'` covers sockets to the page's own host in CSP 3 browsers; the service's host is also
 * named as ws: and wss: for those that read `'self'` as http(s) only. The host is the one the
 * page was asked from, taken only when it is a plain host name or address with a port: nothing
 * a Host header holds can reach the policy otherwise.
 */
function contentSecurityPolicy(host: string | undefined): string {
  const sockets = host && HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** A host name, IPv4 or bracketed IPv6 address, and an optional port (linear to match). */
const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** A year: what browsers take as "never changes" for a versioned address. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

interface Asset {
  body: Uint8Array;
  /** A hash of the content: the ETag, and the `?v=` of the address the page uses. */
  version: string;
}

/**
 * `GET /` (the dashboard page), `/dashboard/app.js` and `/dashboard/style.css`, without a key:
 * the page asks for one. Files are read once, on first use; a service started without a built
 * dashboard answers 503 until it is built. The page names its assets with their version, so
 * that they can be cached for good while the page itself is checked at every load.
 */
export function dashboardRoutes({ dir = DASHBOARD_DIR }: { dir?: string } = {}) {
  let loading: Promise<Map<FileName, Asset>> | undefined;
  const load = () => {
    loading ??= readAssets(dir).catch((error) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };

  const serve = (name: FileName) => async (c: Context) => {
    let assets: Map<FileName, Asset>;
    try {
      assets = await load();
    } catch {
      const message = 'the dashboard is not built: run `npm run build`';
      return errorResponse(c, new AppError('dashboard_unavailable', 503, message));
    }
    const asset = assets.get(name) as Asset;
    const etag = `"${asset.version}"`;
    const versioned = name !== 'index.html' && c.req.query('v') === asset.version;
    c.header('Content-Type', TYPES[name]);
    c.header('Cache-Control', versioned ? IMMUTABLE : 'no-cache');
    c.header('ETag', etag);
    c.header(
      'Content-Security-Policy',
      contentSecurityPolicy(c.req.header('Host') ?? new URL(c.req.url).host),
    );
    c.header('Vary', 'Host');
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    if (matches(c.req.header('If-None-Match'), etag)) return c.body(null, 304);
    return c.body(asset.body as Uint8Array<ArrayBuffer>, 200);
  };

  return new Hono()
    .get('/', serve('index.html'))
    .get('/dashboard/app.js', serve('app.js'))
    .get('/dashboard/style.css', serve('style.css'))
    .all('/', methodNotAllowed('GET, HEAD'))
    .all('/dashboard/app.js', methodNotAllowed('GET, HEAD'))
    .all('/dashboard/style.css', methodNotAllowed('GET, HEAD'));
}

async function readAssets(dir: string): Promise<Map<FileName, Asset>> {
  const read = async (name: FileName): Promise<Asset> => {
    const body = await fs.readFile(path.join(dir, name));
    return { body, version: versionOf(body) };
  };
  const [script, style, page] = await Promise.all([
    read('app.js'),
    read('style.css'),
    read('index.html'),
  ]);
  // The page names each asset with its version, so a new build is never hidden by a cache.
  const html = new TextDecoder()
    .decode(page.body)
    .replaceAll('"/dashboard/app.js"', `"/dashboard/app.js?v=${script.version}"`)
    .replaceAll('"/dashboard/style.css"', `"/dashboard/style.css?v=${style.version}"`);
  const body = new TextEncoder().encode(html);
  return new Map([
    ['app.js', script],
    ['style.css', style],
    ['index.html', { body, version: versionOf(body) }],
  ]);
}

const versionOf = (content: Uint8Array) =>
  createHash('sha256').update(content).digest('base64url').slice(0, 16);

/** If-None-Match: `*`, or a list of ETags, weak ones included (a proxy may have weakened ours). */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
