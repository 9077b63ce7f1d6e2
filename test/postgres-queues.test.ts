/**
 * What only a shared database has to prove about per-webhook queues: an enqueue inside a slow host
 * transaction holds nothing that other writes or claims wait for (except its ordering key row, and
 * even a completion of that key does not wait for it), and group completions of two processes
 * never deadlock.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import type { ClaimedDelivery } from 'webhook-dispatcher';
import { pgConfig, requirePostgres, uniqueSchema } from './helpers/postgres.js';

const available = await requirePostgres('postgres-queues');
const T0 = Date.UTC(2030, 0, 1);
const CLAIM = { defaultConcurrency: 10_000, leaseMs: 3_600_000 };
const OK = { status: 'succeeded' as const, lastStatus: 200, lastError: null };

/** Rejects when `promise` takes longer than `ms`: a write that waits for the host's lock would. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} waited ${ms} ms: it is blocked by the open host transaction`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe.runIf(available)('PostgresStorage queues on a shared database', () => {
  const pool = new pg.Pool({ ...pgConfig, max: 12 });
  pool.on('error', () => undefined);
  const schemas: string[] = [];

  async function fresh(): Promise<PostgresStorage> {
    const schema = uniqueSchema('wd_q');
    schemas.push(schema);
    const storage = new PostgresStorage({ pool, schema });
    await storage.migrate();
    return storage;
  }

  afterAll(async () => {
    for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  const complete = (storage: PostgresStorage, d: ClaimedDelivery) =>
    storage.completeAttempt({ deliveryId: d.id, leaseToken: d.leaseToken, outcome: OK, execution: makeExecution(d) });

  it("an enqueue in an open host transaction blocks no claim, completion, enqueue, cancel, pause or update of that webhook or another", async () => {
    const storage = await fresh();
    const w = makeWebhook({ ordering: 'entity', concurrency: 2 });
    const other = makeWebhook();
    await storage.insertWebhook(w);
    await storage.insertWebhook(other);
    await storage.enqueueDeliveries([
      ...Array.from({ length: 4 }, (_, i) => makeDelivery(w.id, { runAt: T0 - 10 + i })),
      makeDelivery(w.id, { orderingKey: 'order:2' }),
      makeDelivery(other.id),
    ]);
    const host = await pool.connect();
    try {
      await host.query('BEGIN');
      const inside = [makeDelivery(w.id, { orderingKey: 'order:1' }), makeDelivery(w.id), makeDelivery(other.id, { coalesceKey: 'k' })];
      const r = await storage.enqueueDeliveries(inside, { transaction: host });
      expect(r.deliveries.map((d) => d.sequence)).toEqual([1, null, null]);
      // The host transaction stays open while the rest of the system goes on.
      const limit = 5_000;
      const claimed = await within(storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 10 }), limit, 'a claim');
      expect(claimed.filter((d) => d.webhookId === w.id)).toHaveLength(2);
      for (const d of claimed) expect(await within(complete(storage, d), limit, 'a completion')).toBe(true);
      await within(storage.enqueueDeliveries([makeDelivery(w.id), makeDelivery(w.id, { orderingKey: 'order:2' })]), limit, 'another enqueue');
      const more = await within(storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 10 }), limit, 'a second claim');
      expect(more.length).toBeGreaterThan(0);
      expect(await within(storage.releaseDelivery(more[0]!.id, more[0]!.leaseToken), limit, 'a release')).toBe(true);
      for (const d of more.slice(1)) expect(await within(storage.cancelDelivery(d.id, { leaseToken: d.leaseToken }), limit, 'a cancel')).toBe(true);
      await within(storage.pauseQueue(w.id, T0 + 1), limit, 'a pause');
      await within(storage.pauseQueue(w.id, null), limit, 'lifting a pause');
      expect(await within(storage.updateWebhook({ ...w, concurrency: 3 }), limit, 'an update')).toBe(true);
      expect(await within(storage.getQueueStats(w.id, T0), limit, 'the queue figures')).toMatchObject({ webhookId: w.id, pausedUntil: null });
      expect(await within(storage.nextRunAt(), limit, 'nextRunAt')).not.toBeNull();
      // Nothing of the host's is visible before it commits …
      expect(await storage.getDelivery(inside[0]!.id)).toBeNull();
      await host.query('COMMIT');
    } finally {
      host.release();
    }
    // … and all of it is delivered after: nothing the host wrote is stranded.
    for (let round = 0; round < 20; round++) {
      const batch = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 1 + round, limit: 50 });
      for (const d of batch) await complete(storage, d);
    }
    const left = (await storage.listDeliveries({ limit: 100 })).items.filter((d) => d.status !== 'succeeded' && d.status !== 'cancelled');
    expect(left).toEqual([]);
  });

  it('a completion does not wait for a host transaction holding its ordering key: the hand-over is made by a later claim', async () => {
    const storage = await fresh();
    const w = makeWebhook({ ordering: 'entity' });
    await storage.insertWebhook(w);
    const a1 = makeDelivery(w.id, { orderingKey: 'order:1' });
    await storage.enqueueDeliveries([a1]);
    const [c1] = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 10 });
    expect(c1?.id).toBe(a1.id);
    const host = await pool.connect();
    let a2Id: string;
    try {
      await host.query('BEGIN');
      const a2 = makeDelivery(w.id, { orderingKey: 'order:1' });
      a2Id = a2.id;
      const r = await storage.enqueueDeliveries([a2], { transaction: host });
      expect(r.deliveries[0]!.sequence).toBe(2);
      // The host holds order:1's key row; a1's completion neither waits nor loses the hand-over.
      expect(await within(complete(storage, c1!), 5_000, 'the completion of the key in front')).toBe(true);
      await host.query('COMMIT');
    } finally {
      host.release();
    }
    expect((await storage.getDelivery(a2Id))?.status).toBe('held');
    const [next] = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 1, limit: 10 });
    expect(next).toMatchObject({ id: a2Id, sequence: 2 });
  });

  it('claims what a host transaction held locked, or enqueued with an older runAt, once it commits, though later rows were claimed meanwhile', async () => {
    const storage = await fresh();
    const w = makeWebhook();
    await storage.insertWebhook(w);
    /** Runs `inside` in an open host transaction while claims take and finish everything else; commits. */
    const whileHostHolds = async (inside: (host: pg.PoolClient) => Promise<void>, later: string[], at: number) => {
      const host = await pool.connect();
      try {
        await host.query('BEGIN');
        await inside(host);
        const claimed = await storage.claimDueDeliveries({ ...CLAIM, now: at, limit: 10 });
        expect(claimed.map((d) => d.id)).toEqual(later);
        for (const d of claimed) expect(await complete(storage, d)).toBe(true);
        expect(await storage.claimDueDeliveries({ ...CLAIM, now: at + 1, limit: 10 })).toEqual([]);
        await host.query('COMMIT');
      } finally {
        host.release();
      }
    };
    const rows = (n: number, from: number) => Array.from({ length: n }, (_, i) => makeDelivery(w.id, { runAt: from + i }));

    // A merge locks the first waiting row: claims skip it and take the rows behind it.
    const merged = makeDelivery(w.id, { coalesceKey: 'order:1', runAt: T0 - 100 });
    const behind = rows(3, T0 - 50);
    await storage.enqueueDeliveries([merged, ...behind]);
    await whileHostHolds(async (host) => {
      const r = await storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'order:1' })], { transaction: host });
      expect(r.deliveries[0]!.coalesced).toBe(true);
    }, behind.map((d) => d.id), T0);
    expect((await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 2, limit: 10 })).map((d) => d.id)).toEqual([merged.id]);

    // An enqueue older than rows claimed while its transaction was open.
    const older = makeDelivery(w.id, { runAt: T0 - 10_000 });
    const newer = rows(3, T0 - 20);
    await storage.enqueueDeliveries(newer);
    await whileHostHolds(async (host) => {
      await storage.enqueueDeliveries([older], { transaction: host });
    }, newer.map((d) => d.id), T0 + 10);
    expect((await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 12, limit: 10 })).map((d) => d.id)).toEqual([older.id]);
  });

  it("two processes' group completions over the same webhooks, in opposite orders, never deadlock", async () => {
    const storage = await fresh();
    const other = new PostgresStorage({ pool, schema: schemas[schemas.length - 1]! });
    const hooks = Array.from({ length: 6 }, () => makeWebhook());
    for (const w of hooks) await storage.insertWebhook(w);
    for (let round = 0; round < 15; round++) {
      await storage.enqueueDeliveries(hooks.flatMap((w) => Array.from({ length: 4 }, () => makeDelivery(w.id))));
      const claimed = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + round, limit: 100 });
      expect(claimed).toHaveLength(24);
      const half = (i: number) => claimed.filter((_, j) => j % 2 === i);
      const batch = (list: ClaimedDelivery[]) =>
        list.map((d) => ({ deliveryId: d.id, leaseToken: d.leaseToken, outcome: OK, execution: makeExecution(d) }));
      // One batch lists the webhooks forwards, the other backwards.
      const [x, y] = await Promise.all([storage.completeAttempts(batch(half(0))), other.completeAttempts(batch(half(1).reverse()))]);
      expect([...x, ...y].every(Boolean)).toBe(true);
    }
    expect(await storage.countDeliveries()).toEqual({ succeeded: 15 * 24 });
  });
});
