/**
 * Storage-level check of the SQLite adapter's claim path (no HTTP, no dispatcher): is a delivery
 * as cheap to claim and complete from a large backlog as from a small one, and does a large
 * backlog of retries scheduled for later leave fresh work alone?
 *
 * ```sh
 * npx tsx bench/sqlite-queues.ts                 # this checkout's adapter
 * npx tsx bench/sqlite-queues.ts --module /path/to/src/storage/sqlite.ts   # another build, same API
 * ```
 *
 * Each measurement uses a fresh temporary database file (WAL, the adapter's own settings) on the
 * calling thread (`worker: false`), so the figures are the SQL's cost, not the thread hop. A
 * round claims up to 64 (the webhook's cap) and completes them in one `completeAttempts`, like the
 * dispatcher's window and group commit. Prints CPU µs per delivery (user + system time of this
 * process, which runs all the SQL: steadier than wall time on a shared machine), median of the
 * rounds, and the ratio large/small of each round.
 *
 * @module
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeDelivery, makeExecution, makeWebhook } from '../src/testing/fixtures.js';
import type { ClaimedDelivery, DeliveryRecord, WebhookStorage } from '../src/storage/types.js';

const T0 = Date.UTC(2030, 0, 1);
const BATCH = 64;
const MEASURED = 10_000;

const moduleArg = process.argv.indexOf('--module');
const modulePath = moduleArg > 0 ? process.argv[moduleArg + 1]! : new URL('../src/storage/sqlite.ts', import.meta.url).pathname;
const { SqliteStorage } = (await import(pathToFileURL(modulePath).href)) as {
  SqliteStorage: new (options: { path: string; worker?: boolean }) => WebhookStorage & { close(): Promise<void> };
};

async function withStorage<T>(fn: (storage: WebhookStorage) => Promise<T>): Promise<T> {
  const path = join(tmpdir(), `sqlite-queues-bench-${process.pid}-${Math.random().toString(36).slice(2)}.db`);
  const storage = new SqliteStorage({ path, worker: false });
  try {
    await storage.migrate!();
    return await fn(storage);
  } finally {
    await storage.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  }
}

async function enqueue(storage: WebhookStorage, deliveries: DeliveryRecord[]): Promise<void> {
  for (let i = 0; i < deliveries.length; i += 5_000) await storage.enqueueDeliveries(deliveries.slice(i, i + 5_000));
}

/** This process's CPU time (user + system) in ms: on a shared machine, steadier than wall time. */
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** Claims and completes `count` deliveries in rounds of {@link BATCH}; returns CPU ms spent. */
async function drain(storage: WebhookStorage, count: number, now = T0): Promise<number> {
  const started = cpuMs();
  let done = 0;
  while (done < count) {
    // The old contract had no defaultConcurrency; extra fields are ignored there.
    const claimed: ClaimedDelivery[] = await storage.claimDueDeliveries({ now, limit: Math.min(BATCH, count - done), leaseMs: 60_000, defaultConcurrency: BATCH });
    if (claimed.length === 0) throw new Error(`nothing to claim after ${done} of ${count}`);
    await storage.completeAttempts!(
      claimed.map((c) => ({
        deliveryId: c.id,
        leaseToken: c.leaseToken,
        outcome: { status: 'succeeded' as const, lastStatus: 200, lastError: null },
        execution: makeExecution(c),
      })),
    );
    done += claimed.length;
  }
  return cpuMs() - started;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const us = (ms: number, n: number) => ((ms * 1000) / n).toFixed(1);

/**
 * ms to claim and complete 10,000 deliveries from a one-webhook backlog of `backlog`: a backlog
 * smaller than that is refilled when drained (the refill is not timed).
 */
async function backlogRun(backlog: number): Promise<number> {
  return withStorage(async (storage) => {
    const w = makeWebhook({ concurrency: BATCH });
    await storage.insertWebhook(w);
    const fill = () => enqueue(storage, Array.from({ length: backlog }, (_, i) => makeDelivery(w.id, { runAt: T0 - backlog + i })));
    await fill();
    await drain(storage, 200); // warms the statement cache
    let timed = 0;
    let left = backlog - 200;
    for (let done = 0; done < MEASURED; ) {
      if (left === 0) {
        await fill();
        left = backlog;
      }
      const n = Math.min(left, MEASURED - done);
      timed += await drain(storage, n);
      done += n;
      left -= n;
    }
    return timed;
  });
}

/** ms to claim and complete 10,000 fresh deliveries on two webhooks, with `retries` scheduled for later on a third and on one of them. */
async function freshRun(retries: number): Promise<number> {
  return withStorage(async (storage) => {
    const [a, b, c] = [makeWebhook({ concurrency: BATCH }), makeWebhook({ concurrency: BATCH }), makeWebhook({ concurrency: BATCH })];
    for (const w of [a, b, c]) await storage.insertWebhook(w);
    const later = (id: string, i: number) => makeDelivery(id, { status: 'scheduled', attempts: 1, runAt: T0 + 3_600_000 + i });
    await enqueue(storage, [
      ...Array.from({ length: retries / 2 }, (_, i) => later(c.id, i)),
      ...Array.from({ length: retries / 2 }, (_, i) => later(a.id, i)),
    ]);
    const half = (MEASURED + 200) / 2;
    await enqueue(storage, [...Array.from({ length: half }, () => makeDelivery(a.id)), ...Array.from({ length: half }, () => makeDelivery(b.id))]);
    await drain(storage, 200);
    return drain(storage, MEASURED);
  });
}

const rounds = Number(process.env.ROUNDS ?? 5);
console.log(`adapter: ${modulePath}`);
// The two sizes of each pair run back to back in every round, so the machine's drift hits both;
// the ratio of a round is the figure to read on a shared machine.
async function pair(name: string, small: () => Promise<number>, large: () => Promise<number>, perRun: [number, number]): Promise<void> {
  const smallTimes: number[] = [];
  const largeTimes: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const a = (await small()) / perRun[0];
    const b = (await large()) / perRun[1];
    smallTimes.push(a);
    largeTimes.push(b);
    ratios.push(b / a);
  }
  console.log(
    `${name}: ${us(median(smallTimes), 1)} → ${us(median(largeTimes), 1)} CPU µs per delivery; ` +
      `per-round ratio large/small: median ${median(ratios).toFixed(2)} (${ratios.map((x) => x.toFixed(2)).join(', ')})`,
  );
}
await pair('one webhook, backlog 1,000 → 100,000 (claim + complete)', () => backlogRun(1_000), () => backlogRun(100_000), [MEASURED, MEASURED]);
await pair('fresh work on 2 webhooks, 0 → 100,000 retries scheduled for later', () => freshRun(0), () => freshRun(100_000), [MEASURED, MEASURED]);
