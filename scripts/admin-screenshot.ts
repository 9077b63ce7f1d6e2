/**
 * Makes docs/admin.png, the admin page's picture in docs/admin.md: a dispatcher on memory storage
 * with a few webhooks and deliveries to a local receiver, the admin page on 127.0.0.1, and Debian's
 * Chromium (through playwright-core) photographing a webhook's Payload tab with a template, its
 * live preview and the Available Mergefields. Not part of `npm test`.
 *
 * ```sh
 * npx tsx scripts/admin-screenshot.ts            # CHROMIUM_PATH=/path/to/chromium to use another browser
 * ```
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createAdminHandler, toNodeHandler } from '../src/admin/index.js';
import { WebhookDispatcher } from '../src/index.js';

const OUTPUT = fileURLToPath(new URL('../docs/admin.png', import.meta.url));
const ORG = 'acme-shop';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

// The merchant's endpoint: accepts orders, refuses shipments.
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const failing = req.url?.startsWith('/erp') ?? false;
    res.writeHead(failing ? 503 : 200, { 'content-type': 'application/json' });
    res.end(failing ? '{"error":"maintenance"}' : '{"received":true}');
  });
});
const receiverUrl = await listen(receiver);

const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, retry: { maxAttempts: 3, schedule: [600_000] } });
const orders = await dispatcher.createWebhook({
  url: `${receiverUrl}/orders`,
  tenantId: ORG,
  description: 'Order sync to the warehouse',
  triggers: [{ entity: 'order', event: 'Create' }, { entity: 'order', event: 'Edit' }],
  headers: { 'X-Api-Key': 'wh-demo-key-0123456789abcdefgh' },
  payload: {
    mimeType: 'application/json',
    template: '{\n  "order": "{{order.OrderCode}}",\n  "id": {{order.OrderId}},\n  "event": "{{meta.event}}",\n  "at": "{{meta.timestamp | date:unix}}"\n}',
  },
});
await dispatcher.createWebhook({
  url: `${receiverUrl}/erp`,
  tenantId: ORG,
  description: 'ERP shipments',
  triggers: [{ entity: 'order', event: 'FullyShipped' }],
});
await dispatcher.createWebhook({ url: `${receiverUrl}/crm`, tenantId: ORG, triggers: [{ entity: 'product', event: 'Edit' }], enabled: false });
for (let i = 1; i <= 4; i++) {
  await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: { OrderId: 1000 + i, OrderCode: `ACME-${1000 + i}` } });
}
await dispatcher.emit({ entity: 'order', event: 'FullyShipped', tenantId: ORG, data: { OrderId: 1001, OrderCode: 'ACME-1001' } });
await dispatcher.drain();

const admin = createAdminHandler({ dispatcher, basePath: '/admin', authorize: () => true });
const site = createServer(toNodeHandler(admin));
const origin = await listen(site);

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
  await page.goto(`${origin}/admin/organizations/${ORG}/webhooks/${orders.id}?tab=payload`);
  await page.locator('#preview-body', { hasText: 'ACME' }).or(page.locator('#preview-body', { hasText: 'OrderCode-1' })).waitFor();
  await page.screenshot({ path: OUTPUT });
  console.log(`wrote ${OUTPUT}`);
} finally {
  await browser.close();
  await close(site);
  await close(receiver);
  await dispatcher.close({ timeoutMs: 1_000 });
}
