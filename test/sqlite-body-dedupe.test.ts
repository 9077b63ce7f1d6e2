// Schema version 2 stores an execution's request body as NULL when it is the delivery's body.
// These tests check that no body is ever lost or changed by that: transformed bodies, retention
// (prune) that deletes the delivery but keeps the execution, coalescing into a requeued
// delivery, stripping, and the upgrade of a version-1 database that holds data.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import type { ClaimedDelivery, CompleteAttempt } from '../src/storage/types.js';

const T0 = Date.UTC(2030, 0, 1);

describe('SqliteStorage execution request bodies', () => {
  const disposers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const dispose of disposers.reverse()) await dispose();
    disposers.length = 0;
  });

  async function setup() {
    const db = new Database(':memory:');
    const storage = new SqliteStorage({ database: db });
    disposers.push(() => db.close(), () => storage.close());
    await storage.migrate();
    const webhook = makeWebhook();
    await storage.insertWebhook(webhook);
    return { db, storage, webhook };
  }

  const storedBodies = (db: Database.Database) =>
    db.prepare('SELECT id, request_body FROM webhook_executions ORDER BY id').all() as Array<{ id: string; request_body: string | null }>;

  function completion(c: ClaimedDelivery, success: boolean, at: number, requestBody = c.body): CompleteAttempt {
    return {
      deliveryId: c.id,
      leaseToken: c.leaseToken,
      outcome: success ? { status: 'succeeded', lastStatus: 200, lastError: null } : { status: 'scheduled', runAt: at, lastStatus: 500, lastError: 'HTTP 500' },
      execution: makeExecution(c, { success, status: success ? 200 : 500, startedAt: at, endedAt: at, requestBody }),
    };
  }

  it('stores the delivery body once and returns it on every execution; a transformed body is kept in full', async () => {
    const { db, storage, webhook } = await setup();
    const [a, b] = [makeDelivery(webhook.id, { body: '{"a":1}' }), makeDelivery(webhook.id, { body: '{"b":2}' })];
    await storage.enqueueDeliveries([a, b]);
    const claimed = await storage.claimDueDeliveries({ now: T0, limit: 2, leaseMs: 1000, defaultConcurrency: 64 });
    const ca = claimed.find((c) => c.id === a.id)!;
    const cb = claimed.find((c) => c.id === b.id)!;
    const transformed = '{"b":2,"added":"by transform"}';
    expect(await storage.completeAttempts([completion(ca, true, T0 + 1), completion(cb, true, T0 + 1, transformed)])).toEqual([true, true]);

    const stored = storedBodies(db);
    expect(stored).toHaveLength(2);
    expect(stored.filter((row) => row.request_body === null)).toHaveLength(1); // a's: the delivery's body
    expect(stored.filter((row) => row.request_body === transformed)).toHaveLength(1);

    expect((await storage.listExecutions({ deliveryId: a.id, limit: 10 })).items[0]!.requestBody).toBe('{"a":1}');
    expect((await storage.listExecutions({ deliveryId: b.id, limit: 10 })).items[0]!.requestBody).toBe(transformed);
    const all = await storage.listExecutions({ webhookId: webhook.id, limit: 10 });
    expect(all.items.map((e) => e.requestBody).sort()).toEqual(['{"a":1}', transformed].sort());
  });

  it('a completion through another adapter instance (no memo of the claim) stores the body in full', async () => {
    const { db, storage, webhook } = await setup();
    const other = new SqliteStorage({ database: db });
    disposers.push(() => other.close());
    const d = makeDelivery(webhook.id);
    await storage.enqueueDeliveries([d]);
    const [c] = await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000, defaultConcurrency: 64 });
    expect(await other.completeAttempt(completion(c!, true, T0 + 1))).toBe(true);
    expect(storedBodies(db)[0]!.request_body).toBe(d.body);
  });

  it('materialises the body before prune deletes a delivery whose execution is kept', async () => {
    const { db, storage, webhook } = await setup();
    const d = makeDelivery(webhook.id, { body: '{"order":42}' });
    await storage.enqueueDeliveries([d]);
    // A failed attempt (kept: failures are retained longer), then a success.
    const [first] = await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000, defaultConcurrency: 64 });
    expect(await storage.completeAttempt(completion(first!, false, T0 + 10))).toBe(true);
    const [second] = await storage.claimDueDeliveries({ now: T0 + 10, limit: 1, leaseMs: 1000, defaultConcurrency: 64 });
    expect(await storage.completeAttempt(completion(second!, true, T0 + 20))).toBe(true);
    expect(storedBodies(db).every((row) => row.request_body === null)).toBe(true);

    const pruned = await storage.prune({ deleteSucceededBefore: T0 + 1_000_000 });
    expect(pruned).toEqual({ executionsDeleted: 1, executionsStripped: 0, deliveriesDeleted: 1 });
    expect(await storage.getDelivery(d.id)).toBeNull();
    expect(storedBodies(db).map((row) => row.request_body)).toEqual(['{"order":42}']);
    const [kept] = (await storage.listExecutions({ deliveryId: d.id, limit: 10 })).items;
    expect(kept).toMatchObject({ success: false, requestBody: '{"order":42}' });
  });

  it('materialises the body when a delivery is deleted by other code', async () => {
    const { db, storage, webhook } = await setup();
    const d = makeDelivery(webhook.id);
    await storage.enqueueDeliveries([d]);
    const [c] = await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000, defaultConcurrency: 64 });
    await storage.completeAttempt(completion(c!, true, T0 + 1));
    db.prepare('DELETE FROM webhook_deliveries WHERE id = ?').run(d.id);
    expect((await storage.listExecutions({ deliveryId: d.id, limit: 10 })).items[0]!.requestBody).toBe(d.body);
  });

  it('keeps the sent body when a requeued delivery later takes a coalesced body', async () => {
    const { storage, webhook } = await setup();
    const d = makeDelivery(webhook.id, { coalesceKey: 'order:1', body: '{"v":1}' });
    await storage.enqueueDeliveries([d]);
    const [c] = await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000, defaultConcurrency: 64 });
    await storage.completeAttempt(completion(c!, true, T0 + 1));
    expect(await storage.requeueDeliveries({ deliveryIds: [d.id], runAt: T0 + 2, now: T0 + 2 })).toEqual([d.id]);
    const merged = await storage.enqueueDeliveries([makeDelivery(webhook.id, { coalesceKey: 'order:1', body: '{"v":2}' })]);
    expect(merged.deliveries[0]).toMatchObject({ id: d.id, coalesced: true });
    expect((await storage.getDelivery(d.id))?.body).toBe('{"v":2}');
    expect((await storage.listExecutions({ deliveryId: d.id, limit: 10 })).items[0]!.requestBody).toBe('{"v":1}');
  });

  it('strips a body stored as NULL to the empty string', async () => {
    const { db, storage, webhook } = await setup();
    const d = makeDelivery(webhook.id);
    await storage.enqueueDeliveries([d]);
    const [c] = await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000, defaultConcurrency: 64 });
    await storage.completeAttempt(completion(c!, true, T0 + 1));
    expect(await storage.prune({ stripSuccessfulBodiesBefore: T0 + 100 })).toMatchObject({ executionsStripped: 1 });
    expect(storedBodies(db)[0]!.request_body).toBe('');
    expect((await storage.listExecutions({ deliveryId: d.id, limit: 10 })).items[0]).toMatchObject({ requestBody: '', responseBody: '' });
    expect((await storage.getDelivery(d.id))?.body).toBe(d.body);
  });

  it('upgrades a version-1 database that holds data', async () => {
    const db = new Database(':memory:');
    disposers.push(() => db.close());
    // Version 1 of the schema as released (migration 1 is never edited).
    db.exec(VERSION_1_SCHEMA);
    const webhook = makeWebhook();
    const d = makeDelivery(webhook.id, { status: 'failed', attempts: 1, body: '{"old":true}' });
    db.prepare(`INSERT INTO webhook_webhooks (id, tenant_id, enabled, created_at, record) VALUES (?, NULL, 1, ?, ?)`).run(webhook.id, T0, JSON.stringify(webhook));
    db.prepare(
      `INSERT INTO webhook_deliveries (id, webhook_id, tenant_id, entity, event, endpoint, priority, body, content_type, status, attempts, ` +
        `run_at, created_at, updated_at, last_status, last_error, is_test, coalesced_count) VALUES (?, ?, NULL, 'order', 'Create', ?, 0, ?, ` +
        `'application/json', 'failed', 1, ?, ?, ?, 500, 'HTTP 500', 0, 0)`,
    ).run(d.id, webhook.id, d.origin, d.body, T0, T0, T0);
    const old = makeExecution(d, { id: 'exec_old', success: false, status: 500 });
    db.prepare(
      `INSERT INTO webhook_executions (id, webhook_id, delivery_id, tenant_id, entity, event, attempt, started_at, ended_at, duration_ms, ` +
        `status, success, hard_error, error_message, error_code, method, url, request_headers, request_body, response_headers, ` +
        `response_body, next_attempt_at, coalesced_count) VALUES (?, ?, ?, NULL, 'order', 'Create', 1, ?, ?, 12, 500, 0, 0, NULL, NULL, ` +
        `'POST', ?, ?, ?, ?, 'err', NULL, 0)`,
    ).run(old.id, webhook.id, d.id, T0, T0 + 12, old.url, JSON.stringify(old.requestHeaders), old.requestBody, JSON.stringify(old.responseHeaders));
    db.prepare('INSERT INTO webhook_migrations (version, applied_at) VALUES (1, ?)').run(T0);

    const storage = new SqliteStorage({ database: db });
    disposers.push(() => storage.close());
    await storage.migrate();
    expect((db.prepare('SELECT version FROM webhook_migrations ORDER BY version').all() as Array<{ version: number }>).map((r) => r.version)).toEqual([1, 2, 3]);
    expect((await storage.listExecutions({ deliveryId: d.id, limit: 10 })).items).toEqual([
      { ...old, attempt: 1, durationMs: 12, responseBody: 'err', requestBody: '{"old":true}' },
    ]);
    expect(await storage.getDelivery(d.id)).toMatchObject({ status: 'failed', body: '{"old":true}' });

    // The upgraded database works: requeue, claim, complete, prune.
    expect(await storage.requeueDeliveries({ deliveryIds: [d.id], runAt: T0, now: T0 })).toEqual([d.id]);
    const [c] = await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000, defaultConcurrency: 64 });
    expect(await storage.completeAttempt(completion(c!, true, T0 + 5))).toBe(true);
    expect(await storage.nextRunAt()).toBeNull();
    await storage.prune({ deleteSucceededBefore: T0 + 1_000_000 });
    expect((await storage.listExecutions({ deliveryId: d.id, limit: 10 })).items.map((e) => e.requestBody)).toEqual(['{"old":true}']);
  });
});

