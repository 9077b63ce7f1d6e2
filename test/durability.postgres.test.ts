/**
 * Durability of the Postgres adapter through the dispatcher, with real processes, a real server
 * and a real HTTP receiver:
 *
 * - crash recovery: a child process dispatching a backlog is SIGKILLed mid-run; a dispatcher on
 *   another pool, same schema, finishes the work once the dead process's leases expire.
 * - the transactional outbox: `emit({ transaction: client })` inside the host's BEGIN delivers
 *   only if the host commits, and LISTEN/NOTIFY starts the delivery without wake() or a poll.
 * - two dispatcher instances (two pools) sharing one schema deliver everything exactly once.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 with trust auth, user `postgres`, database `test`
 * (override with PGHOST, PGPORT, PGUSER, PGDATABASE). Without a server the file is skipped
 * locally and fails in CI. Each test works in a fresh schema, dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebhookDispatcher, type DispatcherErrorEvent, type WebhookDispatcherOptions } from 'webhook-dispatcher';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { countById, idCounter, runCrashRecovery, sleep, waitFor } from './helpers/durability.js';
import { Receiver } from './helpers/receiver.js';
import { pgConfig, requirePostgres } from './helpers/postgres.js';

const available = await requirePostgres('durability.postgres');
const config = pgConfig;

const run = randomBytes(4).toString('hex');
let schemaCount = 0;
const schemas = new Set<string>();
const pools: pg.Pool[] = [];

function newPool(): pg.Pool {
  const pool = new pg.Pool({ ...config, max: 10 });
  pools.push(pool);
  return pool;
}

/** A fresh schema name, dropped after the file. */
function newSchema(): string {
  const schema = `wd_durability_${run}_${schemaCount++}`;
  schemas.add(schema);
  return schema;
}

// Everything a test opens is disposed of after it, in reverse order.
const disposers: Array<() => unknown> = [];
afterEach(async () => {
  for (const dispose of disposers.reverse()) await dispose();
  disposers.length = 0;
});

afterAll(async () => {
  if (pools.length === 0) return;
  const admin = pools[0]!;
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await Promise.all(pools.map((p) => p.end()));
});

async function startReceiver(...args: Parameters<typeof Receiver.start>): Promise<Receiver> {
  const receiver = await Receiver.start(...args);
  disposers.push(() => receiver.close());
  return receiver;
}

async function openStorage(pool: pg.Pool, schema: string): Promise<PostgresStorage> {
  const storage = new PostgresStorage({ pool, schema });
  await storage.migrate();
  disposers.push(() => storage.close());
  return storage;
}

/** A dispatcher allowed to deliver to the loopback receiver; errors are collected, not thrown. */
function newDispatcher(storage: PostgresStorage, options: WebhookDispatcherOptions = {}) {
  const dispatcher = new WebhookDispatcher({
    storage,
    // The receiver is on 127.0.0.1: this is the explicit opt-out of the SSRF guard, which blocks
    // loopback (and other private addresses) by default.
    allowPrivateNetworks: true,
    circuitBreaker: false,
    ...options,
  });
  const errors: DispatcherErrorEvent[] = [];
  dispatcher.on('error', (event) => errors.push(event));
  disposers.push(() => dispatcher.close());
  return { dispatcher, errors };
}

async function statusCounts(pool: pg.Pool, schema: string): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM "${schema}".webhook_deliveries GROUP BY status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** True once a dispatcher's LISTEN connection on `schema` is established and idle. */
async function isListening(pool: pg.Pool, schema: string): Promise<boolean> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle' AND query = $1`,
    [`LISTEN "${schema}.webhook_deliveries"`],
  );
  return (rows[0]?.n ?? 0) > 0;
}

