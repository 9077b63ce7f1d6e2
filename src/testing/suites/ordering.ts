/**
 * Per-key ordering: gap-free sequence numbers assigned at enqueue, one delivery per webhook and key
 * at a time, and every way a delivery can end handing the key to the next one.
 *
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { AttemptOutcome, ClaimedDelivery, DeliveryRecord, WebhookRecord, WebhookStorage } from '../../storage/types.js';
import type { ConformanceContext } from '../context.js';
import { makeDelivery, makeExecution, T0 } from '../fixtures.js';

const OK: AttemptOutcome = { status: 'succeeded', lastStatus: 200, lastError: null };
const FAILED: AttemptOutcome = { status: 'failed', lastStatus: 500, lastError: 'HTTP 500; attempts exhausted (11)' };
const RETRY: AttemptOutcome = { status: 'scheduled', runAt: T0 + 60_000, lastStatus: 503, lastError: 'HTTP 503' };

export function orderingSuite(ctx: ConformanceContext): void {
  const seedWebhook = ctx.seedWebhook;

  describe('ordering per key', () => {
    let storage: WebhookStorage;
    let w: WebhookRecord;
    beforeEach(async () => {
      storage = ctx.storage;
      w = await seedWebhook({ ordering: 'entity' });
    });

    const keyed = (key: string, overrides: Partial<DeliveryRecord> = {}) => makeDelivery(w.id, { orderingKey: key, ...overrides });
    const claimAll = (now = T0) => ctx.claim({ now, limit: 100, leaseMs: 30_000 });
    async function finish(claimed: ClaimedDelivery, outcome: AttemptOutcome = OK): Promise<void> {
      const done = await storage.completeAttempt({
        deliveryId: claimed.id,
        leaseToken: claimed.leaseToken,
        outcome,
        execution: makeExecution(claimed, { success: outcome.status === 'succeeded' }),
      });
      expect(done).toBe(true);
    }
    const statusOf = async (id: string) => (await storage.getDelivery(id))?.status;

    it('numbers deliveries per webhook and key from 1, gap-free, in enqueue order', async () => {
      const other = await seedWebhook({ ordering: 'entity' });
      const result = await storage.enqueueDeliveries([keyed('order:1'), keyed('order:2'), keyed('order:1'), makeDelivery(other.id, { orderingKey: 'order:1' })]);
      expect(result.deliveries.map((d) => d.sequence)).toEqual([1, 1, 2, 1]);
      const more = await storage.enqueueDeliveries([keyed('order:1')]);
      expect(more.deliveries[0]!.sequence).toBe(3);
      const stored = await storage.getDelivery(more.deliveries[0]!.id);
      expect(stored).toMatchObject({ orderingKey: 'order:1', sequence: 3, status: 'held' });
      const unordered = await storage.enqueueDeliveries([makeDelivery(w.id)]);
      expect(unordered.deliveries[0]!.sequence).toBeNull();
    });

    it('gives each concurrent enqueue of one key its own number', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => storage.enqueueDeliveries([keyed('order:9')])));
      expect(results.map((r) => r.deliveries[0]!.sequence).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it('lets one delivery per key out at a time, in sequence order; other keys flow', async () => {
      const [a1, a2, a3, b1] = [keyed('a', { runAt: T0 - 10 }), keyed('a', { runAt: T0 - 20 }), keyed('a'), keyed('b')];
      await storage.enqueueDeliveries([a1, a2, a3, b1]);
      const first = await claimAll();
      expect(first.map((d) => d.id).sort()).toEqual([a1.id, b1.id].sort());
      expect(await statusOf(a2.id)).toBe('held');
      await finish(first.find((d) => d.id === a1.id)!);
      expect(await statusOf(a2.id)).toBe('pending');
      const second = await claimAll();
      expect(second.map((d) => d.id)).toEqual([a2.id]);
      expect(second[0]!.sequence).toBe(2);
      await finish(second[0]!);
      expect((await claimAll()).map((d) => d.id)).toEqual([a3.id]);
    });

    it('keeps later deliveries held while an earlier one waits for its retry', async () => {
      const [a1, a2] = [keyed('a'), keyed('a')];
      await storage.enqueueDeliveries([a1, a2]);
      const [c1] = await claimAll();
      await finish(c1!, RETRY);
      expect(await claimAll(T0 + 30_000)).toEqual([]);
      expect(await statusOf(a2.id)).toBe('held');
      const [retry] = await claimAll(T0 + 60_000);
      expect(retry).toMatchObject({ id: a1.id, sequence: 1, attempts: 1 });
      await finish(retry!);
      expect((await claimAll(T0 + 60_000)).map((d) => d.id)).toEqual([a2.id]);
    });

    it.each([
      ['succeeds', OK],
      ['fails for good (retries exhausted)', FAILED],
    ] as const)('hands the key on when the delivery in front %s', async (_what, outcome) => {
      const [a1, a2] = [keyed('a'), keyed('a')];
      await storage.enqueueDeliveries([a1, a2]);
      const [c1] = await claimAll();
      await finish(c1!, outcome);
      const [next] = await claimAll();
      expect(next).toMatchObject({ id: a2.id, sequence: 2 });
    });

    it('hands the key on when the delivery in front is cancelled, waiting or under its lease', async () => {
      const [a1, a2, a3] = [keyed('a'), keyed('a'), keyed('a')];
      await storage.enqueueDeliveries([a1, a2, a3]);
      expect(await storage.cancelDelivery(a1.id, { reason: 'cancelled' })).toBe(true);
      const [c2] = await claimAll();
      expect(c2?.id).toBe(a2.id);
      expect(await storage.cancelDelivery(a2.id, { leaseToken: c2!.leaseToken, reason: 'webhook is disabled' })).toBe(true);
      expect((await claimAll()).map((d) => d.id)).toEqual([a3.id]);
    });

    it('skips a held delivery that was cancelled when its turn comes', async () => {
      const [a1, a2, a3] = [keyed('a'), keyed('a'), keyed('a')];
      await storage.enqueueDeliveries([a1, a2, a3]);
      expect(await storage.cancelDelivery(a2.id, { reason: 'cancelled' })).toBe(true);
      expect(await statusOf(a2.id)).toBe('cancelled');
      const [c1] = await claimAll();
      await finish(c1!);
      expect((await claimAll()).map((d) => d.id)).toEqual([a3.id]);
    });

    it('numbers a delivery enqueued already final (a render failure) and never waits for it', async () => {
      const a1 = keyed('a', { status: 'failed', lastError: 'payload could not be rendered' });
      const [a2, a3] = [keyed('a'), keyed('a')];
      const r = await storage.enqueueDeliveries([a1, a2]);
      expect(r.deliveries.map((d) => d.sequence)).toEqual([1, 2]);
      const [c2] = await claimAll();
      expect(c2).toMatchObject({ id: a2.id, sequence: 2 });
      await storage.enqueueDeliveries([keyed('a', { status: 'failed' }), a3]);
      await finish(c2!);
      expect((await claimAll()).map((d) => d.sequence)).toEqual([4]);
    });

    it('gives the key back when the lease of the delivery in front expires, or it is released', async () => {
      const [a1, a2] = [keyed('a'), keyed('a')];
      await storage.enqueueDeliveries([a1, a2]);
      const [c1] = await ctx.claim({ now: T0, limit: 10, leaseMs: 1_000 });
      const [again] = await ctx.claim({ now: T0 + 1_001, limit: 10, leaseMs: 1_000 });
      expect(again?.id).toBe(a1.id);
      expect(await storage.releaseDelivery(again!.id, again!.leaseToken)).toBe(true);
      const [third] = await ctx.claim({ now: T0 + 1_001, limit: 10, leaseMs: 1_000 });
      expect(third?.id).toBe(a1.id);
      expect(await statusOf(a2.id)).toBe('held');
      expect(c1?.id).toBe(a1.id);
    });

    it('cancels held deliveries with their webhook', async () => {
      const [a1, a2] = [keyed('a'), keyed('a')];
      await storage.enqueueDeliveries([a1, a2]);
      await storage.deleteWebhook(w.id);
      expect(await statusOf(a1.id)).toBe('cancelled');
      expect(await statusOf(a2.id)).toBe('cancelled');
    });

    it('writes the number into the body in place of the placeholder, also when merging', async () => {
      const placeholder = '8304719265531097';
      const r = await storage.enqueueDeliveries(
        [keyed('a', { body: `{"seq":${placeholder},"again":"${placeholder}"}` }), keyed('a', { body: `{"seq":${placeholder}}`, coalesceKey: 'order:a' })],
        { sequencePlaceholder: placeholder },
      );
      expect((await storage.getDelivery(r.deliveries[0]!.id))?.body).toBe('{"seq":1,"again":"1"}');
      expect((await storage.getDelivery(r.deliveries[1]!.id))?.body).toBe('{"seq":2}');
      // A later emit merges into the held delivery: it takes the body and keeps the number.
      const merged = await storage.enqueueDeliveries([keyed('a', { body: `{"seq":${placeholder},"v":2}`, coalesceKey: 'order:a' })], {
        sequencePlaceholder: placeholder,
      });
      expect(merged.deliveries[0]).toMatchObject({ id: r.deliveries[1]!.id, coalesced: true, sequence: 2 });
      expect((await storage.getDelivery(r.deliveries[1]!.id))?.body).toBe('{"seq":2,"v":2}');
      const next = await storage.enqueueDeliveries([keyed('a')]);
      expect(next.deliveries[0]!.sequence).toBe(3);
    });

    it('takes a redelivered delivery out of ordering, keeping its number', async () => {
      const [a1, a2] = [keyed('a'), keyed('a')];
      await storage.enqueueDeliveries([a1, a2]);
      const [c1] = await claimAll();
      await finish(c1!);
      const [c2] = await claimAll();
      expect(c2?.id).toBe(a2.id);
      // While a2 is in flight, a1 is sent again: it does not wait for the key, nor hold it.
      expect(await storage.requeueDeliveries({ deliveryIds: [a1.id], runAt: T0, now: T0 })).toEqual([a1.id]);
      expect(await storage.getDelivery(a1.id)).toMatchObject({ status: 'pending', orderingKey: null, sequence: 1 });
      const [replayed] = await claimAll();
      expect(replayed).toMatchObject({ id: a1.id, sequence: 1, orderingKey: null });
      await finish(replayed!);
      await finish(c2!);
      const a3 = keyed('a');
      await storage.enqueueDeliveries([a3]);
      expect((await claimAll()).map((d) => d.id)).toEqual([a3.id]);
    });

    it('counts blocked keys and held deliveries in the queue figures', async () => {
      await storage.enqueueDeliveries([keyed('a'), keyed('a'), keyed('a'), keyed('b'), keyed('b'), keyed('c')]);
      expect(await storage.getQueueStats(w.id, T0)).toMatchObject({ held: 3, blockedKeys: 2, due: 3 });
    });
  });
}
