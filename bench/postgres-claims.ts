/**
 * PostgresStorage alone (no HTTP): what claiming and completing costs per delivery, by backlog.
 *
 * - drain: one webhook, a backlog of 1,000 vs 100,000; claim 64 and complete them in one
 *   `completeAttempts`, repeatedly. Reports µs per delivery for the first 5,000 (or all of the
 *   1,000) and for the whole drain.
 * - retries: 1,000 fresh deliveries on a webhook that also holds 100,000 retries scheduled for
 *   later, vs the same without them.
 *
 * Run: `npx tsx bench/postgres-claims.ts` (PGHOST, PGPORT, PGUSER, PGDATABASE; default
 * postgres@127.0.0.1:5432/test). Each run uses, and drops, a schema of its own.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStorage } from '../src/storage/postgres.js';
import { makeDelivery, makeExecution, makeWebhook } from '../src/testing/fixtures.js';

const pool = new pg.Pool({
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
  max: 4,
});
pool.on('error', (error) => console.error('idle connection failed:', error.message));
const BATCH = 64;
const CLAIM = { limit: BATCH, leaseMs: 600_000, defaultConcurrency: BATCH };
const OK = { status: 'succeeded' as const, lastStatus: 200, lastError: null };
const NOW = Date.UTC(2030, 0, 1);

async function fresh(): Promise<{ storage: PostgresStorage; schema: string }> {
  const schema = `wd_bench_${randomBytes(4).toString('hex')}`;
  const storage = new PostgresStorage({ pool, schema });
  await storage.migrate();
  return { storage, schema };
}

async function fill(storage: PostgresStorage, webhookId: string, count: number, runAt: number): Promise<void> {
  for (let at = 0; at < count; at += 1_000) {
    await storage.enqueueDeliveries(Array.from({ length: Math.min(1_000, count - at) }, () => makeDelivery(webhookId, { runAt })));
  }
}

/** Claims and completes until `count` deliveries are done (or nothing is left); returns µs per delivery. */
async function drain(storage: PostgresStorage, count: number): Promise<number> {
  let done = 0;
  const started = performance.now();
  while (done < count) {
    const claimed = await storage.claimDueDeliveries({ ...CLAIM, now: NOW });
    if (claimed.length === 0) break;
    const recorded = await storage.completeAttempts(
      claimed.map((d) => ({ deliveryId: d.id, leaseToken: d.leaseToken, outcome: OK, execution: makeExecution(d) })),
    );
    if (!recorded.every(Boolean)) throw new Error('a completion was not recorded');
    done += claimed.length;
  }
  return ((performance.now() - started) * 1_000) / done;
}

const fmt = (us: number) => `${us.toFixed(0)} µs`;

async function drainRow(backlog: number): Promise<[number, number]> {
  const { storage, schema } = await fresh();
  try {
    const w = makeWebhook();
    await storage.insertWebhook(w);
    await fill(storage, w.id, backlog, NOW - 1);
    await pool.query(`VACUUM ANALYZE "${schema}".webhook_deliveries`);
    const first = await drain(storage, Math.min(5_000, backlog));
    const rest = backlog > 5_000 ? await drain(storage, backlog) : first;
    const whole = backlog > 5_000 ? (first * 5_000 + rest * (backlog - 5_000)) / backlog : first;
    return [first, whole];
  } finally {
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
  }
}

async function retriesRow(retries: number): Promise<number> {
  const { storage, schema } = await fresh();
  try {
    const w = makeWebhook();
    await storage.insertWebhook(w);
    await fill(storage, w.id, retries, NOW + 3_600_000);
    await pool.query(`UPDATE "${schema}".webhook_deliveries SET status = 'scheduled', attempts = 1`);
    await fill(storage, w.id, 1_000, NOW - 1);
    // The UPDATE above left 100,000 dead row versions behind, which autovacuum would clear.
    await pool.query(`VACUUM ANALYZE "${schema}".webhook_deliveries`);
    return await drain(storage, 1_000);
  } finally {
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
  }
}

const [small] = await drainRow(1_000);
const [bigFirst, bigWhole] = await drainRow(100_000);
console.log(`drain, one webhook, claim ${BATCH} + completeAttempts:`);
console.log(`  backlog   1,000: ${fmt(small)} per delivery`);
console.log(`  backlog 100,000: ${fmt(bigFirst)} per delivery (first 5,000), ${fmt(bigWhole)} (all 100,000); ratio first ${(small / bigFirst).toFixed(2)}×, all ${(small / bigWhole).toFixed(2)}× of the 1,000 rate`);
await retriesRow(0); // warm-up
const plain = await retriesRow(0);
const behind = await retriesRow(100_000);
console.log('1,000 fresh deliveries on one webhook:');
console.log(`  alone:                            ${fmt(plain)} per delivery`);
console.log(`  with 100,000 retries due in 1 h:  ${fmt(behind)} per delivery (${(plain / behind).toFixed(2)}× the rate alone)`);
await pool.end();