const VERSION_1_SCHEMA = `
  CREATE TABLE webhook_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL);
  CREATE TABLE webhook_webhooks (
    id TEXT PRIMARY KEY NOT NULL, tenant_id TEXT, enabled INTEGER NOT NULL, created_at INTEGER NOT NULL, record TEXT NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0, failing_since INTEGER, last_success_at INTEGER, last_failure_at INTEGER
  );
  CREATE INDEX webhook_webhooks_tenant ON webhook_webhooks (tenant_id, id);
  CREATE TABLE webhook_triggers (
    entity TEXT NOT NULL, event TEXT NOT NULL, webhook_id TEXT NOT NULL, PRIMARY KEY (entity, event, webhook_id)
  ) WITHOUT ROWID;
  CREATE INDEX webhook_triggers_webhook ON webhook_triggers (webhook_id);
  CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL, webhook_id TEXT NOT NULL, tenant_id TEXT, entity TEXT NOT NULL, event TEXT NOT NULL,
    endpoint TEXT NOT NULL, priority INTEGER NOT NULL, body TEXT NOT NULL, content_type TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, run_at INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    last_status INTEGER, last_error TEXT, is_test INTEGER NOT NULL, coalesce_key TEXT, coalesced_count INTEGER NOT NULL,
    coalesce_slot TEXT, lease_token TEXT, lease_expires_at INTEGER
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (priority DESC, run_at, created_at, id, endpoint, status)
    WHERE status IN ('pending', 'scheduled');
  CREATE INDEX webhook_deliveries_run_at ON webhook_deliveries (run_at, status) WHERE status IN ('pending', 'scheduled');
  CREATE INDEX webhook_deliveries_lease ON webhook_deliveries (lease_expires_at) WHERE status = 'delivering';
  CREATE UNIQUE INDEX webhook_deliveries_coalesce ON webhook_deliveries (webhook_id, coalesce_slot) WHERE coalesce_slot IS NOT NULL;
  CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
  CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, id);
  CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (status, updated_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
  CREATE TABLE webhook_executions (
    id TEXT PRIMARY KEY NOT NULL, webhook_id TEXT NOT NULL, delivery_id TEXT NOT NULL, tenant_id TEXT, entity TEXT NOT NULL,
    event TEXT NOT NULL, attempt INTEGER NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL, status INTEGER NOT NULL, success INTEGER NOT NULL, hard_error INTEGER NOT NULL,
    error_message TEXT, error_code TEXT, method TEXT NOT NULL, url TEXT NOT NULL, request_headers TEXT NOT NULL,
    request_body TEXT NOT NULL, response_headers TEXT NOT NULL, response_body TEXT NOT NULL, next_attempt_at INTEGER,
    coalesced_count INTEGER NOT NULL
  );
  CREATE INDEX webhook_executions_webhook ON webhook_executions (webhook_id, id);
  CREATE INDEX webhook_executions_delivery ON webhook_executions (delivery_id, id);
  CREATE INDEX webhook_executions_tenant ON webhook_executions (tenant_id, id);
  CREATE INDEX webhook_executions_started ON webhook_executions (success, started_at);
`;
