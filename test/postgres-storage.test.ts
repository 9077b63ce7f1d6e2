/**
 * PostgresStorage against a real PostgreSQL server: the storage conformance suite, then what
 * only a database adapter has to prove (migrations, index use, cross-process claims, the
 * transactional outbox, LISTEN/NOTIFY).
 *
 * Needs PostgreSQL on 127.0.0.1:5432 with trust auth, user `postgres`, database `test`
 * (override with PGHOST, PGPORT, PGUSER, PGDATABASE). Without a server the file is skipped
 * locally and fails in CI.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { SchemaMismatchError, StorageError } from 'webhook-dispatcher';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import type { PostgresPool } from 'webhook-dispatcher/storage/postgres';
import { describeStorageConformance, leaseSweepDelayMs, makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import { claimSql } from '../src/storage/postgres/queue-sql.js';
import { names } from '../src/storage/postgres/schema.js';
import { pgConfig, requirePostgres, uniqueSchema } from './helpers/postgres.js';

const available = await requirePostgres('postgres-storage');
const config = pgConfig;

const T0 = Date.UTC(2030, 0, 1);
/** Claims here are not about caps: a default cap that never binds. */
const CLAIM = { defaultConcurrency: 10_000 };
const schemas = new Set<string>();
const pools: pg.Pool[] = [];

function newPool(): pg.Pool {
  const pool = new pg.Pool({ ...config, max: 10 });
  pools.push(pool);
  return pool;
}

