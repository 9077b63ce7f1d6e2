/**
 * One queue per webhook: caps shared by every claimer, webhook priority, queues taking turns,
 * test sends ahead of everything, pauses, and the queue's figures.
 *
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { leaseSweepDelayMs, type AttemptOutcome, type ClaimedDelivery, type WebhookStorage } from '../../storage/types.js';
import type { ConformanceContext } from '../context.js';
import { makeDelivery, makeExecution, T0 } from '../fixtures.js';

const OK: AttemptOutcome = { status: 'succeeded', lastStatus: 200, lastError: null };

export function queueSuite(ctx: ConformanceContext): void {
  const seedWebhook = ctx.seedWebhook;

  describe('one queue per webhook', () => {
    let storage: WebhookStorage;
    beforeEach(() => {
      storage = ctx.storage;
    });

    async function finish(claimed: ClaimedDelivery, outcome: AttemptOutcome = OK, at = T0): Promise<void> {
      const done = await storage.completeAttempt({
        deliveryId: claimed.id,
        leaseToken: claimed.leaseToken,
        outcome,
        execution: makeExecution(claimed, { startedAt: at, endedAt: at }),
      });
      expect(done).toBe(true);
    }

    const webhookIds = (claimed: readonly ClaimedDelivery[]) => claimed.map((d) => d.webhookId);

    it("never has more of a webhook's deliveries in flight than its concurrency", async () => {
      const w = await seedWebhook({ concurrency: 3 });
      await storage.enqueueDeliveries(Array.from({ length: 10 }, () => makeDelivery(w.id)));
      const first = await ctx.claim({ now: T0, limit: 10, leaseMs: 30_000 });
      expect(first).toHaveLength(3);
      expect(await ctx.claim({ now: T0, limit: 10, leaseMs: 30_000 })).toEqual([]);
      await finish(first[0]!);
      const next = await ctx.claim({ now: T0, limit: 10, leaseMs: 30_000 });
      expect(next).toHaveLength(1);
      expect((await storage.getQueueStats(w.id, T0))?.inFlight).toBe(3);
    });

    it("applies the claim's defaultConcurrency to webhooks without their own", async () => {
      const w = await seedWebhook({ concurrency: null });
      await storage.enqueueDeliveries(Array.from({ length: 6 }, () => makeDelivery(w.id)));
      expect(await ctx.claim({ now: T0, limit: 10, leaseMs: 30_000, defaultConcurrency: 4 })).toHaveLength(4);
      expect(await ctx.claim({ now: T0, limit: 10, leaseMs: 30_000, defaultConcurrency: 4 })).toHaveLength(0);
      expect(await ctx.claim({ now: T0, limit: 10, leaseMs: 30_000, defaultConcurrency: 5 })).toHaveLength(1);
    });

    it('holds the cap under 20 concurrent claimers', async () => {
      const w = await seedWebhook({ concurrency: 5 });
      await storage.enqueueDeliveries(Array.from({ length: 50 }, () => makeDelivery(w.id)));
      const batches = await Promise.all(Array.from({ length: 20 }, () => ctx.claim({ now: T0, limit: 3, leaseMs: 30_000 })));
      const ids = batches.flat().map((d) => d.id);
      expect(ids).toHaveLength(5);
      expect(new Set(ids).size).toBe(5);
    });

    it('frees the place when a delivery is released, cancelled under its lease, or its lease expires', async () => {
      const w = await seedWebhook({ concurrency: 1 });
      await storage.enqueueDeliveries([makeDelivery(w.id, { runAt: T0 - 3 }), makeDelivery(w.id, { runAt: T0 - 2 }), makeDelivery(w.id, { runAt: T0 - 1 })]);
      const [a] = await ctx.claim({ now: T0, limit: 5, leaseMs: 1_000 });
      expect(await storage.releaseDelivery(a!.id, a!.leaseToken)).toBe(true);
      const [again] = await ctx.claim({ now: T0, limit: 5, leaseMs: 1_000 });
      expect(again?.id).toBe(a!.id);
      expect(await storage.cancelDelivery(again!.id, { leaseToken: again!.leaseToken, reason: 'test' })).toBe(true);
      const [b] = await ctx.claim({ now: T0, limit: 5, leaseMs: 1_000 });
      expect(b).toBeDefined();
      expect(b!.id).not.toBe(a!.id);
      expect(await ctx.claim({ now: T0 + 999, limit: 5, leaseMs: 1_000 })).toEqual([]);
      // b's owner died: after expiry (noticed up to leaseSweepDelayMs late) b is due again and its
      // place is not counted twice.
      const after = T0 + 1_000 + leaseSweepDelayMs(1_000);
      const retaken = await ctx.claim({ now: after, limit: 5, leaseMs: 1_000 });
      expect(retaken.map((d) => d.id)).toEqual([b!.id]);
      expect((await storage.getQueueStats(w.id, after))?.inFlight).toBe(1);
      // The dead owner's completion is fenced and frees nothing.
      expect(
        await storage.completeAttempt({ deliveryId: b!.id, leaseToken: b!.leaseToken, outcome: OK, execution: makeExecution(b!) }),
      ).toBe(false);
      expect((await storage.getQueueStats(w.id, after))?.inFlight).toBe(1);
      await finish(retaken[0]!);
      expect((await storage.getQueueStats(w.id, after))?.inFlight).toBe(0);
      expect(await ctx.claim({ now: after, limit: 5, leaseMs: 1_000 })).toHaveLength(1);
    });

    it('finds work that becomes due behind what it already claimed: a release to an earlier time, an older enqueue', async () => {
      const w = await seedWebhook({ concurrency: 10 });
      const rows = Array.from({ length: 4 }, (_, i) => makeDelivery(w.id, { runAt: T0 - 100 + i }));
      await storage.enqueueDeliveries(rows);
      const first = await ctx.claim({ now: T0, limit: 2, leaseMs: 30_000 });
      expect(first.map((d) => d.id)).toEqual([rows[0]!.id, rows[1]!.id]);
      expect(await storage.releaseDelivery(first[0]!.id, first[0]!.leaseToken, T0 - 1_000)).toBe(true);
      const old = makeDelivery(w.id, { runAt: T0 - 5_000 });
      await storage.enqueueDeliveries([old]);
      const next = await ctx.claim({ now: T0, limit: 10, leaseMs: 30_000 });
      expect(next.map((d) => d.id)).toEqual([old.id, first[0]!.id, rows[2]!.id, rows[3]!.id]);
      // With nothing left waiting, an arrival older than everything claimed is found too.
      const oldest = makeDelivery(w.id, { runAt: T0 - 9_000 });
      await storage.enqueueDeliveries([oldest]);
      expect((await ctx.claim({ now: T0, limit: 10, leaseMs: 30_000 })).map((d) => d.id)).toEqual([oldest.id]);
    });

    it("serves higher-priority webhooks first, up to their cap", async () => {
      const low = await seedWebhook({ priority: 0, concurrency: 10 });
      const high = await seedWebhook({ priority: 5, concurrency: 2 });
      await storage.enqueueDeliveries([
        ...Array.from({ length: 3 }, () => makeDelivery(low.id, { runAt: T0 - 1_000 })),
        ...Array.from({ length: 3 }, () => makeDelivery(high.id, { runAt: T0 })),
      ]);
      const claimed = await ctx.claim({ now: T0, limit: 3, leaseMs: 30_000 });
      expect(webhookIds(claimed)).toEqual([high.id, high.id, low.id]);
    });

    it("gives a webhook's fresh work its turn behind another webhook's backlog", async () => {
      const busy = await seedWebhook({ concurrency: 4 });
      const quiet = await seedWebhook({ concurrency: 4 });
      await storage.enqueueDeliveries(Array.from({ length: 500 }, (_, i) => makeDelivery(busy.id, { runAt: T0 - 10_000 + i })));
      await storage.enqueueDeliveries([makeDelivery(quiet.id, { runAt: T0 })]);
      const claimed = await ctx.claim({ now: T0, limit: 20, leaseMs: 30_000 });
      expect(webhookIds(claimed).filter((id) => id === busy.id)).toHaveLength(4);
      expect(webhookIds(claimed).filter((id) => id === quiet.id)).toHaveLength(1);
    });

    it('lets equal queues take turns: a queue just served goes behind the others', async () => {
      const hooks = [await seedWebhook(), await seedWebhook(), await seedWebhook()];
      for (const w of hooks) await storage.enqueueDeliveries(Array.from({ length: 5 }, () => makeDelivery(w.id)));
      const served: string[] = [];
      for (let i = 0; i < 9; i++) {
        const [one] = await ctx.claim({ now: T0 + i, limit: 1, leaseMs: 30_000 });
        expect(one).toBeDefined();
        served.push(one!.webhookId);
        await finish(one!, OK, T0 + i);
      }
      // Every webhook once per round of three, none twice in a row.
      for (let round = 0; round < 3; round++) {
        expect(new Set(served.slice(round * 3, round * 3 + 3)).size).toBe(3);
      }
      expect(served.slice(3)).toEqual([...served.slice(0, 3), ...served.slice(0, 3)]);
    });

    it('takes turns within one claim too when the limit is smaller than what is ready', async () => {
      const a = await seedWebhook({ concurrency: 2 });
      const b = await seedWebhook({ concurrency: 2 });
      await storage.enqueueDeliveries(Array.from({ length: 4 }, () => makeDelivery(a.id)));
      await storage.enqueueDeliveries(Array.from({ length: 4 }, () => makeDelivery(b.id)));
      const claimed = await ctx.claim({ now: T0, limit: 4, leaseMs: 30_000 });
      expect(webhookIds(claimed).sort()).toEqual([a.id, a.id, b.id, b.id].sort());
    });

    it('claims test sends first, outside the cap and any pause', async () => {
      const w = await seedWebhook({ concurrency: 1 });
      await storage.enqueueDeliveries([makeDelivery(w.id), makeDelivery(w.id)]);
      const [regular] = await ctx.claim({ now: T0, limit: 1, leaseMs: 30_000 });
      // The queue's one place is taken before the pause: the test send must pass both.
      expect(regular).toMatchObject({ webhookId: w.id, isTest: false });
      await storage.pauseQueue(w.id, T0 + 60_000);
      const test = makeDelivery(w.id, { isTest: true, runAt: T0 + 5 });
      await storage.enqueueDeliveries([test]);
      const claimed = await ctx.claim({ now: T0 + 5, limit: 5, leaseMs: 30_000 });
      expect(claimed.map((d) => d.id)).toEqual([test.id]);
    });

    it('keeps retries scheduled for later out of the way of due work', async () => {
      const w = await seedWebhook({ concurrency: 5 });
      await storage.enqueueDeliveries([makeDelivery(w.id), makeDelivery(w.id)]);
      const [first] = await ctx.claim({ now: T0, limit: 1, leaseMs: 3_600_000 });
      await finish(first!, { status: 'scheduled', runAt: T0 + 60_000, lastStatus: 503, lastError: 'HTTP 503' });
      const [second] = await ctx.claim({ now: T0, limit: 5, leaseMs: 3_600_000 });
      expect(second).toBeDefined();
      expect(second!.id).not.toBe(first!.id);
      expect(await ctx.claim({ now: T0 + 59_999, limit: 5, leaseMs: 3_600_000 })).toEqual([]);
      const retry = await ctx.claim({ now: T0 + 60_000, limit: 5, leaseMs: 3_600_000 });
      expect(retry.map((d) => d.id)).toEqual([first!.id]);
    });

    it('gives a paused queue nothing until the pause ends, and null lifts it', async () => {
      const paused = await seedWebhook();
      const other = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(paused.id), makeDelivery(paused.id), makeDelivery(other.id)]);
      await storage.pauseQueue(paused.id, T0 + 30_000);
      expect(webhookIds(await ctx.claim({ now: T0, limit: 10, leaseMs: 3_600_000 }))).toEqual([other.id]);
      expect(await storage.nextRunAt()).toBe(T0 + 30_000);
      expect(await ctx.claim({ now: T0 + 29_999, limit: 10, leaseMs: 3_600_000 })).toEqual([]);
      expect(await ctx.claim({ now: T0 + 30_000, limit: 1, leaseMs: 3_600_000 })).toHaveLength(1);
      await storage.pauseQueue(paused.id, T0 + 90_000);
      expect(await ctx.claim({ now: T0 + 30_000, limit: 10, leaseMs: 3_600_000 })).toEqual([]);
      await storage.pauseQueue(paused.id, null);
      expect(await ctx.claim({ now: T0 + 30_000, limit: 10, leaseMs: 3_600_000 })).toHaveLength(1);
    });

    it('follows a changed priority and concurrency from the next claim', async () => {
      const a = await seedWebhook({ concurrency: 1 });
      const b = await seedWebhook({ concurrency: 1 });
      await storage.enqueueDeliveries(Array.from({ length: 4 }, () => makeDelivery(a.id)));
      await storage.enqueueDeliveries(Array.from({ length: 4 }, () => makeDelivery(b.id)));
      expect(await storage.updateWebhook({ ...b, priority: 9, concurrency: 3 })).toBe(true);
      const claimed = await ctx.claim({ now: T0, limit: 3, leaseMs: 30_000 });
      expect(webhookIds(claimed)).toEqual([b.id, b.id, b.id]);
    });

    it('is not left short by queues that an update or a pause made ready with nothing due', async () => {
      const busy = await seedWebhook();
      const quiet = [await seedWebhook(), await seedWebhook(), await seedWebhook()];
      const due = makeDelivery(busy.id, { runAt: T0 });
      await storage.enqueueDeliveries([due, makeDelivery(quiet[2]!.id, { runAt: T0 + 60_000 })]);
      expect(await storage.updateWebhook({ ...quiet[0]!, concurrency: 2 })).toBe(true);
      expect(await storage.updateWebhook({ ...quiet[1]!, rateLimit: { perSecond: 5, burst: 5 } })).toBe(true);
      await storage.pauseQueue(quiet[2]!.id, T0 - 1);
      expect((await ctx.claim({ now: T0, limit: 1, leaseMs: 30_000 })).map((d) => d.id)).toEqual([due.id]);
    });

    it('cancels waiting deliveries when the webhook is deleted; those in flight finish fenced as usual', async () => {
      const w = await seedWebhook({ concurrency: 1 });
      const [inFlight, waiting] = [makeDelivery(w.id, { runAt: T0 - 1 }), makeDelivery(w.id)];
      await storage.enqueueDeliveries([inFlight, waiting]);
      const [claimed] = await ctx.claim({ now: T0, limit: 5, leaseMs: 30_000 });
      expect(claimed?.id).toBe(inFlight.id);
      expect(await storage.deleteWebhook(w.id)).toBe(true);
      expect((await storage.getDelivery(waiting.id))?.status).toBe('cancelled');
      expect(await storage.getQueueStats(w.id, T0)).toBeNull();
      await finish(claimed!);
      expect((await storage.getDelivery(inFlight.id))?.status).toBe('succeeded');
      expect(await ctx.claim({ now: T0, limit: 5, leaseMs: 30_000 })).toEqual([]);
    });

    it("reports the queue's figures", async () => {
      const w = await seedWebhook({ concurrency: 2, ordering: 'entity' });
      expect(await storage.getQueueStats(w.id, T0)).toEqual({
        webhookId: w.id,
        depth: 0,
        due: 0,
        scheduled: 0,
        held: 0,
        inFlight: 0,
        oldestDueAt: null,
        blockedKeys: 0,
        pausedUntil: null,
      });
      await storage.enqueueDeliveries([
        makeDelivery(w.id, { runAt: T0 - 500, orderingKey: 'order:1' }),
        makeDelivery(w.id, { runAt: T0 - 400, orderingKey: 'order:1' }),
        makeDelivery(w.id, { runAt: T0 - 300, orderingKey: 'order:1' }),
        makeDelivery(w.id, { runAt: T0 - 200 }),
        makeDelivery(w.id, { runAt: T0 - 100 }),
        makeDelivery(w.id, { runAt: T0 + 5_000 }),
      ]);
      await ctx.claim({ now: T0, limit: 1, leaseMs: 30_000 });
      await storage.pauseQueue(w.id, T0 + 1_000);
      expect(await storage.getQueueStats(w.id, T0)).toEqual({
        webhookId: w.id,
        depth: 5,
        due: 2,
        scheduled: 1,
        held: 2,
        inFlight: 1,
        oldestDueAt: T0 - 200,
        blockedKeys: 1,
        pausedUntil: T0 + 1_000,
      });
      expect(await storage.getQueueStats('wh_missing', T0)).toBeNull();
    });
  });
}
