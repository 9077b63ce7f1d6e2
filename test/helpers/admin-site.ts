/**
 * The admin page in a real browser for tests: a node:http server on 127.0.0.1 serving
 * `createAdminHandler` through `toNodeHandler`, a dispatcher delivering to a real receiver, and
 * Debian's Chromium driven by playwright-core (headless; Playwright's own browser download is not
 * used). The test host authenticates by a cookie, `orgs=<organization>,…`.
 *
 * Every page opened with {@link openBrowser} reports console errors, uncaught exceptions and CSP
 * violations into `problems`, so a test can assert the page ran clean.
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { WebhookDispatcher, type WebhookDispatcherOptions } from 'webhook-dispatcher';
import { createAdminHandler, toNodeHandler, type AdminHandler, type AdminHandlerOptions } from '../../src/admin/index.js';
import { Receiver, type Responder } from './receiver.js';

/** Where the browser is: Debian's package (`apt-get install chromium`). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The admin page's prefix in these tests. */
export const ADMIN_BASE = '/admin';

/** The test host's authorize: the `orgs` cookie lists the organizations the caller may manage. */
export function authorizeByCookie(request: Request, organizationId: string): boolean {
  const cookie = request.headers.get('cookie') ?? '';
  const orgs = /(?:^|;\s*)orgs=([^;]*)/.exec(cookie)?.[1] ?? '';
  return decodeURIComponent(orgs).split(',').includes(organizationId);
}

/** A running admin page with its dispatcher and receiver. */
export interface AdminSite {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  dispatcher: WebhookDispatcher;
  receiver: Receiver;
  admin: AdminHandler;
  /** The absolute URL of a path under the organization: `url('org-a/webhooks')`. */
  url(path: string): string;
  close(): Promise<void>;
}

/** Options of {@link startAdminSite}. */
export interface AdminSiteOptions {
  dispatcher?: WebhookDispatcherOptions;
  admin?: Partial<AdminHandlerOptions>;
  respond?: Responder;
}

async function listen(server: Server): Promise<string> {
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

/** Starts a receiver, a dispatcher (private networks allowed: the receiver is on 127.0.0.1) and the admin page. */
export async function startAdminSite(options: AdminSiteOptions = {}): Promise<AdminSite> {
  const receiver = await Receiver.start(options.respond ? { respond: options.respond } : {});
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, ...options.dispatcher });
  const admin = createAdminHandler({ dispatcher, authorize: authorizeByCookie, basePath: ADMIN_BASE, ...options.admin });
  const server = createServer(toNodeHandler(admin));
  const origin = await listen(server);
  return {
    origin,
    dispatcher,
    receiver,
    admin,
    url: (path) => `${origin}${ADMIN_BASE}/organizations/${path}`,
    async close() {
      await closeServer(server);
      await receiver.close();
      await dispatcher.close({ timeoutMs: 1_000 });
    },
  };
}

/** A page whose console errors, uncaught exceptions and CSP violations are collected. */
export interface WatchedPage {
  page: Page;
  problems: string[];
}

/** One browser for a test file. */
export interface TestBrowser {
  browser: Browser;
  context: BrowserContext;
  /** Opens a watched page in the shared context. */
  newPage(): Promise<WatchedPage>;
  /** Signs the browser in as a member of these organizations on `origin`. */
  signIn(origin: string, organizations: string[]): Promise<void>;
  close(): Promise<void>;
}

/** Launches headless Chromium with one context (cookies shared by its pages). */
export async function openBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-extensions'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(10_000);
  // Reported as console errors too; listening makes the violated directive explicit. Init scripts
  // are injected by the browser itself, outside the page's CSP.
  await context.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (event) => {
      console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + (event.blockedURI || 'inline code'));
    });`,
  });
  return {
    browser,
    context,
    async newPage() {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      return { page, problems };
    },
    async signIn(origin, organizations) {
      await context.addCookies([{ name: 'orgs', value: encodeURIComponent(organizations.join(',')), url: origin, sameSite: 'Lax', httpOnly: true }]);
    },
    async close() {
      await browser.close();
    },
  };
}

/** The organization's CSRF token, read from its webhook list as the browser would. */
export async function csrfTokenFrom(page: Page): Promise<string> {
  const token = await page.locator('input[name="csrf_token"]').first().getAttribute('value');
  if (!token) throw new Error('no CSRF token on the page');
  return token;
}

/**
 * The path every storage must support: list → webhook → History → View → Redeliver → Send test →
 * Payload preview and save. Returns nothing; fails through the locators' waits and `check`.
 */
export async function walkThroughWebhook(
  page: Page,
  site: AdminSite,
  organizationId: string,
  webhook: { id: string; label: string },
  check: (condition: boolean, what: string) => void,
): Promise<void> {
  await page.goto(site.url(`${organizationId}/webhooks`));
  await page.getByRole('table').getByRole('link', { name: webhook.label }).click();
  await page.getByRole('tab', { name: 'History' }).click();
  const history = page.getByRole('tabpanel', { name: 'History' });
  await history.getByRole('button', { name: 'View' }).first().click();
  await page.getByRole('heading', { name: 'Response body' }).waitFor();
  check((await page.getByRole('table', { name: 'Request headers' }).textContent())?.includes('webhook-signature') ?? false, 'request headers shown');

  const before = site.receiver.requests.length;
  await page.getByRole('button', { name: 'Redeliver' }).click();
  await page.getByRole('status').filter({ hasText: 'sent again' }).waitFor();
  await site.receiver.waitForRequests(before + 1);

  await page.getByRole('button', { name: 'Send test' }).click();
  await page.getByRole('status').filter({ hasText: 'Test event sent' }).waitFor();
  check(site.receiver.requests.at(-1)?.headers['x-pakk-webhook-test'] === 'true', 'the test event reached the receiver');

  await page.getByRole('tab', { name: 'Payload' }).click();
  await page.getByLabel('MIME type').selectOption('text/plain');
  await page.getByLabel('Template').fill('Order {{order.OrderCode}} for {{meta.tenantId}}');
  await page.locator('#preview-body', { hasText: `Order OrderCode-1 for ${organizationId}` }).waitFor();
  await page.getByRole('button', { name: 'Save payload' }).click();
  await page.getByRole('status').filter({ hasText: 'Payload template saved' }).waitFor();
  const saved = await site.dispatcher.getWebhook(webhook.id);
  check(saved.payload?.template === 'Order {{order.OrderCode}} for {{meta.tenantId}}', 'the template was saved');
}
