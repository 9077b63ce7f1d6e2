/**
 * Durability of the Postgres adapter through the dispatcher, with real processes, a real server
 * and a real HTTP receiver, under their own load (serial project):
 *
 * - crash recovery: a child process dispatching a backlog is SIGKILLed mid-run; a dispatcher on
 *   another pool, same schema, finishes the work once the dead process's leases expire.
 * - two dispatcher instances (two pools) sharing one schema deliver everything exactly once.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 with trust auth, user `postgres`, database `test`
 * (override with PGHOST, PGPORT, PGUSER, PGDATABASE). Without a server the file is skipped
 * locally and fails in CI. Each test works in a fresh schema, dropped at the end.
 */
import { describe, expect, it } from 'vitest';
import { countById, idCounter, runCrashRecovery, waitFor } from './helpers/durability.js';
import { postgresDurability } from './helpers/durability-postgres.js';
import { requirePostgres } from './helpers/postgres.js';

const available = await requirePostgres('durability.postgres.serial');
const { disposers, pools, newPool, newSchema, startReceiver, openStorage, newDispatcher, statusCounts } = postgresDurability();

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
