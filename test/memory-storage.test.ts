import { describe, expect, it } from 'vitest';
import { MemoryStorage } from 'webhook-dispatcher';
import { describeStorageConformance, makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';

describeStorageConformance('MemoryStorage', () => new MemoryStorage());

// MemoryStorage keeps its queues and indexes in its own shapes (run heaps, executions on the
// delivery, leases dropped once ended): these pin the cases the shared suite does not reach.
describe('MemoryStorage internals', () => {
  const T0 = Date.UTC(2030, 0, 1);
  const ok = { status: 'succeeded', lastStatus: 200, lastError: null } as const;

  /** Claims with a default cap that never binds: these tests are about the heaps, not caps. */
  const claim = (storage: MemoryStorage, request: { now: number; limit: number; leaseMs: number }) =>
    storage.claimDueDeliveries({ ...request, defaultConcurrency: 1_000 });

  async function withWebhook() {
    const storage = new MemoryStorage();
    const webhook = makeWebhook();
    await storage.insertWebhook(webhook);
    return { storage, webhook };
  }

  it('keeps a pruned delivery’s remaining executions listable by its id', async () => {
    const { storage, webhook } = await withWebhook();
    const delivery = makeDelivery(webhook.id);
    await storage.enqueueDeliveries([delivery]);
    const [first] = await claim(storage, { now: T0, limit: 1, leaseMs: 1_000 });
    const failed = makeExecution(first!, { status: 500, success: false, startedAt: T0, endedAt: T0 + 5 });
    await storage.completeAttempt({
      deliveryId: first!.id,
      leaseToken: first!.leaseToken,
      outcome: { status: 'scheduled', runAt: T0 + 10, lastStatus: 500, lastError: 'HTTP 500' },
      execution: failed,
    });
    const [second] = await claim(storage, { now: T0 + 10, limit: 1, leaseMs: 1_000 });
    const succeeded = makeExecution(second!, { startedAt: T0 + 10, endedAt: T0 + 15 });
    await storage.completeAttempt({ deliveryId: second!.id, leaseToken: second!.leaseToken, outcome: ok, execution: succeeded });
    expect((await storage.listExecutions({ deliveryId: delivery.id, limit: 10 })).items).toEqual([succeeded, failed]);

    // Successes before T0 + 100 go, the delivery with them; the earlier failure stays.
    const pruned = await storage.prune({ deleteSucceededBefore: T0 + 100 });
    expect(pruned).toEqual({ executionsDeleted: 1, executionsStripped: 0, deliveriesDeleted: 1 });
    expect(await storage.getDelivery(delivery.id)).toBeNull();
    expect((await storage.listExecutions({ deliveryId: delivery.id, limit: 10 })).items).toEqual([failed]);

    await storage.prune({ deleteFailedBefore: T0 + 100 });
    expect((await storage.listExecutions({ deliveryId: delivery.id, limit: 10 })).items).toEqual([]);
  });

  it('never changes the execution record it was given, not even when prune strips its bodies', async () => {
    const { storage, webhook } = await withWebhook();
    await storage.enqueueDeliveries([makeDelivery(webhook.id)]);
    const [claimed] = await claim(storage, { now: T0, limit: 1, leaseMs: 1_000 });
    const execution = makeExecution(claimed!);
    const given = structuredClone(execution);
    await storage.completeAttempt({ deliveryId: claimed!.id, leaseToken: claimed!.leaseToken, outcome: ok, execution });
    expect((await storage.prune({ stripSuccessfulBodiesBefore: T0 + 100 })).executionsStripped).toBe(1);
    expect(execution).toEqual(given);
    for (const query of [{ deliveryId: claimed!.id }, { webhookId: webhook.id }, {}]) {
      const [stripped] = (await storage.listExecutions({ ...query, limit: 10 })).items;
      expect(stripped).toEqual({ ...given, requestBody: '', responseBody: '' });
    }
    // Listed records are copies: changing one changes nothing stored.
    const [listed] = (await storage.listExecutions({ deliveryId: claimed!.id, limit: 10 })).items;
    listed!.requestHeaders['content-type'] = 'changed';
    const [again] = (await storage.listExecutions({ deliveryId: claimed!.id, limit: 10 })).items;
    expect(again!.requestHeaders['content-type']).toBe('application/json');
  });

  it('expires a lease held behind leases that already ended, and only that one', async () => {
    const { storage, webhook } = await withWebhook();
    await storage.enqueueDeliveries(Array.from({ length: 4 }, () => makeDelivery(webhook.id)));
    const claimed = await claim(storage, { now: T0, limit: 4, leaseMs: 1_000 });
    // The oldest lease ends last; one in the middle is extended.
    for (const c of [claimed[1]!, claimed[3]!]) {
      await storage.completeAttempt({ deliveryId: c.id, leaseToken: c.leaseToken, outcome: ok, execution: makeExecution(c) });
    }
    expect(await storage.extendLease(claimed[2]!.id, claimed[2]!.leaseToken, T0 + 5_000)).toBe(true);
    expect(await claim(storage, { now: T0 + 999, limit: 4, leaseMs: 1_000 })).toEqual([]);
    expect(await storage.nextRunAt()).toBe(T0 + 1_000);

    const retaken = await claim(storage, { now: T0 + 1_000, limit: 4, leaseMs: 1_000 });
    expect(retaken.map((d) => d.id)).toEqual([claimed[0]!.id]);
    expect(await storage.nextRunAt()).toBe(T0 + 2_000);
    const late = await claim(storage, { now: T0 + 5_000, limit: 4, leaseMs: 1_000 });
    expect(late.map((d) => d.id).sort()).toEqual([claimed[0]!.id, claimed[2]!.id].sort());
  });

  it("claims in runAt, then id order when queued out of order, between runs of in-order deliveries", async () => {
    const { storage, webhook } = await withWebhook();
    const ids = Array.from({ length: 7 }, () => makeDelivery(webhook.id).id).sort();
    const low = [0, 1, 2].map((i) => makeDelivery(webhook.id, { id: ids[i + 1]!, createdAt: T0 + i }));
    const lowestId = makeDelivery(webhook.id, { id: ids[0]!, createdAt: T0 + 10 });
    const early = makeDelivery(webhook.id, { id: ids[4]!, runAt: T0 - 5, createdAt: T0 + 11 });
    const later = [5, 6].map((i) => makeDelivery(webhook.id, { id: ids[i]!, createdAt: T0 + 20 + i }));
    for (const d of [...low, lowestId, early, ...later]) await storage.enqueueDeliveries([d]);
    const claimed = await claim(storage, { now: T0, limit: 10, leaseMs: 1_000 });
    expect(claimed.map((d) => d.id)).toEqual([early, lowestId, ...low, ...later].map((d) => d.id));
  });

  it('requeues a delivery cancelled while waiting, which is claimed once, at its new time and in order', async () => {
    const { storage, webhook } = await withWebhook();
    const [a, b, c] = Array.from({ length: 3 }, (_, i) => makeDelivery(webhook.id, { runAt: T0 + i, createdAt: T0 + i }));
    await storage.enqueueDeliveries([a!, b!, c!]);
    expect(await storage.cancelDelivery(a!.id, { reason: 'merchant asked', now: T0 })).toBe(true);
    // Back in the queue behind b and c: its old place at the head is stale, not a second entry.
    expect(await storage.requeueDeliveries({ deliveryIds: [a!.id], statuses: ['cancelled'], runAt: T0 + 5, now: T0 + 1 })).toEqual([a!.id]);
    expect((await claim(storage, { now: T0 + 2, limit: 10, leaseMs: 1_000 })).map((d) => d.id)).toEqual([b!.id, c!.id]);
    const later = await claim(storage, { now: T0 + 5, limit: 10, leaseMs: 1_000 });
    expect(later.map((d) => d.id)).toEqual([a!.id]);
    expect(later[0]).toMatchObject({ status: 'delivering', runAt: T0 + 5 });
    expect(await claim(storage, { now: T0 + 100, limit: 10, leaseMs: 1_000 })).toEqual([]);
  });

  it('refuses an id it already holds, also when ids arrive out of order', async () => {
    const { storage, webhook } = await withWebhook();
    const [first, second] = [makeDelivery(webhook.id), makeDelivery(webhook.id)];
    // The later id first: the earlier one is then below the greatest id seen and is looked up.
    await storage.enqueueDeliveries([second!]);
    await storage.enqueueDeliveries([first!]);
    await expect(storage.enqueueDeliveries([{ ...first!, body: 'again' }])).rejects.toThrow(`delivery ${first!.id} already exists`);
    await expect(storage.enqueueDeliveries([makeDelivery(webhook.id), { ...second! }])).rejects.toThrow('already exists');
    // All or none: the fresh delivery of the refused batch was not kept.
    expect((await storage.listDeliveries({ limit: 10 })).items.map((d) => d.id).sort()).toEqual([first!.id, second!.id].sort());
    expect((await storage.getDelivery(first!.id))!.body).toBe(first!.body);
  });
});
