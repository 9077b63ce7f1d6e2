/**
 * The storage conformance suite. Any adapter proves it honours the {@link WebhookStorage}
 * contract with one call in a vitest file:
 *
 * ```ts
 * import { describeStorageConformance } from 'webhook-dispatcher/testing';
 * describeStorageConformance('MyStorage', async () => ({ storage: new MyStorage(pool), cleanup: () => pool.end() }));
 * ```
 *
 * The suites are split by what they check (webhooks, leases, per-webhook queues, rate limits,
 * ordering, coalescing, replay and health, retention, the execution log). Optional capabilities an
 * adapter lacks show as skipped tests, never as passing ones.
 *
 * vitest is a peer dependency of this subpath only.
 *
 * @module
 */
import { afterEach, beforeEach, describe, expect } from 'vitest';
import type { WebhookStorage } from '../storage/types.js';
import { DEFAULT_TEST_CONCURRENCY, type ConformanceContext } from './context.js';
import { makeWebhook } from './fixtures.js';
import { coalescingSuite } from './suites/coalescing.js';
import { executionLogSuite } from './suites/execution-log.js';
import { leaseSuite } from './suites/leases.js';
import { orderingSuite } from './suites/ordering.js';
import { queueSuite } from './suites/queues.js';
import { rateLimitSuite } from './suites/rate-limits.js';
import { replayAndHealthSuite } from './suites/replay-and-health.js';
import { retentionSuite } from './suites/retention.js';
import { webhookSuite } from './suites/webhooks.js';

export { makeDelivery, makeExecution, makeWebhook, T0 } from './fixtures.js';
/** The contract's bound on noticing an expired lease, for adapters that look for them only so often. */
export { leaseSweepDelayMs } from '../storage/types.js';
export type { ConformanceContext } from './context.js';

/** What the factory returns: a fresh, empty storage and how to dispose of it. */
export interface StorageUnderTest {
  storage: WebhookStorage;
  cleanup?: () => Promise<void> | void;
}

/** Creates a fresh, empty storage for each test. */
export type StorageFactory = () => Promise<StorageUnderTest | WebhookStorage> | StorageUnderTest | WebhookStorage;

/**
 * Registers a vitest `describe` block that checks every guarantee of the storage contract:
 * CRUD, trigger matching and tenant scoping, exclusive claims under concurrency, lease expiry and
 * fencing, one queue per webhook (caps, priority, taking turns, pauses), rate limits, per-key
 * ordering with gap-free sequence numbers, atomic completion with the execution log, release,
 * cancellation, coalescing, replay, health, retention, and stable newest-first pagination.
 */
export function describeStorageConformance(name: string, factory: StorageFactory): void {
  describe(`storage conformance: ${name}`, () => {
    let current: WebhookStorage | undefined;
    let cleanup: (() => Promise<void> | void) | undefined;

    beforeEach(async () => {
      const made = await factory();
      if ('storage' in made && typeof (made as StorageUnderTest).storage === 'object') {
        current = (made as StorageUnderTest).storage;
        cleanup = (made as StorageUnderTest).cleanup;
      } else {
        current = made as WebhookStorage;
        cleanup = undefined;
      }
      await current.migrate?.();
    });

    afterEach(async () => {
      await cleanup?.();
      current = undefined;
    });

    const ctx: ConformanceContext = {
      get storage(): WebhookStorage {
        if (!current) throw new Error('the storage is only there inside a test');
        return current;
      },
      async seedWebhook(overrides = {}) {
        const webhook = makeWebhook(overrides);
        await ctx.storage.insertWebhook(webhook);
        return webhook;
      },
      claim: (request) => ctx.storage.claimDueDeliveries({ defaultConcurrency: DEFAULT_TEST_CONCURRENCY, ...request }),
      async claimOne(now, leaseMs = 30_000) {
        const [claimed] = await ctx.claim({ now: now ?? Date.UTC(2030, 0, 1), limit: 1, leaseMs });
        expect(claimed).toBeDefined();
        return claimed!;
      },
    };

    webhookSuite(ctx);
    leaseSuite(ctx);
    queueSuite(ctx);
    rateLimitSuite(ctx);
    orderingSuite(ctx);
    coalescingSuite(ctx);
    replayAndHealthSuite(ctx);
    retentionSuite(ctx);
    executionLogSuite(ctx);
  });
}
