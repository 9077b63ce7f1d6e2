/**
 * What every conformance suite gets: the storage under test (fresh for each test) and helpers
 * that seed and claim through it.
 *
 * @module
 */
import type { ClaimRequest, ClaimedDelivery, WebhookRecord, WebhookStorage } from '../storage/types.js';

/** The storage under test and helpers around it. Read `storage` inside a test: each test gets a new one. */
export interface ConformanceContext {
  /** The storage of the running test. */
  readonly storage: WebhookStorage;
  /** Inserts a webhook made by `makeWebhook(overrides)` and returns it. */
  seedWebhook(overrides?: Partial<WebhookRecord>): Promise<WebhookRecord>;
  /**
   * Claims with `defaultConcurrency` {@link DEFAULT_TEST_CONCURRENCY} unless given: suites that are
   * not about caps are not limited by them.
   */
  claim(request: Omit<ClaimRequest, 'defaultConcurrency'> & { defaultConcurrency?: number }): Promise<ClaimedDelivery[]>;
  /** Claims exactly one delivery (failing the test when none is due). */
  claimOne(now?: number, leaseMs?: number): Promise<ClaimedDelivery>;
}

/** The default cap of claims in suites not about caps: high enough never to bind. */
export const DEFAULT_TEST_CONCURRENCY = 10_000;
