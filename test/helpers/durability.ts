/**
 * Shared pieces of the durability tests: request counting by `webhook-id`, polling, and the
 * SIGKILL crash-recovery scenario, which is the same for every durable adapter but for how the
 * test reads its database.
 */
import { expect } from 'vitest';
import type { DispatcherErrorEvent, WebhookDispatcher, WebhookDispatcherOptions } from 'webhook-dispatcher';
import { startCrashWorker, type CrashWorker } from './crash-worker.js';
import type { ReceivedRequest, Receiver } from './receiver.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 10 ms; rejects with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(10);
  }
}

/** An incremental count of how often each `webhook-id` arrived: each call looks only at new requests. */
export function idCounter(requests: readonly ReceivedRequest[]): () => Map<string, number> {
  const counts = new Map<string, number>();
  let next = 0;
  return () => {
    for (; next < requests.length; next++) {
      const id = requests[next]!.headers['webhook-id'] ?? '(none)';
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  };
}

/** How often each `webhook-id` reached the receiver. */
export function countById(requests: readonly ReceivedRequest[]): Map<string, number> {
  return idCounter(requests)();
}

/** How one adapter's crash test reaches its storage. */
export interface CrashScenario {
  label: string;
  adapter: 'sqlite' | 'postgres';
  /** The SQLite file or the Postgres schema both processes use. */
  target: string;
  /** A receiver that answers after a short delay, so requests are in flight at the kill. */
  receiver: Receiver;
  disposers: Array<() => unknown>;
  /** Deliveries by status, read from the database. */
  statusCounts: () => Record<string, number> | Promise<Record<string, number>>;
  /** Starts the surviving dispatcher on the same storage, with these options. */
  startSurvivor: (options: WebhookDispatcherOptions) => Promise<{ dispatcher: WebhookDispatcher; errors: DispatcherErrorEvent[] }>;
  /** Successful execution records, and deliveries whose attempts are not exactly 1. */
  storageTotals: () => Promise<{ successfulExecutions: number; notAttemptedOnce: number }>;
}

const TOTAL = 3_000;
const CHILD_CONCURRENCY = 8;

/**
 * A child process emits and dispatches 3,000 deliveries and is killed with SIGKILL mid-run; a
 * survivor on the same storage finishes once the dead process's leases expire. Every delivery
 * must arrive, duplicates stay within what the child had claimed, and storage records exactly one
 * successful attempt per delivery (the child's unrecorded attempts leave no trace).
 */
export async function runCrashRecovery(s: CrashScenario): Promise<void> {
  const started = Date.now();
  const worker: CrashWorker = await startCrashWorker({
    adapter: s.adapter,
    target: s.target,
    url: s.receiver.origin,
    count: TOTAL,
    webhooks: 5,
    concurrency: CHILD_CONCURRENCY,
    // Short leases for the process that dies, so its work is re-claimed soon after the kill.
    leaseMs: 3_000,
    requestTimeoutMs: 1_000,
  });
  s.disposers.push(() => worker.kill());
  const workerReadyMs = Date.now() - started;
  expect(worker.ids).toHaveLength(TOTAL);
  expect(new Set(worker.ids).size).toBe(TOTAL);

  await s.receiver.waitForRequests(300, 10_000);
  expect(await worker.kill()).toBe('SIGKILL');
  const killedAtMs = Date.now() - started;
  const seenAtKill = countById(s.receiver.requests).size;
  const atKill = await s.statusCounts();
  // Mid-run: work left, and deliveries still leased to the dead process.
  expect(seenAtKill).toBeLessThan(TOTAL);
  expect(atKill.delivering ?? 0).toBeGreaterThan(0);

  const { dispatcher, errors } = await s.startSurvivor({
    concurrency: 32,
    perWebhookConcurrency: 32,
    // The survivor is alive: a long lease, so a loaded machine never makes it re-claim its own work.
    leaseMs: 30_000,
    requestTimeoutMs: 5_000,
    pollIntervalMs: 100,
  });
  const received = idCounter(s.receiver.requests);
  await waitFor(() => received().size >= TOTAL, () => `all ${TOTAL} ids (have ${received().size})`, 45_000);
  // A delivery the child sent but never recorded stays leased to it until the lease expires (not
  // yet due, so drain() does not wait for it); then the survivor claims and sends it again.
  let last: Record<string, number> = {};
  await waitFor(
    async () => (last = await s.statusCounts()).succeeded === TOTAL,
    () => `all ${TOTAL} recorded as succeeded (have ${JSON.stringify(last)})`,
    45_000,
  );
  await dispatcher.drain();

  const counts = countById(s.receiver.requests);
  const expected = new Set(worker.ids);
  const duplicated = [...counts.values()].filter((n) => n > 1).length;
  const extra = s.receiver.requests.length - counts.size;
  // Only what the child sent and had not recorded arrives twice: its attempts in flight plus the
  // results waiting for one completion write (the hard ceiling is its window, 4x its concurrency).
  const bound = 2 * CHILD_CONCURRENCY;
  console.log(
    `[${s.label}] crash recovery: ${TOTAL} deliveries; ${seenAtKill} seen at SIGKILL, ` +
      `${atKill.delivering ?? 0} leased by the dead child; after recovery ${counts.size} distinct ids, ` +
      `${duplicated} delivered more than once (${extra} extra requests; bound ${bound}); ` +
      `timings: worker emitted and started at ${workerReadyMs} ms, killed at ${killedAtMs} ms, all delivered at ${Date.now() - started} ms`,
  );
  expect(worker.ids.filter((id) => !counts.has(id))).toEqual([]);
  expect([...counts.keys()].every((id) => expected.has(id))).toBe(true);
  expect(duplicated).toBeLessThanOrEqual(bound);
  expect(extra).toBeLessThanOrEqual(bound);

  expect(await s.statusCounts()).toEqual({ succeeded: TOTAL });
  expect(await s.storageTotals()).toEqual({ successfulExecutions: TOTAL, notAttemptedOnce: 0 });
  expect(errors).toEqual([]);
}
