/**
 * The admin page in a real browser (headless Chromium through playwright-core), on memory
 * storage: every screen and action a merchant uses, found by role and name, against a dispatcher
 * delivering to a real receiver on 127.0.0.1. One browser and one page for the whole file; the
 * page's console errors and CSP violations are collected throughout and must stay empty.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_BASE, csrfTokenFrom, openBrowser, startAdminSite, type AdminSite, type TestBrowser, type WatchedPage } from './helpers/admin-site.js';

const ORG = 'org-a';
const OTHER_ORG = 'org-b';
const API_KEY = 'api-key-0123456789abcdefghijklmnop';
const PASSWORD = 'basic-password-4242';
const XSS = '<script>alert(1)</script>';
const HOUR = 3_600_000;

let site: AdminSite;
let browser: TestBrowser;
let watched: WatchedPage;
let page: Page;
const ids = { orders: '', failing: '', unreachable: '', queued: '', foreign: '' };
const started = Date.now();

beforeAll(async () => {
  [site, browser] = await Promise.all([
    startAdminSite({
      admin: { pageSize: 5 },
      respond: (request) =>
        request.path === '/fail'
          ? { status: 500, body: `${XSS} upstream failed`, headers: { 'content-type': 'text/html' } }
          : { status: 200, body: '{"ok":true}', headers: { 'content-type': 'application/json' } },
    }),
    openBrowser(),
  ]);
  const { dispatcher, receiver } = site;
  const order = [{ entity: 'order', event: 'Create' }];
  ids.orders = (
    await dispatcher.createWebhook({
      url: receiver.url('/orders'),
      triggers: [...order, { entity: 'order', event: 'Edit' }],
      tenantId: ORG,
      description: 'Order sync',
      headers: { 'X-Api-Key': API_KEY, 'X-Shop': 'main' },
      basicAuth: { username: 'shop', password: PASSWORD },
    })
  ).id;
  ids.failing = (
    await dispatcher.createWebhook({
      url: receiver.url('/fail'),
      triggers: order,
      tenantId: ORG,
      description: 'Failing ERP <b>bold</b>',
      retry: { maxAttempts: 5, schedule: [HOUR], jitter: 0 },
    })
  ).id;
  ids.unreachable = (
    await dispatcher.createWebhook({ url: 'http://127.0.0.1:9/closed', triggers: order, tenantId: ORG, description: 'Unreachable', retry: { maxAttempts: 1 } })
  ).id;
  ids.queued = (
    await dispatcher.createWebhook({
      url: receiver.url('/queued'),
      triggers: [{ entity: 'product', event: 'Edit' }],
      tenantId: ORG,
      description: 'Rate limited',
      priority: 7,
      uniqueQueueItems: true,
      rateLimit: { perSecond: 0.001, burst: 1 },
    })
  ).id;
  ids.foreign = (await dispatcher.createWebhook({ url: receiver.url('/b'), triggers: order, tenantId: OTHER_ORG, description: 'Other shop' })).id;

  // Seven orders: History pages through them (5 a page).
  for (let i = 1; i <= 7; i++) {
    await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: { OrderId: i, OrderCode: `A-${i}` } });
    await dispatcher.drain();
  }
  // The first product edit goes out; the next two wait for the rate limit, merged into one delivery.
  for (const [id, name] of [[10, 'first'], [11, 'second'], [11, 'second, changed']] as const) {
    await dispatcher.emit({ entity: 'product', event: 'Edit', tenantId: ORG, data: { ProductId: id, ProductCode: name } });
    await dispatcher.drain();
  }
  await browser.signIn(site.origin, [ORG]);
  watched = await browser.newPage();
  page = watched.page;
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await site?.close();
  console.log(`admin-memory browser scenarios: ${Date.now() - started} ms`);
});

/** The text of each cell of a table's body rows, white space collapsed. */
async function rowsOf(table: ReturnType<Page['getByRole']>): Promise<string[][]> {
  const rows = await table.locator('tbody tr').all();
  return Promise.all(rows.map(async (row) => (await row.locator('td').allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim())));
}

