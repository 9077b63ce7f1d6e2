/**
 * SQLite-specific behaviour of per-webhook queues, beyond the conformance suites: enqueues inside
 * a host transaction, several connections sharing one file's caps, ordering and rate limits, and
 * the paths where a webhook disappears under deliveries in flight. (Several processes on one file:
 * sqlite-processes.serial.test.ts.)
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { WebhookValidationError } from '../src/errors.js';
import type { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import type { AttemptOutcome, ClaimRequest, ClaimedDelivery } from '../src/storage/types.js';
import { useSqliteFiles } from './helpers/sqlite-queue-files.js';

const T0 = Date.UTC(2030, 0, 1);
const OK: AttemptOutcome = { status: 'succeeded', lastStatus: 200, lastError: null };

describe('SqliteStorage queues', () => {
  const { disposers, fileDb, open, seed } = useSqliteFiles();

  const claim = (storage: SqliteStorage, request: Partial<ClaimRequest> = {}) =>
    storage.claimDueDeliveries({ now: T0, limit: 100, leaseMs: 60_000, defaultConcurrency: 100, ...request });

  const finish = (storage: SqliteStorage, c: ClaimedDelivery, outcome: AttemptOutcome = OK) =>
    storage.completeAttempt({ deliveryId: c.id, leaseToken: c.leaseToken, outcome, execution: makeExecution(c) });

  describe('enqueues inside a host transaction', () => {
    it("write only delivery rows, the key's row and a queue signal, and hold up no other webhook's claims", async () => {
      const statements: string[] = [];
      const db = new Database(':memory:', { verbose: (sql) => statements.push(String(sql)) });
      disposers.push(() => db.close());
      const storage = await open({ database: db });
      const ordered = await seed(storage, { ordering: 'entity' });
      const other = await seed(storage);
      await storage.enqueueDeliveries([makeDelivery(other.id), makeDelivery(other.id)]);
      const queueRow = () => db.prepare('SELECT * FROM webhook_queues WHERE webhook_id = ?').get(ordered.id);
      const before = queueRow();

      // The host's transaction stays open (a slow request) after the enqueue.
      db.exec('BEGIN IMMEDIATE');
      statements.length = 0;
      // Due later: this connection's own claims see the open transaction's rows.
      const result = await storage.enqueueDeliveries([makeDelivery(ordered.id, { orderingKey: 'order:1', body: '{"seq":"#SEQ#"}', runAt: T0 + 1_000 })], {
        transaction: db,
        sequencePlaceholder: '#SEQ#',
      });
      expect(result.deliveries[0]!.sequence).toBe(1);
      const writes = statements.filter((sql) => /^(INSERT|UPDATE|DELETE|REPLACE)/.test(sql));
      expect(writes.length).toBeGreaterThan(0);
      for (const sql of writes) {
        expect(sql).toMatch(/^INSERT INTO webhook_(deliveries|ordering_keys|queue_signals) /);
      }
      expect(queueRow()).toEqual(before);

      // Meanwhile another webhook's deliveries are claimed and completed.
      const claimed = await claim(storage);
      expect(claimed.map((c) => c.webhookId)).toEqual([other.id, other.id]);
      expect(await storage.completeAttempts(claimed.map((c) => ({ deliveryId: c.id, leaseToken: c.leaseToken, outcome: OK, execution: makeExecution(c) })))).toEqual([
        true,
        true,
      ]);
      db.exec('COMMIT');
      const [mine] = await claim(storage, { now: T0 + 1_000 });
      expect(mine).toMatchObject({ webhookId: ordered.id, sequence: 1, body: '{"seq":"1"}' });
    });

    it('numbers nothing for a transaction that rolls back: the key stays gap-free', async () => {
      const path = fileDb();
      const storage = await open({ path });
      const w = await seed(storage, { ordering: 'entity' });
      const host = new Database(path);
      disposers.push(() => host.close());
      host.exec('BEGIN IMMEDIATE');
      const dropped = await storage.enqueueDeliveries([makeDelivery(w.id, { orderingKey: 'k' })], { transaction: host });
      expect(dropped.deliveries[0]!.sequence).toBe(1);
      host.exec('ROLLBACK');
      expect((await storage.enqueueDeliveries([makeDelivery(w.id, { orderingKey: 'k' })])).deliveries[0]!.sequence).toBe(1);
      host.exec('BEGIN IMMEDIATE');
      await storage.enqueueDeliveries([makeDelivery(w.id, { orderingKey: 'k' })], { transaction: host });
      host.exec('COMMIT');
      expect((await storage.getQueueStats(w.id, T0))?.held).toBe(1);
    });

    it('tells nextRunAt about work committed by a host before any claim has read its signal', async () => {
      const path = fileDb();
      const storage = await open({ path });
      const w = await seed(storage);
      const host = new Database(path);
      disposers.push(() => host.close());
      host.exec('BEGIN IMMEDIATE');
      await storage.enqueueDeliveries([makeDelivery(w.id, { runAt: T0 + 500 })], { transaction: host });
      host.exec('COMMIT');
      expect(await storage.nextRunAt()).toBe(T0 + 500);
      expect(await claim(storage, { now: T0 + 499 })).toEqual([]);
      expect(await claim(storage, { now: T0 + 500 })).toHaveLength(1);
    });
  });

  describe('two connections on one file', () => {
    async function pair(options: { worker?: boolean } = {}) {
      const path = fileDb();
      const a = await open({ path, ...options });
      const b = await open({ path, ...options });
      return { a, b };
    }

    it("share a webhook's cap", async () => {
      const { a, b } = await pair();
      const w = await seed(a, { concurrency: 3 });
      await a.enqueueDeliveries(Array.from({ length: 10 }, () => makeDelivery(w.id)));
      const fromA = await claim(a, { limit: 2 });
      expect(fromA).toHaveLength(2);
      expect(await claim(b)).toHaveLength(1);
      expect(await claim(a)).toEqual([]);
      expect(await finish(b, fromA[0]!)).toBe(true);
      expect(await claim(a)).toHaveLength(1);
      expect((await b.getQueueStats(w.id, T0))?.inFlight).toBe(3);
    });

    it('share ordering: a key is let out by whichever connection finishes its head', async () => {
      const { a, b } = await pair();
      const w = await seed(a, { ordering: 'entity' });
      const [k1, k2, k3] = [makeDelivery(w.id, { orderingKey: 'k' }), makeDelivery(w.id, { orderingKey: 'k' }), makeDelivery(w.id, { orderingKey: 'k' })];
      await a.enqueueDeliveries([k1]);
      await b.enqueueDeliveries([k2, k3]);
      const [head] = await claim(b);
      expect(head).toMatchObject({ id: k1.id, sequence: 1 });
      expect(await claim(a)).toEqual([]);
      expect(await finish(b, head!, { status: 'failed', lastStatus: 500, lastError: 'exhausted' })).toBe(true);
      const [second] = await claim(a);
      expect(second).toMatchObject({ id: k2.id, sequence: 2 });
      expect(await b.cancelDelivery(second!.id, { leaseToken: second!.leaseToken, reason: 'webhook is disabled' })).toBe(true);
      expect((await claim(b)).map((c) => c.sequence)).toEqual([3]);
    });

    it('share a rate limit and a pause', async () => {
      const { a, b } = await pair({ worker: false });
      const w = await seed(a, { rateLimit: { perSecond: 2, burst: 2 } });
      await a.enqueueDeliveries(Array.from({ length: 10 }, () => makeDelivery(w.id)));
      expect(await claim(a, { limit: 1 })).toHaveLength(1);
      expect(await claim(b)).toHaveLength(1);
      expect(await claim(a)).toEqual([]);
      await b.pauseQueue(w.id, T0 + 5_000);
      expect(await claim(a, { now: T0 + 4_999 })).toEqual([]);
      expect(await a.nextRunAt()).toBe(T0 + 5_000);
      expect(await claim(a, { now: T0 + 5_000 })).toHaveLength(2);
    });

    it("take over a dead connection's leases without counting them twice", async () => {
      const { a, b } = await pair();
      const w = await seed(a, { concurrency: 2 });
      await a.enqueueDeliveries(Array.from({ length: 4 }, () => makeDelivery(w.id)));
      const dead = await claim(a, { leaseMs: 1_000 });
      expect(dead).toHaveLength(2);
      const taken = await claim(b, { now: T0 + 1_001 });
      expect(taken.map((c) => c.id).sort()).toEqual(dead.map((c) => c.id).sort());
      expect(await finish(a, dead[0]!)).toBe(false);
      expect((await b.getQueueStats(w.id, T0 + 1_001))?.inFlight).toBe(2);
      for (const c of taken) expect(await finish(b, c)).toBe(true);
      expect(await claim(a, { now: T0 + 1_001 })).toHaveLength(2);
    });
  });

  describe('rate limits', () => {
    it('keeps the tokens, up to the new burst, when the limit changes', async () => {
      const storage = await open({ path: fileDb(), worker: false });
      const w = await seed(storage, { rateLimit: { perSecond: 1, burst: 10 } });
      await storage.enqueueDeliveries(Array.from({ length: 40 }, () => makeDelivery(w.id)));
      expect(await claim(storage, { limit: 4 })).toHaveLength(4);
      // Six left: a larger burst does not fill the bucket, a smaller one caps it.
      await storage.updateWebhook({ ...w, rateLimit: { perSecond: 1, burst: 20 } });
      expect(await claim(storage, { limit: 1 })).toHaveLength(1);
      await storage.updateWebhook({ ...w, rateLimit: { perSecond: 1, burst: 3 } });
      expect(await claim(storage)).toHaveLength(3);
      expect(await claim(storage, { now: T0 + 999 })).toEqual([]);
      expect(await claim(storage, { now: T0 + 1_000 })).toHaveLength(1);
    });

    it('refills a fractional rate exactly, claim after claim', async () => {
      const storage = await open({ path: fileDb(), worker: false });
      const w = await seed(storage, { rateLimit: { perSecond: 3, burst: 3 } });
      await storage.enqueueDeliveries(Array.from({ length: 200 }, () => makeDelivery(w.id)));
      let claimed = 0;
      // A claim every 37 ms for 10 s, a token every 333⅓ ms: fractions carry over from claim to
      // claim (the bucket never fills up again), so by T0 + 9,990 it gave the burst and
      // ⌊9,990 × 3 / 1000⌋ = 29 more.
      for (let t = T0; t <= T0 + 10_000; t += 37) claimed += (await claim(storage, { now: t })).length;
      expect(claimed).toBe(3 + 29);
    });
  });

  describe('deliveries whose webhook is gone', () => {
    it('are cancelled when enqueued after the webhook was deleted', async () => {
      const storage = await open({ database: new Database(':memory:') });
      const w = await seed(storage, { ordering: 'entity' });
      await storage.deleteWebhook(w.id);
      const late = makeDelivery(w.id, { orderingKey: 'k' });
      expect((await storage.enqueueDeliveries([late])).deliveries[0]).toMatchObject({ coalesced: false, sequence: null });
      expect(await storage.getDelivery(late.id)).toMatchObject({ status: 'cancelled', lastError: 'webhook was deleted' });
      expect(await storage.nextRunAt()).toBeNull();
    });

    it('are cancelled, not stranded, when an attempt in flight asks for a retry, is released or its lease expires', async () => {
      const storage = await open({ database: new Database(':memory:') });
      const w = await seed(storage);
      await storage.enqueueDeliveries(Array.from({ length: 3 }, () => makeDelivery(w.id)));
      const [retried, released, expired] = await claim(storage, { leaseMs: 1_000 });
      await storage.deleteWebhook(w.id);
      expect(await finish(storage, retried!, { status: 'scheduled', runAt: T0 + 60_000, lastStatus: 503, lastError: 'HTTP 503' })).toBe(true);
      expect(await storage.releaseDelivery(released!.id, released!.leaseToken)).toBe(true);
      expect(await claim(storage, { now: T0 + 1_001 })).toEqual([]);
      for (const d of [retried, released, expired]) {
        expect(await storage.getDelivery(d!.id)).toMatchObject({ status: 'cancelled', lastError: 'webhook was deleted' });
      }
      expect(await storage.nextRunAt()).toBeNull();
    });
  });

  it('validates what queue state is built from, naming the field', async () => {
    const storage = await open({ database: new Database(':memory:') });
    const w = await seed(storage);
    const field = (path: string) => expect.objectContaining({ name: 'WebhookValidationError', field: path });
    await expect(storage.insertWebhook(makeWebhook({ concurrency: 0 }))).rejects.toThrow(field('concurrency'));
    await expect(storage.insertWebhook(makeWebhook({ rateLimit: { perSecond: 0, burst: 1 } }))).rejects.toThrow(field('rateLimit.perSecond'));
    await expect(storage.updateWebhook({ ...w, rateLimit: { perSecond: 1, burst: 0.5 } })).rejects.toThrow(field('rateLimit.burst'));
    await expect(storage.updateWebhook({ ...w, ordering: 'global' as never })).rejects.toThrow(field('ordering'));
    await expect(claim(storage, { defaultConcurrency: 0 })).rejects.toThrow(field('defaultConcurrency'));
    await expect(claim(storage, { now: Number.NaN })).rejects.toThrow(field('now'));
    await expect(storage.pauseQueue(w.id, Number.POSITIVE_INFINITY)).rejects.toThrow(field('until'));
    await expect(storage.getQueueStats(w.id, Number.NaN)).rejects.toThrow(field('now'));
    await expect(storage.enqueueDeliveries([makeDelivery(w.id, { status: 'held' })])).rejects.toThrow(field('deliveries.0.status'));
    await expect(storage.enqueueDeliveries([makeDelivery(w.id)], { sequencePlaceholder: '' })).rejects.toThrow(field('sequencePlaceholder'));
    await expect(storage.enqueueDeliveries([makeDelivery(w.id), null as never])).rejects.toThrow(field('deliveries.1'));
    await expect(storage.completeAttempts([{ deliveryId: 'msg_x', leaseToken: 't', outcome: { status: 'done' } } as never])).rejects.toBeInstanceOf(
      WebhookValidationError,
    );
    expect(await storage.getWebhook(w.id)).toEqual(w);
    expect(await storage.countDeliveries()).toEqual({});
  });
});
