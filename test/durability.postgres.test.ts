/**
 * Durability of the Postgres adapter through the dispatcher, with a real server and a real HTTP
 * receiver: the transactional outbox. `emit({ transaction: client })` inside the host's BEGIN
 * delivers only if the host commits, and LISTEN/NOTIFY starts the delivery without wake() or a
 * poll. (Crash recovery and two instances on one schema: durability.postgres.serial.test.ts.)
 *
 * Needs PostgreSQL on 127.0.0.1:5432 with trust auth, user `postgres`, database `test`
 * (override with PGHOST, PGPORT, PGUSER, PGDATABASE). Without a server the file is skipped
 * locally and fails in CI. Each test works in a fresh schema, dropped at the end.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { WebhookDispatcher, WebhookDispatcherOptions } from 'webhook-dispatcher';
import { sleep, waitFor } from './helpers/durability.js';
import { postgresDurability } from './helpers/durability-postgres.js';
import { requirePostgres } from './helpers/postgres.js';

const available = await requirePostgres('durability.postgres');
const { newPool, newSchema, startReceiver, openStorage, newDispatcher } = postgresDurability();

/** True once a dispatcher's LISTEN connection on `schema` is established and idle. */
async function isListening(pool: pg.Pool, schema: string): Promise<boolean> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle' AND query = $1`,
    [`LISTEN "${schema}.webhook_deliveries"`],
  );
  return (rows[0]?.n ?? 0) > 0;
}

describe.runIf(available)('Postgres durability', () => {
  describe('transactional outbox through the dispatcher', () => {
    /** Dispatcher on a fresh schema, a host table in it, a receiver and a webhook. */
    async function setup(options: WebhookDispatcherOptions) {
      const schema = newSchema();
      const pool = newPool();
      const storage = await openStorage(pool, schema);
      await pool.query(`CREATE TABLE "${schema}".orders (id integer PRIMARY KEY, code text NOT NULL)`);
      const receiver = await startReceiver();
      const { dispatcher, errors } = newDispatcher(storage, options);
      const webhook = await dispatcher.createWebhook({
        url: receiver.url('/hooks/orders'),
        triggers: [{ entity: 'order', event: 'Create' }],
      });
      return { schema, pool, storage, receiver, dispatcher, errors, webhook };
    }

    /** The host's unit of work on a pooled client: BEGIN, its own INSERT, emit in the same transaction. */
    async function placeOrder(client: pg.PoolClient, schema: string, dispatcher: WebhookDispatcher, id: number) {
      await client.query('BEGIN');
      await client.query(`INSERT INTO "${schema}".orders (id, code) VALUES ($1, $2)`, [id, `SO-${id}`]);
      const { deliveries } = await dispatcher.emit({
        entity: 'order',
        event: 'Create',
        data: { OrderId: id, OrderCode: `SO-${id}` },
        transaction: client,
      });
      expect(deliveries).toHaveLength(1);
      return deliveries[0]!.id;
    }

    it('ROLLBACK: the order and its delivery vanish together; nothing is ever delivered', async () => {
      const { schema, pool, storage, receiver, dispatcher, errors } = await setup({ pollIntervalMs: 20 });
      const client = await pool.connect();
      let id: string;
      try {
        id = await placeOrder(client, schema, dispatcher, 1);
        // Uncommitted: invisible to the dispatcher's own connections.
        expect(await storage.getDelivery(id)).toBeNull();
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
      dispatcher.wake();
      await sleep(150); // several poll intervals
      await dispatcher.drain();

      expect(receiver.requests).toHaveLength(0);
      expect(await storage.getDelivery(id)).toBeNull();
      expect((await dispatcher.listDeliveries()).items).toEqual([]);
      expect((await pool.query(`SELECT count(*)::int AS n FROM "${schema}".orders`)).rows).toEqual([{ n: 0 }]);
      expect(errors).toEqual([]);
    });

    it('COMMIT: delivered exactly once, started by LISTEN/NOTIFY (no wake(), the poll is a minute away)', async () => {
      const { schema, pool, receiver, dispatcher, errors } = await setup({ pollIntervalMs: 60_000 });
      // Start only once the dispatcher listens and its pump sleeps until the next poll.
      await waitFor(() => isListening(pool, schema), () => 'the LISTEN connection', 5_000);
      await dispatcher.drain();

      const client = await pool.connect();
      let id: string;
      try {
        id = await placeOrder(client, schema, dispatcher, 2);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      const committedAt = Date.now();
      await receiver.waitForRequests(1, 5_000);
      const latency = Date.now() - committedAt;
      await sleep(100);
      await dispatcher.drain();

      console.log(`[durability.postgres] outbox: delivered ${latency} ms after COMMIT via NOTIFY (poll interval 60 s)`);
      expect(latency).toBeLessThan(30_000); // far below the poll interval: the notification woke it
      expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([id]);
      expect(await dispatcher.getDelivery(id)).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect((await dispatcher.listExecutions({ deliveryId: id })).items).toHaveLength(1);
      expect((await pool.query(`SELECT code FROM "${schema}".orders WHERE id = 2`)).rows).toEqual([{ code: 'SO-2' }]);
      expect(errors).toEqual([]);
    });
  });
});
