/**
 * Upgrades of a real database: a schema built exactly as `main`'s adapter built it (its migration
 * SQL frozen in test/fixtures), holding queued work, is migrated to per-webhook queues without
 * losing or resending anything; and processes refuse to run on a schema of another version.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { SchemaMismatchError } from 'webhook-dispatcher';
import { POSTGRES_SCHEMA_VERSION, PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import type { DeliveryRecord, WebhookRecord } from 'webhook-dispatcher';
import { mainSchemaStatements } from './fixtures/postgres-main-schema.js';
import { pgConfig, requirePostgres, uniqueSchema } from './helpers/postgres.js';

const available = await requirePostgres('postgres-migration');
const T0 = Date.UTC(2030, 0, 1);
const CLAIM = { defaultConcurrency: 10_000, leaseMs: 3_600_000 };

describe.runIf(available)('PostgresStorage upgrades', () => {
  const pool = new pg.Pool({ ...pgConfig, max: 6 });
  pool.on('error', () => undefined);
  const schemas: string[] = [];
  const newSchema = () => {
    const schema = uniqueSchema('wd_mig');
    schemas.push(schema);
    return schema;
  };

  afterAll(async () => {
    for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  /** A schema as main's migrate() left it at `version`. */
  async function mainSchema(version: 1 | 2): Promise<string> {
    const schema = newSchema();
    for (const statement of mainSchemaStatements(schema, version)) await pool.query(statement);
    return schema;
  }

  /** A webhook row as main wrote it: its record has none of the queue settings. */
  async function oldWebhook(schema: string, overrides: Partial<WebhookRecord> = {}): Promise<WebhookRecord> {
    const w = makeWebhook(overrides);
    const { concurrency: _c, rateLimit: _r, ordering: _o, ...record } = w;
    await pool.query(`INSERT INTO "${schema}".webhook_webhooks (id, tenant_id, enabled, created_at, record) VALUES ($1, $2, $3, $4, $5)`, [
      w.id, w.tenantId, w.enabled, w.createdAt, JSON.stringify(record),
    ]);
    await pool.query(`INSERT INTO "${schema}".webhook_webhook_triggers (webhook_id, entity, event) VALUES ($1, 'order', 'Create')`, [w.id]);
    return w;
  }

  /** A delivery row as main wrote it (its columns only), with a lease when given. */
  async function oldDelivery(
    schema: string,
    d: DeliveryRecord,
    lease: { token: string; expiresAt: number } | null = null,
    acceptsMerges = false,
  ): Promise<DeliveryRecord> {
    await pool.query(
      `INSERT INTO "${schema}".webhook_deliveries (id, webhook_id, tenant_id, entity, event, endpoint, priority, body, content_type,
         status, attempts, run_at, created_at, updated_at, last_status, last_error, is_test, coalesce_key, coalesced_count,
         lease_token, lease_expires_at, accepts_merges)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
      [
        d.id, d.webhookId, d.tenantId, d.entity, d.event, d.origin, d.priority, d.body, d.contentType, d.status, d.attempts,
        d.runAt, d.createdAt, d.updatedAt, d.lastStatus, d.lastError, d.isTest, d.coalesceKey, d.coalescedCount,
        lease?.token ?? null, lease?.expiresAt ?? null, acceptsMerges,
      ],
    );
    return d;
  }

  const ok = { status: 'succeeded' as const, lastStatus: 200, lastError: null };

  it("moves main's queued deliveries (pending, scheduled, delivering) into the queues: each is claimed exactly once, in flight ones only after their lease", async () => {
    const schema = await mainSchema(2);
    const a = await oldWebhook(schema);
    const b = await oldWebhook(schema, { priority: 2 });
    const due = await Promise.all(Array.from({ length: 5 }, (_, i) => oldDelivery(schema, makeDelivery(a.id, { runAt: T0 - 100 + i }))));
    const mergeTarget = await oldDelivery(schema, makeDelivery(a.id, { coalesceKey: 'order:7', runAt: T0 - 50 }), null, true);
    const retries = await Promise.all(
      Array.from({ length: 3 }, () => oldDelivery(schema, makeDelivery(a.id, { status: 'scheduled', attempts: 1, runAt: T0 + 60_000 }))),
    );
    const live = await oldDelivery(schema, makeDelivery(a.id, { status: 'delivering', runAt: T0 - 500 }), { token: 'tok-live', expiresAt: T0 + 30_000 });
    const stalled = await oldDelivery(schema, makeDelivery(a.id, { status: 'delivering', runAt: T0 - 400 }), { token: 'tok-dead', expiresAt: T0 - 1_000 });
    const finished = await Promise.all(
      (['succeeded', 'failed', 'cancelled'] as const).map((status) => oldDelivery(schema, makeDelivery(a.id, { status, attempts: 1 }))),
    );
    const test = await oldDelivery(schema, makeDelivery(a.id, { isTest: true, runAt: T0 - 10 }));
    const bDue = await Promise.all(Array.from({ length: 2 }, () => oldDelivery(schema, makeDelivery(b.id, { runAt: T0 - 5 }))));

    const storage = new PostgresStorage({ pool, schema });
    // Before migrating, this code refuses to touch the old schema.
    const refused = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 100 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SchemaMismatchError);
    expect(refused).toMatchObject({ databaseVersion: 2, expectedVersion: POSTGRES_SCHEMA_VERSION });
    expect((await pool.query(`SELECT count(*)::int AS n FROM "${schema}".webhook_deliveries WHERE status = 'delivering'`)).rows[0].n).toBe(2);

    await storage.migrate();
    const versions = await pool.query(`SELECT version FROM "${schema}".webhook_migrations ORDER BY version`);
    expect(versions.rows.map((r) => r.version)).toEqual([1, 2, 3]);
    expect(await storage.getDelivery(due[0]!.id)).toEqual({ ...due[0], orderingKey: null, sequence: null });
    // The delivery in flight under the old process's lease holds its place in the queue.
    expect(await storage.getQueueStats(a.id, T0)).toMatchObject({ inFlight: 1, due: 6, scheduled: 3, held: 0 });
    // The migrated merge target still takes merges.
    const merged = await storage.enqueueDeliveries([makeDelivery(a.id, { coalesceKey: 'order:7', body: '{"v":2}' })]);
    expect(merged.deliveries[0]).toMatchObject({ id: mergeTarget.id, coalesced: true });

    const claims: string[] = [];
    const first = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 100 });
    claims.push(...first.map((d) => d.id));
    // Test send first, then the higher-priority webhook, then the other; never the live lease nor a retry not yet due.
    expect(first[0]!.id).toBe(test.id);
    expect(first.slice(1, 3).map((d) => d.id).sort()).toEqual(bDue.map((d) => d.id).sort());
    expect(new Set(first.slice(3).map((d) => d.id))).toEqual(new Set([...due, mergeTarget, stalled].map((d) => d.id)));
    // The old process finishes its attempt under its own lease: recorded, and its place is freed.
    expect(
      await storage.completeAttempt({ deliveryId: live.id, leaseToken: 'tok-live', outcome: ok, execution: makeExecution(live) }),
    ).toBe(true);
    for (const d of first) {
      expect(await storage.completeAttempt({ deliveryId: d.id, leaseToken: d.leaseToken, outcome: ok, execution: makeExecution(d) })).toBe(true);
    }
    expect(await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 59_999, limit: 100 })).toEqual([]);
    const later = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 60_000, limit: 100 });
    expect(later.map((d) => d.id).sort()).toEqual(retries.map((d) => d.id).sort());
    claims.push(...later.map((d) => d.id));
    for (const d of later) {
      expect(await storage.completeAttempt({ deliveryId: d.id, leaseToken: d.leaseToken, outcome: ok, execution: makeExecution(d) })).toBe(true);
    }
    expect(await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 10_000_000, limit: 100 })).toEqual([]);

    expect(claims).toHaveLength(new Set(claims).size);
    expect(new Set(claims)).toEqual(new Set([test, ...bDue, ...due, mergeTarget, stalled, ...retries].map((d) => d.id)));
    for (const d of finished) expect(claims).not.toContain(d.id);
    expect(await storage.countDeliveries()).toEqual({ succeeded: 15, failed: 1, cancelled: 1 });
    const queues = await pool.query(`SELECT webhook_id, in_flight FROM "${schema}".webhook_queues ORDER BY webhook_id`);
    expect(queues.rows.map((r) => r.in_flight)).toEqual([0, 0]);
    expect(await storage.nextRunAt()).toBeNull();
  });

  it('upgrades a version-1 database that holds data, keeping its rows readable', async () => {
    const schema = await mainSchema(1);
    const w = await oldWebhook(schema);
    const d = await oldDelivery(schema, makeDelivery(w.id, { tenantId: 't1', status: 'delivering' }), { token: 'tok-1', expiresAt: T0 + 1_000 });
    await pool.query(
      `INSERT INTO "${schema}".webhook_executions (id, webhook_id, delivery_id, tenant_id, entity, event, attempt,
         started_at, ended_at, duration_ms, status, success, hard_error, method, url, request_headers, request_body,
         response_headers, response_body, coalesced_count)
       VALUES ('exec_old', $1, $2, 't1', 'order', 'Create', 1, $3, $3, 1, 200, true, false, 'POST', 'https://x', '{}', $4, '{}', '', 0)`,
      [w.id, d.id, T0, d.body],
    );
    const storage = new PostgresStorage({ pool, schema });
    await storage.migrate();
    const versions = await pool.query(`SELECT version FROM "${schema}".webhook_migrations ORDER BY version`);
    expect(versions.rows.map((r) => r.version)).toEqual([1, 2, 3]);
    expect(await storage.getWebhook(w.id)).toMatchObject({ id: w.id, url: w.url });
    const e = makeExecution(d, { tenantId: 't1' });
    expect(await storage.completeAttempts([{ deliveryId: d.id, leaseToken: 'tok-1', outcome: ok, execution: e }])).toEqual([true]);
    const page = await storage.listExecutions({ tenantId: 't1', limit: 10 });
    expect(page.items.map((x) => [x.id, x.requestBody])).toEqual([
      ['exec_old', d.body], // 'exec_old' > 'exec_0…' bytewise
      [e.id, d.body],
    ]);
    expect((await storage.listDeliveries({ tenantId: 't1', limit: 10 })).items.map((x) => x.id)).toEqual([d.id]);
  });

  it('refuses a database newer than this code, naming the fix, without writing anything; migrate() refuses too', async () => {
    const schema = newSchema();
    const current = new PostgresStorage({ pool, schema });
    await current.migrate();
    await pool.query(`INSERT INTO "${schema}".webhook_migrations (version, name) VALUES ($1, 'from the future')`, [POSTGRES_SCHEMA_VERSION + 1]);
    const older = new PostgresStorage({ pool, schema });
    const w = makeWebhook();
    const error = await older.insertWebhook(w).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaMismatchError);
    expect(error).toMatchObject({ code: 'schema_mismatch', databaseVersion: POSTGRES_SCHEMA_VERSION + 1, expectedVersion: POSTGRES_SCHEMA_VERSION });
    expect((error as Error).message).toMatch(/upgrade this process/);
    await expect(older.migrate()).rejects.toBeInstanceOf(SchemaMismatchError);
    expect((await pool.query(`SELECT count(*)::int AS n FROM "${schema}".webhook_webhooks`)).rows[0].n).toBe(0);
    // A process already running when the database moved on checked at its first call; it keeps working.
    await current.insertWebhook(w);
    expect(await current.getWebhook(w.id)).toEqual(w);
  });
});
