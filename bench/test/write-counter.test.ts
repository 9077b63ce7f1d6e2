/**
 * The benchmark's storage write counter: counts the write methods an adapter has, leaves every
 * other member exactly as it was, and runs methods on the adapter itself.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorage } from 'webhook-dispatcher';
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import { WriteCounter } from '../common.js';
import type { CompleteAttempt, WebhookStorage } from '../../src/storage/types.js';

describe('WriteCounter', () => {
  it('counts write calls by method, and total, snapshot and reset report them', async () => {
    const counter = new WriteCounter();
    const storage = counter.wrap(new MemoryStorage());
    const webhook = makeWebhook();
    await storage.insertWebhook(webhook);
    await storage.enqueueDeliveries([makeDelivery(webhook.id), makeDelivery(webhook.id), makeDelivery(webhook.id)]);
    const claimed = await storage.claimDueDeliveries({ now: Date.UTC(2030, 0, 1), limit: 10, leaseMs: 1_000, defaultConcurrency: 16 });
    expect(claimed).toHaveLength(3);
    const complete = (c: (typeof claimed)[number]): CompleteAttempt => ({
      deliveryId: c.id,
      leaseToken: c.leaseToken,
      outcome: { status: 'succeeded', lastStatus: 200, lastError: null },
      execution: makeExecution(c),
    });
    // One call for a batch, as the dispatcher's group commit makes it; MemoryStorage runs
    // completeAttempt on itself per item, which is not a write the caller asked for.
    expect(await storage.completeAttempts([complete(claimed[0]!), complete(claimed[1]!)])).toEqual([true, true]);
    // Once the batch is over, a single completion counts again.
    expect(await storage.completeAttempt(complete(claimed[2]!))).toBe(true);
    // A circuit breaker's pause is a write of the queue's state.
    await storage.pauseQueue(webhook.id, null);
    // Reads are not counted.
    expect(await storage.getWebhook(webhook.id)).toMatchObject({ id: webhook.id });
    await storage.listExecutions({ limit: 10 });
    await storage.getQueueStats(webhook.id, Date.UTC(2030, 0, 1));

    expect(counter.snapshot()).toEqual({
      insertWebhook: 1,
      enqueueDeliveries: 1,
      claimDueDeliveries: 1,
      completeAttempt: 1,
      completeAttempts: 1,
      pauseQueue: 1,
    });
    expect(counter.total()).toBe(6);
    expect([...counter.counts]).toEqual(Object.entries(counter.snapshot()));
    counter.reset();
    expect(counter.total()).toBe(0);
    expect(counter.snapshot()).toEqual({});
    await storage.extendLease('msg_unknown', 'token', 1);
    expect(counter.snapshot()).toEqual({ extendLease: 1 });
  });

  it('returns the adapter itself: other members untouched, absent methods still absent', () => {
    const memory = new MemoryStorage();
    const wrapped = new WriteCounter().wrap(memory);
    expect(wrapped).toBe(memory);
    expect(wrapped).toBeInstanceOf(MemoryStorage);
    expect(wrapped.getWebhook).toBe(MemoryStorage.prototype.getWebhook);
    expect(wrapped.findWebhooksForEvent).toBe(MemoryStorage.prototype.findWebhooksForEvent);
    const partial = new WriteCounter().wrap({ getWebhook: async () => null } as unknown as WebhookStorage);
    expect('completeAttempts' in partial).toBe(false);
  });

  it('counts a write method the adapter has, keeps its other properties, and calls with the adapter as this', async () => {
    const seen: unknown[] = [];
    const adapter = {
      flag: true,
      async completeAttempts(this: unknown, inputs: readonly CompleteAttempt[]) {
        seen.push(this);
        return inputs.map(() => true);
      },
    };
    const counter = new WriteCounter();
    const wrapped = counter.wrap(adapter as unknown as WebhookStorage);
    expect((wrapped as unknown as { flag: boolean }).flag).toBe(true);
    // Called detached, as BatchedStorage may hold it: still runs on the adapter.
    const detached = wrapped.completeAttempts!;
    expect(await detached([{} as CompleteAttempt, {} as CompleteAttempt])).toEqual([true, true]);
    expect(seen).toEqual([adapter]);
    expect(counter.snapshot()).toEqual({ completeAttempts: 1 });
  });
});
