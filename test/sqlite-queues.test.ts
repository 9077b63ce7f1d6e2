/**
 * SQLite-specific behaviour of per-webhook queues, beyond the conformance suites: enqueues inside
 * a host transaction, several connections and processes sharing one file's caps, ordering and
 * rate limits, and the paths where a webhook disappears under deliveries in flight.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookValidationError } from '../src/errors.js';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import type { AttemptOutcome, ClaimRequest, ClaimedDelivery, WebhookRecord } from '../src/storage/types.js';
import { removeDb, tempDbPath } from './helpers/sqlite-files.js';

const T0 = Date.UTC(2030, 0, 1);
const OK: AttemptOutcome = { status: 'succeeded', lastStatus: 200, lastError: null };

describe('SqliteStorage queues', () => {
  const disposers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const dispose of disposers.reverse()) await dispose();
    disposers.length = 0;
  });

  function fileDb(): string {
    const path = tempDbPath();
    disposers.push(() => removeDb(path));
    return path;
  }

  async function open(options: ConstructorParameters<typeof SqliteStorage>[0]): Promise<SqliteStorage> {
    const storage = new SqliteStorage(options);
    disposers.push(() => storage.close());
    await storage.migrate();
    return storage;
  }

  async function seed(storage: SqliteStorage, overrides: Partial<WebhookRecord> = {}): Promise<WebhookRecord> {
    const webhook = makeWebhook(overrides);
    await storage.insertWebhook(webhook);
    return webhook;
  }

  const claim = (storage: SqliteStorage, request: Partial<ClaimRequest> = {}) =>
    storage.claimDueDeliveries({ now: T0, limit: 100, leaseMs: 60_000, defaultConcurrency: 100, ...request });

  const finish = (storage: SqliteStorage, c: ClaimedDelivery, outcome: AttemptOutcome = OK) =>
    storage.completeAttempt({ deliveryId: c.id, leaseToken: c.leaseToken, outcome, execution: makeExecution(c) });

  describe('enqueues inside a host transaction', () => {
    it("write only delivery rows, the key's row and a queue signal, and hold up no other webhook's claims", async () => {
      const statements: string[] = [];
      const db = new Database(':memory:', { verbose: (sql) => statements.push(String(sql)) });
      disposers.push(() => db.close());
      const storage = await open({ database: db });
      const ordered = await seed(storage, { ordering: 'entity' });
      const other = await seed(storage);
      await storage.enqueueDeliveries([makeDelivery(other.id), makeDelivery(other.id)]);
      const queueRow = () => db.prepare('SELECT * FROM webhook_queues WHERE webhook_id = ?').get(ordered.id);
      const before = queueRow();

      // The host's transaction stays open (a slow request) after the enqueue.
      db.exec('BEGIN IMMEDIATE');
      statements.length = 0;
      // Due later: this connection's own claims see the open transaction's rows.
      const result = await storage.enqueueDeliveries([makeDelivery(ordered.id, { orderingKey: 'order:1', body: '{"seq":"#SEQ#"}', runAt: T0 + 1_000 })], {
        transaction: db,
        sequencePlaceholder: '#SEQ#',
      });
      expect(result.deliveries[0]!.sequence).toBe(1);
      const writes = statements.filter((sql) => /^(INSERT|UPDATE|DELETE|REPLACE)/.test(sql));
      expect(writes.length).toBeGreaterThan(0);
      for (const sql of writes) {
        expect(sql).toMatch(/^INSERT INTO webhook_(deliveries|ordering_keys|queue_signals) /);
      }
      expect(queueRow()).toEqual(before);

      // Meanwhile another webhook's deliveries are claimed and completed.
      const claimed = await claim(storage);
      expect(claimed.map((c) => c.webhookId)).toEqual([other.id, other.id]);
      expect(await storage.completeAttempts(claimed.map((c) => ({ deliveryId: c.id, leaseToken: c.leaseToken, outcome: OK, execution: makeExecution(c) })))).toEqual([
        true,
        true,
      ]);
      db.exec('COMMIT');
      const [mine] = await claim(storage, { now: T0 + 1_000 });
      expect(mine).toMatchObject({ webhookId: ordered.id, sequence: 1, body: '{"seq":"1"}' });
    });

    it('numbers nothing for a transaction that rolls back: the key stays gap-free', async () => {
      const path = fileDb();
      const storage = await open({ path });
      const w = await seed(storage, { ordering: 'entity' });
      const host = new Database(path);
      disposers.push(() => host.close());
      host.exec('BEGIN IMMEDIATE');
      const dropped = await storage.enqueueDeliveries([makeDelivery(w.id, { orderingKey: 'k' })], { transaction: host });
      expect(dropped.deliveries[0]!.sequence).toBe(1);
      host.exec('ROLLBACK');
      expect((await storage.enqueueDeliveries([makeDelivery(w.id, { orderingKey: 'k' })])).deliveries[0]!.sequence).toBe(1);
      host.exec('BEGIN IMMEDIATE');
      await storage.enqueueDeliveries([makeDelivery(w.id, { orderingKey: 'k' })], { transaction: host });
      host.exec('COMMIT');
      expect((await storage.getQueueStats(w.id, T0))?.held).toBe(1);
    });

    it('tells nextRunAt about work committed by a host before any claim has read its signal', async () => {
      const path = fileDb();
      const storage = await open({ path });
      const w = await seed(storage);
      const host = new Database(path);
      disposers.push(() => host.close());
      host.exec('BEGIN IMMEDIATE');
      await storage.enqueueDeliveries([makeDelivery(w.id, { runAt: T0 + 500 })], { transaction: host });
      host.exec('COMMIT');
      expect(await storage.nextRunAt()).toBe(T0 + 500);
      expect(await claim(storage, { now: T0 + 499 })).toEqual([]);
      expect(await claim(storage, { now: T0 + 500 })).toHaveLength(1);
    });
  });

  describe('two connections on one file', () => {
    async function pair(options: { worker?: boolean } = {}) {
      const path = fileDb();
      const a = await open({ path, ...options });
      const b = await open({ path, ...options });
      return { a, b };
    }

    it("share a webhook's cap", async () => {
      const { a, b } = await pair();
      const w = await seed(a, { concurrency: 3 });
      await a.enqueueDeliveries(Array.from({ length: 10 }, () => makeDelivery(w.id)));
      const fromA = await claim(a, { limit: 2 });
      expect(fromA).toHaveLength(2);
      expect(await claim(b)).toHaveLength(1);
      expect(await claim(a)).toEqual([]);
      expect(await finish(b, fromA[0]!)).toBe(true);
      expect(await claim(a)).toHaveLength(1);
      expect((await b.getQueueStats(w.id, T0))?.inFlight).toBe(3);
    });

    it('share ordering: a key is let out by whichever connection finishes its head', async () => {
      const { a, b } = await pair();
      const w = await seed(a, { ordering: 'entity' });
      const [k1, k2, k3] = [makeDelivery(w.id, { orderingKey: 'k' }), makeDelivery(w.id, { orderingKey: 'k' }), makeDelivery(w.id, { orderingKey: 'k' })];
      await a.enqueueDeliveries([k1]);
      await b.enqueueDeliveries([k2, k3]);
      const [head] = await claim(b);
      expect(head).toMatchObject({ id: k1.id, sequence: 1 });
      expect(await claim(a)).toEqual([]);
      expect(await finish(b, head!, { status: 'failed', lastStatus: 500, lastError: 'exhausted' })).toBe(true);
      const [second] = await claim(a);
      expect(second).toMatchObject({ id: k2.id, sequence: 2 });
      expect(await b.cancelDelivery(second!.id, { leaseToken: second!.leaseToken, reason: 'webhook is disabled' })).toBe(true);
      expect((await claim(b)).map((c) => c.sequence)).toEqual([3]);
    });

    it('share a rate limit and a pause', async () => {
      const { a, b } = await pair({ worker: false });
      const w = await seed(a, { rateLimit: { perSecond: 2, burst: 2 } });
      await a.enqueueDeliveries(Array.from({ length: 10 }, () => makeDelivery(w.id)));
      expect(await claim(a, { limit: 1 })).toHaveLength(1);
      expect(await claim(b)).toHaveLength(1);
      expect(await claim(a)).toEqual([]);
      await b.pauseQueue(w.id, T0 + 5_000);
      expect(await claim(a, { now: T0 + 4_999 })).toEqual([]);
      expect(await a.nextRunAt()).toBe(T0 + 5_000);
      expect(await claim(a, { now: T0 + 5_000 })).toHaveLength(2);
    });

    it("take over a dead connection's leases without counting them twice", async () => {
      const { a, b } = await pair();
      const w = await seed(a, { concurrency: 2 });
      await a.enqueueDeliveries(Array.from({ length: 4 }, () => makeDelivery(w.id)));
      const dead = await claim(a, { leaseMs: 1_000 });
      expect(dead).toHaveLength(2);
      const taken = await claim(b, { now: T0 + 1_001 });
      expect(taken.map((c) => c.id).sort()).toEqual(dead.map((c) => c.id).sort());
      expect(await finish(a, dead[0]!)).toBe(false);
      expect((await b.getQueueStats(w.id, T0 + 1_001))?.inFlight).toBe(2);
      for (const c of taken) expect(await finish(b, c)).toBe(true);
      expect(await claim(a, { now: T0 + 1_001 })).toHaveLength(2);
    });
  });

  it('three processes keep the cap and one delivery per key in flight at a time', async () => {
    const path = fileDb();
    const storage = await open({ path });
    const cap = 4;
    const w = await seed(storage, { ordering: 'entity', concurrency: cap });
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    // Emitted in rounds, so that each key's deliveries are spread through the backlog.
    for (let round = 0; round < 8; round++) {
      await storage.enqueueDeliveries(keys.map((key) => makeDelivery(w.id, { orderingKey: `order:${key}`, body: `{"key":"${key}","round":${round}}` })));
    }
    const moduleUrl = pathToFileURL(fileURLToPath(new URL('../src/storage/sqlite.ts', import.meta.url))).href;
    const fixtures = pathToFileURL(fileURLToPath(new URL('../src/testing/fixtures.ts', import.meta.url))).href;
    const script = join(tmpdir(), `webhook-dispatcher-queue-worker-${randomUUID()}.mts`);
    disposers.push(() => rmSync(script, { force: true }));
    // Each process claims, "sends" (a short wait), and completes with the real clock as the
    // execution's start and end: intervals inside the time its lease was held.
    writeFileSync(
      script,
      `import { SqliteStorage } from ${JSON.stringify(moduleUrl)};
import { makeExecution } from ${JSON.stringify(fixtures)};
const storage = new SqliteStorage({ path: process.argv[2] });
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
let idle = 0;
while (idle < 20) {
  const batch = await storage.claimDueDeliveries({ now: ${T0}, limit: 3, leaseMs: 600000, defaultConcurrency: 100 });
  if (batch.length === 0) { idle++; await new Promise((r) => setTimeout(r, 5)); continue; }
  idle = 0;
  const startedAt = Date.now();
  await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
  const endedAt = Date.now();
  const results = await storage.completeAttempts(batch.map((c) => ({
    deliveryId: c.id, leaseToken: c.leaseToken,
    outcome: { status: 'succeeded', lastStatus: 200, lastError: null },
    execution: makeExecution(c, { startedAt, endedAt, url: 'pid:' + process.pid }),
  })));
  if (results.some((ok) => !ok)) throw new Error('a lease was lost');
}
await storage.close();
process.exit(0);
`,
    );
    const children = Array.from({ length: 3 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, path], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      disposers.push(() => child.kill());
      let err = '';
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const done = new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}: ${err}`))));
      });
      return { child, ready: Promise.race([ready, done]), done };
    });
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.child.stdin.end('go\n');
    await Promise.all(children.map((c) => c.done));

    const executions = (await storage.listExecutions({ webhookId: w.id, limit: 1_000 })).items;
    // Every delivery sent exactly once, by more than one process.
    expect(executions).toHaveLength(keys.length * 8);
    expect(new Set(executions.map((e) => e.deliveryId)).size).toBe(executions.length);
    expect(new Set(executions.map((e) => e.url)).size).toBeGreaterThan(1);
    // Never more than the cap at once (3 processes × 3 per claim could hold 9): count overlapping
    // attempt intervals.
    const edges = executions.flatMap((e) => [
      { at: e.startedAt, d: 1 },
      { at: e.endedAt, d: -1 },
    ]);
    edges.sort((x, y) => x.at - y.at || x.d - y.d);
    let flying = 0;
    let most = 0;
    for (const edge of edges) most = Math.max(most, (flying += edge.d));
    expect(most).toBeLessThanOrEqual(cap);
    // Per key: in sequence order, one after the other.
    for (const key of keys) {
      const mine = [];
      for (const e of executions) {
        const d = await storage.getDelivery(e.deliveryId);
        if (d?.orderingKey === `order:${key}`) mine.push({ ...e, sequence: d.sequence! });
      }
      mine.sort((x, y) => x.startedAt - y.startedAt || x.sequence - y.sequence);
      expect(mine.map((e) => e.sequence)).toEqual(Array.from({ length: 8 }, (_, i) => i + 1));
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.startedAt).toBeGreaterThanOrEqual(mine[i - 1]!.endedAt);
    }
    expect(await storage.getQueueStats(w.id, T0)).toMatchObject({ depth: 0, inFlight: 0, held: 0 });
  }, 60_000);

  describe('rate limits', () => {
    it('keeps the tokens, up to the new burst, when the limit changes', async () => {
      const storage = await open({ path: fileDb(), worker: false });
      const w = await seed(storage, { rateLimit: { perSecond: 1, burst: 10 } });
      await storage.enqueueDeliveries(Array.from({ length: 40 }, () => makeDelivery(w.id)));
      expect(await claim(storage, { limit: 4 })).toHaveLength(4);
      // Six left: a larger burst does not fill the bucket, a smaller one caps it.
      await storage.updateWebhook({ ...w, rateLimit: { perSecond: 1, burst: 20 } });
      expect(await claim(storage, { limit: 1 })).toHaveLength(1);
      await storage.updateWebhook({ ...w, rateLimit: { perSecond: 1, burst: 3 } });
      expect(await claim(storage)).toHaveLength(3);
      expect(await claim(storage, { now: T0 + 999 })).toEqual([]);
      expect(await claim(storage, { now: T0 + 1_000 })).toHaveLength(1);
    });

    it('refills a fractional rate exactly, claim after claim', async () => {
      const storage = await open({ path: fileDb(), worker: false });
      const w = await seed(storage, { rateLimit: { perSecond: 3, burst: 3 } });
      await storage.enqueueDeliveries(Array.from({ length: 200 }, () => makeDelivery(w.id)));
      let claimed = 0;
      // A claim every 37 ms for 10 s, a token every 333⅓ ms: fractions carry over from claim to
      // claim (the bucket never fills up again), so by T0 + 9,990 it gave the burst and
      // ⌊9,990 × 3 / 1000⌋ = 29 more.
      for (let t = T0; t <= T0 + 10_000; t += 37) claimed += (await claim(storage, { now: t })).length;
      expect(claimed).toBe(3 + 29);
    });
  });

  describe('deliveries whose webhook is gone', () => {
    it('are cancelled when enqueued after the webhook was deleted', async () => {
      const storage = await open({ database: new Database(':memory:') });
      const w = await seed(storage, { ordering: 'entity' });
      await storage.deleteWebhook(w.id);
      const late = makeDelivery(w.id, { orderingKey: 'k' });
      expect((await storage.enqueueDeliveries([late])).deliveries[0]).toMatchObject({ coalesced: false, sequence: null });
      expect(await storage.getDelivery(late.id)).toMatchObject({ status: 'cancelled', lastError: 'webhook was deleted' });
      expect(await storage.nextRunAt()).toBeNull();
    });

    it('are cancelled, not stranded, when an attempt in flight asks for a retry, is released or its lease expires', async () => {
      const storage = await open({ database: new Database(':memory:') });
      const w = await seed(storage);
      await storage.enqueueDeliveries(Array.from({ length: 3 }, () => makeDelivery(w.id)));
      const [retried, released, expired] = await claim(storage, { leaseMs: 1_000 });
      await storage.deleteWebhook(w.id);
      expect(await finish(storage, retried!, { status: 'scheduled', runAt: T0 + 60_000, lastStatus: 503, lastError: 'HTTP 503' })).toBe(true);
      expect(await storage.releaseDelivery(released!.id, released!.leaseToken)).toBe(true);
      expect(await claim(storage, { now: T0 + 1_001 })).toEqual([]);
      for (const d of [retried, released, expired]) {
        expect(await storage.getDelivery(d!.id)).toMatchObject({ status: 'cancelled', lastError: 'webhook was deleted' });
      }
      expect(await storage.nextRunAt()).toBeNull();
    });
  });

  it('validates what queue state is built from, naming the field', async () => {
    const storage = await open({ database: new Database(':memory:') });
    const w = await seed(storage);
    const field = (path: string) => expect.objectContaining({ name: 'WebhookValidationError', field: path });
    await expect(storage.insertWebhook(makeWebhook({ concurrency: 0 }))).rejects.toThrow(field('concurrency'));
    await expect(storage.insertWebhook(makeWebhook({ rateLimit: { perSecond: 0, burst: 1 } }))).rejects.toThrow(field('rateLimit.perSecond'));
    await expect(storage.updateWebhook({ ...w, rateLimit: { perSecond: 1, burst: 0.5 } })).rejects.toThrow(field('rateLimit.burst'));
    await expect(storage.updateWebhook({ ...w, ordering: 'global' as never })).rejects.toThrow(field('ordering'));
    await expect(claim(storage, { defaultConcurrency: 0 })).rejects.toThrow(field('defaultConcurrency'));
    await expect(claim(storage, { now: Number.NaN })).rejects.toThrow(field('now'));
    await expect(storage.pauseQueue(w.id, Number.POSITIVE_INFINITY)).rejects.toThrow(field('until'));
    await expect(storage.getQueueStats(w.id, Number.NaN)).rejects.toThrow(field('now'));
    await expect(storage.enqueueDeliveries([makeDelivery(w.id, { status: 'held' })])).rejects.toThrow(field('deliveries.0.status'));
    await expect(storage.enqueueDeliveries([makeDelivery(w.id)], { sequencePlaceholder: '' })).rejects.toThrow(field('sequencePlaceholder'));
    await expect(storage.enqueueDeliveries([makeDelivery(w.id), null as never])).rejects.toThrow(field('deliveries.1'));
    await expect(storage.completeAttempts([{ deliveryId: 'msg_x', leaseToken: 't', outcome: { status: 'done' } } as never])).rejects.toBeInstanceOf(
      WebhookValidationError,
    );
    expect(await storage.getWebhook(w.id)).toEqual(w);
    expect(await storage.countDeliveries()).toEqual({});
  });
});