describe.runIf(available)('Postgres durability', () => {
  describe('crash recovery', () => {
    it('finishes a SIGKILLed process\'s backlog from the same schema: every delivery arrives, duplicates bounded by its window', async () => {
      const schema = newSchema();
      const pool = newPool();
      await runCrashRecovery({
        label: 'durability.postgres',
        adapter: 'postgres',
        target: schema,
        // A short answer delay keeps a few requests in flight at the moment of the kill.
        receiver: await startReceiver({ respond: { delayMs: 5 } }),
        disposers,
        statusCounts: () => statusCounts(pool, schema),
        startSurvivor: async (options) => newDispatcher(await openStorage(pool, schema), options),
        storageTotals: async () => {
          const one = async (sql: string) => (await pool.query<{ n: number }>(sql)).rows[0]?.n ?? -1;
          return {
            successfulExecutions: await one(`SELECT count(*)::int AS n FROM "${schema}".webhook_executions WHERE success`),
            notAttemptedOnce: await one(`SELECT count(*)::int AS n FROM "${schema}".webhook_deliveries WHERE attempts <> 1`),
          };
        },
      });
    }, 60_000); // 8-10 s measured on a loaded 2-vCPU machine; headroom for slower CI runners
  });

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

  describe('two instances on one schema', () => {
    it('deliver 2,000 deliveries emitted on both, each exactly once, both taking part', async () => {
      const TOTAL = 2_000;
      const started = Date.now();
      const schema = newSchema();
      const receiver = await startReceiver();
      const storageA = await openStorage(newPool(), schema);
      const storageB = await openStorage(newPool(), schema);
      const a = newDispatcher(storageA, { concurrency: 16 });
      const b = newDispatcher(storageB, { concurrency: 16 });
      const deliveredBy = { a: 0, b: 0 };
      a.dispatcher.on('delivery.succeeded', () => deliveredBy.a++);
      b.dispatcher.on('delivery.succeeded', () => deliveredBy.b++);
      // Four merchants' webhooks on order Create: each event fans out to four deliveries. (Fewer,
      // bigger commits: notifying commits are serialized by Postgres, about one per fsync.)
      const WEBHOOKS = 4;
      for (let i = 0; i < WEBHOOKS; i++) {
        await a.dispatcher.createWebhook({ url: receiver.url(`/hooks/${i}`), triggers: [{ entity: 'order', event: 'Create' }] });
      }

      // Half the events on each instance, both delivering meanwhile.
      const ids: string[] = [];
      for (let start = 0; start < TOTAL / WEBHOOKS; start += 100) {
        const batch = await Promise.all(
          Array.from({ length: 100 }, (_, i) => {
            const n = start + i;
            const dispatcher = n % 2 === 0 ? a.dispatcher : b.dispatcher;
            return dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: n, OrderCode: `SO-${n}` } });
          }),
        );
        for (const result of batch) for (const d of result.deliveries) ids.push(d.id);
      }
      expect(new Set(ids).size).toBe(TOTAL);

      const received = idCounter(receiver.requests);
      await waitFor(() => received().size >= TOTAL, () => `all ${TOTAL} ids (have ${received().size})`, 45_000);
      await Promise.all([a.dispatcher.drain(), b.dispatcher.drain()]);

      const counts = countById(receiver.requests);
      const duplicated = [...counts.values()].filter((n) => n > 1).length;
      console.log(
        `[durability.postgres] two instances: ${TOTAL} deliveries, ${counts.size} distinct ids received, ` +
          `${duplicated} duplicates; delivered by A ${deliveredBy.a}, by B ${deliveredBy.b}; ${Date.now() - started} ms`,
      );
      expect(ids.filter((id) => !counts.has(id))).toEqual([]);
      expect(receiver.requests).toHaveLength(TOTAL);
      expect(duplicated).toBe(0);
      expect(deliveredBy.a + deliveredBy.b).toBe(TOTAL);
      expect(deliveredBy.a).toBeGreaterThan(0);
      expect(deliveredBy.b).toBeGreaterThan(0);
      expect(await statusCounts(pools[pools.length - 1]!, schema)).toEqual({ succeeded: TOTAL });
      expect(a.errors).toEqual([]);
      expect(b.errors).toEqual([]);
    }, 60_000);
  });
});
