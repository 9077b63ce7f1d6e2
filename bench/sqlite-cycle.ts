/**
 * SqliteStorage's fixed cost per claim and per completion, by thread: claims `batch` deliveries
 * from a backlog of one webhook and completes them in one `completeAttempts`, over and over, at
 * batch sizes 1, 6, 16 and 64, with the SQL on the calling thread (`worker: false`) and on the
 * adapter's database thread. Bodies are ~1 KiB of JSON and executions carry a dispatcher-like set
 * of request headers, as in issue 17's D-sqlite row.
 *
 * ```sh
 * npx tsx bench/sqlite-cycle.ts                      # ROUNDS=3 by default
 * BATCHES=6 MODES=main npx tsx bench/sqlite-cycle.ts  # one batch size, SQL on this thread only
 * npx tsx bench/sqlite-cycle.ts --baseline /path/to/src/storage/sqlite.ts # and another checkout, interleaved
 * ```
 *
 * CPU time is read per thread from /proc/self/task/<tid>/schedstat (nanoseconds on a CPU, so
 * other processes on the shared machine do not inflate it): `main` is this thread, `sql` the
 * busiest other thread (the database thread in worker mode), `rest` the others (GC helpers, the
 * checkpoint thread). Printed as µs per delivery, median of the rounds; modes and batch sizes are
 * interleaved within each round.
 *
 * @module
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeDelivery, makeWebhook } from '../src/testing/fixtures.js';
import type { ClaimedDelivery, CompleteAttempt, WebhookStorage } from '../src/storage/types.js';
import { deliveryBody, succeeded } from './storage-fixtures.js';

const T0 = Date.UTC(2030, 0, 1);
const BATCHES = (process.env.BATCHES ?? '1,6,16,64').split(',').map(Number);
const MODES = (process.env.MODES ?? 'main,worker').split(',').map((m) => m === 'worker');
const BACKLOG = 20_000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
/** Deliveries claimed and completed per measurement of one batch size. */
const PER_RUN = (batch: number) => (batch === 1 ? 1_500 : batch === 6 ? 4_000 : 8_000);

type Adapter = new (options: { path: string; worker?: boolean }) => WebhookStorage & { close(): Promise<void> };
const baselineArg = process.argv.indexOf('--baseline');
const adapters: Array<{ name: string; path: string }> = [{ name: 'this', path: new URL('../src/storage/sqlite.ts', import.meta.url).pathname }];
if (baselineArg > 0) adapters.unshift({ name: 'base', path: process.argv[baselineArg + 1]! });
const loaded = new Map<string, Adapter>();
for (const a of adapters) loaded.set(a.name, ((await import(pathToFileURL(a.path).href)) as { SqliteStorage: Adapter }).SqliteStorage);

/** CPU ns per thread of this process. */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      out.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function cpuSplit(before: Map<string, number>, after: Map<string, number>): { main: number; sql: number; rest: number } {
  const main = String(process.pid);
  const others: number[] = [];
  let mainNs = 0;
  for (const [tid, ns] of after) {
    const delta = ns - (before.get(tid) ?? 0);
    if (tid === main) mainNs = delta;
    else others.push(delta);
  }
  others.sort((a, b) => b - a);
  return { main: mainNs, sql: others[0] ?? 0, rest: others.slice(1).reduce((a, b) => a + b, 0) };
}


async function run(SqliteStorage: Adapter, worker: boolean, batch: number): Promise<{ main: number; sql: number; rest: number }> {
  const path = join(tmpdir(), `sqlite-cycle-${process.pid}-${Math.random().toString(36).slice(2)}.db`);
  const storage = new SqliteStorage({ path, worker });
  try {
    await storage.migrate!();
    const w = makeWebhook({ concurrency: null });
    await storage.insertWebhook(w);
    let left = 0;
    const fill = async () => {
      for (let i = 0; i < BACKLOG; i += 500) {
        await storage.enqueueDeliveries(
          Array.from({ length: 500 }, (_, j) => {
            const d = makeDelivery(w.id, { runAt: T0 + i + j });
            d.body = deliveryBody(d.id);
            return d;
          }),
        );
      }
      left = BACKLOG;
    };
    const cycle = async () => {
      const claimed: ClaimedDelivery[] = await storage.claimDueDeliveries({ now: T0 + BACKLOG, limit: batch, leaseMs: 60_000, defaultConcurrency: Math.max(batch, 16) });
      if (claimed.length !== batch) throw new Error(`claimed ${claimed.length} of ${batch}`);
      const inputs: CompleteAttempt[] = claimed.map(succeeded);
      await storage.completeAttempts!(inputs);
      left -= batch;
    };
    await fill();
    for (let i = 0; i < 100; i++) await cycle(); // warms statement caches and the JIT
    const total = PER_RUN(batch);
    let spent = { main: 0, sql: 0, rest: 0 };
    for (let done = 0; done < total; ) {
      if (left < batch) await fill();
      const n = Math.min(Math.floor(left / batch), Math.ceil((total - done) / batch));
      const before = threadCpu();
      for (let i = 0; i < n; i++) await cycle();
      const s = cpuSplit(before, threadCpu());
      spent = { main: spent.main + s.main, sql: spent.sql + s.sql, rest: spent.rest + s.rest };
      done += n * batch;
    }
    return { main: spent.main / total / 1000, sql: spent.sql / total / 1000, rest: spent.rest / total / 1000 };
  } finally {
    await storage.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const results = new Map<string, Array<{ main: number; sql: number; rest: number }>>();
for (let r = 0; r < ROUNDS; r++) {
  for (const batch of BATCHES) {
    for (const worker of MODES) {
      for (const adapter of adapters) {
        const key = `${adapter.name} ${worker ? 'worker' : 'main  '} batch ${String(batch).padStart(2)}`;
        const list = results.get(key) ?? [];
        list.push(await run(loaded.get(adapter.name)!, worker, batch));
        results.set(key, list);
      }
    }
  }
}
console.log(`${adapters.map((a) => `${a.name}: ${a.path}`).join('; ')}; CPU µs per delivery (claim + complete), median of ${ROUNDS} rounds`);
for (const [key, list] of results) {
  const main = median(list.map((x) => x.main));
  const sql = median(list.map((x) => x.sql));
  const rest = median(list.map((x) => x.rest));
  console.log(`${key}: main ${main.toFixed(1).padStart(6)}  sql-thread ${sql.toFixed(1).padStart(6)}  rest ${rest.toFixed(1).padStart(6)}  total ${(main + sql + rest).toFixed(1).padStart(6)}`);
}
