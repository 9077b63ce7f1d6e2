/**
 * PostgresStorage alone (no HTTP): what one claim/complete cycle costs Postgres, in figures that do
 * not depend on the machine's load: backend CPU per delivery (from /proc/<pid>/stat of the
 * connections' server processes) and, with pg_stat_statements installed, server execution time
 * and calls per statement kind.
 *
 * - serial: one connection, claim `batch` then complete them, for batch 1, 6 and 16.
 * - fresh: connections that each live a few dozen cycles (every statement's planning counts).
 * - contended: WORKERS connections (default 4) on one webhook with the default cap 16, each
 *   claiming up to 8 and completing them: claims and completions meet on the queue.
 *
 * Run: `PGPORT=5499 npx tsx bench/postgres-cycle.ts [serial|contended]` (PGHOST, PGPORT, PGUSER,
 * PGDATABASE; default postgres@127.0.0.1:5432/test). Each run uses, and drops, a schema of its own.
 * The database server must run on this machine (backend CPU is read from /proc).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { PostgresStorage } from '../src/storage/postgres.js';
import { makeDelivery, makeExecution, makeWebhook } from '../src/testing/fixtures.js';

const WORKERS = Number(process.env.WORKERS ?? 4);
const pool = new pg.Pool({
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
  max: WORKERS,
  // The pids measured must stay the pool's connections for the whole run.
  idleTimeoutMillis: 0,
});
pool.on('error', (error) => console.error('idle connection failed:', error.message));
const OK = { status: 'succeeded' as const, lastStatus: 200, lastError: null };
const NOW = Date.UTC(2030, 0, 1);
const DELIVERIES = Number(process.env.DELIVERIES ?? 6_000);

/** CPU time (ms) a server process has used. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The server pids of every pool connection (opens them all). */
async function backendPids(): Promise<number[]> {
  const clients = await Promise.all(Array.from({ length: WORKERS }, () => pool.connect()));
  const pids: number[] = [];
  for (const client of clients) pids.push((await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number);
  for (const client of clients) client.release();
  return pids;
}

async function hasStatements(): Promise<boolean> {
  try {
    await pool.query('SELECT pg_stat_statements_reset()');
    return true;
  } catch {
    return false;
  }
}

/** Statement kinds by their text, for the per-kind figures. */
function kind(query: string): string | null {
  if (/FROM "[^"]+"\."[^"]*claim"/.test(query) || /^SELECT c FROM/.test(query)) return 'claim call';
  // Its own round trip before the claim until the claim function took it in (with the lock).
  if (query.includes('WITH due AS')) return query.includes('candidates AS') ? '  lock+promote (in claim)' : 'promote';
  if (query.includes('WITH input (delivery_id') || query.includes('_complete"(')) return 'complete';
  if (query.includes('INSERT INTO') && query.includes('deliveries') && query.includes('WITH ins AS')) return 'enqueue';
  if (query.includes('array_agg(x.webhook_id)')) return '  lock (in claim)';
  if (query.startsWith('WITH tests AS')) return '  claim CTE (in claim)';
  return null;
}

async function statementFigures(schema: string, deliveries: number): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT query, calls::int AS calls, total_exec_time AS ms, rows::int AS rows FROM pg_stat_statements WHERE query LIKE $1`,
    [`%${schema}%`],
  );
  const byKind = new Map<string, { calls: number; ms: number; rows: number }>();
  for (const row of rows as Array<{ query: string; calls: number; ms: number; rows: number }>) {
    const k = kind(row.query);
    if (k === null) continue;
    const f = byKind.get(k) ?? { calls: 0, ms: 0, rows: 0 };
    f.calls += row.calls;
    f.ms += row.ms;
    f.rows += row.rows;
    byKind.set(k, f);
  }
  return [...byKind.entries()]
    .sort((a, b) => a[0].trim().localeCompare(b[0].trim()))
    .map(
      ([k, f]) =>
        `    ${k.padEnd(22)} ${String(f.calls).padStart(6)} calls  ${((f.ms * 1000) / f.calls).toFixed(0).padStart(5)} µs/call  ` +
        `${((f.ms * 1000) / deliveries).toFixed(0).padStart(4)} µs/delivery  ${(f.rows / f.calls).toFixed(1)} rows/call`,
    );
}

async function fresh(): Promise<{ storage: PostgresStorage; schema: string; webhookId: string }> {
  const schema = `wd_cycle_${randomBytes(4).toString('hex')}`;
  const storage = new PostgresStorage({ pool, schema });
  await storage.migrate();
  const webhook = makeWebhook();
  await storage.insertWebhook(webhook);
  for (let at = 0; at < DELIVERIES; at += 1_000) {
    await storage.enqueueDeliveries(Array.from({ length: Math.min(1_000, DELIVERIES - at) }, () => makeDelivery(webhook.id, { runAt: NOW - 1 })));
  }
  return { storage, schema, webhookId: webhook.id };
}

/** Claims up to `limit` and completes them until nothing is left; returns how many it did. */
async function worker(storage: PostgresStorage, limit: number, defaultConcurrency: number, stats: { claims: number; idle: number }): Promise<number> {
  let done = 0;
  let idle = 0;
  for (;;) {
    const claimed = await storage.claimDueDeliveries({ limit, leaseMs: 600_000, defaultConcurrency, now: NOW });
    stats.claims++;
    if (claimed.length === 0) {
      stats.idle++;
      // Others may hold the rest in flight: ask again a few times before leaving.
      if (++idle > 50) return done;
      await new Promise((resolve) => setTimeout(resolve, 1));
      continue;
    }
    idle = 0;
    const recorded = await storage.completeAttempts(
      claimed.map((d) => ({ deliveryId: d.id, leaseToken: d.leaseToken, outcome: OK, execution: makeExecution(d) })),
    );
    if (!recorded.every(Boolean)) throw new Error('a completion was not recorded');
    done += claimed.length;
  }
}

async function run(label: string, workers: number, limit: number, cap: number, pids: number[], statements: boolean): Promise<void> {
  const { storage, schema } = await fresh();
  for (const table of ['deliveries', 'queues', 'queue_signals']) await pool.query(`VACUUM ANALYZE "${schema}"."webhook_${table}"`);
  if (statements) await pool.query('SELECT pg_stat_statements_reset()');
  const before = pids.map(cpuMs);
  const stats = { claims: 0, idle: 0 };
  const started = performance.now();
  const done = (await Promise.all(Array.from({ length: workers }, () => worker(storage, limit, cap, stats)))).reduce((a, b) => a + b, 0);
  const wallMs = performance.now() - started;
  const cpu = pids.map(cpuMs).reduce((sum, ms, i) => sum + ms - before[i]!, 0);
  if (done !== DELIVERIES) throw new Error(`${label}: ${done} of ${DELIVERIES} done`);
  console.log(
    `${label}: backend CPU ${((cpu * 1000) / done).toFixed(0)} µs/delivery; ${(done / (stats.claims - stats.idle)).toFixed(1)} per claim, ` +
      `${stats.idle} empty claims; wall ${((wallMs * 1000) / done).toFixed(0)} µs/delivery (load-dependent)`,
  );
  if (statements) for (const line of await statementFigures(schema, done)) console.log(line);
  await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
}

/**
 * Short-lived connections, as in bench/run.ts's D-pg rounds (a new pool per round: each connection
 * does a few dozen claims and completions): every statement's planning counts. Claims and
 * completes batches of 1 to 16 (varying) on `CONNECTIONS` fresh connections in turn.
 */
async function freshConnections(): Promise<void> {
  const { schema } = await fresh();
  const connections = Number(process.env.CONNECTIONS ?? 24);
  const sizes = [6, 1, 14, 3, 16, 8, 2, 11, 5, 16, 4, 9];
  let cpu = 0;
  let done = 0;
  for (let c = 0; c < connections; c++) {
    const one = new pg.Pool({ ...pool.options, max: 1 });
    const storage = new PostgresStorage({ pool: one, schema });
    const client = await one.connect();
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    client.release();
    const before = cpuMs(pid);
    for (let i = 0; i < 24; i++) {
      const claimed = await storage.claimDueDeliveries({ limit: sizes[i % sizes.length]!, leaseMs: 600_000, defaultConcurrency: 64, now: NOW });
      await storage.completeAttempts(
        claimed.map((d) => ({ deliveryId: d.id, leaseToken: d.leaseToken, outcome: OK, execution: makeExecution(d) })),
      );
      done += claimed.length;
    }
    cpu += cpuMs(pid) - before;
    await one.end();
  }
  console.log(`fresh connections: backend CPU ${((cpu * 1000) / done).toFixed(0)} µs/delivery over ${connections} connections of 24 cycles (${done} deliveries)`);
  await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
}

const mode = process.argv[2] ?? 'all';
if (mode === 'fresh') {
  await freshConnections();
  await pool.end();
  process.exit(0);
}
const batches = (process.env.BATCHES ?? '1,6,16').split(',').map(Number);
const pids = await backendPids();
const statements = await hasStatements();
if (mode === 'serial' || mode === 'all') {
  for (const batch of batches) await run(`serial, batch ${batch}`, 1, batch, 64, pids, statements);
}
if (mode === 'contended' || mode === 'all') {
  await run(`contended, ${WORKERS} connections, cap 16, claims of 8`, WORKERS, 8, 16, pids, statements);
}
await pool.end();
