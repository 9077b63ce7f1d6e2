/**
 * Two processes on one database, each with its own PostgresStorage and pool, running
 * claim/complete loops (test/helpers/pg-queue-worker.ts) on the same queues: per-webhook caps hold
 * across both, ordered keys go one at a time in sequence order (also across retries and a
 * takeover after a crash), and every delivery is completed exactly once.
 *
 * Caps and "one in flight per key" are watched from the database (a sampler counting unexpired
 * leases); the order of events per key is read from an audit trigger this test installs on its
 * own schema.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { makeDelivery, makeWebhook } from 'webhook-dispatcher/testing';
import type { WebhookRecord } from 'webhook-dispatcher';
import { pgConfig, requirePostgres, uniqueSchema } from './helpers/postgres.js';
import { startQueueWorker, type QueueWorker } from './helpers/pg-queue-worker.js';

const available = await requirePostgres('postgres-two-processes');

describe.runIf(available)('PostgresStorage: two processes on one database', () => {
  const pool = new pg.Pool({ ...pgConfig, max: 6 });
  pool.on('error', () => undefined);
  const schemas: string[] = [];
  const workers: QueueWorker[] = [];

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  interface Setup {
    schema: string;
    storage: PostgresStorage;
    capped: WebhookRecord;
    ordered: WebhookRecord;
    open: WebhookRecord;
    ids: string[];
  }

  /** A schema with three webhooks and their backlogs, and the audit trigger. */
  async function setUp(): Promise<Setup> {
    const schema = uniqueSchema('wd_two');
    schemas.push(schema);
    const storage = new PostgresStorage({ pool, schema });
    await storage.migrate();
    await pool.query(`
      CREATE TABLE "${schema}".audit (n bigserial PRIMARY KEY, delivery_id text, webhook_id text, ordering_key text, sequence bigint, status text);
      CREATE FUNCTION "${schema}".audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO "${schema}".audit (delivery_id, webhook_id, ordering_key, sequence, status)
        VALUES (NEW.id, NEW.webhook_id, NEW.ordering_key, NEW.sequence, NEW.status);
        RETURN NEW;
      END $$;
      CREATE TRIGGER audit AFTER UPDATE OF status ON "${schema}".webhook_deliveries
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR NEW.status = 'delivering')
        EXECUTE FUNCTION "${schema}".audit_row();`);
    const capped = makeWebhook({ concurrency: 3 });
    const ordered = makeWebhook({ concurrency: 4, ordering: 'entity' });
    const open = makeWebhook();
    for (const w of [capped, ordered, open]) await storage.insertWebhook(w);
    const ids: string[] = [];
    for (let batch = 0; batch < 4; batch++) {
      const deliveries = [
        ...Array.from({ length: 50 }, () => makeDelivery(capped.id, { runAt: 0 })),
        ...Array.from({ length: 50 }, (_, i) => makeDelivery(ordered.id, { runAt: 0, orderingKey: `order:${i % 20}` })),
        ...Array.from({ length: 40 }, () => makeDelivery(open.id, { runAt: 0 })),
      ];
      const r = await storage.enqueueDeliveries(deliveries);
      ids.push(...r.deliveries.map((d) => d.id));
    }
    return { schema, storage, capped, ordered, open, ids };
  }

  /** Samples unexpired leases per webhook and per key until stopped; returns the highest counts seen. */
  function watch(schema: string): { stop: () => Promise<{ perWebhook: Map<string, number>; perKey: number; samples: number }> } {
    const perWebhook = new Map<string, number>();
    let perKey = 0;
    let samples = 0;
    let running = true;
    const done = (async () => {
      while (running) {
        const result = await pool.query<{ webhook_id: string; ordering_key: string | null; lease_expires_at: string }>(
          `SELECT webhook_id, ordering_key, lease_expires_at FROM "${schema}".webhook_deliveries WHERE status = 'delivering'`,
        );
        // A lease counts when it outlives the time after the snapshot: every claim in the snapshot
        // judged expiry by a clock read before it committed, so never later than this.
        const after = Date.now();
        samples++;
        const webhooks = new Map<string, number>();
        const keys = new Map<string, number>();
        for (const row of result.rows) {
          if (Number(row.lease_expires_at) <= after) continue;
          webhooks.set(row.webhook_id, (webhooks.get(row.webhook_id) ?? 0) + 1);
          if (row.ordering_key !== null) {
            const key = `${row.webhook_id} ${row.ordering_key}`;
            keys.set(key, (keys.get(key) ?? 0) + 1);
          }
        }
        for (const [id, n] of webhooks) perWebhook.set(id, Math.max(perWebhook.get(id) ?? 0, n));
        for (const n of keys.values()) perKey = Math.max(perKey, n);
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await done;
        return { perWebhook, perKey, samples };
      },
    };
  }

  /** Per key of the ordered webhook, in audit order: a sequence is claimed only after every earlier one succeeded. */
  async function checkOrder(setup: Setup): Promise<number> {
    const audit = await pool.query<{ ordering_key: string; sequence: string; status: string }>(
      `SELECT ordering_key, sequence, status FROM "${setup.schema}".audit WHERE webhook_id = $1 ORDER BY n`,
      [setup.ordered.id],
    );
    const succeeded = new Map<string, number[]>();
    let claims = 0;
    for (const row of audit.rows) {
      const seq = Number(row.sequence);
      const done = succeeded.get(row.ordering_key) ?? [];
      if (row.status === 'delivering') {
        claims++;
        expect(done, `${row.ordering_key} #${seq} claimed before all earlier ones succeeded`).toEqual(Array.from({ length: seq - 1 }, (_, i) => i + 1));
      }
      if (row.status === 'succeeded') {
        done.push(seq);
        succeeded.set(row.ordering_key, done);
      }
    }
    const sizes = await pool.query<{ ordering_key: string; n: number }>(
      `SELECT ordering_key, count(*)::int AS n FROM "${setup.schema}".webhook_deliveries WHERE webhook_id = $1 GROUP BY ordering_key`,
      [setup.ordered.id],
    );
    expect(sizes.rows).toHaveLength(20);
    for (const { ordering_key: key, n } of sizes.rows) expect(succeeded.get(key)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    return claims;
  }

  /** Every delivery succeeded with exactly one successful execution; no place is left taken. */
  async function checkExactlyOnce(setup: Setup): Promise<void> {
    const { schema, storage, ids } = setup;
    expect(await storage.countDeliveries()).toEqual({ succeeded: ids.length });
    const executions = await pool.query<{ delivery_id: string; n: number }>(
      `SELECT delivery_id, count(*)::int AS n FROM "${schema}".webhook_executions WHERE success GROUP BY delivery_id`,
    );
    expect(executions.rows).toHaveLength(ids.length);
    expect(executions.rows.filter((r) => r.n !== 1)).toEqual([]);
    const queues = await pool.query<{ in_flight: number }>(`SELECT in_flight FROM "${schema}".webhook_queues`);
    expect(queues.rows.map((r) => r.in_flight)).toEqual([0, 0, 0]);
  }

  it('keeps caps across both, one delivery per key in flight in sequence order, and completes each delivery once', async () => {
    const setup = await setUp();
    const options = { schema: setup.schema, loops: 3, limit: 5, leaseMs: 30_000, defaultConcurrency: 8, failRate: 0.2, workMs: 3 };
    const [a, b] = await Promise.all([startQueueWorker({ ...options, name: 'a' }), startQueueWorker({ ...options, name: 'b' })]);
    workers.push(a, b);
    const watcher = watch(setup.schema);
    a.go();
    b.go();
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    const seen = await watcher.stop();

    expect(seen.samples).toBeGreaterThan(10);
    expect(seen.perWebhook.get(setup.capped.id) ?? 0).toBeLessThanOrEqual(3);
    expect(seen.perWebhook.get(setup.ordered.id) ?? 0).toBeLessThanOrEqual(4);
    expect(seen.perWebhook.get(setup.open.id) ?? 0).toBeLessThanOrEqual(8);
    expect(seen.perKey).toBeLessThanOrEqual(1);
    // Both processes took part, and each success was recorded by exactly one of them.
    const successes = [...a.completed, ...b.completed].filter((c) => c.outcome === 'succeeded');
    expect(a.completed.length).toBeGreaterThan(0);
    expect(b.completed.length).toBeGreaterThan(0);
    expect(successes.map((c) => c.id).sort()).toEqual([...setup.ids].sort());
    expect(await checkOrder(setup)).toBeGreaterThanOrEqual(200);
    await checkExactlyOnce(setup);
  });

  it('after one process is killed holding leases, the other takes its deliveries over when the leases expire: caps, order and exactly-once still hold', async () => {
    const setup = await setUp();
    const options = { schema: setup.schema, loops: 3, limit: 5, leaseMs: 1_500, defaultConcurrency: 8, failRate: 0.2, workMs: 3 };
    const doomed = await startQueueWorker({ ...options, name: 'doomed', hangAfter: 20 });
    const survivor = await startQueueWorker({ ...options, name: 'survivor' });
    workers.push(doomed, survivor);
    const watcher = watch(setup.schema);
    doomed.go();
    await doomed.hung;
    expect(doomed.completed.length).toBeGreaterThanOrEqual(20);
    expect(await doomed.kill()).toBeNull(); // SIGKILL mid-attempt: its leases stay behind
    const stranded = await pool.query(`SELECT count(*)::int AS n FROM "${setup.schema}".webhook_deliveries WHERE status = 'delivering'`);
    expect(stranded.rows[0].n).toBeGreaterThan(0);
    survivor.go();
    expect(await survivor.exited).toBe(0);
    const seen = await watcher.stop();

    expect(seen.perWebhook.get(setup.capped.id) ?? 0).toBeLessThanOrEqual(3);
    expect(seen.perWebhook.get(setup.ordered.id) ?? 0).toBeLessThanOrEqual(4);
    expect(seen.perKey).toBeLessThanOrEqual(1);
    // The database says every delivery succeeded once (checkExactlyOnce); the doomed process may
    // have died between recording a completion and reporting it, but nothing is reported twice.
    const reported = [...doomed.completed, ...survivor.completed].filter((c) => c.outcome === 'succeeded').map((c) => c.id);
    expect(new Set(reported).size).toBe(reported.length);
    expect(setup.ids).toEqual(expect.arrayContaining(reported));
    await checkOrder(setup);
    await checkExactlyOnce(setup);
  });
});
