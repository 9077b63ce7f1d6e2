/**
 * Upgrading a database that a previous release left with work queued, and refusing to run against
 * a database at another schema version. The previous release's schema is a frozen copy
 * (helpers/sqlite-schema-v2.ts), so this keeps testing the upgrade real deployments make.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SchemaMismatchError } from '../src/errors.js';
import { SQLITE_SCHEMA_VERSION, SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import type { ClaimedDelivery, DeliveryRecord, WebhookRecord } from '../src/storage/types.js';
import { removeDb, tempDbPath } from './helpers/sqlite-files.js';
import { createSchemaV2, V2_WRITES } from './helpers/sqlite-schema-v2.js';

const T0 = Date.UTC(2030, 0, 1);
const HOUR = 3_600_000;

/** A webhook record as the previous release stored it: without concurrency, rateLimit, ordering. */
function oldWebhook(overrides: Partial<WebhookRecord> = {}): Record<string, unknown> {
  const { concurrency: _c, rateLimit: _r, ordering: _o, ...record } = makeWebhook(overrides);
  return record;
}

interface OldDelivery {
  delivery: DeliveryRecord;
  lease?: { token: string; expiresAt: number };
  slot?: string | null;
}

/** Writes rows as the previous release's adapter did (its column set, its statuses). */
function seedV2(db: Database.Database, webhooks: Array<Record<string, unknown>>, deliveries: OldDelivery[]): void {
  const insertWebhook = db.prepare('INSERT INTO webhook_webhooks (id, tenant_id, enabled, created_at, record) VALUES (?, ?, ?, ?, ?)');
  for (const w of webhooks) insertWebhook.run(w.id, w.tenantId, w.enabled ? 1 : 0, w.createdAt, JSON.stringify(w));
  const insertDelivery = db.prepare(
    `INSERT INTO webhook_deliveries (id, webhook_id, tenant_id, entity, event, endpoint, priority, body, content_type, status, attempts,
       run_at, created_at, updated_at, last_status, last_error, is_test, coalesce_key, coalesced_count, coalesce_slot, lease_token, lease_expires_at)
     VALUES (@id, @webhookId, @tenantId, @entity, @event, @origin, @priority, @body, @contentType, @status, @attempts,
       @runAt, @createdAt, @updatedAt, @lastStatus, @lastError, @isTest, @coalesceKey, @coalescedCount, @slot, @token, @expiresAt)`,
  );
  for (const { delivery: d, lease, slot } of deliveries) {
    const { orderingKey: _k, sequence: _s, ...old } = d;
    insertDelivery.run({ ...old, isTest: d.isTest ? 1 : 0, slot: slot ?? null, token: lease?.token ?? null, expiresAt: lease?.expiresAt ?? null });
  }
}

