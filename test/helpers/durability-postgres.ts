/**
 * What the Postgres durability files share: pools, fresh schemas, storages, receivers and
 * dispatchers that are disposed of after each test (schemas and pools after the file), and reads
 * of the deliveries table. Call {@link postgresDurability} once at the top of a test file: it
 * registers the file's afterEach and afterAll hooks.
 */
import pg from 'pg';
import { afterAll, afterEach } from 'vitest';
import { WebhookDispatcher, type DispatcherErrorEvent, type WebhookDispatcherOptions } from 'webhook-dispatcher';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { Receiver } from './receiver.js';
import { pgConfig, uniqueSchema } from './postgres.js';

export function postgresDurability() {
  const schemas = new Set<string>();
  const pools: pg.Pool[] = [];
  // Everything a test opens is disposed of after it, in reverse order.
  const disposers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const dispose of disposers.reverse()) await dispose();
    disposers.length = 0;
  });
  afterAll(async () => {
    if (pools.length === 0) return;
    const admin = pools[0]!;
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await Promise.all(pools.map((p) => p.end()));
  });

  function newPool(): pg.Pool {
    const pool = new pg.Pool({ ...pgConfig, max: 10 });
    pools.push(pool);
    return pool;
  }

  /** A fresh schema name, dropped after the file. */
  function newSchema(): string {
    const schema = uniqueSchema('wd_durability');
    schemas.add(schema);
    return schema;
  }

  async function startReceiver(...args: Parameters<typeof Receiver.start>): Promise<Receiver> {
    const receiver = await Receiver.start(...args);
    disposers.push(() => receiver.close());
    return receiver;
  }

  async function openStorage(pool: pg.Pool, schema: string): Promise<PostgresStorage> {
    const storage = new PostgresStorage({ pool, schema });
    await storage.migrate();
    disposers.push(() => storage.close());
    return storage;
  }

  /** A dispatcher allowed to deliver to the loopback receiver; errors are collected, not thrown. */
  function newDispatcher(storage: PostgresStorage, options: WebhookDispatcherOptions = {}) {
    const dispatcher = new WebhookDispatcher({
      storage,
      // The receiver is on 127.0.0.1: this is the explicit opt-out of the SSRF guard, which blocks
      // loopback (and other private addresses) by default.
      allowPrivateNetworks: true,
      circuitBreaker: false,
      ...options,
    });
    const errors: DispatcherErrorEvent[] = [];
    dispatcher.on('error', (event) => errors.push(event));
    disposers.push(() => dispatcher.close());
    return { dispatcher, errors };
  }

  async function statusCounts(pool: pg.Pool, schema: string): Promise<Record<string, number>> {
    const { rows } = await pool.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM "${schema}".webhook_deliveries GROUP BY status`,
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  return { disposers, pools, newPool, newSchema, startReceiver, openStorage, newDispatcher, statusCounts };
}
