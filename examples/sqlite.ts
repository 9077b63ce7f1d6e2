/**
 * Durable storage on SQLite: webhooks, the delivery queue and the execution log live in one
 * database file, so deliveries survive a restart or a crash. Run with `npx tsx examples/sqlite.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebhookDispatcher } from 'webhook-dispatcher';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';

// 1. The storage: a database file, created if missing (here in a temporary directory; in your
//    app, a path next to your data). migrate() creates or upgrades the tables and is idempotent:
//    call it at every startup, before anything else.
const dir = mkdtempSync(join(tmpdir(), 'webhook-dispatcher-sqlite-'));
const storage = new SqliteStorage({ path: join(dir, 'webhooks.db') });
await storage.migrate();

// 2. A stand-in for the merchant's endpoint: prints what arrives and answers 200.
const receiver = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    console.log(`receiver: ${req.method} ${req.url} webhook-id ${String(req.headers['webhook-id'])} ${body}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const { port } = receiver.address() as AddressInfo;

// 3. The dispatcher on that storage. allowPrivateNetworks is the explicit opt-out of the SSRF
//    guard, which blocks loopback by default: needed only because the receiver is on 127.0.0.1.
const dispatcher = new WebhookDispatcher({ storage, allowPrivateNetworks: true });

// 4. A merchant's webhook, stored in the file.
const webhook = await dispatcher.createWebhook({
  url: `http://127.0.0.1:${port}/hooks/orders`,
  triggers: [{ entity: 'order', event: 'Create' }],
  tenantId: 'shop-1',
});

// 5. Your order is saved: emit. The delivery is in the file before emit() resolves.
await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: 'shop-1', data: { OrderId: 1, OrderCode: 'SO-1' } });
await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: 'shop-1', data: { OrderId: 2, OrderCode: 'SO-2' } });

// 6. Wait until everything due has been attempted (normally the dispatcher just runs).
await dispatcher.drain();

// 7. The History (execution log) of the webhook, newest first.
const { items } = await dispatcher.listExecutions({ webhookId: webhook.id });
console.log('\nHistory:');
for (const e of items) {
  console.log(`  ${new Date(e.startedAt).toISOString()}  ${e.entity} ${e.event}  HTTP ${e.status}  ${e.success ? 'success' : 'failed'}  ${e.durationMs} ms  ${e.deliveryId}`);
}

// 8. Shut down: the dispatcher first (it finishes attempts in flight), then the storage (it opened
//    the file, so it closes it). Here the file is removed too; in your app it stays.
await dispatcher.close();
await storage.close();
receiver.close();
rmSync(dir, { recursive: true, force: true });
