/**
 * PostgresStorage across a PostgreSQL restart, on a throwaway cluster of this file's own (never
 * the shared server). Serial only: it stops and starts a server and waits on real time.
 *
 * The host builds its pool as the docs show (with a pool `error` listener). While the server is
 * down every call fails with a StorageError; after it is back calls succeed, the LISTEN
 * connection is set up again and wakes subscribers, and no error reaches the process unhandled.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from 'webhook-dispatcher';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import { clusterUnavailable, startThrowawayCluster, type ThrowawayCluster } from './helpers/pg-cluster.js';
import { uniqueSchema } from './helpers/postgres.js';

const unavailable = clusterUnavailable();
if (unavailable !== null && !process.env.CI) console.warn(`[postgres-restart] skipped: ${unavailable}`);

describe('postgres-restart: throwaway cluster', () => {
  it('can be made here, or we are not in CI', () => {
    expect(unavailable === null || !process.env.CI, `a throwaway PostgreSQL cluster cannot be made: ${unavailable}`).toBe(true);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

describe.runIf(unavailable === null)('PostgresStorage across a server restart', () => {
  let cluster: ThrowawayCluster;
  let pool: pg.Pool;
  const poolErrors: Error[] = [];
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  const storages: PostgresStorage[] = [];

  beforeAll(async () => {
    cluster = await startThrowawayCluster();
    pool = new pg.Pool({ host: cluster.host, port: cluster.port, user: 'postgres', database: 'postgres', max: 6 });
    // As the docs show: pg reports errors of idle pooled connections on the pool.
    pool.on('error', (error) => poolErrors.push(error));
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
  }, 60_000);

  afterAll(async () => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    await Promise.all(storages.map((s) => s.close()));
    await pool?.end();
    await cluster?.destroy();
  }, 60_000);

  it('fails calls with StorageError while down, works after, listens again and wakes within about a second, and crashes nothing', async () => {
    const errors: StorageError[] = [];
    const schema = uniqueSchema('wd_restart');
    const storage = new PostgresStorage({ pool, schema, onError: (e) => errors.push(e) });
    const emitter = new PostgresStorage({ pool, schema, notifyIntervalMs: 0 });
    storages.push(storage, emitter);
    await storage.migrate();
    const w = makeWebhook();
    await storage.insertWebhook(w);
    let wakes = 0;
    const unsubscribe = await storage.subscribe(() => wakes++);
    await emitter.enqueueDeliveries([makeDelivery(w.id, { runAt: 0 })]);
    await waitFor(() => wakes === 1, 5_000, 'a notification before the restart');
    // Connections in every state the adapter holds: idle in the pool, listening, in a transaction.
    const [claimed] = await storage.claimDueDeliveries({ now: Date.now(), limit: 1, leaseMs: 60_000, defaultConcurrency: 4 });
    expect(claimed).toMatchObject({ webhookId: w.id, status: 'delivering' });

    await cluster.stop();
    const now = Date.now();
    const down = [
      storage.getWebhook(w.id),
      storage.enqueueDeliveries([makeDelivery(w.id, { runAt: 0 })]),
      storage.claimDueDeliveries({ now, limit: 5, leaseMs: 60_000, defaultConcurrency: 4 }),
      storage.completeAttempt({ deliveryId: claimed!.id, leaseToken: claimed!.leaseToken, outcome: { status: 'succeeded', lastStatus: 200, lastError: null }, execution: makeExecution(claimed!) }),
      storage.nextRunAt(),
    ];
    for (const result of await Promise.allSettled(down)) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StorageError);
    }
    await waitFor(() => errors.some((e) => /LISTEN connection lost/.test(e.message)), 5_000, 'the lost LISTEN connection reported');
    await sleep(700); // a few attempts to listen again fail meanwhile

    await cluster.start();
    const restartedAt = Date.now();
    await waitFor(async () => (await storage.getWebhook(w.id).catch(() => null)) !== null, 10_000, 'calls working again');
    // Listening again wakes the subscriber once (what was committed meanwhile was not heard) …
    const relistenMs = await waitFor(() => wakes >= 2, 5_000, 'the LISTEN connection set up again');
    expect(Date.now() - restartedAt).toBeLessThan(5_000);
    const before = wakes;
    const sent = Date.now();
    await emitter.enqueueDeliveries([makeDelivery(w.id, { runAt: 0 })]);
    // … and enqueues wake it again.
    await waitFor(() => wakes > before, 5_000, 'a notification after the restart');
    const wakeMs = Date.now() - sent;
    console.info(`[postgres-restart] listening again ${relistenMs} ms after the server answered; next wake-up ${wakeMs} ms after the enqueue`);

    // The work goes on: the old lease completes, the new deliveries are claimed and completed.
    expect(
      await storage.completeAttempt({ deliveryId: claimed!.id, leaseToken: claimed!.leaseToken, outcome: { status: 'succeeded', lastStatus: 200, lastError: null }, execution: makeExecution(claimed!) }),
    ).toBe(true);
    const rest = await storage.claimDueDeliveries({ now: Date.now(), limit: 10, leaseMs: 60_000, defaultConcurrency: 4 });
    expect(rest.length).toBeGreaterThanOrEqual(1);
    await unsubscribe();
    await storage.close();
    expect(errors.every((e) => e instanceof StorageError)).toBe(true);
    expect(uncaught).toEqual([]);
  }, 60_000);
});
