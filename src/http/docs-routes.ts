import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Router, type RequestHandler } from 'express';
import swaggerUi from 'swagger-ui-express';
import { parse } from 'yaml';
import { OPENAPI_PATH } from '../openapi-spec';
import type { PublicRoute } from './operation';

/** The contract and its page: served without a credential, never audited (openapi.yaml, `security: []`). */
export const DOCS_ROUTES: readonly PublicRoute[] = [
  { method: 'GET', path: '/openapi.yaml' },
  { method: 'GET', path: '/openapi.json' },
  { method: 'GET', path: '/docs' },
  { method: 'GET', path: '/docs/' },
  { method: 'GET', path: '/docs/{file}' },
];

/**
 * The files the page loads: swagger-ui-dist's, from node_modules, and swagger-ui-express's
 * generated start script. Nothing else of the package is served: its own index.html would load
 * the Petstore example from the Internet. openapi.yaml lists the same names (`/docs/{file}`).
 */
export const DOCS_FILES: readonly string[] = [
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
  'swagger-ui-init.js',
  'favicon-32x32.png',
  'favicon-16x16.png',
];

/**
 * Everything comes from this service: the renderer's scripts are files (no inline script), its
 * styles partly inline (swagger-ui-express's page and the renderer's own), its icons data: URIs.
 * No request leaves for another origin, and the page cannot be framed.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The renderer's files change only with the package: a day in caches, then revalidated (ETag). */
const ASSET_CACHE = 'public, max-age=86400';
/** The page, its start script and the contract change with the service: always revalidated. */
const REVALIDATE = 'no-cache';

const SWAGGER_OPTIONS = {
  // Relative to /docs/, so that the page works behind a proxy that adds a path prefix too.
  url: '../openapi.yaml',
  // "Try it out" cannot sign a request (SDK-HMAC) and an X-Auth-Token in a page is a secret in a
  // browser: the page describes the API, clients call it.
  supportedSubmitMethods: [],
  // The default sends the contract's address to validator.swagger.io for a badge: nothing leaves.
  validatorUrl: null,
  displayOperationId: true,
};

interface ContractFile {
  readonly text: string;
  readonly contentType: string;
  readonly etag: string;
}

function contractFile(text: string, contentType: string): ContractFile {
  return { text, contentType, etag: `"${createHash('sha256').update(text).digest('base64url')}"` };
}

/**
 * GET /openapi.yaml (the file as it is), /openapi.json (the same document as JSON) and the page
 * that renders it, /docs/ (swagger-ui, served from node_modules; /docs redirects there, for the
 * page's relative links). Mounted beside the health probes: before the access log, authentication
 * and the contract validator, so reading the contract costs no credential, audit record or log line.
 */
export function mountDocsRoutes(app: Router): void {
  const yamlText = readFileSync(OPENAPI_PATH, 'utf8');
  const yaml = contractFile(yamlText, 'application/yaml; charset=utf-8');
  const json = contractFile(JSON.stringify(parse(yamlText)), 'application/json; charset=utf-8');
  const serveContract = (file: ContractFile): RequestHandler => (_req, res) => {
    // With an ETag set, res.send answers a matching If-None-Match with 304.
    res.set({ 'Content-Type': file.contentType, 'Cache-Control': REVALIDATE, ETag: file.etag, 'X-Content-Type-Options': 'nosniff' });
    res.send(file.text);
  };
  app.get('/openapi.yaml', serveContract(yaml));
  app.get('/openapi.json', serveContract(json));

  const uiOptions = { swaggerOptions: SWAGGER_OPTIONS, swaggerUrl: SWAGGER_OPTIONS.url, customSiteTitle: 'HSM-backed KMS API' };
  // serveFiles, not `serve`: its start script is this app's own, not a module-wide one.
  const files = swaggerUi.serveFiles(undefined, uiOptions);
  const page = swaggerUi.setup(undefined, uiOptions);
  const headers = (cacheControl: string): RequestHandler => (_req, res, next) => {
    res.set({ 'Cache-Control': cacheControl, 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'X-Content-Type-Options': 'nosniff' });
    next();
  };
  app.get('/docs', headers(REVALIDATE), (_req, res) => res.redirect(301, 'docs/'));
  app.get('/docs/', headers(REVALIDATE), page);
  // Mounted at /docs, where swagger-ui-express's handlers expect to be: they read the file's name from the URL.
  const assets = Router({ caseSensitive: true, strict: true });
  assets.get('/:file', (req, res, next) => {
    const file = req.params.file;
    // Any other name goes on as any unknown path does (a credential, then KMS.0201).
    if (typeof file !== 'string' || !DOCS_FILES.includes(file)) {
      next('router');
      return;
    }
    headers(file === 'swagger-ui-init.js' ? REVALIDATE : ASSET_CACHE)(req, res, next);
  }, ...files);
  app.use('/docs', assets);
}
