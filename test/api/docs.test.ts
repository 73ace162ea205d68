/**
 * The contract, browsable: GET /openapi.yaml (the file as it is), /openapi.json and the page
 * /docs/ (swagger-ui), without a credential and not audited; the page in a real browser (Debian's
 * chromium, driven by playwright-core) lists every operation of openapi.yaml and loads nothing
 * from anywhere else.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config';
import { OPENAPI_PATH } from '../../src/openapi-spec';
import { expectKmsError, fetchResponse } from '../helpers/client';
import { startTestService, useTestService, type TestService } from '../helpers/service';

const CHROMIUM = '/usr/bin/chromium';
/**
 * The page is loaded as kms.test (mapped to the loopback address), not 127.0.0.1: swagger-ui
 * holds back some requests to other origins (its validator badge) for loopback addresses only.
 */
const HOST = 'kms.test';
/** Without the background-networking switches Chromium's own connections fail on a closed network. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
];

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const contractText = readFileSync(OPENAPI_PATH, 'utf8');
const contract = parse(contractText) as { servers: { url: string }[]; paths: Record<string, Record<string, unknown>> };

/** Every operation of openapi.yaml as "METHOD path", sorted. */
const documentedOperations = Object.entries(contract.paths)
  .flatMap(([route, item]) => METHODS.filter((method) => method in item).map((method) => `${method.toUpperCase()} ${route}`))
  .sort();

/**
 * The status of a GET sent with exactly `headers` (fetch would add Cache-Control: no-cache to a
 * conditional request, and the server rightly answers that in full).
 */
function statusOf(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    }).on('error', reject);
  });
}

/** What the page asked for and what went wrong on it. */
interface PageLoad {
  readonly requests: string[];
  readonly problems: string[];
}

