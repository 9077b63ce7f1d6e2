/**
 * PostgreSQL storage: durable, shared by any number of dispatcher processes. One queue row per
 * webhook holds its cap, rate limit, pause and ordering; claims read each ready queue's due rows
 * through its own index (`FOR UPDATE SKIP LOCKED`), completions are fenced by lease tokens,
 * enqueues can join the host's own transaction (transactional outbox), and `LISTEN/NOTIFY` wakes
 * dispatchers as soon as work is committed (and listens again after the server restarts).
 *
 * The adapter does not import `pg`: pass your own `pg.Pool` (or anything with the same shape).
 * Requires PostgreSQL 13 or later (`gen_random_uuid()` in core).
 *
 * ```ts
 * import pg from 'pg';
 * import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
 * const pool = new pg.Pool({ connectionString });
 * pool.on('error', (error) => console.error('idle Postgres connection failed', error)); // or a restart ends the process
 * const storage = new PostgresStorage({ pool });
 * await storage.migrate();
 * ```
 *
 * @module
 */
export { PostgresStorage } from './postgres/storage.js';
export { SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION } from './postgres/schema.js';
export type {
  PostgresNotification,
  PostgresPool,
  PostgresPoolClient,
  PostgresQueryResult,
  PostgresQueryable,
  PostgresStorageOptions,
} from './postgres/driver.js';
