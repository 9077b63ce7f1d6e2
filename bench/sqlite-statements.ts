/**
 * Where SqliteStorage's SQL time goes, statement by statement, over the life of D-sqlite's
 * deliveries: enqueued 32 at a time (an emit batch's write), claimed and completed `BATCH` at a
 * time (7 by default, what the default cap of 16 frees per completion write in the D rows), SQL on
 * this thread. Prints µs per delivery by phase and the statements that cost most, COMMIT (the WAL
 * write) included.
 *
 * ```sh
 * npx tsx bench/sqlite-statements.ts                   # N=20000 BATCH=7 TOP=25
 * PAGE_SIZE=8192 npx tsx bench/sqlite-statements.ts    # a database file created with another page size
 * ```
 *
 * Times are wall-clock around each statement on this thread: run it on a quiet machine (or with
 * `nice -n -15`) and compare runs of one sitting. Statements the adapter runs without its
 * statement cache (the claim's raw-row UPDATE … RETURNING) show only in the total.
 *
 * @module
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Connection } from '../src/storage/sqlite/connection.js';
import { SqliteStorage } from '../src/storage/sqlite.js';
import { makeDelivery, makeWebhook } from '../src/testing/fixtures.js';
import type { CompleteAttempt } from '../src/storage/types.js';
import { deliveryBody, succeeded } from './storage-fixtures.js';

const N = Number(process.env.N ?? 20_000);
const BATCH = Number(process.env.BATCH ?? 7);
const TOP = Number(process.env.TOP ?? 25);
const ENQUEUE_BATCH = 32;
const T0 = Date.UTC(2030, 0, 1);

/** Time and calls by phase and statement text. */
const spent = new Map<string, { ms: number; calls: number }>();
let phase = 'setup';

// Every statement the adapter takes from its cache is timed by phase.
const cachedStatement = Connection.prototype.stmt;
const timed = new WeakMap<object, object>();
Connection.prototype.stmt = function stmt(this: Connection, sql: string) {
  const statement = cachedStatement.call(this, sql);
  let wrapper = timed.get(statement);
  if (!wrapper) {
    const text = sql.replace(/\s+/g, ' ').slice(0, 110);
    wrapper = new Proxy(statement, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const fn = value as (...args: unknown[]) => unknown;
        if (prop !== 'run' && prop !== 'get' && prop !== 'all' && prop !== 'iterate') return fn.bind(target);
        return (...args: unknown[]) => {
          const t0 = performance.now();
          try {
            return fn.apply(target, args);
          } finally {
            const key = `${phase.padEnd(8)} ${text}`;
            const entry = spent.get(key) ?? { ms: 0, calls: 0 };
            entry.ms += performance.now() - t0;
            entry.calls++;
            spent.set(key, entry);
          }
        };
      },
    });
    timed.set(statement, wrapper);
  }
  return wrapper as typeof statement;
};


const path = join(tmpdir(), `sqlite-statements-${process.pid}.db`);
if (process.env.PAGE_SIZE) {
  // page_size applies to a database before its first table: made here, then opened by the adapter.
  const db = new Database(path);
  db.pragma(`page_size = ${Number(process.env.PAGE_SIZE)}`);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE page_size_probe (a); DROP TABLE page_size_probe;');
  db.close();
}
const storage = new SqliteStorage({ path, worker: false });
try {
  await storage.migrate();
  const webhook = makeWebhook({ concurrency: null });
  await storage.insertWebhook(webhook);
  let now = T0;

  /** Enqueues `count` deliveries, then claims and completes them all. */
  const lifecycle = async (count: number) => {
    phase = 'enqueue';
    for (let i = 0; i < count; i += ENQUEUE_BATCH) {
      const deliveries = Array.from({ length: ENQUEUE_BATCH }, () => {
        const d = makeDelivery(webhook.id, { runAt: now, createdAt: now, updatedAt: now });
        d.body = deliveryBody(d.id);
        return d;
      });
      await storage.enqueueDeliveries(deliveries);
    }
    for (let done = 0; done < count; done += BATCH) {
      phase = 'claim';
      const claimed = await storage.claimDueDeliveries({ now: ++now, limit: BATCH, leaseMs: 60_000, defaultConcurrency: 16 });
      phase = 'complete';
      const inputs: CompleteAttempt[] = claimed.map(succeeded);
      await storage.completeAttempts(inputs);
    }
  };

  await lifecycle(2_000); // statement caches and the JIT
  spent.clear();
  const t0 = performance.now();
  await lifecycle(N);
  const totalUs = ((performance.now() - t0) * 1000) / N;

  const perDelivery = (ms: number) => ((ms * 1000) / N).toFixed(1);
  const byPhase = new Map<string, number>();
  for (const [key, { ms }] of spent) byPhase.set(key.slice(0, 8).trim(), (byPhase.get(key.slice(0, 8).trim()) ?? 0) + ms);
  console.log(`${N} deliveries, claims and completions of ${BATCH}: ${totalUs.toFixed(1)} µs per delivery in all (SQL and the adapter's JavaScript)`);
  console.log(`timed statements by phase, µs per delivery: ${[...byPhase].map(([p, ms]) => `${p} ${perDelivery(ms)}`).join(', ')}`);
  for (const [key, { ms, calls }] of [...spent].sort((a, b) => b[1].ms - a[1].ms).slice(0, TOP)) {
    console.log(`${perDelivery(ms).padStart(6)} µs  ${(calls / N).toFixed(2).padStart(5)} calls/delivery  ${key}`);
  }
} finally {
  await storage.close();
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
}
