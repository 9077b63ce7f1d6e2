import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageError, WebhookValidationError } from '../src/errors.js';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { describeStorageConformance, makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import { removeDb, tempDbPath } from './helpers/sqlite-files.js';

const T0 = Date.UTC(2030, 0, 1);

describeStorageConformance('SqliteStorage (memory)', () => {
  const db = new Database(':memory:');
  const storage = new SqliteStorage({ database: db });
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      db.close();
    },
  };
});

describeStorageConformance('SqliteStorage (file)', () => {
  const path = tempDbPath();
  const storage = new SqliteStorage({ path });
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      removeDb(path);
    },
  };
});

describeStorageConformance('SqliteStorage (file, on the calling thread)', () => {
  const path = tempDbPath();
  const storage = new SqliteStorage({ path, worker: false });
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      removeDb(path);
    },
  };
});

describe('SqliteStorage', () => {
  // Everything opened in a test is disposed of here, in reverse order.
  const disposers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const dispose of disposers.reverse()) await dispose();
    disposers.length = 0;
  });

  function memoryDb(options?: Database.Options): Database.Database {
    const db = new Database(':memory:', options);
    disposers.push(() => db.close());
    return db;
  }

  function fileDb(): string {
    const path = tempDbPath();
    disposers.push(() => removeDb(path));
    return path;
  }

  function connect(path: string): Database.Database {
    const db = new Database(path);
    disposers.push(() => db.close());
    return db;
  }

  async function open(options: ConstructorParameters<typeof SqliteStorage>[0]): Promise<SqliteStorage> {
    const storage = new SqliteStorage(options);
    disposers.push(() => storage.close());
    await storage.migrate();
    return storage;
  }

  describe('options and schema', () => {
    it('migrate() is idempotent and records the schema version', async () => {
      const db = memoryDb();
      const storage = await open({ database: db });
      await storage.migrate();
      await storage.migrate();
      const versions = db.prepare('SELECT version, applied_at FROM webhook_migrations').all() as Array<{ version: number; applied_at: number }>;
      expect(versions.map((v) => v.version)).toEqual([1, 2, 3]);
      expect(versions[0]!.applied_at).toBeGreaterThan(0);
      const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{ name: string }>).map(
        (t) => t.name,
      );
      expect(tables).toEqual([
        'webhook_deliveries',
        'webhook_executions',
        'webhook_migrations',
        'webhook_ordering_keys',
        'webhook_queue_signals',
        'webhook_queues',
        'webhook_triggers',
        'webhook_webhooks',
      ]);
    });

    it('concurrent migrate() from two connections to one file applies each migration once', async () => {
      const path = fileDb();
      const a = new SqliteStorage({ path });
      const b = new SqliteStorage({ path });
      disposers.push(() => a.close(), () => b.close());
      await Promise.all([a.migrate(), b.migrate()]);
      const db = connect(path);
      expect(db.prepare('SELECT version FROM webhook_migrations').all()).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }]);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    });

    it('isolates two storages in one database by table prefix', async () => {
      const db = memoryDb();
      const a = await open({ database: db, tablePrefix: 'shop_a_' });
      const b = await open({ database: db, tablePrefix: 'shop_b_' });
      const webhook = makeWebhook();
      await a.insertWebhook(webhook);
      await a.enqueueDeliveries([makeDelivery(webhook.id)]);
      expect(await b.getWebhook(webhook.id)).toBeNull();
      expect(await b.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000, defaultConcurrency: 64 })).toEqual([]);
      expect(await a.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000, defaultConcurrency: 64 })).toHaveLength(1);
      // b can hold a webhook with the same id without conflict.
      await b.insertWebhook(webhook);
      expect(await b.getWebhook(webhook.id)).toEqual(webhook);
    });

    it('rejects an invalid table prefix and ambiguous options with a WebhookValidationError naming the option', () => {
      const db = memoryDb();
      const named = (field: string) => expect.objectContaining({ name: 'WebhookValidationError', field });
      for (const tablePrefix of ['', 'Webhook_', '1abc', 'a-b', 'a b', 'x;DROP TABLE t;']) {
        expect(() => new SqliteStorage({ database: db, tablePrefix })).toThrow(named('tablePrefix'));
      }
      expect(() => new SqliteStorage({})).toThrow(named('path'));
      expect(() => new SqliteStorage({})).toThrow(WebhookValidationError);
      expect(() => new SqliteStorage({ database: db, path: 'x.db' })).toThrow(named('database'));
      expect(() => new SqliteStorage({ database: {} as never })).toThrow(named('database'));
      expect(() => new SqliteStorage(undefined as never)).toThrow(WebhookValidationError);
    });

    it('wraps driver failures in StorageError, keeping the cause', async () => {
      const storage = await open({ database: memoryDb() });
      const webhook = makeWebhook();
      await storage.insertWebhook(webhook);
      await expect(storage.insertWebhook(webhook)).rejects.toBeInstanceOf(StorageError);
      const delivery = makeDelivery(webhook.id);
      await storage.enqueueDeliveries([delivery]);
      // All or none: a batch containing an existing id writes nothing.
      const fresh = makeDelivery(webhook.id);
      await expect(storage.enqueueDeliveries([fresh, delivery])).rejects.toBeInstanceOf(StorageError);
      expect(await storage.getDelivery(fresh.id)).toBeNull();
    });

    it('close() leaves a database it was given open, and closes one it opened', async () => {
      const db = memoryDb();
      const given = await open({ database: db });
      await given.close();
      expect(db.open).toBe(true);
      await expect(given.getWebhook('wh_x')).rejects.toBeInstanceOf(StorageError);

      const owned = await open({ path: fileDb() });
      await owned.close();
      await owned.close(); // idempotent
      await expect(owned.nextRunAt()).rejects.toThrow(/closed/);
    });

    it('switches a file it opens to WAL', async () => {
      const path = fileDb();
      const storage = await open({ path });
      await storage.insertWebhook(makeWebhook());
      const db = connect(path);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    });
  });

  describe('outbox (host transactions)', () => {
    async function setup() {
      const path = fileDb();
      const storage = await open({ path });
      const webhook = makeWebhook();
      await storage.insertWebhook(webhook);
      const host = connect(path);
      return { storage, webhook, host };
    }

    it('drops deliveries enqueued in a host transaction that rolls back', async () => {
      const { storage, webhook, host } = await setup();
      host.exec('BEGIN IMMEDIATE');
      host.exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY)`);
      const delivery = makeDelivery(webhook.id);
      const result = await storage.enqueueDeliveries([delivery], { transaction: host });
      expect(result.deliveries).toEqual([{ id: delivery.id, webhookId: webhook.id, coalesced: false, sequence: null }]);
      expect(host.inTransaction).toBe(true);
      host.exec('ROLLBACK');
      expect(await storage.getDelivery(delivery.id)).toBeNull();
      expect(await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000, defaultConcurrency: 64 })).toEqual([]);
    });

    it('keeps deliveries enqueued in a host transaction that commits, invisible until then', async () => {
      const { storage, webhook, host } = await setup();
      host.exec('BEGIN IMMEDIATE');
      const delivery = makeDelivery(webhook.id);
      await storage.enqueueDeliveries([delivery], { transaction: host });
      // WAL: the adapter's connection reads the last committed state without waiting.
      expect(await storage.getDelivery(delivery.id)).toBeNull();
      host.exec('COMMIT');
      const claimed = await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000, defaultConcurrency: 64 });
      expect(claimed.map((d) => d.id)).toEqual([delivery.id]);
    });

    it('joins a transaction on the adapter’s own Database', async () => {
      const db = memoryDb();
      const storage = await open({ database: db });
      const webhook = makeWebhook();
      await storage.insertWebhook(webhook);
      const dropped = makeDelivery(webhook.id);
      db.exec('BEGIN');
      await storage.enqueueDeliveries([dropped], { transaction: db });
      db.exec('ROLLBACK');
      expect(await storage.getDelivery(dropped.id)).toBeNull();

      // Inside better-sqlite3's own transaction helper too: the writes happen synchronously.
      const kept = makeDelivery(webhook.id);
      db.transaction(() => {
        void storage.enqueueDeliveries([kept], { transaction: db });
      })();
      expect(await storage.getDelivery(kept.id)).toEqual(kept);
    });

    it('a failed enqueue undoes only its own writes in the host transaction', async () => {
      const { storage, webhook, host } = await setup();
      const first = makeDelivery(webhook.id);
      const second = makeDelivery(webhook.id);
      host.exec('BEGIN IMMEDIATE');
      await storage.enqueueDeliveries([first], { transaction: host });
      await expect(storage.enqueueDeliveries([second, first], { transaction: host })).rejects.toBeInstanceOf(StorageError);
      expect(host.inTransaction).toBe(true);
      host.exec('COMMIT');
      expect(await storage.getDelivery(first.id)).toEqual(first);
      expect(await storage.getDelivery(second.id)).toBeNull();
    });

    it('rejects a transaction option that is not a better-sqlite3 Database inside a transaction', async () => {
      const { storage, webhook, host } = await setup();
      const delivery = makeDelivery(webhook.id);
      const named = expect.objectContaining({ name: 'WebhookValidationError', field: 'transaction' });
      await expect(storage.enqueueDeliveries([delivery], { transaction: {} })).rejects.toThrow(named);
      await expect(storage.enqueueDeliveries([delivery], { transaction: null })).rejects.toThrow(named);
      await expect(storage.enqueueDeliveries([delivery], { transaction: host })).rejects.toThrow(/not inside a transaction/);
      expect(await storage.getDelivery(delivery.id)).toBeNull();
    });
  });

  describe('coalescing edge cases', () => {
    it('a delivery back from an expired lease does not absorb emits, and does not clash with the one that does', async () => {
      const storage = await open({ database: memoryDb() });
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const first = makeDelivery(w.id, { coalesceKey: 'order:1' });
      await storage.enqueueDeliveries([first]);
      await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000, defaultConcurrency: 64 });
      const during = makeDelivery(w.id, { coalesceKey: 'order:1', runAt: T0 + 60_000 });
      await storage.enqueueDeliveries([during]);
      // The lease expires while the queue is paused: `first` waits again next to `during`, same key.
      await storage.pauseQueue(w.id, T0 + 10_000);
      expect(await storage.claimDueDeliveries({ now: T0 + 5000, limit: 1, leaseMs: 1000, defaultConcurrency: 64 })).toEqual([]);
      expect((await storage.getDelivery(first.id))?.status).toBe('pending');
      const later = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"later":true}' });
      const result = await storage.enqueueDeliveries([later]);
      expect(result.deliveries[0]).toEqual({ id: during.id, webhookId: w.id, coalesced: true, sequence: null });
      expect((await storage.getDelivery(first.id))?.body).toBe(first.body);
    });

    it('a requeued delivery takes over its key', async () => {
      const storage = await open({ database: memoryDb() });
      const w = makeWebhook();
      await storage.insertWebhook(w);
      await storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'k' })]);
      const [c] = await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000, defaultConcurrency: 64 });
      await storage.completeAttempt({
        deliveryId: c!.id,
        leaseToken: c!.leaseToken,
        outcome: { status: 'failed', lastStatus: 500, lastError: 'HTTP 500' },
        execution: makeExecution(c!, { status: 500, success: false }),
      });
      const other = makeDelivery(w.id, { coalesceKey: 'k' });
      await storage.enqueueDeliveries([other]);
      expect(await storage.requeueDeliveries({ deliveryIds: [c!.id], runAt: T0, now: T0 })).toEqual([c!.id]);
      const next = await storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'k', body: '{"n":3}' })]);
      expect(next.deliveries[0]).toMatchObject({ id: c!.id, coalesced: true, sequence: null });
      expect((await storage.getDelivery(other.id))?.status).toBe('pending');
    });
  });

  describe('claiming at scale', () => {
    /** Every statement a callback runs against the adapter's tables, with its query plan. */
    async function plansOf(db: Database.Database, statements: string[], run: () => Promise<unknown>) {
      statements.length = 0;
      await run();
      return statements
        .filter((sql) => /^(SELECT|UPDATE|DELETE|INSERT)/.test(sql) && /webhook_(deliveries|queues|ordering_keys)/.test(sql))
        .map((sql) => ({ sql, plan: (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>).map((r) => r.detail).join('\n') }));
    }

    it('claims, completes and finds the next run time through indexes, never scanning deliveries or queues', async () => {
      const statements: string[] = [];
      const db = memoryDb({ verbose: (sql) => statements.push(String(sql)) });
      const storage = await open({ database: db });
      const ordered = makeWebhook({ ordering: 'entity', rateLimit: { perSecond: 10, burst: 5 } });
      const plain = makeWebhook({ concurrency: 2 });
      await storage.insertWebhook(ordered);
      await storage.insertWebhook(plain);
      await storage.enqueueDeliveries([
        ...Array.from({ length: 3 }, () => makeDelivery(ordered.id, { orderingKey: 'order:1' })),
        ...Array.from({ length: 5 }, () => makeDelivery(plain.id)),
        makeDelivery(plain.id, { runAt: T0 + 10_000 }),
        makeDelivery(plain.id, { isTest: true }),
      ]);
      const plans = await plansOf(db, statements, async () => {
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000, defaultConcurrency: 64 });
        await storage.completeAttempts(
          claimed.map((c) => ({
            deliveryId: c.id,
            leaseToken: c.leaseToken,
            outcome: { status: 'succeeded' as const, lastStatus: 200, lastError: null },
            execution: makeExecution(c),
          })),
        );
        await storage.claimDueDeliveries({ now: T0 + 5000, limit: 10, leaseMs: 1000, defaultConcurrency: 64 });
        await storage.nextRunAt();
        await storage.getQueueStats(plain.id, T0);
      });
      expect(plans.some((p) => p.sql.includes('INDEXED BY webhook_deliveries_queue'))).toBe(true);
      expect(plans.some((p) => p.sql.includes('INDEXED BY webhook_deliveries_held'))).toBe(true);
      for (const { sql, plan } of plans) {
        // A walk of an index is fine only to its first entry; a table scan never.
        if (!/LIMIT 1$/.test(sql)) expect(plan, sql).not.toMatch(/SCAN webhook_(deliveries|queues)\b/);
        expect(plan, sql).not.toMatch(/SCAN webhook_(deliveries|queues)$/m);
        expect(plan, sql).not.toMatch(/TEMP B-TREE/);
      }
    });

    it('claims 100 from a 20k backlog in run order, past 5k retries scheduled for later', async () => {
      const storage = await open({ path: fileDb() });
      const w = makeWebhook();
      await storage.insertWebhook(w);
      const backlog = Array.from({ length: 20_000 }, (_, i) =>
        // A quarter is scheduled for later: never claimed, never in the way.
        makeDelivery(w.id, { runAt: i % 4 === 0 ? T0 + 3_600_000 : T0 - (i % 1000) }),
      );
      await storage.enqueueDeliveries(backlog);
      const claimed = await storage.claimDueDeliveries({ now: T0, limit: 100, leaseMs: 30_000, defaultConcurrency: 1000 });
      const expected = backlog
        .filter((d) => d.runAt <= T0)
        .sort((a, b) => a.runAt - b.runAt || (a.id < b.id ? -1 : 1))
        .slice(0, 100);
      expect(claimed.map((d) => d.id)).toEqual(expected.map((d) => d.id));
      expect(await storage.getQueueStats(w.id, T0)).toMatchObject({ due: 14_900, scheduled: 5000, inFlight: 100 });
    });
  });

  describe('several connections on one file', () => {
    it('two instances claiming in an interleaved loop never get the same delivery', async () => {
      const path = fileDb();
      const a = await open({ path });
      const b = await open({ path });
      const w = makeWebhook();
      await a.insertWebhook(w);
      await a.enqueueDeliveries(Array.from({ length: 500 }, () => makeDelivery(w.id)));
      const claim = (storage: SqliteStorage) => storage.claimDueDeliveries({ now: T0, limit: 7, leaseMs: 600_000, defaultConcurrency: 10_000 });
      // Both claim at once in every step, so each gets work however the two threads are scheduled.
      const fromA: string[] = [];
      const fromB: string[] = [];
      for (;;) {
        const [batchA, batchB] = await Promise.all([claim(a), claim(b)]);
        fromA.push(...batchA.map((d) => d.id));
        fromB.push(...batchB.map((d) => d.id));
        if (batchA.length === 0 && batchB.length === 0) break;
      }
      expect(fromA.length).toBeGreaterThan(0);
      expect(fromB.length).toBeGreaterThan(0);
      const all = [...fromA, ...fromB];
      expect(all).toHaveLength(500);
      expect(new Set(all).size).toBe(500);
    });
  });
});