describe('admin page in a browser (memory storage)', () => {
  it("lists the organization's webhooks: endpoint or description, triggers, enabled, health", async () => {
    await page.goto(site.url(`${ORG}/webhooks`));
    const table = page.getByRole('table');
    const headers = await table.getByRole('columnheader').allTextContents();
    expect(headers).toEqual(['Endpoint', 'Triggers', 'Enabled', 'Health']);
    const rows = await rowsOf(table);
    expect(rows).toHaveLength(4);
    const byName = Object.fromEntries(rows.map((cells) => [cells[0]!.split(' http')[0]!, cells]));
    expect(byName['Order sync']).toEqual([`Order sync ${site.receiver.url('/orders')}`, 'order.Create, order.Edit', 'Enabled', 'Healthy']);
    // Escaped: the description shows as text, no <b> element.
    expect(byName['Failing ERP <b>bold</b>']?.[3]).toMatch(/^Failing 7 failed deliveries in a row, since /);
    expect(byName.Unreachable?.[3]).toMatch(/^Failing/);
    expect(await page.locator('main b').count()).toBe(0);
    expect(await page.getByText('Other shop').count()).toBe(0);
  });

  it('opens a webhook with tabs by role: tablist, tab, tabpanel, and arrow keys', async () => {
    await page.getByRole('link', { name: 'Order sync' }).click();
    await page.getByRole('heading', { name: 'Order sync' }).waitFor();
    const tabs = page.getByRole('tablist').getByRole('tab');
    expect(await tabs.allTextContents()).toEqual(['General', 'Authentication', 'Payload', 'History', 'Queue']);
    expect(await page.getByRole('tab', { name: 'General' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.getByRole('tabpanel', { name: 'General' }).isVisible()).toBe(true);
    await page.getByRole('tab', { name: 'History' }).click();
    expect(await page.getByRole('tab', { name: 'History' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.getByRole('tabpanel', { name: 'History' }).isVisible()).toBe(true);
    expect(await page.getByRole('tabpanel', { name: 'General' }).count()).toBe(0); // hidden panels leave the tree
    expect(new URL(page.url()).searchParams.get('tab')).toBe('history');
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: 'Queue' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.locator(':focus').textContent()).toBe('Queue');
    // Reloaded, the page opens on the tab in the address bar.
    await page.reload();
    expect(await page.getByRole('tabpanel', { name: 'Queue' }).isVisible()).toBe(true);
  });

  it('never shows a credential: the secret, the password and credential header values', async () => {
    const webhook = await site.dispatcher.storage.getWebhook(ids.orders);
    // Every tab's panel is in the page (the others hidden), so one page holds all five.
    await page.goto(`${site.url(`${ORG}/webhooks/${ids.orders}`)}?tab=authentication`);
    const content = await page.content();
    expect(content).toContain('id="panel-queue"');
    for (const secret of [webhook!.secret, webhook!.secret.slice(6), PASSWORD, API_KEY]) expect(content).not.toContain(secret);
    expect(await page.getByLabel('Password').inputValue()).toBe('');
    expect(await page.getByLabel('Username').inputValue()).toBe('shop');
  });

  it('History: executions newest first, a page at a time, a success showing its result', async () => {
    await page.goto(`${site.url(`${ORG}/webhooks/${ids.orders}`)}?tab=history`);
    const history = page.getByRole('table', { name: 'History' });
    expect(await history.getByRole('columnheader').allTextContents()).toEqual(['Time', 'Event', 'Attempt', 'Status', 'Result', 'Duration', 'Actions']);
    const first = await rowsOf(history);
    expect(first).toHaveLength(5);
    expect(first[0]!.slice(1, 5)).toEqual(['order.Create', '1', '200 OK', '{"ok":true}']);
    const times = await history.locator('tbody time').evaluateAll((els) => els.map((el) => el.getAttribute('datetime') ?? ''));
    expect([...times].sort().reverse()).toEqual(times);
    await page.getByRole('link', { name: 'Older' }).click();
    const older = await rowsOf(page.getByRole('table', { name: 'History' }));
    expect(older).toHaveLength(2);
    expect(older[0]![0]! <= first[4]![0]!).toBe(true);
    expect(await page.getByRole('link', { name: 'Older' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Newest' }).click();
    expect(await rowsOf(page.getByRole('table', { name: 'History' }))).toHaveLength(5);
  });

  it('View: request headers (credentials redacted), request body, response body as text, message', async () => {
    await page.goto(`${site.url(`${ORG}/webhooks/${ids.orders}`)}?tab=history`);
    await page.getByRole('button', { name: 'View' }).first().click();
    await page.getByRole('heading', { name: /Execution of order\.Create/ }).waitFor();
    const requestHeaders = await rowsOf(page.getByRole('table', { name: 'Request headers' }));
    const header = (name: string) => requestHeaders.find((cells) => cells[0]!.toLowerCase() === name)?.[1];
    expect(header('authorization')).toBe('Basic [REDACTED]');
    expect(header('x-api-key')).toBe('[REDACTED]');
    expect(header('x-shop')).toBe('main');
    expect(header('webhook-signature')).toMatch(/^v1,/);
    expect(await page.getByLabel('Request body').textContent()).toContain('"OrderCode":"A-7"');
    expect(await page.getByLabel('Response body').textContent()).toBe('{"ok":true}');

    await page.goto(`${site.url(`${ORG}/webhooks/${ids.failing}`)}?tab=history`);
    await page.getByRole('button', { name: 'View' }).first().click();
    await page.getByRole('heading', { name: 'Response body' }).waitFor();
    expect(await page.getByLabel('Response body').textContent()).toBe(`${XSS} upstream failed`);
    expect(await page.locator('main script').count()).toBe(0);
    expect(await page.locator('dt:has-text("Hard error") + dd').textContent()).toBe('No');

    await page.goto(`${site.url(`${ORG}/webhooks/${ids.unreachable}`)}?tab=history`);
    expect((await rowsOf(page.getByRole('table', { name: 'History' })))[0]![3]).toBe('Hard error');
    await page.getByRole('button', { name: 'View' }).first().click();
    await page.getByRole('heading', { name: 'Response body' }).waitFor();
    expect(await page.locator('dt:has-text("Hard error") + dd').textContent()).toMatch(/^Yes/);
    expect(await page.locator('dt:has-text("Message") + dd').textContent()).toMatch(/ECONNREFUSED|refused|connect/i);
  });

  it('Redeliver sends the same delivery again and History shows the new attempt', async () => {
    await page.goto(`${site.url(`${ORG}/webhooks/${ids.orders}`)}?tab=history`);
    const newest = await site.dispatcher.listExecutions({ webhookId: ids.orders, limit: 1 });
    const deliveryId = newest.items[0]!.deliveryId;
    const before = site.receiver.requests.length;
    await page.getByRole('table', { name: 'History' }).getByRole('button', { name: 'Redeliver' }).first().click();
    await page.getByRole('status').filter({ hasText: 'sent again' }).waitFor();
    const [request] = (await site.receiver.waitForRequests(before + 1)).slice(before);
    expect(request!.headers['webhook-id']).toBe(deliveryId);
    await expect.poll(async () => (await site.dispatcher.listExecutions({ webhookId: ids.orders, limit: 1 })).items[0]!.attempt).toBe(2);
    await page.reload();
    expect((await rowsOf(page.getByRole('table', { name: 'History' })))[0]!.slice(2, 4)).toEqual(['2', '200 OK']);
  });

  it('Send test delivers a marked test event and reports the result', async () => {
    await page.goto(site.url(`${ORG}/webhooks/${ids.orders}`));
    const before = site.receiver.requests.length;
    await page.getByRole('button', { name: 'Send test' }).click();
    await page.getByRole('status').filter({ hasText: 'Test event sent: the endpoint answered with success' }).waitFor();
    expect(site.receiver.requests.length).toBe(before + 1);
    expect(site.receiver.requests.at(-1)!.headers['x-pakk-webhook-test']).toBe('true');
    expect(await page.getByRole('tab', { name: 'History' }).getAttribute('aria-selected')).toBe('true');
  });

  it('Payload: edits a template with the Available Mergefields and a live preview, then saves it', async () => {
    await page.goto(site.url(`${ORG}/webhooks/${ids.orders}`));
    await page.getByRole('tab', { name: 'Payload' }).click();
    const fields = page.getByRole('table', { name: 'Available Mergefields' });
    expect(await fields.getByText('{{order.OrderCode}}').count()).toBe(1);
    // The default payload is previewed while there is no template.
    await page.locator('#preview-body', { hasText: '"entityData"' }).waitFor();
    const template = page.getByLabel('Template');
    await template.fill('{"code": "{{order.OrderCode}}", "note": "<script>", "id": ');
    await page.getByRole('button', { name: 'Insert {{order.OrderId}}' }).click();
    await template.press('End');
    await template.pressSequentially('}');
    expect(await template.inputValue()).toBe('{"code": "{{order.OrderCode}}", "note": "<script>", "id": {{order.OrderId}}}');
    await page.locator('#preview-body', { hasText: '{"code": "OrderCode-1", "note": "<script>", "id": 1}' }).waitFor();
    expect(await page.locator('#preview-content-type').textContent()).toBe('application/json');
    await page.getByRole('button', { name: 'Save payload' }).click();
    await page.getByRole('status').filter({ hasText: 'Payload template saved' }).waitFor();
    expect((await site.dispatcher.getWebhook(ids.orders)).payload).toEqual({
      mimeType: 'application/json',
      template: '{"code": "{{order.OrderCode}}", "note": "<script>", "id": {{order.OrderId}}}',
    });
    const before = site.receiver.requests.length;
    await site.dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: { OrderId: 8, OrderCode: 'A-8' } });
    await site.dispatcher.drain();
    const sent = site.receiver.requests.slice(before).find((r) => r.path === '/orders');
    expect(JSON.parse(sent!.body)).toEqual({ code: 'A-8', note: '<script>', id: 8 });
  });

  it('General: edits and saves, disables and enables, keeps the credential header, duplicates', async () => {
    await page.goto(site.url(`${ORG}/webhooks/${ids.orders}`));
    await page.getByLabel('Description').fill('Order sync (main shop)');
    await page.getByLabel('Priority').fill('3');
    await page.getByLabel('Queue items must be unique').check();
    await page.getByRole('checkbox', { name: /Order Fully Shipped/ }).check();
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Changes saved.' }).waitFor();
    const saved = (await site.dispatcher.storage.getWebhook(ids.orders))!;
    expect(saved).toMatchObject({ description: 'Order sync (main shop)', priority: 3, uniqueQueueItems: { keyPath: null } });
    expect(saved.triggers).toContainEqual({ entity: 'order', event: 'FullyShipped' });
    expect(saved.headers['X-Api-Key']).toBe(API_KEY);

    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('status').filter({ hasText: 'Webhook disabled' }).waitFor();
    expect((await site.dispatcher.getWebhook(ids.orders)).enabled).toBe(false);
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.getByRole('status').filter({ hasText: 'Webhook enabled' }).waitFor();
    expect((await site.dispatcher.getWebhook(ids.orders)).enabled).toBe(true);

    await page.getByRole('button', { name: 'Duplicate' }).click();
    await page.getByRole('status').filter({ hasText: 'This is a copy of the webhook' }).waitFor();
    const copyId = /webhooks\/([^/?]+)/.exec(page.url())![1]!;
    expect(copyId).not.toBe(ids.orders);
    expect(await site.dispatcher.getWebhook(copyId)).toMatchObject({ tenantId: ORG, description: 'Order sync (main shop)' });
  });

  it('Authentication: the password stays empty meaning keep; a secret generated in the browser rotates in', async () => {
    await page.goto(`${site.url(`${ORG}/webhooks/${ids.orders}`)}?tab=authentication`);
    await page.getByLabel('Username').fill('shop-renamed');
    await page.getByRole('button', { name: 'Save basic authentication' }).click();
    await page.getByRole('status').filter({ hasText: 'Basic authentication saved' }).waitFor();
    expect((await site.dispatcher.storage.getWebhook(ids.orders))!.basicAuth).toEqual({ username: 'shop-renamed', password: PASSWORD });

    const oldSecret = (await site.dispatcher.storage.getWebhook(ids.orders))!.secret;
    await page.getByRole('button', { name: 'Generate' }).click();
    const generated = await page.getByLabel('New secret').inputValue();
    expect(generated).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByRole('status').filter({ hasText: 'Secret rotated' }).waitFor();
    const rotated = (await site.dispatcher.storage.getWebhook(ids.orders))!;
    expect(rotated.secret).toBe(generated);
    expect(rotated.previousSecrets.map((p) => p.secret)).toEqual([oldSecret]);
    expect(await page.content()).not.toContain(generated);
  });

  it('Queue: pending and scheduled deliveries with priority, attempts, next run and coalesced count', async () => {
    await page.goto(`${site.url(`${ORG}/webhooks/${ids.queued}`)}?tab=queue`);
    const queue = page.getByRole('table', { name: 'Queue' });
    expect(await queue.getByRole('columnheader').allTextContents()).toEqual([
      'Status', 'Event', 'Priority', 'Attempts', 'Next run', 'Coalesced', 'Queued', 'Last error',
    ]);
    const [pending] = await rowsOf(queue);
    expect(pending!.slice(0, 4)).toEqual(['Pending', 'product.Edit', '7', '0']);
    expect(pending![5]).toBe('1');

    await page.goto(`${site.url(`${ORG}/webhooks/${ids.failing}`)}?tab=queue`);
    const [scheduled] = await rowsOf(page.getByRole('table', { name: 'Queue' }));
    expect(scheduled!.slice(0, 4)).toEqual(['Scheduled', 'order.Create', '0', '1']);
    const nextRun = await page.getByRole('table', { name: 'Queue' }).locator('tbody time').first().getAttribute('datetime');
    expect(Date.parse(nextRun!) - Date.now()).toBeGreaterThan(HOUR / 2);
    expect(scheduled![7]).toMatch(/500/);
  });

  it("refuses another organization's pages (403) and its webhooks under this organization (404)", async () => {
    // A page of its own: the browser logs refused loads as console errors, which the main page must not have.
    const other = await browser.newPage();
    const forbidden = await other.page.goto(site.url(`${OTHER_ORG}/webhooks`));
    expect(forbidden!.status()).toBe(403);
    await other.page.getByRole('heading', { name: 'Forbidden' }).waitFor();
    expect(await other.page.content()).not.toContain('Other shop');
    const hidden = await other.page.goto(site.url(`${ORG}/webhooks/${ids.foreign}`));
    expect(hidden!.status()).toBe(404);
    await other.page.getByRole('heading', { name: 'Not found' }).waitFor();
    await other.page.close();
  });

  it('refuses a cross-site POST: a foreign Origin with a valid token, and a form on another site', async () => {
    await page.goto(site.url(`${ORG}/webhooks/${ids.orders}`));
    const token = await csrfTokenFrom(page);
    const cookies = await browser.context.cookies(site.origin);
    const response = await fetch(site.url(`${ORG}/webhooks/${ids.orders}/disable`), {
      method: 'POST',
      redirect: 'manual',
      headers: {
        origin: 'https://evil.example',
        cookie: cookies.map((c) => `${c.name}=${c.value}`).join('; '),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ csrf_token: token }).toString(),
    });
    expect(response.status).toBe(403);

    // A page on another site (localhost is not 127.0.0.1) that posts a form to the admin page.
    const evilPort = await new Promise<{ server: Server; port: number }>((resolve) => {
      const server = createServer((_req, res) => {
        res.setHeader('content-type', 'text/html');
        res.end(`<form method="post" action="${site.url(`${ORG}/webhooks/${ids.orders}/disable`)}">
<input type="hidden" name="csrf_token" value="${token}"><button>Win a prize</button></form>`);
      });
      server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port }));
    });
    const attacker = await browser.newPage();
    try {
      await attacker.page.goto(`http://localhost:${evilPort.port}/`);
      const [answer] = await Promise.all([
        attacker.page.waitForResponse((r) => r.url().endsWith('/disable')),
        attacker.page.getByRole('button', { name: 'Win a prize' }).click(),
      ]);
      expect(answer.status()).toBe(403);
      expect(await answer.text()).toContain('Cross-site request refused');
    } finally {
      await attacker.page.close();
      evilPort.server.closeAllConnections();
      await new Promise<void>((resolve) => evilPort.server.close(() => resolve()));
    }
    expect((await site.dispatcher.getWebhook(ids.orders)).enabled).toBe(true);
  });

  it('enforces its CSP: an injected inline script does not run and is reported', async () => {
    const probe = await browser.newPage();
    await probe.page.goto(site.url(`${ORG}/webhooks`));
    await probe.page.evaluate(`(() => {
      const script = document.createElement('script');
      script.textContent = 'document.title = "inline ran"';
      document.body.append(script);
    })()`);
    await expect.poll(() => probe.problems.some((p) => p.includes("script-src"))).toBe(true);
    expect(await probe.page.title()).not.toBe('inline ran');
    await probe.page.close();
  });

  it('ran without console errors or CSP violations', () => {
    expect(watched.problems).toEqual([]);
    expect(page.url().startsWith(`${site.origin}${ADMIN_BASE}/`)).toBe(true);
  });
});
