/**
 * Durable storage on PostgreSQL: any number of processes share the queue (claims are exclusive,
 * LISTEN/NOTIFY wakes them when work is committed). Run with `npx tsx examples/postgres.ts`;
 * the connection comes from DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { WebhookDispatcher } from 'webhook-dispatcher';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';

const connectionString = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// The example's own schema, dropped at the end. In your app: a schema of yours, or the default `public`.
const schema = 'webhook_dispatcher_example';

// 1. Your pg Pool (it stays yours: the adapter never ends it) and the storage on it. migrate()
//    creates the schema and tables, or upgrades them; safe to run from many processes at once.
const pool = new pg.Pool({ connectionString });
// pg reports a failed idle connection (a server restart, a failover) as an 'error' event on the
// pool: without a listener, Node ends the process. The adapter handles the connections it holds
// itself (its LISTEN connection listens again once the server is back).
pool.on('error', (error) => console.error('idle Postgres connection failed:', error.message));
await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`); // a clean start for the example
const storage = new PostgresStorage({ pool, schema });
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

try {
  // 3. The dispatcher on that storage. Run the same code in several processes and they share the
  //    work. allowPrivateNetworks is the explicit opt-out of the SSRF guard, which blocks loopback
  //    by default: needed only because the receiver is on 127.0.0.1.
  const dispatcher = new WebhookDispatcher({ storage, allowPrivateNetworks: true });

  // 4. A merchant's webhook, stored in Postgres.
  const webhook = await dispatcher.createWebhook({
    url: `http://127.0.0.1:${port}/hooks/orders`,
    triggers: [{ entity: 'order', event: 'Create' }],
    tenantId: 'shop-1',
  });

  // 5. Your order is saved: emit. The delivery is committed before emit() resolves, and every
  //    dispatcher listening on these tables is notified.
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

  // 8. Shut down: the dispatcher (finishes attempts in flight, stops listening), then the storage.
  await dispatcher.close();
  await storage.close();
} finally {
  // The example cleans up after itself; your app keeps its schema, and ends its pool on exit.
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pool.end();
  receiver.close();
}