describe.runIf(available)('PostgresStorage', () => {
  const pool = newPool();

  /** A fresh schema name per storage, so tests never see each other's rows. */
  function newSchema(): string {
    const schema = uniqueSchema('wd_test');
    schemas.add(schema);
    return schema;
  }

  async function dropSchema(schema: string): Promise<void> {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    schemas.delete(schema);
  }

  /**
   * A pool that reports every statement, in either form pg.Pool takes: `(text, values)`, or the
   * `{ name, text, values }` of a prepared statement.
   */
  function recordingPool(record: (text: string, values: unknown[] | undefined, name: string | undefined) => void): PostgresPool {
    type Config = { name?: string; text: string; values?: unknown[] };
    const recorded = (target: { query: (config: Config) => Promise<unknown> }) => (textOrConfig: string | Config, values?: unknown[]) => {
      const config: Config = typeof textOrConfig === 'string' ? { text: textOrConfig, ...(values ? { values } : {}) } : textOrConfig;
      record(config.text, config.values, config.name);
      return target.query(config);
    };
    return {
      query: recorded(pool) as PostgresPool['query'],
      // Statements on checked-out connections (transactions) are recorded too.
      connect: async () => {
        const client = await pool.connect();
        return new Proxy(client, {
          get: (target, key) => (key === 'query' ? recorded(target) : (Reflect.get(target, key) as unknown)),
        }) as unknown as Awaited<ReturnType<PostgresPool['connect']>>;
      },
    };
  }

  async function migrated(options: { schema?: string; pool?: PostgresPool } = {}): Promise<PostgresStorage> {
    const storage = new PostgresStorage({ pool: options.pool ?? pool, schema: options.schema ?? newSchema() });
    await storage.migrate();
    return storage;
  }

  afterAll(async () => {
    for (const schema of [...schemas]) await dropSchema(schema);
    await Promise.all(pools.map((p) => p.end()));
  });

  describeStorageConformance('PostgresStorage', () => {
    const schema = newSchema();
    const storage = new PostgresStorage({ pool, schema });
    return {
      storage,
      cleanup: async () => {
        await storage.close();
        await dropSchema(schema);
      },
    };
  });

  describe('options', () => {
    it('validates the pool, schema and prefix, naming the option', () => {
      expect(() => new PostgresStorage({ pool: {} as PostgresPool })).toThrow(expect.objectContaining({ name: 'WebhookValidationError', field: 'pool' }));
      expect(() => new PostgresStorage({ pool, schema: 'Public' })).toThrow(/schema: must match/);
      expect(() => new PostgresStorage({ pool, schema: 'a"; DROP TABLE x; --' })).toThrow(/schema: must match/);
      expect(() => new PostgresStorage({ pool, tablePrefix: 'wh-' })).toThrow(/tablePrefix: must be empty/);
      expect(() => new PostgresStorage({ pool, tablePrefix: 'x'.repeat(40) })).toThrow(/tablePrefix: must be empty/);
      expect(() => new PostgresStorage({ pool, schema: 'ok_schema', tablePrefix: '' })).not.toThrow();
    });

    it('rejects a transaction without query() with a WebhookValidationError naming it', async () => {
      const storage = new PostgresStorage({ pool, schema: newSchema() });
      const w = makeWebhook();
      const named = expect.objectContaining({ name: 'WebhookValidationError', field: 'transaction' });
      await expect(storage.enqueueDeliveries([makeDelivery(w.id)], { transaction: {} })).rejects.toThrow(named);
      await expect(storage.enqueueDeliveries([makeDelivery(w.id)], { transaction: 'tx' })).rejects.toThrow(/transaction: must be a pg client/);
    });

    it('validates claims, times, queue settings and the sequence placeholder, naming the field', async () => {
      const storage = await migrated();
      const named = (field: string) => expect.objectContaining({ name: 'WebhookValidationError', field });
      await expect(storage.claimDueDeliveries({ now: T0, limit: -1, leaseMs: 1000, defaultConcurrency: 4 })).rejects.toThrow(named('limit'));
      await expect(storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000, defaultConcurrency: 0 })).rejects.toThrow(named('defaultConcurrency'));
      await expect(storage.claimDueDeliveries({ now: Number.NaN, limit: 1, leaseMs: 1000, defaultConcurrency: 4 })).rejects.toThrow(named('now'));
      await expect(storage.pauseQueue('wh_x', 1.5)).rejects.toThrow(named('until'));
      await expect(storage.getQueueStats('wh_x', Number.POSITIVE_INFINITY)).rejects.toThrow(named('now'));
      await expect(storage.insertWebhook(makeWebhook({ rateLimit: { perSecond: 0, burst: 1 } }))).rejects.toThrow(named('rateLimit.perSecond'));
      await expect(storage.insertWebhook(makeWebhook({ concurrency: 0 }))).rejects.toThrow(named('concurrency'));
      await expect(storage.enqueueDeliveries([makeDelivery('wh_x')], { sequencePlaceholder: '' })).rejects.toThrow(named('sequencePlaceholder'));
      const bad = { deliveryId: 'msg_x', leaseToken: 't', outcome: { status: 'done' }, execution: { id: 'exec_x' } };
      await expect(storage.completeAttempts([bad as never])).rejects.toThrow(named('inputs.0.outcome.status'));
    });

    it('says so when the transaction client is not inside BEGIN', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      await expect(storage.enqueueDeliveries([makeDelivery(w.id)], { transaction: pool })).rejects.toThrow(/call BEGIN/);
    });

    it('wraps driver failures in StorageError with the pg error as cause', async () => {
      const schema = newSchema();
      const storage = await migrated({ schema });
      await pool.query(`DROP TABLE "${schema}".webhook_webhooks CASCADE`);
      const error = await storage.getWebhook('wh_x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).code).toBe('storage_error');
      expect(((error as StorageError).cause as { code?: string }).code).toBe('42P01'); // undefined_table
    });

    it('refuses every call on a database that was never migrated with a SchemaMismatchError saying what to do', async () => {
      const storage = new PostgresStorage({ pool, schema: newSchema() });
      const error = await storage.getWebhook('wh_x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaMismatchError);
      expect(error).toMatchObject({ code: 'schema_mismatch', databaseVersion: 0, expectedVersion: 3 });
      expect((error as Error).message).toMatch(/call storage\.migrate\(\)/);
      await expect(storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 1, leaseMs: 1000 })).rejects.toBeInstanceOf(SchemaMismatchError);
    });
  });

  describe('migrations', () => {
    it('are idempotent, also when three processes migrate at once', async () => {
      const schema = newSchema();
      const storages = [0, 1, 2].map(() => new PostgresStorage({ pool, schema }));
      await Promise.all(storages.map((s) => s.migrate()));
      await storages[0]!.migrate();
      const versions = await pool.query(`SELECT version FROM "${schema}".webhook_migrations ORDER BY version`);
      expect(versions.rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }]);
      const tables = await pool.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema],
      );
      expect(tables.rows.map((r) => r.table_name)).toEqual([
        'webhook_deliveries',
        'webhook_executions',
        'webhook_key_signals',
        'webhook_migrations',
        'webhook_ordering_keys',
        'webhook_queue_signals',
        'webhook_queues',
        'webhook_webhook_triggers',
        'webhook_webhooks',
      ]);
      const w = makeWebhook();
      await storages[1]!.insertWebhook(w);
      expect(await storages[2]!.getWebhook(w.id)).toEqual(w);
    });

    it('honours the table prefix and keeps two prefixes in one schema apart', async () => {
      const schema = newSchema();
      const a = new PostgresStorage({ pool, schema, tablePrefix: 'a_' });
      const b = new PostgresStorage({ pool, schema, tablePrefix: 'b_' });
      await Promise.all([a.migrate(), b.migrate()]);
      const w = makeWebhook();
      await a.insertWebhook(w);
      expect(await a.getWebhook(w.id)).toEqual(w);
      expect(await b.getWebhook(w.id)).toBeNull();
    });

    it('orders id columns bytewise (COLLATE "C"), like JavaScript strings', async () => {
      const schema = newSchema();
      const storage = await migrated({ schema });
      const collations = await pool.query<{ table_name: string; column_name: string; collation_name: string | null }>(
        `SELECT table_name, column_name, collation_name FROM information_schema.columns
         WHERE table_schema = $1 AND column_name IN ('id', 'webhook_id', 'delivery_id')`,
        [schema],
      );
      expect(collations.rows.length).toBeGreaterThanOrEqual(6);
      expect(collations.rows.every((r) => r.collation_name === 'C')).toBe(true);

      const w = makeWebhook();
      await storage.insertWebhook(w);
      const ids = ['msg_a', 'msg_B', 'msg_Z', 'msg_b', 'msg_0'];
      await storage.enqueueDeliveries(ids.map((id) => makeDelivery(w.id, { id })));
      const listed = await storage.listDeliveries({ webhookId: w.id, limit: 10 });
      expect(listed.items.map((d) => d.id)).toEqual([...ids].sort().reverse());
    });
  });

  describe('prepared statements', () => {
    it('prepares few statements whatever the batch sizes, padding batches with rows that match nothing', async () => {
      const names = new Map<string, string>();
      const spy = recordingPool((text, _values, name) => {
        if (name) names.set(name, text);
      });
      // Only the first enqueue notifies: a notifying enqueue is its own statement (WITH … pg_notify),
      // and with the default 50 ms throttle how many of the 40 notify depends on the machine's speed.
      const storage = new PostgresStorage({ pool: spy, schema: newSchema(), notifyIntervalMs: 3_600_000 });
      await storage.migrate();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      let enqueued = 0;
      for (let size = 1; size <= 40; size++) {
        await storage.enqueueDeliveries(Array.from({ length: size }, () => makeDelivery(w.id, { runAt: T0 })));
        enqueued += size;
      }
      const claimed = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 1_000, leaseMs: 60_000 });
      expect(claimed).toHaveLength(enqueued);
      let at = 0;
      for (let size = 1; at < claimed.length; size++) {
        const batch = claimed.slice(at, at + size);
        at += batch.length;
        const recorded = await storage.completeAttempts(
          batch.map((d) => ({
            deliveryId: d.id,
            leaseToken: d.leaseToken,
            outcome: { status: 'succeeded' as const, lastStatus: 200, lastError: null },
            execution: makeExecution(d),
          })),
        );
        expect(recorded).toEqual(batch.map(() => true));
      }
      const counts = await storage.countDeliveries();
      expect(counts.succeeded).toBe(enqueued);
      expect((await storage.listExecutions({ limit: 1_000 })).items).toHaveLength(enqueued);
      // 40 enqueue sizes and ~40 completion sizes: padded to 1, 2, 4, …, 64 rows, plus the claim.
      const texts = [...names.values()];
      expect(texts.filter((t) => t.includes('INSERT INTO') && t.includes('accepts_merges)')).length).toBeLessThanOrEqual(7);
      expect(texts.filter((t) => t.startsWith('WITH input')).length).toBeLessThanOrEqual(7);
      expect(texts.filter((t) => t.includes('webhook_claim"('))).toHaveLength(1);
    });

    it('with preparedStatements: false, sends only (text, values), for a pool that takes nothing else', async () => {
      const textOnly: PostgresPool = {
        query: (text: string, values?: unknown[]) => {
          if (typeof text !== 'string') throw new TypeError('this pool takes (text, values) only');
          return pool.query(text, values);
        },
        connect: () => pool.connect(),
      };
      const storage = new PostgresStorage({ pool: textOnly, schema: newSchema(), preparedStatements: false });
      await storage.migrate();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      await storage.enqueueDeliveries([makeDelivery(w.id, { runAt: T0 }), makeDelivery(w.id, { runAt: T0 })]);
      const claimed = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 10, leaseMs: 60_000 });
      const recorded = await storage.completeAttempts(
        claimed.map((d) => ({
          deliveryId: d.id,
          leaseToken: d.leaseToken,
          outcome: { status: 'succeeded' as const, lastStatus: 200, lastError: null },
          execution: makeExecution(d),
        })),
      );
      expect(recorded).toEqual([true, true]);
      expect(() => new PostgresStorage({ pool, preparedStatements: 'yes' as unknown as boolean })).toThrow(/preparedStatements/);
    });
  });

  describe('batches above the parameter limit (one statement takes at most 65,535)', () => {
    it('enqueues 3,500 deliveries all or none, and completes 2,400 in one call', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const fresh = Array.from({ length: 3_500 }, () => makeDelivery(w.id, { runAt: T0 }));
      // A duplicate id in the last statement fails the whole batch: nothing of it is written.
      const bad = [...fresh.slice(0, 3_499), makeDelivery(w.id, { id: fresh[0]!.id })];
      await expect(storage.enqueueDeliveries(bad)).rejects.toThrow(StorageError);
      expect((await storage.listDeliveries({ limit: 10 })).items).toEqual([]);

      const result = await storage.enqueueDeliveries(fresh);
      expect(result.deliveries.map((d) => d.id)).toEqual(fresh.map((d) => d.id));
      const claimed = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 2_400, leaseMs: 60_000 });
      expect(claimed).toHaveLength(2_400);
      const ok = { status: 'succeeded' as const, lastStatus: 200, lastError: null };
      const recorded = await storage.completeAttempts(
        claimed.map((d) => ({ deliveryId: d.id, leaseToken: d.leaseToken, outcome: ok, execution: makeExecution(d) })),
      );
      expect(recorded.every(Boolean)).toBe(true);
      expect(await storage.countDeliveries()).toMatchObject({ succeeded: 2_400, pending: 1_100 });
    });
  });

  describe('claiming', () => {
    it('reads each queue through its own indexes on a 20k-row backlog (EXPLAIN: no sequential scan of deliveries)', async () => {
      const log: Array<{ text: string; values: unknown[] | undefined }> = [];
      const spy = recordingPool((text, values) => log.push({ text, values }));
      const schema = newSchema();
      const storage = await migrated({ schema, pool: spy });
      const hooks = [makeWebhook(), makeWebhook({ priority: 3 }), makeWebhook({ concurrency: 5 })];
      for (const w of hooks) await storage.insertWebhook(w);
      const statuses = ['pending', 'scheduled', 'succeeded', 'failed', 'succeeded'] as const;
      for (let batch = 0; batch < 10; batch++) {
        await storage.enqueueDeliveries(
          Array.from({ length: 2000 }, (_, i) => {
            const n = batch * 2000 + i;
            const status = statuses[n % statuses.length]!;
            return makeDelivery(hooks[n % 3]!.id, { status, runAt: status === 'scheduled' ? T0 + 60_000 + n : T0 - n });
          }),
        );
      }
      await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 20, leaseMs: 1 }); // some expired leases too
      await pool.query(`ANALYZE "${schema}".webhook_deliveries`);

      const explain = async (q: { text: string; values: unknown[] | undefined }) =>
        (await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${q.text}`, q.values)).rows.map((r) => r['QUERY PLAN']).join('\n');
      // The claim runs inside the claim function: explain its statement as the function runs it.
      const claim = { text: claimSql(names(schema, 'webhook_')), values: [T0 + 10, 50, 30_000, CLAIM.defaultConcurrency, hooks.map((w) => w.id), true] };
      const plan = await explain(claim);
      log.length = 0;
      const claimed = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 10, limit: 50, leaseMs: 30_000 });
      expect(claimed).toHaveLength(50);
      // One round trip to the claim function, after the promotion.
      expect(log.filter((q) => q.text.includes('webhook_claim"('))).toHaveLength(1);
      expect(plan).not.toMatch(/Seq Scan on webhook_deliveries/);
      expect(plan).toContain('webhook_deliveries_queue_idx');
      expect(plan).toContain('webhook_deliveries_leased_idx');
      expect(plan).toContain('webhook_deliveries_tests_idx');

      log.length = 0;
      await storage.nextRunAt();
      expect(await explain(log[0]!)).not.toMatch(/Seq Scan on webhook_deliveries/);
    });

    it('never gives one delivery to two of 20 concurrent claimers across two instances and pools', async () => {
      const schema = newSchema();
      const a = await migrated({ schema, pool: newPool() });
      const b = new PostgresStorage({ pool: newPool(), schema });
      const w = makeWebhook();
      await a.insertWebhook(w);
      const total = 1000;
      for (let i = 0; i < total; i += 250) {
        await a.enqueueDeliveries(
          Array.from({ length: 250 }, (_, j) => makeDelivery(w.id, { priority: (i + j) % 3, origin: `https://e${j % 4}.example` })),
        );
      }
      const seen: string[] = [];
      const tokens = new Set<string>();
      for (let round = 0; round < 100 && seen.length < total; round++) {
        const batches = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).claimDueDeliveries({ ...CLAIM, now: T0, limit: 7, leaseMs: 60_000 })),
        );
        for (const d of batches.flat()) {
          seen.push(d.id);
          tokens.add(d.leaseToken);
        }
      }
      expect(seen).toHaveLength(total);
      expect(new Set(seen).size).toBe(total);
      expect(tokens.size).toBe(total);
      expect(await b.claimDueDeliveries({ ...CLAIM, now: T0, limit: 10, leaseMs: 1000 })).toEqual([]);
    });

    it('lets exactly one of many claimers take over an expired lease', async () => {
      const schema = newSchema();
      const a = await migrated({ schema });
      const b = new PostgresStorage({ pool: newPool(), schema });
      const w = makeWebhook();
      await a.insertWebhook(w);
      await a.enqueueDeliveries(Array.from({ length: 30 }, () => makeDelivery(w.id)));
      const first = await a.claimDueDeliveries({ ...CLAIM, now: T0, limit: 30, leaseMs: 1000 });
      expect(first).toHaveLength(30);
      // Each instance looks for expired leases once per leaseSweepDelayMs: rounds of claimers a
      // sweep apart, until every delivery is taken over.
      const again: string[] = [];
      for (let round = 1; round <= 10 && again.length < 30; round++) {
        const now = T0 + 1000 + round * leaseSweepDelayMs(10_000);
        const batches = await Promise.all(
          Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).claimDueDeliveries({ ...CLAIM, now, limit: 4, leaseMs: 10_000 })),
        );
        again.push(...batches.flat().map((d) => d.id));
      }
      expect(new Set(again).size).toBe(again.length);
      expect(again.sort()).toEqual(first.map((d) => d.id).sort());
    });

    it('points nextRunAt at the first claim that will find an expired lease: the next sweep, not the expiry itself', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      await storage.enqueueDeliveries([makeDelivery(w.id)]);
      const lease = { ...CLAIM, limit: 1, leaseMs: 1000 };
      const [d] = await storage.claimDueDeliveries({ ...lease, now: T0 });
      // A claim just before the expiry sweeps: the next sweep is one interval after it.
      expect(await storage.claimDueDeliveries({ ...lease, now: T0 + 950 })).toEqual([]);
      const nextSweep = T0 + 950 + leaseSweepDelayMs(1000);
      expect(await storage.nextRunAt()).toBe(nextSweep);
      expect(await storage.claimDueDeliveries({ ...lease, now: T0 + 1000 })).toEqual([]);
      const [again] = await storage.claimDueDeliveries({ ...lease, now: nextSweep });
      expect(again?.id).toBe(d!.id);
    });

    it('returns claims in claim order (runAt, then id) across expired leases and pending deliveries', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const stalled = makeDelivery(w.id, { runAt: T0 - 100 });
      await storage.enqueueDeliveries([stalled]);
      await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 1, leaseMs: 10 });
      const late = makeDelivery(w.id, { runAt: T0 });
      const early = makeDelivery(w.id, { runAt: T0 - 1000 });
      const between = makeDelivery(w.id, { runAt: T0 - 200 });
      await storage.enqueueDeliveries([early, late, between]);
      const claimed = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 100, limit: 3, leaseMs: 1000 });
      expect(claimed.map((d) => d.id)).toEqual([early.id, between.id, stalled.id]);
    });
  });

  describe('execution request bodies (stored once when equal to the delivery body)', () => {
    async function attempted(storage: PostgresStorage, overrides: Parameters<typeof makeDelivery>[1] = {}) {
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const d = makeDelivery(w.id, { body: '{"order":{"id":1,"items":[1,2,3]}}', ...overrides });
      await storage.enqueueDeliveries([d]);
      const [claimed] = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 1, leaseMs: 1000 });
      return { w, d, claimed: claimed! };
    }
    const stored = async (schema: string, id: string) =>
      (await pool.query(`SELECT request_body FROM "${schema}".webhook_executions WHERE id = $1`, [id])).rows[0]?.request_body;

    it('stores NULL for the delivery body, a transformed body in full, and lists both intact', async () => {
      const schema = newSchema();
      const storage = await migrated({ schema });
      const { d, claimed } = await attempted(storage);
      const same = makeExecution(claimed, { success: false, status: 503, startedAt: T0, endedAt: T0 + 1 });
      expect(
        await storage.completeAttempt({
          deliveryId: d.id,
          leaseToken: claimed.leaseToken,
          outcome: { status: 'scheduled', runAt: T0 + 5, lastStatus: 503, lastError: 'HTTP 503' },
          execution: same,
        }),
      ).toBe(true);
      const [again] = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 5, limit: 1, leaseMs: 1000 });
      const transformed = makeExecution(again!, { requestBody: '{"transformed":true}', startedAt: T0 + 5, endedAt: T0 + 6 });
      expect(
        await storage.completeAttempts([
          { deliveryId: d.id, leaseToken: again!.leaseToken, outcome: { status: 'succeeded', lastStatus: 200, lastError: null }, execution: transformed },
        ]),
      ).toEqual([true]);
      expect(await stored(schema, same.id)).toBeNull();
      expect(await stored(schema, transformed.id)).toBe('{"transformed":true}');
      const page = await storage.listExecutions({ deliveryId: d.id, limit: 10 });
      expect(page.items.map((e) => e.requestBody)).toEqual(['{"transformed":true}', d.body]);
    });

    it('does not send the body it leased back with the completion; another instance sends it and the server dedupes', async () => {
      const schema = newSchema();
      const sent: unknown[][] = [];
      // Records the parameters of every statement this storage sends.
      const recording = recordingPool((_text, values) => {
        if (values) sent.push(values);
      });
      const storage = await migrated({ schema, pool: recording });
      const body = `{"order":${JSON.stringify('x'.repeat(500))}}`;
      const { d, claimed } = await attempted(storage, { body });
      sent.length = 0;
      const first = makeExecution(claimed, { success: false, status: 503, startedAt: T0, endedAt: T0 + 1 });
      await storage.completeAttempts([
        { deliveryId: d.id, leaseToken: claimed.leaseToken, outcome: { status: 'scheduled', runAt: T0 + 5, lastStatus: 503, lastError: 'x' }, execution: first },
      ]);
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.flat()).not.toContain(body);
      expect(await stored(schema, first.id)).toBeNull();
      // Claimed by one instance, completed by another (which never saw the body): sent in full, stored once.
      const [again] = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 5, limit: 1, leaseMs: 1000 });
      const other = new PostgresStorage({ pool, schema });
      const second = makeExecution(again!, { startedAt: T0 + 5, endedAt: T0 + 6 });
      expect(
        await other.completeAttempts([
          { deliveryId: d.id, leaseToken: again!.leaseToken, outcome: { status: 'succeeded', lastStatus: 200, lastError: null }, execution: second },
        ]),
      ).toEqual([true]);
      expect(await stored(schema, second.id)).toBeNull();
      expect((await storage.listExecutions({ deliveryId: d.id, limit: 10 })).items.map((e) => e.requestBody)).toEqual([body, body]);
    });

    it('keeps an empty delivery body as an empty request body', async () => {
      const schema = newSchema();
      const storage = await migrated({ schema });
      const { d, claimed } = await attempted(storage, { body: '' });
      const e = makeExecution(claimed, { requestBody: '' });
      await storage.completeAttempts([
        { deliveryId: d.id, leaseToken: claimed.leaseToken, outcome: { status: 'succeeded', lastStatus: 200, lastError: null }, execution: e },
      ]);
      expect(await stored(schema, e.id)).toBe('');
      expect((await storage.listExecutions({ limit: 10 })).items[0]?.requestBody).toBe('');
    });

    it('copies the body into surviving executions before prune deletes their delivery', async () => {
      const storage = await migrated();
      const { d, claimed } = await attempted(storage);
      const failed = makeExecution(claimed, { success: false, status: 500, startedAt: T0, endedAt: T0 + 1 });
      await storage.completeAttempt({
        deliveryId: d.id,
        leaseToken: claimed.leaseToken,
        outcome: { status: 'scheduled', runAt: T0 + 5, lastStatus: 500, lastError: 'HTTP 500' },
        execution: failed,
      });
      const [again] = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 5, limit: 1, leaseMs: 1000 });
      const ok = makeExecution(again!, { startedAt: T0 + 5, endedAt: T0 + 6 });
      await storage.completeAttempt({
        deliveryId: d.id,
        leaseToken: again!.leaseToken,
        outcome: { status: 'succeeded', lastStatus: 200, lastError: null },
        execution: ok,
      });
      // Succeeded records go; the failed attempt is kept (no failed cut-off), and must keep its body.
      expect(await storage.prune({ deleteSucceededBefore: T0 + 1_000 })).toEqual({
        executionsDeleted: 1,
        executionsStripped: 0,
        deliveriesDeleted: 1,
      });
      expect(await storage.getDelivery(d.id)).toBeNull();
      const left = await storage.listExecutions({ deliveryId: d.id, limit: 10 });
      expect(left.items.map((e) => [e.id, e.requestBody])).toEqual([[failed.id, d.body]]);
    });

    it('strips a shared body like any other and counts it once', async () => {
      const storage = await migrated();
      const { d, claimed } = await attempted(storage);
      const e = makeExecution(claimed, { startedAt: T0, endedAt: T0 + 1, responseBody: '' });
      await storage.completeAttempt({
        deliveryId: d.id,
        leaseToken: claimed.leaseToken,
        outcome: { status: 'succeeded', lastStatus: 200, lastError: null },
        execution: e,
      });
      expect(await storage.prune({ stripSuccessfulBodiesBefore: T0 + 1_000 })).toMatchObject({ executionsStripped: 1 });
      expect(await storage.prune({ stripSuccessfulBodiesBefore: T0 + 1_000 })).toMatchObject({ executionsStripped: 0 });
      expect((await storage.listExecutions({ limit: 10 })).items[0]).toMatchObject({ requestBody: '', responseBody: '' });
      expect((await storage.getDelivery(d.id))?.body).toBe(d.body);
    });

    it('keeps the sent body of past attempts when a requeued delivery later merges a new body', async () => {
      const storage = await migrated();
      const { w, d, claimed } = await attempted(storage, { coalesceKey: 'order:9' });
      const e = makeExecution(claimed, { success: false, status: 500 });
      await storage.completeAttempt({
        deliveryId: d.id,
        leaseToken: claimed.leaseToken,
        outcome: { status: 'failed', lastStatus: 500, lastError: 'HTTP 500' },
        execution: e,
      });
      expect(await storage.requeueDeliveries({ deliveryIds: [d.id], runAt: T0, now: T0 })).toEqual([d.id]);
      const merged = await storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'order:9', body: '{"newer":true}' })]);
      expect(merged.deliveries[0]).toEqual({ id: d.id, webhookId: w.id, coalesced: true, sequence: null });
      expect((await storage.getDelivery(d.id))?.body).toBe('{"newer":true}');
      expect((await storage.listExecutions({ deliveryId: d.id, limit: 10 })).items[0]?.requestBody).toBe(d.body);
    });
  });

  describe('coalescing', () => {
    it('merges repeated keys within one batch and reports input order', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const a = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"v":1}' });
      const plain = makeDelivery(w.id);
      const b = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"v":2}' });
      const c = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"v":3}', contentType: 'text/plain' });
      const result = await storage.enqueueDeliveries([a, plain, b, c]);
      expect(result.deliveries).toEqual([
        { id: a.id, webhookId: w.id, coalesced: false, sequence: null },
        { id: plain.id, webhookId: w.id, coalesced: false, sequence: null },
        { id: a.id, webhookId: w.id, coalesced: true, sequence: null },
        { id: a.id, webhookId: w.id, coalesced: true, sequence: null },
      ]);
      expect(await storage.getDelivery(a.id)).toMatchObject({ body: '{"v":3}', contentType: 'text/plain', coalescedCount: 2 });
      const again = await storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"v":4}' })]);
      expect(again.deliveries).toEqual([{ id: a.id, webhookId: w.id, coalesced: true, sequence: null }]);
    });

    it('lets a retried delivery and a newer one with the same key coexist', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const first = makeDelivery(w.id, { coalesceKey: 'order:1' });
      await storage.enqueueDeliveries([first]);
      const [claimed] = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 1, leaseMs: 1000 });
      const during = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"during":true}' });
      await storage.enqueueDeliveries([during]);
      // Both claimable with one key: the retry must not collide with the newer delivery.
      expect(
        await storage.completeAttempt({
          deliveryId: claimed!.id,
          leaseToken: claimed!.leaseToken,
          outcome: { status: 'scheduled', runAt: T0 + 10, lastStatus: 503, lastError: 'HTTP 503' },
          execution: makeExecution(claimed!, { success: false, status: 503 }),
        }),
      ).toBe(true);
      // Later emits merge into the never-attempted one, not into the retry.
      const later = await storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"later":true}' })]);
      expect(later.deliveries[0]).toEqual({ id: during.id, webhookId: w.id, coalesced: true, sequence: null });
      const claimedBoth = await storage.claimDueDeliveries({ ...CLAIM, now: T0 + 10, limit: 10, leaseMs: 1000 });
      expect(claimedBoth.map((d) => d.id)).toEqual([during.id, first.id]); // runAt T0 before the retry's T0 + 10
      const retry = claimedBoth[1];
      expect(retry?.body).toBe(first.body);
      expect(await storage.releaseDelivery(retry!.id, retry!.leaseToken)).toBe(true);
      expect((await storage.getDelivery(first.id))?.status).toBe('scheduled');
    });

    it('makes a requeued delivery the merge target even when a twin is pending', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const old = makeDelivery(w.id, { coalesceKey: 'order:5' });
      await storage.enqueueDeliveries([old]);
      const [c] = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 1, leaseMs: 1000 });
      await storage.completeAttempt({
        deliveryId: c!.id,
        leaseToken: c!.leaseToken,
        outcome: { status: 'failed', lastStatus: 500, lastError: null },
        execution: makeExecution(c!, { success: false, status: 500 }),
      });
      const twin = makeDelivery(w.id, { coalesceKey: 'order:5' });
      await storage.enqueueDeliveries([twin]);
      expect(await storage.requeueDeliveries({ deliveryIds: [old.id], runAt: T0, now: T0 })).toEqual([old.id]);
      const merged = await storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'order:5', body: '{"n":1}' })]);
      expect(merged.deliveries[0]).toEqual({ id: old.id, webhookId: w.id, coalesced: true, sequence: null });
      expect((await storage.getDelivery(twin.id))?.coalescedCount).toBe(0);
    });

    it('reports coalesced correctly inside a host transaction', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const first = makeDelivery(w.id, { coalesceKey: 'k' });
        const r1 = await storage.enqueueDeliveries([first], { transaction: client });
        const r2 = await storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'k' })], { transaction: client });
        await client.query('COMMIT');
        expect(r1.deliveries[0]!.coalesced).toBe(false);
        expect(r2.deliveries[0]).toEqual({ id: first.id, webhookId: w.id, coalesced: true, sequence: null });
      } finally {
        client.release();
      }
    });
  });

  describe('transactional outbox', () => {
    async function inTransaction(storage: PostgresStorage, webhookId: string, end: 'COMMIT' | 'ROLLBACK'): Promise<string> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const d = makeDelivery(webhookId);
        await storage.enqueueDeliveries([d], { transaction: client });
        // Invisible to other connections until the host commits.
        expect(await storage.getDelivery(d.id)).toBeNull();
        await client.query(end);
        return d.id;
      } finally {
        client.release();
      }
    }

    it('drops the deliveries when the host rolls back', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const id = await inTransaction(storage, w.id, 'ROLLBACK');
      expect(await storage.getDelivery(id)).toBeNull();
      expect(await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 10, leaseMs: 1000 })).toEqual([]);
    });

    it('keeps them when the host commits', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const id = await inTransaction(storage, w.id, 'COMMIT');
      const claimed = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 10, leaseMs: 1000 });
      expect(claimed.map((d) => d.id)).toEqual([id]);
    });

    it('leaves the host transaction usable when an enqueue fails', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const existing = makeDelivery(w.id);
      await storage.enqueueDeliveries([existing]);
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const fresh = makeDelivery(w.id);
        await expect(
          storage.enqueueDeliveries([fresh, makeDelivery(w.id, { id: existing.id })], { transaction: client }),
        ).rejects.toBeInstanceOf(StorageError);
        const ok = makeDelivery(w.id);
        await storage.enqueueDeliveries([ok], { transaction: client });
        await client.query('COMMIT');
        expect(await storage.getDelivery(fresh.id)).toBeNull(); // all or none
        expect(await storage.getDelivery(ok.id)).toMatchObject({ id: ok.id, status: 'pending', attempts: 0 });
      } finally {
        client.release();
      }
    });
  });

  describe('subscribe (LISTEN/NOTIFY)', () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    /** Connections of the server whose last statement LISTENs on this schema's channel. */
    async function listeners(schema: string): Promise<number> {
      const result = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1', [
        `LISTEN "${schema}.webhook_deliveries"`,
      ]);
      return result.rows[0]!.n;
    }

    async function waitFor(check: () => boolean, ms = 3000): Promise<void> {
      const until = Date.now() + ms;
      while (!check()) {
        if (Date.now() > until) throw new Error('timed out waiting for a notification');
        await sleep(10);
      }
    }

    it('throttles notifications of its own enqueues to one per notifyIntervalMs, never in host transactions', async () => {
      const schema = newSchema();
      const storage = await migrated({ schema });
      const throttled = new PostgresStorage({ pool, schema, notifyIntervalMs: 60_000 });
      const every = new PostgresStorage({ pool, schema, notifyIntervalMs: 0 });
      const w = makeWebhook();
      await storage.insertWebhook(w);
      let calls = 0;
      const unsubscribe = await storage.subscribe(() => calls++);
      try {
        for (let i = 0; i < 3; i++) await throttled.enqueueDeliveries([makeDelivery(w.id)]);
        await waitFor(() => calls === 1);
        await sleep(200);
        expect(calls).toBe(1);
        for (let i = 0; i < 2; i++) await every.enqueueDeliveries([makeDelivery(w.id)]);
        await waitFor(() => calls === 3);
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await throttled.enqueueDeliveries([makeDelivery(w.id)], { transaction: client });
          await client.query('COMMIT');
        } finally {
          client.release();
        }
        await waitFor(() => calls === 4);
        expect(() => new PostgresStorage({ pool, schema, notifyIntervalMs: -1 })).toThrow(/notifyIntervalMs/);
      } finally {
        await unsubscribe();
      }
    });

    it('wakes on committed enqueues from any instance, not on rolled-back ones', async () => {
      const schema = newSchema();
      const storage = await migrated({ schema });
      const other = new PostgresStorage({ pool: newPool(), schema });
      const w = makeWebhook();
      await storage.insertWebhook(w);
      let calls = 0;
      const unsubscribe = await storage.subscribe(() => calls++);

      await other.enqueueDeliveries([makeDelivery(w.id)]);
      await waitFor(() => calls === 1);

      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await storage.enqueueDeliveries([makeDelivery(w.id)], { transaction: client });
        await sleep(300);
        expect(calls).toBe(1); // not before commit
        await client.query('ROLLBACK');
        await sleep(300);
        expect(calls).toBe(1); // nor after a rollback

        await client.query('BEGIN');
        await storage.enqueueDeliveries([makeDelivery(w.id)], { transaction: client });
        await client.query('COMMIT');
        await waitFor(() => calls === 2);
      } finally {
        client.release();
      }

      await unsubscribe();
      await other.enqueueDeliveries([makeDelivery(w.id)]);
      await sleep(300);
      expect(calls).toBe(2);
    });

    it('does not hear other schemas', async () => {
      const storage = await migrated();
      const stranger = await migrated();
      const w = makeWebhook();
      await stranger.insertWebhook(w);
      let calls = 0;
      const unsubscribe = await storage.subscribe(() => calls++);
      await stranger.enqueueDeliveries([makeDelivery(w.id)]);
      await sleep(300);
      expect(calls).toBe(0);
      await unsubscribe();
    });

    it('close() ends subscriptions and gives the connection back, leaving the pool open', async () => {
      const listenPool = newPool();
      const schema = newSchema();
      const storage = await migrated({ schema, pool: listenPool });
      let calls = 0;
      await storage.subscribe(() => calls++);
      expect(listenPool.totalCount - listenPool.idleCount).toBe(1);
      await storage.close();
      expect(listenPool.totalCount - listenPool.idleCount).toBe(0);
      const w = makeWebhook();
      await storage.insertWebhook(w); // the pool still works
      await new PostgresStorage({ pool, schema }).enqueueDeliveries([makeDelivery(w.id)]);
      await sleep(300);
      expect(calls).toBe(0);
      await expect(storage.subscribe(() => undefined)).rejects.toBeInstanceOf(StorageError);
    });

    it('surfaces a dropped LISTEN connection through onError, listens again and wakes the subscriber', async () => {
      const schema = newSchema();
      const errors: StorageError[] = [];
      const storage = new PostgresStorage({ pool, schema, onError: (e) => errors.push(e) });
      await storage.migrate();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      let calls = 0;
      const unsubscribe = await storage.subscribe(() => calls++);
      const killed = await pool.query(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE query = $1 AND pid <> pg_backend_pid()`,
        [`LISTEN "${schema}.webhook_deliveries"`],
      );
      expect(killed.rows).toHaveLength(1);
      await waitFor(() => errors.length >= 1);
      expect(errors[0]).toBeInstanceOf(StorageError);
      expect(errors[0]!.message).toMatch(/listening again/);
      // Listening again, it wakes the subscriber once (notifications sent meanwhile are lost) …
      await waitFor(() => calls === 1);
      // … and hears enqueues again.
      await new PostgresStorage({ pool, schema, notifyIntervalMs: 0 }).enqueueDeliveries([makeDelivery(w.id)]);
      await waitFor(() => calls === 2);
      await unsubscribe();
      await storage.close();
      expect(await listeners(schema)).toBe(0);
    });
  });

  describe('webhooks', () => {
    it('rejects a duplicate id with StorageError and keeps the first', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      await expect(storage.insertWebhook({ ...w, url: 'https://other.example/' })).rejects.toThrow(/already exists/);
      expect(await storage.getWebhook(w.id)).toEqual(w);
    });

    it('returns times as numbers and health that survives updates', async () => {
      const storage = await migrated();
      const w = makeWebhook();
      await storage.insertWebhook(w);
      await storage.recordWebhookResult(w.id, false, T0 + 5);
      await storage.updateWebhook({ ...w, enabled: false });
      const health = await storage.getWebhookHealth(w.id);
      expect(health).toEqual({ consecutiveFailures: 1, failingSince: T0 + 5, lastSuccessAt: null, lastFailureAt: T0 + 5 });
      await storage.enqueueDeliveries([makeDelivery(w.id)]);
      const [d] = await storage.claimDueDeliveries({ ...CLAIM, now: T0, limit: 1, leaseMs: 5 });
      // bigint columns come back as numbers (pg returns int8 as strings by default), exactly.
      expect(d!.runAt).toBe(T0);
      expect(d!.leaseExpiresAt).toBe(T0 + 5);
      expect(await storage.nextRunAt()).toBe(T0 + 5);
    });
  });
});