function watch(page: Page): PageLoad {
  const load: PageLoad = { requests: [], problems: [] };
  page.on('request', (request) => load.requests.push(request.url()));
  page.on('requestfailed', (request) => load.problems.push(`${request.url()} failed: ${request.failure()?.errorText ?? '?'}`));
  page.on('response', (response) => {
    if (response.status() >= 400) load.problems.push(`${response.url()} answered ${response.status()}`);
  });
  // A request the Content-Security-Policy refused is reported here.
  page.on('console', (message) => {
    if (message.type() === 'error') load.problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => load.problems.push(`page error: ${error.message}`));
  return load;
}

/** The operation blocks the page rendered, as "METHOD path" in page order. */
async function renderedOperations(page: Page): Promise<string[]> {
  const blocks = page.locator('.opblock');
  const found: string[] = [];
  for (let i = 0, count = await blocks.count(); i < count; i++) {
    const block = blocks.nth(i);
    const method = await block.locator('.opblock-summary-method').textContent();
    const route = await block.locator('.opblock-summary-path').getAttribute('data-path');
    found.push(`${method ?? '?'} ${route ?? '?'}`);
  }
  return found;
}

describe('the contract page in headless Chromium', () => {
  let t: TestService;
  let userDataDir: string;
  let browser: BrowserContext;
  beforeAll(async () => {
    // Never skipped: a machine without the browser fails here (npm test's pretest installs it).
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (bash hsm/ensure-softhsm.sh --with-chromium)`);
    t = await startTestService();
    userDataDir = mkdtempSync(path.join(tmpdir(), 'kms-chromium-'));
    browser = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  }, 90_000);
  // Chromium takes seconds to close on a loaded machine (CI's run timed the default 30 s out once).
  afterAll(async () => {
    await browser?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    await t?.stop();
  }, 90_000);

  it('lists every operation of openapi.yaml, with its servers and {project_id} paths, from this service alone, unaudited and unlogged', async () => {
    const origin = `http://${HOST}:${new URL(t.service.url).port}`;
    const auditBefore = readFileSync(t.config.auditLogPath, 'utf8');
    const logsBefore = t.logs.lines.length;
    const page = await browser.newPage();
    const load = watch(page);
    // /docs redirects to /docs/, where the page's relative links work.
    await page.goto(`${origin}/docs`);
    expect(page.url()).toBe(`${origin}/docs/`);
    await page.locator('.info .title').waitFor();
    // swagger-ui renders the operations once the contract has loaded: wait for as many as it has,
    // then compare (a missing one shows in the difference, not as a timeout).
    await page.locator('.opblock').nth(documentedOperations.length - 1).waitFor({ timeout: 20_000 }).catch(() => undefined);
    expect((await renderedOperations(page)).sort()).toEqual(documentedOperations);
    expect(documentedOperations).toContain('POST /v1.0/{project_id}/kms/create-key');

    // The servers are the contract's; an operation opens without "Try it out" (requests are signed).
    expect(await page.locator('.servers select option').allTextContents()).toEqual(contract.servers.map((server) => server.url));
    const createKey = page.locator('.opblock-summary-path[data-path="/v1.0/{project_id}/kms/create-key"]');
    await createKey.click();
    await page.locator('.opblock.is-open .parameters').first().waitFor();
    expect((await page.locator('.opblock.is-open .parameter__name').allTextContents())[0]).toContain('project_id');
    expect(await page.locator('.try-out__btn').count()).toBe(0);

    // The page read the contract from this service, and nothing from anywhere else failed or was asked for.
    expect(load.requests).toContain(`${origin}/openapi.yaml`);
    expect(load.problems).toEqual([]);
    expect(load.requests.filter((url) => !url.startsWith(`${origin}/`))).toEqual([]);
    await page.close();

    expect(readFileSync(t.config.auditLogPath, 'utf8')).toBe(auditBefore);
    expect(t.logs.lines.slice(logsBefore).join('')).not.toMatch(/docs|openapi/);
    // A browser on two shared cores: more than Jest's default, each step still waits for its condition.
  }, 60_000);

  it('serves openapi.yaml as the file is, and openapi.json as the same document, without a credential', async () => {
    const yaml = await fetch(`${t.service.url}/openapi.yaml`);
    expect(yaml.status).toBe(200);
    expect(yaml.headers.get('content-type')).toBe('application/yaml; charset=utf-8');
    expect(await yaml.text()).toBe(contractText);
    const json = await fetchResponse(`${t.service.url}/openapi.json`);
    expect(json.status).toBe(200);
    expect(json.body).toEqual(contract);

    // Revalidated, not re-sent: the ETag answers 304.
    expect(yaml.headers.get('cache-control')).toBe('no-cache');
    const etag = yaml.headers.get('etag');
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{43}"$/);
    expect(await statusOf(`${t.service.url}/openapi.yaml`, { 'if-none-match': etag! })).toBe(304);
    expect(await statusOf(`${t.service.url}/openapi.yaml`, { 'if-none-match': '"other"' })).toBe(200);
  });

  it('sends the page with a Content-Security-Policy of this origin alone, its renderer files cacheable, nothing else of the package', async () => {
    const page = await fetch(`${t.service.url}/docs/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toMatch(/^default-src 'none'; script-src 'self'; /);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const bundle = await fetch(`${t.service.url}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('cache-control')).toBe('public, max-age=86400');
    expect((await fetch(`${t.service.url}/docs/swagger-ui-init.js`)).headers.get('cache-control')).toBe('no-cache');
    // swagger-ui-dist's own index.html (the Petstore example) is an unknown path like any other.
    expectKmsError(await fetchResponse(`${t.service.url}/docs/index.html`), 401, 'APIGW.0301');
    expectKmsError(await fetchResponse(`${t.service.url}/docs/package.json`), 401, 'APIGW.0301');
  });
});

describe('KMS_DOCS=off', () => {
  const t = useTestService({ env: { KMS_DOCS: 'off' } });

  it('serves neither the contract nor its page: they are unknown paths (a credential, then KMS.0201)', async () => {
    for (const route of ['/openapi.yaml', '/openapi.json', '/docs', '/docs/', '/docs/swagger-ui.css']) {
      expectKmsError(await fetchResponse(`${t.service.url}${route}`), 401, 'APIGW.0301');
      expectKmsError(await fetchResponse(`${t.service.url}${route}`, { headers: { 'x-auth-token': await t.token() } }), 400, 'KMS.0201');
    }
  });

  it('takes on and off only, on by default', () => {
    expect(() => loadConfig({ KMS_DOCS: 'no' })).toThrow(new ConfigError('KMS_DOCS must be on or off, got "no"'));
    expect(loadConfig({ KMS_DOCS: 'off' }).docs).toBe(false);
    expect(loadConfig({}).docs).toBe(true);
  });
});
