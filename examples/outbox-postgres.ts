/**
 * The transactional outbox, the recommended production pattern: your app writes its order and
 * emits the webhook in ONE database transaction. If the transaction commits, the order exists and
 * its webhook will be delivered (even if the process dies right after COMMIT); if it rolls back,
 * neither exists. No event for an order that was never saved, no saved order without its event.
 *
 * Run with `npx tsx examples/outbox-postgres.ts`; the connection comes from DATABASE_URL
 * (default postgres://postgres@127.0.0.1:5432/test).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { WebhookDispatcher } from 'webhook-dispatcher';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';

const connectionString = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// The example's own schema, dropped at the end. In your app: the schema of your tables, or `public`.
const schema = 'webhook_dispatcher_outbox_example';

const pool = new pg.Pool({ connectionString });
// pg reports a failed idle connection (a server restart, a failover) as an 'error' event on the
// pool: without a listener, Node ends the process. The adapter handles the connections it holds
// itself (its LISTEN connection listens again once the server is back).
pool.on('error', (error) => console.error('idle Postgres connection failed:', error.message));
await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`); // a clean start for the example
const storage = new PostgresStorage({ pool, schema });
await storage.migrate();
// Your own table, in the same database as the dispatcher's tables.
await pool.query(`CREATE TABLE ${schema}.orders (id serial PRIMARY KEY, code text NOT NULL, total numeric NOT NULL)`);

// A stand-in for the merchant's endpoint.
const received: string[] = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    received.push(body);
    console.log(`  receiver got webhook-id ${String(req.headers['webhook-id'])}: ${body}`);
    res.writeHead(200).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const { port } = receiver.address() as AddressInfo;

// allowPrivateNetworks: explicit opt-out of the SSRF guard, only because the receiver is on 127.0.0.1.
const dispatcher = new WebhookDispatcher({ storage, allowPrivateNetworks: true });

/**
 * Your app's unit of work: save the order AND queue its webhook on the same connection, inside
 * the same BEGIN … COMMIT. `transaction: client` makes the dispatcher write its delivery through
 * your transaction instead of committing on its own.
 */
async function placeOrder(code: string, total: number, paymentAccepted: boolean): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ id: number }>(
      `INSERT INTO ${schema}.orders (code, total) VALUES ($1, $2) RETURNING id`,
      [code, total],
    );
    const order = { OrderId: rows[0]!.id, OrderCode: code, Total: total };
    await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: 'shop-1', data: order, transaction: client });
    if (!paymentAccepted) throw new Error(`payment for ${code} declined`);
    await client.query('COMMIT');
    // Nothing else to do: on COMMIT, Postgres notifies every dispatcher on these tables
    // (LISTEN/NOTIFY), which starts the delivery at once. (Other adapters: call dispatcher.wake().)
    console.log(`  ${code}: committed`);
  } catch (error) {
    await client.query('ROLLBACK'); // the order and its delivery disappear together
    console.log(`  ${code}: rolled back (${(error as Error).message})`);
  } finally {
    client.release();
  }
}

try {
  await dispatcher.createWebhook({
    url: `http://127.0.0.1:${port}/hooks/orders`,
    triggers: [{ entity: 'order', event: 'Create' }],
    tenantId: 'shop-1',
  });

  console.log('1. An order whose transaction rolls back:');
  await placeOrder('SO-1', 99.5, false);
  await dispatcher.drain();
  console.log(`  delivered: ${received.length}, deliveries stored: ${(await dispatcher.listDeliveries()).items.length}`);

  console.log('2. An order whose transaction commits:');
  await placeOrder('SO-2', 120, true);
  await dispatcher.drain();
  console.log(`  delivered: ${received.length}`);

  const orders = await pool.query<{ code: string }>(`SELECT code FROM ${schema}.orders ORDER BY id`);
  const deliveries = (await dispatcher.listDeliveries()).items;
  console.log(`\norders saved: ${orders.rows.map((o) => o.code).join(', ')}`);
  console.log(`deliveries: ${deliveries.map((d) => `${d.id} ${d.status}`).join(', ')}`);

  await dispatcher.close();
  await storage.close();
} finally {
  // The example cleans up after itself; your app keeps its schema, and ends its pool on exit.
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pool.end();
  receiver.close();
}