describe('SqliteStorage schema upgrades', () => {
  const disposers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const dispose of disposers.reverse()) await dispose();
    disposers.length = 0;
  });

  function fileWithSchemaV2(): { path: string; db: Database.Database } {
    const path = tempDbPath();
    disposers.push(() => removeDb(path));
    const db = new Database(path);
    disposers.push(() => db.close());
    db.pragma('journal_mode = WAL');
    createSchemaV2(db);
    return { path, db };
  }

  const done = (c: ClaimedDelivery, at = T0) => ({
    deliveryId: c.id,
    leaseToken: c.leaseToken,
    outcome: { status: 'succeeded' as const, lastStatus: 200, lastError: null },
    execution: makeExecution(c, { startedAt: at, endedAt: at }),
  });

  it("moves a previous release's queued deliveries into the queues, losing and resending none", async () => {
    const { path, db } = fileWithSchemaV2();
    const busy = oldWebhook({ priority: 0 });
    const urgent = oldWebhook({ priority: 5 });
    const deleted = oldWebhook();
    const due = Array.from({ length: 30 }, (_, i) => makeDelivery(busy.id as string, { runAt: T0 - 1000 + i }));
    const urgentDue = Array.from({ length: 3 }, () => makeDelivery(urgent.id as string, { runAt: T0 }));
    const retry = makeDelivery(busy.id as string, { status: 'scheduled', attempts: 2, runAt: T0 + HOUR, lastStatus: 503, lastError: 'HTTP 503' });
    const merging = makeDelivery(busy.id as string, { coalesceKey: 'order:7', body: '{"v":1}', runAt: T0 });
    // In flight in a process that keeps running through the upgrade, and one whose process died.
    const inFlight = makeDelivery(busy.id as string, { status: 'delivering', runAt: T0 - 5000 });
    const abandoned = makeDelivery(busy.id as string, { status: 'delivering', attempts: 1, runAt: T0 - 6000 });
    const test = makeDelivery(busy.id as string, { isTest: true, runAt: T0 });
    const finished = makeDelivery(busy.id as string, { status: 'succeeded', attempts: 1, lastStatus: 200 });
    const orphan = makeDelivery(deleted.id as string);
    seedV2(
      db,
      [busy, urgent],
      [
        ...due.map((delivery) => ({ delivery })),
        ...urgentDue.map((delivery) => ({ delivery })),
        { delivery: retry },
        { delivery: merging, slot: 'order:7' },
        { delivery: inFlight, lease: { token: 'live-lease', expiresAt: T0 + HOUR } },
        { delivery: abandoned, lease: { token: 'dead-lease', expiresAt: T0 - 1 } },
        { delivery: test },
        { delivery: finished },
        { delivery: orphan },
      ],
    );
    db.prepare(`INSERT INTO webhook_executions (id, webhook_id, delivery_id, entity, event, attempt, started_at, ended_at, duration_ms, status,
      success, hard_error, method, url, request_headers, request_body, response_headers, response_body, coalesced_count)
      VALUES ('exec_old', ?, ?, 'order', 'Create', 1, ?, ?, 5, 200, 1, 0, 'POST', 'https://merchant.example/hooks', '{}', NULL, '{}', 'ok', 0)`).run(
      busy.id,
      finished.id,
      T0 - 10,
      T0 - 5,
    );

    const storage = new SqliteStorage({ path });
    disposers.push(() => storage.close());
    await storage.migrate();

    expect(await storage.getWebhook(busy.id as string)).toEqual({ ...busy, concurrency: null, rateLimit: null, ordering: 'none' });
    // The live lease still counts against the webhook's cap, and its owner can still finish.
    expect(await storage.getQueueStats(busy.id as string, T0)).toMatchObject({ inFlight: 2, scheduled: 1 });
    expect(await storage.getDelivery(orphan.id)).toMatchObject({ status: 'cancelled', lastError: 'webhook was deleted' });
    expect(await storage.nextRunAt()).toBeLessThanOrEqual(T0);

    // A later emit still merges into the delivery that held the coalescing slot.
    const merged = await storage.enqueueDeliveries([makeDelivery(busy.id as string, { coalesceKey: 'order:7', body: '{"v":2}' })]);
    expect(merged.deliveries[0]).toMatchObject({ id: merging.id, coalesced: true });

    const claimedIds: string[] = [];
    const claimAll = async (now: number) => {
      for (;;) {
        const batch = await storage.claimDueDeliveries({ now, limit: 7, leaseMs: 10 * HOUR, defaultConcurrency: 8 });
        if (batch.length === 0) return;
        claimedIds.push(...batch.map((c) => c.id));
        expect(await storage.completeAttempts(batch.map((c) => done(c, now)))).toEqual(batch.map(() => true));
      }
    };
    // The first claim: the test send first, then the higher-priority webhook, then the rest.
    const [first] = await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 10 * HOUR, defaultConcurrency: 8 });
    expect(first?.id).toBe(test.id);
    claimedIds.push(first!.id);
    const second = await storage.claimDueDeliveries({ now: T0, limit: 3, leaseMs: 10 * HOUR, defaultConcurrency: 8 });
    expect(second.map((c) => c.webhookId)).toEqual([urgent.id, urgent.id, urgent.id]);
    claimedIds.push(...second.map((c) => c.id));
    await storage.completeAttempts([done(first!), ...second.map((c) => done(c))]);
    await claimAll(T0);
    // The process that held the live lease finishes its attempt after the upgrade.
    const liveDone = await storage.completeAttempt({ ...done({ ...inFlight, leaseToken: 'live-lease', leaseExpiresAt: T0 + HOUR }) });
    expect(liveDone).toBe(true);
    await claimAll(T0 + HOUR);

    const expected = [test, ...urgentDue, ...due, merging, abandoned, retry].map((d) => d.id);
    expect([...claimedIds].sort()).toEqual([...expected].sort());
    expect(new Set(claimedIds).size).toBe(claimedIds.length);
    expect(await storage.getQueueStats(busy.id as string, T0 + HOUR)).toMatchObject({ depth: 0, inFlight: 0 });
    expect(await storage.getDelivery(finished.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect((await storage.listExecutions({ deliveryId: finished.id, limit: 5 })).items[0]?.requestBody).toBe(finished.body);
    expect(await storage.nextRunAt()).toBeNull();
  });

  it('counts the in-flight deliveries of an upgraded database against the cap', async () => {
    const { path, db } = fileWithSchemaV2();
    const w = oldWebhook();
    const waiting = Array.from({ length: 5 }, () => makeDelivery(w.id as string));
    const flying = Array.from({ length: 3 }, () => makeDelivery(w.id as string, { status: 'delivering' }));
    seedV2(db, [w], [...waiting.map((delivery) => ({ delivery })), ...flying.map((delivery, i) => ({ delivery, lease: { token: `t${i}`, expiresAt: T0 + HOUR } }))]);
    const storage = new SqliteStorage({ path, worker: false });
    disposers.push(() => storage.close());
    await storage.migrate();
    expect(await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000, defaultConcurrency: 4 })).toHaveLength(1);
  });

  it('keeps queues right while processes of the previous release still write (a rolling upgrade)', async () => {
    const { path, db: old } = fileWithSchemaV2();
    const w = oldWebhook();
    const flying = [makeDelivery(w.id as string, { status: 'delivering' }), makeDelivery(w.id as string, { status: 'delivering' })];
    seedV2(old, [w], flying.map((delivery, i) => ({ delivery, lease: { token: `old-${i}`, expiresAt: T0 + HOUR } })));
    const storage = new SqliteStorage({ path });
    disposers.push(() => storage.close());
    await storage.migrate();
    const legacy = (d: DeliveryRecord) => [
      d.id, d.webhookId, d.tenantId, d.entity, d.event, d.origin, d.priority, d.body, d.contentType, d.status, d.attempts, d.runAt,
      d.createdAt, d.updatedAt, d.lastStatus, d.lastError, d.isTest ? 1 : 0, d.coalesceKey, d.coalescedCount, null,
    ];

    // The old process cannot claim any more: it names an index the upgrade dropped.
    expect(() => old.prepare(V2_WRITES.claimAtLevel).all({ leaseExpiresAt: T0 + HOUR, now: T0, priority: 0, limit: 10 })).toThrow(/no such index/);
    // It emits, and asks for a retry of an attempt it had in flight: both reach the queue.
    const emitted = makeDelivery(w.id as string, { runAt: T0 + 10 });
    old.prepare(V2_WRITES.enqueue).get(...legacy(emitted));
    old.prepare(V2_WRITES.complete).run('scheduled', T0 + 20, 503, 'HTTP 503', T0, flying[0]!.id, 'old-0');
    expect(await storage.nextRunAt()).toBe(T0 + 10);
    expect((await storage.claimDueDeliveries({ now: T0 + 20, limit: 10, leaseMs: HOUR, defaultConcurrency: 10 })).map((c) => c.id).sort()).toEqual(
      [emitted.id, flying[0]!.id].sort(),
    );
    // Its other attempt finishes: the place it held is freed (2 in flight, not 4).
    old.prepare(V2_WRITES.complete).run('succeeded', null, 200, null, T0 + 30, flying[1]!.id, 'old-1');
    expect(await storage.getQueueStats(w.id as string, T0 + 30)).toMatchObject({ inFlight: 2 });
    // A webhook it creates gets a queue on demand.
    const created = oldWebhook();
    old.prepare(V2_WRITES.insertWebhook).run({ id: created.id, tenantId: null, enabled: 1, createdAt: T0, record: JSON.stringify(created) });
    const fresh = makeDelivery(created.id as string);
    old.prepare(V2_WRITES.enqueue).get(...legacy(fresh));
    expect((await storage.claimDueDeliveries({ now: T0 + 30, limit: 10, leaseMs: HOUR, defaultConcurrency: 10 })).map((c) => c.id)).toEqual([fresh.id]);
    expect(await storage.getQueueStats(created.id as string, T0 + 30)).toMatchObject({ inFlight: 1, depth: 0 });
  });

  describe('a process whose code expects another schema version', () => {
    it('refuses a database without the schema before creating anything: call migrate()', async () => {
      const db = new Database(':memory:');
      disposers.push(() => db.close());
      const storage = new SqliteStorage({ database: db });
      const error = await storage.insertWebhook(makeWebhook()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaMismatchError);
      expect(error).toMatchObject({ code: 'schema_mismatch', databaseVersion: 0, expectedVersion: SQLITE_SCHEMA_VERSION });
      expect((error as Error).message).toMatch(/call migrate\(\)/);
      expect(db.prepare(`SELECT name FROM sqlite_master`).all()).toEqual([]);
    });

    it('refuses an older database until migrate() has run, writing nothing to it', async () => {
      const { path, db } = fileWithSchemaV2();
      const w = oldWebhook();
      seedV2(db, [w], []);
      const storage = new SqliteStorage({ path });
      disposers.push(() => storage.close());
      const error = await storage.enqueueDeliveries([makeDelivery(w.id as string)]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaMismatchError);
      expect(error).toMatchObject({ databaseVersion: 2, expectedVersion: SQLITE_SCHEMA_VERSION });
      expect((error as Error).message).toMatch(/older than version 3.*call migrate\(\)/);
      await expect(storage.claimDueDeliveries({ now: T0, limit: 5, leaseMs: 1000, defaultConcurrency: 4 })).rejects.toBeInstanceOf(SchemaMismatchError);
      expect(db.prepare('SELECT count(*) AS n FROM webhook_deliveries').get()).toEqual({ n: 0 });
      await storage.migrate();
      expect((await storage.enqueueDeliveries([makeDelivery(w.id as string)])).deliveries).toHaveLength(1);
    });

    it('refuses a newer database, reading nothing but its version: upgrade this process', async () => {
      const path = tempDbPath();
      disposers.push(() => removeDb(path));
      const newer = new SqliteStorage({ path, worker: false });
      disposers.push(() => newer.close());
      await newer.migrate();
      const w = makeWebhook();
      await newer.insertWebhook(w);
      // A process of a later release migrated the database further.
      const admin = new Database(path);
      disposers.push(() => admin.close());
      admin.prepare('INSERT INTO webhook_migrations (version, applied_at) VALUES (?, ?)').run(SQLITE_SCHEMA_VERSION + 1, T0);

      // This process (its own connection) still runs the code of schema 3.
      const statements: string[] = [];
      const db = new Database(path, { verbose: (sql) => statements.push(String(sql)) });
      disposers.push(() => db.close());
      const old = new SqliteStorage({ database: db });
      disposers.push(() => old.close());
      statements.length = 0;
      const error = await old.enqueueDeliveries([makeDelivery(w.id)]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaMismatchError);
      expect(error).toMatchObject({ databaseVersion: SQLITE_SCHEMA_VERSION + 1, expectedVersion: SQLITE_SCHEMA_VERSION });
      expect((error as Error).message).toMatch(/newer than version 3.*upgrade this process/);
      expect(statements.length).toBeGreaterThan(0);
      expect(statements.filter((sql) => !/^SELECT .*(sqlite_master|FROM webhook_migrations)/.test(sql))).toEqual([]);
      await expect(old.claimDueDeliveries({ now: T0, limit: 5, leaseMs: 1000, defaultConcurrency: 4 })).rejects.toBeInstanceOf(SchemaMismatchError);
      await expect(old.migrate()).rejects.toBeInstanceOf(SchemaMismatchError);
      expect(admin.prepare('SELECT count(*) AS n FROM webhook_deliveries').get()).toEqual({ n: 0 });
      expect(admin.prepare('SELECT max(version) AS v FROM webhook_migrations').get()).toEqual({ v: SQLITE_SCHEMA_VERSION + 1 });
    });

    it('keeps SchemaMismatchError and its versions across the database thread', async () => {
      const { path } = fileWithSchemaV2();
      const storage = new SqliteStorage({ path });
      disposers.push(() => storage.close());
      const error = await storage.nextRunAt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaMismatchError);
      expect(error).toMatchObject({ name: 'SchemaMismatchError', code: 'schema_mismatch', databaseVersion: 2, expectedVersion: SQLITE_SCHEMA_VERSION });
    });
  });
});
