/**
 * What a drain leaves behind must not slow the next claim. Every claimed and finished delivery
 * leaves dead entries in the claim and lease indexes until VACUUM (autovacuum may be off, or slow
 * to come): claims must not step over them, and completions must not read the lease indexes.
 *
 * Measured with the server's own figures: `auto_explain` logs the plan of every statement the
 * claim and completion functions run, with the buffers each node read, to this test's connection.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { leaseSweepDelayMs, makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import { pgConfig, requirePostgres, uniqueSchema } from './helpers/postgres.js';

const available = await requirePostgres('postgres-claim-costs');
const T0 = Date.UTC(2030, 0, 1);
const OK = { status: 'succeeded' as const, lastStatus: 200, lastError: null };

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Actual Loops'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

interface LoggedPlan {
  text: string;
  plan: PlanNode;
}

function* nodes(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* nodes(child);
}

/** Buffers read by the nodes that scan an index whose name matches `index`. */
function indexBuffers(plans: LoggedPlan[], statement: string, index: RegExp): number {
  let sum = 0;
  for (const p of plans.filter((x) => x.text.startsWith(statement))) {
    for (const n of nodes(p.plan)) {
      if (n['Index Name'] && index.test(n['Index Name'])) sum += (n['Shared Hit Blocks'] ?? 0) + (n['Shared Read Blocks'] ?? 0);
    }
  }
  return sum;
}

/** Whether any statement that starts with `statement` ran a scan of an index matching `index`. */
function readsIndex(plans: LoggedPlan[], statement: string | null, index: RegExp): boolean {
  return plans
    .filter((p) => statement === null || p.text.startsWith(statement))
    .some((p) => [...nodes(p.plan)].some((n) => n['Index Name'] !== undefined && index.test(n['Index Name']) && (n['Actual Loops'] ?? 0) > 0));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe.runIf(available)('PostgresStorage: costs after a drain, without VACUUM', () => {
  const schema = uniqueSchema('wd_cost');
  // One connection: every statement's plan arrives on it, in order.
  const pool = new pg.Pool({ ...pgConfig, max: 1 });
  pool.on('error', () => undefined);
  let logged: LoggedPlan[] = [];
  pool.on('connect', (client) => {
    client.on('notice', (message) => {
      const text = message.message ?? '';
      const at = text.indexOf('plan:');
      if (!text.startsWith('duration:') || at < 0) return;
      const json = JSON.parse(text.slice(at + 'plan:'.length)) as { 'Query Text': string; Plan: PlanNode };
      logged.push({ text: json['Query Text'].trim(), plan: json.Plan });
    });
    // Queued ahead of anything the pool runs on this connection.
    void client.query(
      `LOAD 'auto_explain';
       SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on;
       SET auto_explain.log_timing = off; SET auto_explain.log_nested_statements = on; SET auto_explain.log_format = json;
       SET client_min_messages = log`,
    );
  });

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  it('claims read the same index pages at the end of a 6,000-delivery drain as at its start; completions never read the lease indexes; claims look for expired leases once per sweep interval', async () => {
    const storage = new PostgresStorage({ pool, schema });
    await storage.migrate();
    const w = makeWebhook();
    await storage.insertWebhook(w);
    for (let i = 0; i < 6_000; i += 1_000) {
      await storage.enqueueDeliveries(Array.from({ length: 1_000 }, (_, j) => makeDelivery(w.id, { runAt: T0 - 10_000 + i + j })));
    }
    const leaseMs = 1_000;
    // Claims half a sweep interval apart: leases of finished deliveries pass `now` after 40 claims.
    const step = leaseSweepDelayMs(leaseMs) / 2;
    const cycles: LoggedPlan[][] = [];
    for (let cycle = 0; ; cycle++) {
      logged = [];
      const claimed = await storage.claimDueDeliveries({ now: T0 + cycle * step, limit: 100, leaseMs, defaultConcurrency: 100 });
      if (claimed.length === 0) break;
      const done = await storage.completeAttempts(
        claimed.map((d) => ({ deliveryId: d.id, leaseToken: d.leaseToken, outcome: OK, execution: makeExecution(d) })),
      );
      expect(done.every(Boolean)).toBe(true);
      cycles.push(logged);
    }
    expect(cycles).toHaveLength(60);
    expect(cycles.every((plans) => plans.some((p) => p.text.startsWith('WITH tests AS')))).toBe(true);

    // The claim's scans of its queue start where the last one stopped, past the dead entries.
    const queueReads = cycles.map((plans) => indexBuffers(plans, 'WITH tests AS', /deliveries_queue_idx$/));
    expect(mean(queueReads.slice(-10))).toBeLessThanOrEqual(mean(queueReads.slice(0, 10)) + 10);

    // Completions find their rows by primary key only.
    expect(cycles.some((plans) => readsIndex(plans, 'WITH input AS', /lease/))).toBe(false);

    // Expired leases are looked for in sweeps only: every other claim here.
    const sweeps = cycles.filter((plans) => readsIndex(plans, null, /deliveries_lease/)).length;
    expect(sweeps).toBeGreaterThanOrEqual(25);
    expect(sweeps).toBeLessThanOrEqual(31);
  });
});
