/**
 * SQLite storage adapter, on [better-sqlite3](https://github.com/WiseLibs/better-sqlite3) (an
 * optional peer dependency: install it to use this subpath).
 *
 * ```ts
 * import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
 * const storage = new SqliteStorage({ path: 'webhooks.db' });
 * await storage.migrate();
 * ```
 *
 * Several processes may share one database file: claims run in `BEGIN IMMEDIATE` transactions,
 * so writers are serialised by SQLite's file lock (with a busy timeout) and a delivery is
 * claimed by one worker at a time. better-sqlite3 is synchronous, so a connection the adapter
 * opens (`{ path }`) lives on a worker thread (sqlite/thread.ts) and its SQL never blocks the
 * host's event loop; a `database` passed in is used on the caller's thread. Every call touches
 * O(log n) index entries plus the rows it returns or changes.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { StorageError, WebhookError, WebhookValidationError } from '../../errors.js';
import { LeasedBodies } from '../leased-bodies.js';
import { FALLBACK_AUTOCHECKPOINT_PAGES, SqliteCheckpointer } from './checkpointer.js';
import { SqliteThread } from './thread.js';
import type {
  ClaimRequest,
  ClaimedDelivery,
  CompleteAttempt,
  DeliveryQuery,
  DeliveryRecord,
  DeliveryStatus,
  EnqueueResult,
  EventMatch,
  ExecutionQuery,
  ExecutionRecord,
  Page,
  PruneRequest,
  PruneResult,
  RequeueRequest,
  WebhookHealth,
  WebhookQuery,
  WebhookRecord,
  WebhookStorage,
  WriteOptions,
} from '../types.js';

// Only the parts of better-sqlite3 this adapter calls are typed here, so the published
// declarations do not depend on @types/better-sqlite3; a real `Database` satisfies them.

/** The part of a better-sqlite3 `Statement` this adapter uses. */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** The part of a better-sqlite3 `Database` this adapter uses. A `new Database(…)` satisfies it. */
export interface SqliteDatabase {
  readonly open: boolean;
  readonly inTransaction: boolean;
  readonly memory: boolean;
  prepare(source: string): SqliteStatement;
  exec(source: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): unknown;
}

/** Options of {@link SqliteStorage}. Pass exactly one of `database` and `path`. */
export interface SqliteStorageOptions {
  /**
   * A better-sqlite3 Database you own: the adapter uses it but never closes it. The adapter
   * switches a file database to WAL (a persistent setting of the file) and raises
   * `busy_timeout` to at least 5000 ms; it leaves other settings alone.
   */
  database?: SqliteDatabase;
  /**
   * A database file to open (created if missing). The adapter owns this connection, sets
   * `journal_mode = WAL`, `busy_timeout = 5000`, `synchronous = NORMAL`, `foreign_keys = ON`,
   * and closes it in {@link SqliteStorage.close}. Requires the `better-sqlite3` package.
   */
  path?: string;
  /**
   * Prefix of every table and index name, so several stores (or your own tables) can share a
   * database. Lowercase letters, digits and `_`, not starting with a digit. Default `webhook_`.
   */
  tablePrefix?: string;
  /**
   * With `path`: run the connection on a worker thread of its own (default `true`), so SQLite's
   * synchronous work (queries, commits, checkpoints with their fsync) never blocks your event
   * loop; calls cross as structured clones, in order. `false` runs it on the calling thread, as
   * a `database` you pass in always does. A database that cannot be opened then rejects the first
   * call (usually `migrate()`) instead of throwing from the constructor. Given with `database`,
   * this and `checkpoints` are refused with a WebhookValidationError.
   */
  worker?: boolean;
  /**
   * With `path`: who checkpoints the WAL (copies it back into the database file and fsyncs).
   * `'background'` (default for a file): a thread of its own, every 100 ms, never blocking the
   * adapter's calls; the connection's own automatic checkpoint stays as a safety valve at 10,000
   * pages. `'auto'`: SQLite's default, inside whichever commit crosses 1,000 WAL pages.
   */
  checkpoints?: 'background' | 'auto';
}

const PREFIX_PATTERN = /^[a-z_][a-z0-9_]*$/;
const BUSY_TIMEOUT_MS = 5000;

/** One schema change. Versions only grow; an applied migration is never edited. */
interface Migration {
  version: number;
  sql: (p: string) => string;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: (p) => `
      CREATE TABLE ${p}webhooks (
        id TEXT PRIMARY KEY NOT NULL,
        tenant_id TEXT,
        enabled INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        record TEXT NOT NULL,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        failing_since INTEGER,
        last_success_at INTEGER,
        last_failure_at INTEGER
      );
      CREATE INDEX ${p}webhooks_tenant ON ${p}webhooks (tenant_id, id);

      CREATE TABLE ${p}triggers (
        entity TEXT NOT NULL,
        event TEXT NOT NULL,
        webhook_id TEXT NOT NULL,
        PRIMARY KEY (entity, event, webhook_id)
      ) WITHOUT ROWID;
      CREATE INDEX ${p}triggers_webhook ON ${p}triggers (webhook_id);

      CREATE TABLE ${p}deliveries (
        id TEXT PRIMARY KEY NOT NULL,
        webhook_id TEXT NOT NULL,
        tenant_id TEXT,
        entity TEXT NOT NULL,
        event TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        priority INTEGER NOT NULL,
        body TEXT NOT NULL,
        content_type TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        is_test INTEGER NOT NULL,
        coalesce_key TEXT,
        coalesced_count INTEGER NOT NULL,
        coalesce_slot TEXT,
        lease_token TEXT,
        lease_expires_at INTEGER
      );
      CREATE INDEX ${p}deliveries_due ON ${p}deliveries (priority DESC, run_at, created_at, id, endpoint, status)
        WHERE status IN ('pending', 'scheduled');
      CREATE INDEX ${p}deliveries_run_at ON ${p}deliveries (run_at, status) WHERE status IN ('pending', 'scheduled');
      CREATE INDEX ${p}deliveries_lease ON ${p}deliveries (lease_expires_at) WHERE status = 'delivering';
      CREATE UNIQUE INDEX ${p}deliveries_coalesce ON ${p}deliveries (webhook_id, coalesce_slot)
        WHERE coalesce_slot IS NOT NULL;
      CREATE INDEX ${p}deliveries_webhook ON ${p}deliveries (webhook_id, id);
      CREATE INDEX ${p}deliveries_tenant ON ${p}deliveries (tenant_id, id);
      CREATE INDEX ${p}deliveries_finished ON ${p}deliveries (status, updated_at)
        WHERE status IN ('succeeded', 'failed', 'cancelled');

      CREATE TABLE ${p}executions (
        id TEXT PRIMARY KEY NOT NULL,
        webhook_id TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        tenant_id TEXT,
        entity TEXT NOT NULL,
        event TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        status INTEGER NOT NULL,
        success INTEGER NOT NULL,
        hard_error INTEGER NOT NULL,
        error_message TEXT,
        error_code TEXT,
        method TEXT NOT NULL,
        url TEXT NOT NULL,
        request_headers TEXT NOT NULL,
        request_body TEXT NOT NULL,
        response_headers TEXT NOT NULL,
        response_body TEXT NOT NULL,
        next_attempt_at INTEGER,
        coalesced_count INTEGER NOT NULL
      );
      CREATE INDEX ${p}executions_webhook ON ${p}executions (webhook_id, id);
      CREATE INDEX ${p}executions_delivery ON ${p}executions (delivery_id, id);
      CREATE INDEX ${p}executions_tenant ON ${p}executions (tenant_id, id);
      CREATE INDEX ${p}executions_started ON ${p}executions (success, started_at);
    `,
  },
  {
    // Less written per delivery (better-sqlite3 runs on the caller's thread).
    // - executions.request_body becomes nullable: NULL means "the delivery's body" (the common
    //   case), read back through a join; '' still means stripped. SQLite cannot drop NOT NULL in
    //   place, so the table is rebuilt. Triggers copy the old body into such executions when their
    //   delivery's body changes (coalescing into a requeued delivery) or the delivery is deleted
    //   (prune, or any other code), so no execution loses its body.
    // - deliveries_run_at goes: nextRunAt walks deliveries_due per priority level instead.
    // - The tenant indexes skip untenanted rows, which tenant filters never select.
    version: 2,
    sql: (p) => `
      CREATE TABLE ${p}executions_v2 (
        id TEXT PRIMARY KEY NOT NULL,
        webhook_id TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        tenant_id TEXT,
        entity TEXT NOT NULL,
        event TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        status INTEGER NOT NULL,
        success INTEGER NOT NULL,
        hard_error INTEGER NOT NULL,
        error_message TEXT,
        error_code TEXT,
        method TEXT NOT NULL,
        url TEXT NOT NULL,
        request_headers TEXT NOT NULL,
        request_body TEXT,
        response_headers TEXT NOT NULL,
        response_body TEXT NOT NULL,
        next_attempt_at INTEGER,
        coalesced_count INTEGER NOT NULL
      );
      INSERT INTO ${p}executions_v2 (id, webhook_id, delivery_id, tenant_id, entity, event, attempt, started_at, ended_at,
          duration_ms, status, success, hard_error, error_message, error_code, method, url, request_headers, request_body,
          response_headers, response_body, next_attempt_at, coalesced_count)
        SELECT id, webhook_id, delivery_id, tenant_id, entity, event, attempt, started_at, ended_at,
          duration_ms, status, success, hard_error, error_message, error_code, method, url, request_headers, request_body,
          response_headers, response_body, next_attempt_at, coalesced_count
        FROM ${p}executions;
      DROP TABLE ${p}executions;
      ALTER TABLE ${p}executions_v2 RENAME TO ${p}executions;
      CREATE INDEX ${p}executions_webhook ON ${p}executions (webhook_id, id);
      CREATE INDEX ${p}executions_delivery ON ${p}executions (delivery_id, id);
      CREATE INDEX ${p}executions_tenant ON ${p}executions (tenant_id, id) WHERE tenant_id IS NOT NULL;
      CREATE INDEX ${p}executions_started ON ${p}executions (success, started_at);

      DROP INDEX ${p}deliveries_run_at;
      DROP INDEX ${p}deliveries_tenant;
      CREATE INDEX ${p}deliveries_tenant ON ${p}deliveries (tenant_id, id) WHERE tenant_id IS NOT NULL;

      CREATE TRIGGER ${p}deliveries_body_update AFTER UPDATE OF body ON ${p}deliveries WHEN OLD.body IS NOT NEW.body
      BEGIN
        UPDATE ${p}executions SET request_body = OLD.body WHERE delivery_id = OLD.id AND request_body IS NULL;
      END;
      CREATE TRIGGER ${p}deliveries_body_delete AFTER DELETE ON ${p}deliveries
      BEGIN
        UPDATE ${p}executions SET request_body = OLD.body WHERE delivery_id = OLD.id AND request_body IS NULL;
      END;
    `,
  },
];

/** The newest schema version this build knows. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

// `coalesce_slot` equals `coalesce_key` only on the one claimable delivery that absorbs later
// emits for its key (the memory adapter's coalescing index). It is not "status is claimable":
// a delivery whose lease expired, or that was released, is claimable again but must not absorb
// emits (its body may already be on the wire), and a requeued delivery takes the slot over from a
// claimable one. A partial unique index on it makes the upsert atomic across connections.

const DELIVERY_COLUMNS =
  'id, webhook_id, tenant_id, entity, event, endpoint, priority, body, content_type, status, attempts, run_at, ' +
  'created_at, updated_at, last_status, last_error, is_test, coalesce_key, coalesced_count';

const EXECUTION_COLUMNS =
  'id, webhook_id, delivery_id, tenant_id, entity, event, attempt, started_at, ended_at, duration_ms, status, success, ' +
  'hard_error, error_message, error_code, method, url, request_headers, request_body, response_headers, response_body, ' +
  'next_attempt_at, coalesced_count';

/** Execution columns as read back, from `executions e` joined to its delivery `d` (see migration 2). */
const EXECUTION_SELECT =
  'e.id, e.webhook_id, e.delivery_id, e.tenant_id, e.entity, e.event, e.attempt, e.started_at, e.ended_at, e.duration_ms, ' +
  'e.status, e.success, e.hard_error, e.error_message, e.error_code, e.method, e.url, e.request_headers, ' +
  "COALESCE(e.request_body, d.body, '') AS request_body, e.response_headers, e.response_body, e.next_attempt_at, e.coalesced_count";

/** Columns of a delivery INSERT, in the order of `deliveryValues`. */
const DELIVERY_INSERT_COLUMNS =
  'id, webhook_id, tenant_id, entity, event, endpoint, priority, body, content_type, status, attempts, run_at, ' +
  'created_at, updated_at, last_status, last_error, is_test, coalesce_key, coalesced_count, coalesce_slot';
const DELIVERY_INSERT_WIDTH = 20;
const EXECUTION_WIDTH = 23;

const HEALTH_COLUMNS = 'consecutive_failures, failing_since, last_success_at, last_failure_at';

const CLAIMABLE = `status IN ('pending', 'scheduled')`;
const FINAL = `status IN ('succeeded', 'failed', 'cancelled')`;

interface DeliveryRow {
  id: string;
  webhook_id: string;
  tenant_id: string | null;
  entity: string;
  event: string;
  endpoint: string;
  priority: number;
  body: string;
  content_type: string;
  status: DeliveryStatus;
  attempts: number;
  run_at: number;
  created_at: number;
  updated_at: number;
  last_status: number | null;
  last_error: string | null;
  is_test: number;
  coalesce_key: string | null;
  coalesced_count: number;
}

interface ExecutionRow {
  id: string;
  webhook_id: string;
  delivery_id: string;
  tenant_id: string | null;
  entity: string;
  event: string;
  attempt: number;
  started_at: number;
  ended_at: number;
  duration_ms: number;
  status: number;
  success: number;
  hard_error: number;
  error_message: string | null;
  error_code: string | null;
  method: string;
  url: string;
  request_headers: string;
  request_body: string;
  response_headers: string;
  response_body: string;
  next_attempt_at: number | null;
  coalesced_count: number;
}

interface HealthRow {
  consecutive_failures: number;
  failing_since: number | null;
  last_success_at: number | null;
  last_failure_at: number | null;
}

/** A claimed row in raw mode: the {@link DELIVERY_COLUMNS} values, then lease_token. */
type ClaimedRow = [
  id: string,
  webhookId: string,
  tenantId: string | null,
  entity: string,
  event: string,
  endpoint: string,
  priority: number,
  body: string,
  contentType: string,
  status: DeliveryStatus,
  attempts: number,
  runAt: number,
  createdAt: number,
  updatedAt: number,
  lastStatus: number | null,
  lastError: string | null,
  isTest: number,
  coalesceKey: string | null,
  coalescedCount: number,
  leaseToken: string,
];

/** Claim order within one priority level: earlier run_at, then creation, then id. */
function levelOrder(a: ClaimedRow, b: ClaimedRow): number {
  return a[11] - b[11] || a[12] - b[12] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}

function toDelivery(r: DeliveryRow): DeliveryRecord {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    tenantId: r.tenant_id,
    entity: r.entity,
    event: r.event,
    endpoint: r.endpoint,
    priority: r.priority,
    body: r.body,
    contentType: r.content_type,
    status: r.status,
    attempts: r.attempts,
    runAt: r.run_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastStatus: r.last_status,
    lastError: r.last_error,
    isTest: r.is_test === 1,
    coalesceKey: r.coalesce_key,
    coalescedCount: r.coalesced_count,
  };
}

function toClaimed(r: ClaimedRow, leaseExpiresAt: number): ClaimedDelivery {
  return {
    id: r[0],
    webhookId: r[1],
    tenantId: r[2],
    entity: r[3],
    event: r[4],
    endpoint: r[5],
    priority: r[6],
    body: r[7],
    contentType: r[8],
    status: r[9],
    attempts: r[10],
    runAt: r[11],
    createdAt: r[12],
    updatedAt: r[13],
    lastStatus: r[14],
    lastError: r[15],
    isTest: r[16] === 1,
    coalesceKey: r[17],
    coalescedCount: r[18],
    leaseToken: r[19],
    leaseExpiresAt,
  };
}

function toExecution(r: ExecutionRow): ExecutionRecord {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    deliveryId: r.delivery_id,
    tenantId: r.tenant_id,
    entity: r.entity,
    event: r.event,
    attempt: r.attempt,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    durationMs: r.duration_ms,
    status: r.status,
    success: r.success === 1,
    hardError: r.hard_error === 1,
    errorMessage: r.error_message,
    errorCode: r.error_code,
    method: r.method,
    url: r.url,
    requestHeaders: JSON.parse(r.request_headers) as Record<string, string>,
    requestBody: r.request_body,
    responseHeaders: JSON.parse(r.response_headers) as Record<string, string>,
    responseBody: r.response_body,
    nextAttemptAt: r.next_attempt_at,
    coalescedCount: r.coalesced_count,
  };
}

function toHealth(r: HealthRow): WebhookHealth {
  return {
    consecutiveFailures: r.consecutive_failures,
    failingSince: r.failing_since,
    lastSuccessAt: r.last_success_at,
    lastFailureAt: r.last_failure_at,
  };
}

// better-sqlite3 binds neither booleans nor undefined.
const bool = (value: boolean): number => (value ? 1 : 0);

/** Page size clamped to what SQLite's LIMIT accepts (a negative LIMIT means "no limit"). */
const pageSize = (limit: number): number => (Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0);

function pageOf<R extends { id: string }, T>(rows: R[], limit: number, map: (row: R) => T): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(map), nextCursor: rows.length > limit && last ? last.id : null };
}

const where = (conditions: string[]): string => (conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '');

/**
 * One database connection with its prepared-statement cache and transaction helper. Shared by
 * every adapter (and host transaction) using the same Database object; SQL text includes the
 * table prefix, so the cache key is the SQL alone.
 */
class Connection {
  private readonly statements = new Map<string, SqliteStatement>();
  private readonly rawStatements = new Map<string, { statement: SqliteStatement; raw: boolean }>();

  constructor(readonly db: SqliteDatabase) {}

  stmt(sql: string): SqliteStatement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * All rows as arrays of column values, in better-sqlite3's raw mode when the driver has it:
   * building an object with named properties per row costs more than the SQL of a claim.
   */
  allRaw(sql: string, params: unknown): unknown[][] {
    let entry = this.rawStatements.get(sql);
    if (!entry) {
      const statement = this.db.prepare(sql) as SqliteStatement & { raw?: (toggle: boolean) => unknown };
      const raw = typeof statement.raw === 'function';
      if (raw) statement.raw!(true);
      entry = { statement, raw };
      this.rawStatements.set(sql, entry);
    }
    const rows = entry.statement.all(params);
    return entry.raw ? (rows as unknown[][]) : rows.map((row) => Object.values(row as object));
  }

  /**
   * Runs `fn` atomically: in its own `BEGIN IMMEDIATE` transaction (taking the write lock up
   * front, so concurrent writers queue on busy_timeout instead of failing on lock upgrade), or,
   * when the connection is already inside a transaction (a host transaction), in a savepoint of
   * it so the host decides whether it commits.
   */
  transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) {
      this.stmt('SAVEPOINT webhook_dispatcher').run();
      try {
        const result = fn();
        this.stmt('RELEASE webhook_dispatcher').run();
        return result;
      } catch (error) {
        // Some errors (SQLITE_FULL, IOERR, …) roll the whole transaction back by themselves.
        if (this.db.inTransaction) {
          this.stmt('ROLLBACK TO webhook_dispatcher').run();
          this.stmt('RELEASE webhook_dispatcher').run();
        }
        throw error;
      }
    }
    this.stmt('BEGIN IMMEDIATE').run();
    try {
      const result = fn();
      this.stmt('COMMIT').run();
      return result;
    } catch (error) {
      if (this.db.inTransaction) this.stmt('ROLLBACK').run();
      throw error;
    }
  }
}

const connections = new WeakMap<SqliteDatabase, Connection>();

function connectionOf(db: SqliteDatabase): Connection {
  let connection = connections.get(db);
  if (!connection) {
    connection = new Connection(db);
    connections.set(db, connection);
  }
  return connection;
}

function isDatabase(value: unknown): value is SqliteDatabase {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.prepare === 'function' &&
    typeof v.exec === 'function' &&
    typeof v.pragma === 'function' &&
    typeof v.inTransaction === 'boolean' &&
    typeof v.open === 'boolean'
  );
}

const MISSING_DRIVER = 'SqliteStorage({ path }) needs the better-sqlite3 package: npm install better-sqlite3';

/** Where better-sqlite3 is installed; throws the install hint, on the caller's thread, when it is not. */
function driverPath(): string {
  try {
    return createRequire(import.meta.url).resolve('better-sqlite3');
  } catch (error) {
    throw new StorageError(MISSING_DRIVER, { cause: error });
  }
}

function openDatabase(path: string): SqliteDatabase {
  let Database: new (filename: string) => SqliteDatabase;
  try {
    // Loaded on demand so that importing this module never requires the optional peer.
    Database = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
  } catch (error) {
    throw new StorageError(MISSING_DRIVER, { cause: error });
  }
  try {
    return new Database(path);
  } catch (error) {
    throw new StorageError(`cannot open SQLite database ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The methods a database thread runs. `enqueueDeliveries` is not here: inside a host transaction
 * it runs on the host's connection, on the host's thread (it forwards the other case itself).
 */
const THREAD_METHODS = [
  'migrate',
  'insertWebhook',
  'getWebhook',
  'updateWebhook',
  'deleteWebhook',
  'listWebhooks',
  'findWebhooksForEvent',
  'claimDueDeliveries',
  'completeAttempt',
  'completeAttempts',
  'releaseDelivery',
  'extendLease',
  'cancelDelivery',
  'getDelivery',
  'listDeliveries',
  'nextRunAt',
  'countDeliveries',
  'requeueDeliveries',
  'listExecutions',
  'recordWebhookResult',
  'getWebhookHealth',
  'resetWebhookHealth',
  'prune',
] as const satisfies ReadonlyArray<keyof SqliteStorage>;

/**
 * {@link WebhookStorage} in SQLite via better-sqlite3: durable, shareable by several processes
 * on one machine (one database file), and able to join the host's transaction (outbox pattern).
 *
 * Call {@link migrate} once at startup before anything else.
 *
 * Outbox: pass a better-sqlite3 Database that is inside a transaction as
 * `enqueueDeliveries(…, { transaction: db })` (or `dispatcher.emit(…, { transaction: db })`). The
 * deliveries are written through that connection without a commit of their own, so they exist only
 * if the host commits. It may be the Database given to this adapter or another connection to the
 * same file (then start the host transaction with `BEGIN IMMEDIATE`: a deferred transaction that
 * has already read may fail to upgrade to a write with SQLITE_BUSY). While a host transaction
 * holds the write lock, this adapter's own writes on another connection wait up to busy_timeout,
 * blocking the thread, so keep host transactions short. When the host's transaction is on the
 * adapter's own Database, the adapter's other writes made meanwhile join that transaction too.
 *
 * `storage.enqueueDeliveries` runs synchronously before its promise settles, so it also works
 * inside a better-sqlite3 `db.transaction(() => …)` callback; `dispatcher.emit` does not (it awaits
 * the webhook lookup first, after the callback has committed): with `emit`, open the transaction
 * with `db.exec('BEGIN IMMEDIATE')` and `COMMIT` after the emit resolves.
 */
export class SqliteStorage implements WebhookStorage {
  /** Each transaction commits to the WAL: the dispatcher gathers concurrent writes into one. */
  readonly groupCommit = true;
  /** The connection, on this thread; null when it lives on the database thread ({@link thread}). */
  private readonly db: SqliteDatabase | null;
  /** The database thread running this adapter's calls (`{ path }` with `worker` on), else null. */
  private readonly thread: SqliteThread | null = null;
  /** The WAL checkpoint thread of the file this adapter opened on this thread, if any. */
  private checkpointer: SqliteCheckpointer | null = null;
  private readonly ownsDatabase: boolean;
  private readonly prefix: string;
  private readonly sql: ReturnType<typeof statements>;
  private closed = false;
  /** Bodies this adapter leased: an execution sending the same body stores NULL (see migration 2). */
  private readonly leasedBodies = new LeasedBodies();
  private readonly multiRowSqlCache = { deliveries: [] as string[], executions: [] as string[] };

  /**
   * @throws {WebhookValidationError} naming the option when the options are invalid (both or
   *   neither of `database`/`path`, a bad `tablePrefix`, …); {@link StorageError} when the database
   *   cannot be opened or configured.
   */
  constructor(options: SqliteStorageOptions) {
    if (typeof options !== 'object' || options === null) {
      throw invalidOption('', 'options must be an object: { path } or { database }');
    }
    const prefix = options.tablePrefix ?? 'webhook_';
    if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
      throw invalidOption('tablePrefix', `must match ${String(PREFIX_PATTERN)}, got ${JSON.stringify(prefix)}`);
    }
    if ((options.database === undefined) === (options.path === undefined)) {
      throw invalidOption(options.database === undefined ? 'path' : 'database', 'pass exactly one of { database } (a better-sqlite3 Database) or { path }');
    }
    this.prefix = prefix;
    this.sql = statements(prefix);
    if (options.database !== undefined) {
      if (!isDatabase(options.database)) throw invalidOption('database', 'must be a better-sqlite3 Database');
      // A connection the host opened stays on the host's thread with the host's settings.
      if (options.worker !== undefined || options.checkpoints !== undefined) {
        throw invalidOption(options.worker !== undefined ? 'worker' : 'checkpoints', 'goes with { path }, not with a { database } you pass in');
      }
      if (!options.database.open) throw invalidOption('database', 'is closed');
      this.db = options.database;
      this.ownsDatabase = false;
    } else {
      if (typeof options.path !== 'string' || options.path === '') throw invalidOption('path', 'must be a non-empty string');
      if (options.worker !== undefined && typeof options.worker !== 'boolean') throw invalidOption('worker', 'must be a boolean');
      if (options.checkpoints !== undefined && options.checkpoints !== 'background' && options.checkpoints !== 'auto') {
        throw invalidOption('checkpoints', "must be 'background' or 'auto'");
      }
      this.ownsDatabase = true;
      if (options.worker !== false) {
        driverPath();
        this.db = null;
        const thread = new SqliteThread({
          moduleUrl: import.meta.url,
          path: options.path,
          tablePrefix: options.tablePrefix,
          checkpoints: options.checkpoints,
        });
        this.thread = thread;
        // Every call but an outbox enqueue (which must run on the host's connection, here) goes
        // to the database thread: own properties shadow the in-thread methods below.
        for (const method of THREAD_METHODS) {
          // Writable and configurable like a method: spies and wrappers (vi.spyOn, proxies) keep working.
          Object.defineProperty(this, method, { value: (...args: unknown[]) => thread.call(method, args), writable: true, configurable: true });
        }
        return;
      }
      this.db = openDatabase(options.path);
    }
    const db = this.db;
    try {
      this.configure(db);
      if (options.path !== undefined && options.checkpoints !== 'auto' && !db.memory) {
        // The checkpoint thread does the copying and fsyncs; this connection only if it falls far behind.
        db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
        this.checkpointer = new SqliteCheckpointer(options.path, driverPath());
      }
    } catch (error) {
      if (this.ownsDatabase) db.close();
      throw new StorageError(`SqliteStorage: cannot configure the database: ${(error as Error).message}`, { cause: error });
    }
  }

  private configure(db: SqliteDatabase): void {
    const busy = Number(db.pragma('busy_timeout', { simple: true }));
    if (this.ownsDatabase || !(busy >= BUSY_TIMEOUT_MS)) db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // WAL lets readers run while a writer commits. It cannot be switched on inside a
    // transaction, and does not apply to in-memory databases.
    if (!db.memory && !db.inTransaction && String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') {
      db.pragma('journal_mode = WAL');
    }
    if (this.ownsDatabase) {
      // With WAL: no fsync per commit; an app crash loses nothing, a power cut at most the last commits.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
    }
  }

  /**
   * Creates or upgrades the tables: applies every migration not yet recorded in
   * `<prefix>migrations`, all in one `BEGIN IMMEDIATE` transaction, so concurrent callers in
   * several processes apply each migration once. Idempotent.
   */
  async migrate(): Promise<void> {
    this.run('migrate', () => {
      const connection = this.connection();
      const db = connection.db;
      connection.transaction(() => {
        const p = this.prefix;
        db.exec(
          `CREATE TABLE IF NOT EXISTS ${p}migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)`,
        );
        const applied = new Set(
          (db.prepare(`SELECT version FROM ${p}migrations`).all() as Array<{ version: number }>).map((r) => r.version),
        );
        for (const migration of MIGRATIONS) {
          if (applied.has(migration.version)) continue;
          db.exec(migration.sql(p));
          db.prepare(`INSERT INTO ${p}migrations (version, applied_at) VALUES (?, ?)`).run(migration.version, Date.now());
        }
      });
    });
  }

  async insertWebhook(webhook: WebhookRecord): Promise<void> {
    this.run('insert webhook', () => {
      const c = this.connection();
      c.transaction(() => {
        if (c.stmt(this.sql.webhookExists).get({ id: webhook.id })) {
          throw new StorageError(`webhook ${webhook.id} already exists`);
        }
        c.stmt(this.sql.insertWebhook).run(webhookParams(webhook));
        this.insertTriggers(c, webhook);
      });
    });
  }

  async getWebhook(id: string): Promise<WebhookRecord | null> {
    return this.run('get webhook', () => {
      const row = this.connection().stmt(this.sql.getWebhook).get({ id }) as { record: string } | undefined;
      return row ? (JSON.parse(row.record) as WebhookRecord) : null;
    });
  }

  async updateWebhook(webhook: WebhookRecord): Promise<boolean> {
    return this.run('update webhook', () => {
      const c = this.connection();
      return c.transaction(() => {
        // The health columns are deliberately not in this UPDATE: they survive edits.
        if (c.stmt(this.sql.updateWebhook).run(webhookParams(webhook)).changes === 0) return false;
        c.stmt(this.sql.deleteTriggers).run({ id: webhook.id });
        this.insertTriggers(c, webhook);
        return true;
      });
    });
  }

  async deleteWebhook(id: string): Promise<boolean> {
    return this.run('delete webhook', () => {
      const c = this.connection();
      return c.transaction(() => {
        if (c.stmt(this.sql.deleteWebhook).run({ id }).changes === 0) return false;
        c.stmt(this.sql.deleteTriggers).run({ id });
        c.stmt(this.sql.cancelForDeletedWebhook).run({ id, now: Date.now() });
        return true;
      });
    });
  }

  async listWebhooks(query: WebhookQuery): Promise<Page<WebhookRecord>> {
    return this.run('list webhooks', () => {
      const limit = pageSize(query.limit);
      const conditions: string[] = [];
      if (query.tenantId === null) conditions.push('tenant_id IS NULL');
      else if (query.tenantId !== undefined) conditions.push('tenant_id = @tenantId');
      if (query.enabled !== undefined) conditions.push('enabled = @enabled');
      if (query.cursor) conditions.push('id < @cursor');
      const sql = `SELECT id, record FROM ${this.prefix}webhooks${where(conditions)} ORDER BY id DESC LIMIT @limit`;
      const rows = this.connection()
        .stmt(sql)
        .all({
          tenantId: query.tenantId ?? null,
          enabled: query.enabled === undefined ? null : bool(query.enabled),
          cursor: query.cursor ?? null,
          limit: limit + 1,
        }) as Array<{ id: string; record: string }>;
      return pageOf(rows, limit, (r) => JSON.parse(r.record) as WebhookRecord);
    });
  }

  async findWebhooksForEvent(match: EventMatch): Promise<WebhookRecord[]> {
    return this.run('find webhooks for event', () => {
      const rows = this.connection()
        .stmt(this.sql.findWebhooks)
        .all({ entity: match.entity, event: match.event, tenantId: match.tenantId }) as Array<{ record: string }>;
      return rows.map((r) => JSON.parse(r.record) as WebhookRecord);
    });
  }

  /**
   * Inserts the deliveries in one transaction (or one savepoint of the host's transaction, see
   * `options.transaction`); coalescing is a single `INSERT … ON CONFLICT DO UPDATE` per delivery.
   *
   * @throws {WebhookValidationError} naming `transaction` when `options.transaction` is not a
   *   better-sqlite3 Database inside a transaction.
   */
  /** Throws unless `transaction` is an open better-sqlite3 Database inside a transaction. */
  checkTransaction(transaction: unknown): void {
    hostConnection(transaction);
  }

  async enqueueDeliveries(deliveries: readonly DeliveryRecord[], options?: WriteOptions): Promise<EnqueueResult> {
    const host = options?.transaction === undefined ? null : hostConnection(options.transaction);
    if (host === null && this.thread) return this.thread.call('enqueueDeliveries', [deliveries]);
    return this.run('enqueue deliveries', () => {
      const c = host ?? this.connection();
      return c.transaction(() => {
        const result: EnqueueResult = { deliveries: [] };
        const seen = new Set<string>();
        // Deliveries that cannot coalesce go in multi-row INSERTs: cheaper than the upsert with
        // RETURNING, and than one statement each. No other row of the batch can merge into them.
        const plain: DeliveryRecord[] = [];
        for (const d of deliveries) {
          if (seen.has(d.id)) throw new StorageError(`delivery ${d.id} already exists`);
          seen.add(d.id);
          const slot = d.status === 'pending' || d.status === 'scheduled' ? d.coalesceKey : null;
          if (slot === null) {
            plain.push(d);
            result.deliveries.push({ id: d.id, webhookId: d.webhookId, coalesced: false });
          } else {
            // A duplicate id must fail the batch, not be merged by the upsert, so it is checked first.
            if (c.stmt(this.sql.deliveryExists).get({ id: d.id })) throw new StorageError(`delivery ${d.id} already exists`);
            const row = c.stmt(this.sql.enqueue).get(deliveryValues([], 0, d, slot)) as { id: string };
            result.deliveries.push({ id: row.id, webhookId: d.webhookId, coalesced: row.id !== d.id });
          }
        }
        this.insertPlainDeliveries(c, plain);
        return result;
      });
    });
  }

  /** Inserts in chunks of a power of two rows, so few distinct statements are prepared. */
  private insertPlainDeliveries(c: Connection, deliveries: readonly DeliveryRecord[]): void {
    for (let start = 0; start < deliveries.length; ) {
      const count = chunkSize(deliveries.length - start);
      const values = new Array<unknown>(count * DELIVERY_INSERT_WIDTH);
      for (let i = 0; i < count; i++) deliveryValues(values, i * DELIVERY_INSERT_WIDTH, deliveries[start + i]!, null);
      try {
        c.stmt(this.multiRowSql('deliveries', count)).run(values);
      } catch (error) {
        if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          // The statement was undone; name the delivery that was already there.
          const existing = deliveries.slice(start, start + count).find((d) => c.stmt(this.sql.deliveryExists).get({ id: d.id }));
          throw new StorageError(`delivery ${existing?.id ?? '(unknown)'} already exists`, { cause: error });
        }
        throw error;
      }
      start += count;
    }
  }

  /** The SQL of a multi-row INSERT, built once per table and row count (the statement cache key). */
  private multiRowSql(table: 'deliveries' | 'executions', count: number): string {
    const cache = this.multiRowSqlCache[table];
    let sql = cache[count];
    if (sql === undefined) {
      const [columns, width] = table === 'deliveries' ? [DELIVERY_INSERT_COLUMNS, DELIVERY_INSERT_WIDTH] : [EXECUTION_COLUMNS, EXECUTION_WIDTH];
      const row = `(${new Array<string>(width).fill('?').join(', ')})`;
      sql = `INSERT INTO ${this.prefix}${table} (${columns}) VALUES ${new Array<string>(count).fill(row).join(', ')}`;
      cache[count] = sql;
    }
    return sql;
  }

  async claimDueDeliveries(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    const limit = pageSize(request.limit);
    if (limit === 0) return [];
    return this.run('claim deliveries', () => {
      const c = this.connection();
      const { now } = request;
      const leaseExpiresAt = now + request.leaseMs;
      const excluded = request.excludeEndpoints?.length ? JSON.stringify(request.excludeEndpoints) : null;
      const claimAtLevel = excluded === null ? this.sql.claimAtLevel : this.sql.claimAtLevelExcluding;
      return c.transaction(() => {
        // Owners of expired leases died or stalled: their deliveries are due again. They do not
        // take the coalescing slot back, since their body may already have been sent.
        c.stmt(this.sql.expireLeases).run({ now });
        const claimed: ClaimedDelivery[] = [];
        // Walk the due index one priority level at a time: each level is an index range of due
        // rows (run_at <= now) in claim order, so deliveries scheduled for later are never
        // scanned, whatever their number. Cost: O(levels · log n + claimed).
        let level = c.stmt(this.sql.firstLevel).get() as { priority: number } | undefined;
        while (level && claimed.length < limit) {
          // One statement leases the level's due rows; RETURNING has no defined order.
          const rows = c.allRaw(claimAtLevel, {
            priority: level.priority,
            now,
            excluded,
            limit: limit - claimed.length,
            leaseExpiresAt,
          }) as ClaimedRow[];
          rows.sort(levelOrder);
          for (const row of rows) {
            claimed.push(toClaimed(row, leaseExpiresAt));
            this.leasedBodies.remember(row[19], row[7]);
          }
          level = c.stmt(this.sql.nextLevel).get({ priority: level.priority }) as { priority: number } | undefined;
        }
        return claimed;
      });
    });
  }

  async completeAttempt(input: CompleteAttempt): Promise<boolean> {
    return (await this.completeAttempts([input]))[0]!;
  }

  /** All in one transaction (one commit), each item fenced on its own. */
  async completeAttempts(inputs: readonly CompleteAttempt[]): Promise<boolean[]> {
    if (inputs.length === 0) return [];
    return this.run(inputs.length === 1 ? 'complete attempt' : 'complete attempts', () => {
      const c = this.connection();
      return c.transaction(() => {
        const recorded = inputs.map((input) => this.completeDelivery(c, input));
        // The executions of the items that kept their lease, inserted together at the end.
        const values: unknown[] = [];
        let rows = 0;
        for (let i = 0; i < inputs.length; i++) {
          const input = inputs[i]!;
          const sameBody = this.leasedBodies.takeIsLeasedBody(input.leaseToken, input.execution.requestBody);
          if (!recorded[i]) continue; // lease lost: fenced off, nothing written
          executionValues(values, rows * EXECUTION_WIDTH, input.execution, sameBody);
          rows++;
        }
        for (let start = 0; start < rows; ) {
          const count = chunkSize(rows - start);
          const chunk = count === rows ? values : values.slice(start * EXECUTION_WIDTH, (start + count) * EXECUTION_WIDTH);
          c.stmt(this.multiRowSql('executions', count)).run(chunk);
          start += count;
        }
        return recorded;
      });
    });
  }

  private completeDelivery(c: Connection, input: CompleteAttempt): boolean {
    const { outcome } = input;
    const endedAt = input.execution.endedAt;
    return (
      c
        .stmt(this.sql.complete)
        .run(
          outcome.status,
          outcome.status === 'scheduled' ? (outcome.runAt ?? endedAt) : null,
          outcome.lastStatus,
          outcome.lastError,
          endedAt,
          input.deliveryId,
          input.leaseToken,
        ).changes > 0
    );
  }

  async releaseDelivery(deliveryId: string, leaseToken: string, runAt?: number): Promise<boolean> {
    return this.run('release delivery', () => {
      const params = { id: deliveryId, leaseToken, runAt: runAt ?? null };
      this.leasedBodies.forget(leaseToken);
      return this.connection().stmt(this.sql.release).run(params).changes > 0;
    });
  }

  async extendLease(deliveryId: string, leaseToken: string, leaseExpiresAt: number): Promise<boolean> {
    return this.run('extend lease', () => {
      const params = { id: deliveryId, leaseToken, leaseExpiresAt };
      return this.connection().stmt(this.sql.extendLease).run(params).changes > 0;
    });
  }

  async cancelDelivery(
    deliveryId: string,
    options: { leaseToken?: string; reason?: string; now?: number } = {},
  ): Promise<boolean> {
    return this.run('cancel delivery', () => {
      const params = {
        id: deliveryId,
        leaseToken: options.leaseToken ?? null,
        reason: options.reason ?? null,
        now: options.now ?? Date.now(),
      };
      if (options.leaseToken !== undefined) this.leasedBodies.forget(options.leaseToken);
      return this.connection().stmt(this.sql.cancel).run(params).changes > 0;
    });
  }

  async getDelivery(id: string): Promise<DeliveryRecord | null> {
    return this.run('get delivery', () => {
      const row = this.connection().stmt(this.sql.getDelivery).get({ id }) as DeliveryRow | undefined;
      return row ? toDelivery(row) : null;
    });
  }

  async listDeliveries(query: DeliveryQuery): Promise<Page<DeliveryRecord>> {
    return this.run('list deliveries', () => {
      const limit = pageSize(query.limit);
      const conditions: string[] = [];
      if (query.webhookId !== undefined) conditions.push('webhook_id = @webhookId');
      if (query.tenantId === null) conditions.push('tenant_id IS NULL');
      else if (query.tenantId !== undefined) conditions.push('tenant_id = @tenantId');
      if (query.status !== undefined) conditions.push('status = @status');
      if (query.cursor) conditions.push('id < @cursor');
      const sql = `SELECT ${DELIVERY_COLUMNS} FROM ${this.prefix}deliveries${where(conditions)} ORDER BY id DESC LIMIT @limit`;
      const rows = this.connection()
        .stmt(sql)
        .all({
          webhookId: query.webhookId ?? null,
          tenantId: query.tenantId ?? null,
          status: query.status ?? null,
          cursor: query.cursor ?? null,
          limit: limit + 1,
        }) as DeliveryRow[];
      return pageOf(rows, limit, toDelivery);
    });
  }

  async nextRunAt(): Promise<number | null> {
    return this.run('next run time', () => {
      const c = this.connection();
      // The earliest run_at of each priority level is the first due-index entry of that level:
      // O(levels · log n), without an index on run_at alone that every write would maintain.
      let earliest: number | null = null;
      let level = c.stmt(this.sql.firstLevelRunAt).get() as { priority: number; at: number } | undefined;
      while (level) {
        if (earliest === null || level.at < earliest) earliest = level.at;
        level = c.stmt(this.sql.nextLevelRunAt).get({ priority: level.priority }) as { priority: number; at: number } | undefined;
      }
      const lease = c.stmt(this.sql.nextLeaseExpiry).get() as { at: number } | undefined;
      if (earliest !== null && lease) return Math.min(earliest, lease.at);
      return earliest ?? lease?.at ?? null;
    });
  }

  /** Deliveries by status, for metrics (a scan of the status column). */
  async countDeliveries(): Promise<Partial<Record<DeliveryStatus, number>>> {
    return this.run('count deliveries', () => {
      const rows = this.connection()
        .stmt(`SELECT status, count(*) AS n FROM ${this.prefix}deliveries GROUP BY status`)
        .all() as Array<{ status: DeliveryStatus; n: number }>;
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    });
  }

  async requeueDeliveries(request: RequeueRequest): Promise<string[]> {
    return this.run('requeue deliveries', () => {
      const c = this.connection();
      return c.transaction(() => {
        let candidates: readonly string[];
        if (request.deliveryIds) {
          candidates = request.deliveryIds;
        } else {
          const conditions = [FINAL, 'status IN (SELECT value FROM json_each(@statuses))'];
          if (request.webhookId !== undefined) conditions.push('webhook_id = @webhookId');
          if (request.tenantId !== undefined) conditions.push('tenant_id = @tenantId');
          if (request.since !== undefined) conditions.push('updated_at >= @since');
          const sql = `SELECT id FROM ${this.prefix}deliveries${where(conditions)} ORDER BY id`;
          const rows = c.stmt(sql).all({
            statuses: JSON.stringify(request.statuses ?? ['failed']),
            webhookId: request.webhookId ?? null,
            tenantId: request.tenantId ?? null,
            since: request.since ?? null,
          }) as Array<{ id: string }>;
          candidates = rows.map((r) => r.id);
        }
        const requeued: string[] = [];
        for (const id of candidates) {
          const row = c.stmt(this.sql.requeue).get({ id, runAt: request.runAt, now: request.now }) as
            | { webhook_id: string; coalesce_key: string | null }
            | undefined;
          if (!row) continue; // not final, gone, or its webhook was deleted
          if (row.coalesce_key !== null) {
            // The requeued delivery absorbs later emits for its key from now on.
            const slot = { id, webhookId: row.webhook_id, key: row.coalesce_key };
            c.stmt(this.sql.releaseSlot).run(slot);
            c.stmt(this.sql.takeSlot).run(slot);
          }
          requeued.push(id);
        }
        return requeued;
      });
    });
  }

  async listExecutions(query: ExecutionQuery): Promise<Page<ExecutionRecord>> {
    return this.run('list executions', () => {
      const limit = pageSize(query.limit);
      const conditions: string[] = [];
      if (query.webhookId !== undefined) conditions.push('e.webhook_id = @webhookId');
      if (query.deliveryId !== undefined) conditions.push('e.delivery_id = @deliveryId');
      if (query.tenantId === null) conditions.push('e.tenant_id IS NULL');
      else if (query.tenantId !== undefined) conditions.push('e.tenant_id = @tenantId');
      if (query.success !== undefined) conditions.push('e.success = @success');
      if (query.since !== undefined) conditions.push('e.started_at >= @since');
      if (query.until !== undefined) conditions.push('e.started_at < @until');
      if (query.cursor) conditions.push('e.id < @cursor');
      const p = this.prefix;
      // A NULL request_body is the delivery's body: one primary-key lookup per such row.
      const sql =
        `SELECT ${EXECUTION_SELECT} FROM ${p}executions e ` +
        `LEFT JOIN ${p}deliveries d ON e.request_body IS NULL AND d.id = e.delivery_id` +
        `${where(conditions)} ORDER BY e.id DESC LIMIT @limit`;
      const rows = this.connection()
        .stmt(sql)
        .all({
          webhookId: query.webhookId ?? null,
          deliveryId: query.deliveryId ?? null,
          tenantId: query.tenantId ?? null,
          success: query.success === undefined ? null : bool(query.success),
          since: query.since ?? null,
          until: query.until ?? null,
          cursor: query.cursor ?? null,
          limit: limit + 1,
        }) as ExecutionRow[];
      return pageOf(rows, limit, toExecution);
    });
  }

  async recordWebhookResult(webhookId: string, success: boolean, at: number): Promise<WebhookHealth | null> {
    return this.run('record webhook result', () => {
      // One UPDATE … RETURNING: the increment is atomic across connections.
      const sql = success ? this.sql.recordSuccess : this.sql.recordFailure;
      const row = this.connection().stmt(sql).get({ id: webhookId, at }) as HealthRow | undefined;
      return row ? toHealth(row) : null;
    });
  }

  async getWebhookHealth(webhookId: string): Promise<WebhookHealth | null> {
    return this.run('get webhook health', () => {
      const row = this.connection().stmt(this.sql.getHealth).get({ id: webhookId }) as HealthRow | undefined;
      return row ? toHealth(row) : null;
    });
  }

  async resetWebhookHealth(webhookId: string): Promise<void> {
    this.run('reset webhook health', () => {
      this.connection().stmt(this.sql.resetHealth).run({ id: webhookId });
    });
  }

  async prune(request: PruneRequest): Promise<PruneResult> {
    return this.run('prune', () => {
      const c = this.connection();
      const { stripSuccessfulBodiesBefore: strip, deleteSucceededBefore: okBefore, deleteFailedBefore: failBefore } = request;
      const p = this.prefix;
      return c.transaction(() => {
        const result: PruneResult = { executionsDeleted: 0, executionsStripped: 0, deliveriesDeleted: 0 };
        if (okBefore !== undefined) {
          result.executionsDeleted += c.stmt(`DELETE FROM ${p}executions WHERE success = 1 AND started_at < @before`).run({ before: okBefore }).changes;
        }
        if (failBefore !== undefined) {
          result.executionsDeleted += c.stmt(`DELETE FROM ${p}executions WHERE success = 0 AND started_at < @before`).run({ before: failBefore }).changes;
        }
        if (strip !== undefined) {
          result.executionsStripped = c
            .stmt(
              `UPDATE ${p}executions SET request_body = '', response_body = '' ` +
                `WHERE success = 1 AND started_at < @before AND (request_body IS NULL OR request_body <> '' OR response_body <> '')`,
            )
            .run({ before: strip }).changes;
        }
        if (okBefore !== undefined) {
          result.deliveriesDeleted += c
            .stmt(`DELETE FROM ${p}deliveries WHERE ${FINAL} AND status = 'succeeded' AND updated_at < @before`)
            .run({ before: okBefore }).changes;
        }
        if (failBefore !== undefined) {
          result.deliveriesDeleted += c
            .stmt(`DELETE FROM ${p}deliveries WHERE ${FINAL} AND status IN ('failed', 'cancelled') AND updated_at < @before`)
            .run({ before: failBefore }).changes;
        }
        return result;
      });
    });
  }

  /**
   * Closes the connection when the adapter opened it (`{ path }`); a Database passed in stays
   * open. Afterwards every method rejects. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.thread) await this.thread.close();
    await this.checkpointer?.close();
    if (this.ownsDatabase && this.db?.open) {
      connections.delete(this.db);
      this.db.close();
    }
  }

  private connection(): Connection {
    if (this.closed) throw new StorageError('SqliteStorage is closed');
    // Only an outbox enqueue runs here in thread mode, and it uses the host's connection.
    if (this.db === null) throw new StorageError('SqliteStorage: the connection is on the database thread');
    return connectionOf(this.db);
  }

  private insertTriggers(c: Connection, webhook: WebhookRecord): void {
    for (const t of webhook.triggers) {
      c.stmt(this.sql.insertTrigger).run({ entity: t.entity, event: t.event, id: webhook.id });
    }
  }

  /** Runs driver work, turning driver failures into {@link StorageError} with the cause attached. */
  private run<T>(action: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof WebhookError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      const hint = /no such table/i.test(message) ? ' (did you call migrate()?)' : '';
      throw new StorageError(`SqliteStorage: ${action} failed: ${message}${hint}`, { cause: error });
    }
  }
}

/** A {@link WebhookValidationError} naming one option of the adapter. */
function invalidOption(path: string, message: string): WebhookValidationError {
  return new WebhookValidationError([{ path, message }], { context: 'SqliteStorage' });
}

/** Validates `WriteOptions.transaction` and returns its connection. */
function hostConnection(transaction: unknown): Connection {
  if (!isDatabase(transaction)) {
    throw invalidOption('transaction', 'must be a better-sqlite3 Database inside a transaction (the host connection after BEGIN)');
  }
  if (!transaction.open) throw invalidOption('transaction', 'is a closed Database');
  if (!transaction.inTransaction) {
    throw invalidOption(
      'transaction',
      'is not inside a transaction; call db.exec("BEGIN IMMEDIATE") first, or omit the option to write in a transaction of its own',
    );
  }
  return connectionOf(transaction);
}

function webhookParams(w: WebhookRecord): Record<string, unknown> {
  return {
    id: w.id,
    tenantId: w.tenantId,
    enabled: bool(w.enabled),
    createdAt: w.createdAt,
    record: JSON.stringify(w),
  };
}

/** Writes the {@link DELIVERY_INSERT_COLUMNS} values of `d` into `out` from `at`; returns `out`. */
function deliveryValues(out: unknown[], at: number, d: DeliveryRecord, coalesceSlot: string | null): unknown[] {
  out[at] = d.id;
  out[at + 1] = d.webhookId;
  out[at + 2] = d.tenantId;
  out[at + 3] = d.entity;
  out[at + 4] = d.event;
  out[at + 5] = d.endpoint;
  out[at + 6] = d.priority;
  out[at + 7] = d.body;
  out[at + 8] = d.contentType;
  out[at + 9] = d.status;
  out[at + 10] = d.attempts;
  out[at + 11] = d.runAt;
  out[at + 12] = d.createdAt;
  out[at + 13] = d.updatedAt;
  out[at + 14] = d.lastStatus;
  out[at + 15] = d.lastError;
  out[at + 16] = bool(d.isTest);
  out[at + 17] = d.coalesceKey;
  out[at + 18] = d.coalescedCount;
  // Only a claimable delivery can absorb later emits.
  out[at + 19] = coalesceSlot;
  return out;
}

/** Writes the {@link EXECUTION_COLUMNS} values of `e` into `out` from `at`. */
function executionValues(out: unknown[], at: number, e: ExecutionRecord, sameBody: boolean): void {
  out[at] = e.id;
  out[at + 1] = e.webhookId;
  out[at + 2] = e.deliveryId;
  out[at + 3] = e.tenantId;
  out[at + 4] = e.entity;
  out[at + 5] = e.event;
  out[at + 6] = e.attempt;
  out[at + 7] = e.startedAt;
  out[at + 8] = e.endedAt;
  out[at + 9] = e.durationMs;
  out[at + 10] = e.status;
  out[at + 11] = bool(e.success);
  out[at + 12] = bool(e.hardError);
  out[at + 13] = e.errorMessage;
  out[at + 14] = e.errorCode;
  out[at + 15] = e.method;
  out[at + 16] = e.url;
  out[at + 17] = JSON.stringify(e.requestHeaders);
  // NULL: the delivery's body (migration 2). A transformed body differs and is stored in full.
  out[at + 18] = sameBody ? null : e.requestBody;
  out[at + 19] = JSON.stringify(e.responseHeaders);
  out[at + 20] = e.responseBody;
  out[at + 21] = e.nextAttemptAt;
  out[at + 22] = e.coalescedCount;
}

/** Rows per multi-row INSERT: the largest power of two up to 64 within `remaining`. */
function chunkSize(remaining: number): number {
  let size = 64;
  while (size > remaining) size >>= 1;
  return size;
}

/** The fixed SQL of an adapter with table prefix `p`, prepared lazily and cached per connection. */
function statements(p: string) {
  const d = `${p}deliveries`;
  return {
    webhookExists: `SELECT 1 AS found FROM ${p}webhooks WHERE id = @id`,
    insertWebhook:
      `INSERT INTO ${p}webhooks (id, tenant_id, enabled, created_at, record) ` +
      `VALUES (@id, @tenantId, @enabled, @createdAt, @record)`,
    getWebhook: `SELECT record FROM ${p}webhooks WHERE id = @id`,
    updateWebhook:
      `UPDATE ${p}webhooks SET tenant_id = @tenantId, enabled = @enabled, created_at = @createdAt, record = @record ` +
      `WHERE id = @id`,
    deleteWebhook: `DELETE FROM ${p}webhooks WHERE id = @id`,
    insertTrigger: `INSERT OR IGNORE INTO ${p}triggers (entity, event, webhook_id) VALUES (@entity, @event, @id)`,
    deleteTriggers: `DELETE FROM ${p}triggers WHERE webhook_id = @id`,
    // Four primary-key seeks: (entity|*, event|*).
    findWebhooks:
      `SELECT record FROM ${p}webhooks WHERE enabled = 1 AND (tenant_id IS NULL OR tenant_id = @tenantId) ` +
      `AND id IN (SELECT webhook_id FROM ${p}triggers WHERE entity IN (@entity, '*') AND event IN (@event, '*')) ` +
      `ORDER BY id`,
    cancelForDeletedWebhook:
      `UPDATE ${d} SET status = 'cancelled', last_error = 'webhook was deleted', updated_at = @now, coalesce_slot = NULL ` +
      `WHERE webhook_id = @id AND ${CLAIMABLE}`,

    deliveryExists: `SELECT 1 AS found FROM ${d} WHERE id = @id`,
    // The conflict target repeats the partial index's WHERE, as SQLite requires for partial
    // unique indexes. On conflict the existing delivery keeps id, priority and run_at.
    enqueue:
      `INSERT INTO ${d} (${DELIVERY_INSERT_COLUMNS}) VALUES (${new Array<string>(DELIVERY_INSERT_WIDTH).fill('?').join(', ')}) ON CONFLICT (webhook_id, coalesce_slot) WHERE coalesce_slot IS NOT NULL DO UPDATE SET ` +
      `body = excluded.body, content_type = excluded.content_type, coalesced_count = coalesced_count + 1, ` +
      `updated_at = excluded.created_at ` +
      `RETURNING id`,

    expireLeases:
      `UPDATE ${d} INDEXED BY ${p}deliveries_lease SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, ` +
      `lease_token = NULL, lease_expires_at = NULL WHERE status = 'delivering' AND lease_expires_at <= @now`,
    firstLevel: `SELECT priority FROM ${d} INDEXED BY ${p}deliveries_due WHERE ${CLAIMABLE} ORDER BY priority DESC LIMIT 1`,
    nextLevel: `SELECT priority FROM ${d} INDEXED BY ${p}deliveries_due WHERE ${CLAIMABLE} AND priority < @priority ORDER BY priority DESC LIMIT 1`,
    // The level's due rows, leased in one statement with a fresh random token each.
    claimAtLevel:
      `UPDATE ${d} SET status = 'delivering', lease_token = lower(hex(randomblob(16))), lease_expires_at = @leaseExpiresAt, ` +
      `updated_at = @now, coalesce_slot = NULL WHERE id IN (` +
      `SELECT id FROM ${d} INDEXED BY ${p}deliveries_due WHERE ${CLAIMABLE} AND priority = @priority AND run_at <= @now ` +
      `ORDER BY run_at, created_at, id LIMIT @limit) RETURNING ${DELIVERY_COLUMNS}, lease_token`,
    claimAtLevelExcluding:
      `UPDATE ${d} SET status = 'delivering', lease_token = lower(hex(randomblob(16))), lease_expires_at = @leaseExpiresAt, ` +
      `updated_at = @now, coalesce_slot = NULL WHERE id IN (` +
      `SELECT id FROM ${d} INDEXED BY ${p}deliveries_due WHERE ${CLAIMABLE} AND priority = @priority AND run_at <= @now ` +
      `AND endpoint NOT IN (SELECT value FROM json_each(@excluded)) ` +
      `ORDER BY run_at, created_at, id LIMIT @limit) RETURNING ${DELIVERY_COLUMNS}, lease_token`,
    // Positional parameters: binding by name costs a property lookup per parameter.
    complete:
      `UPDATE ${d} SET status = ?, attempts = attempts + 1, run_at = COALESCE(?, run_at), ` +
      `last_status = ?, last_error = ?, updated_at = ?, lease_token = NULL, lease_expires_at = NULL ` +
      `WHERE id = ? AND status = 'delivering' AND lease_token = ?`,
    release:
      `UPDATE ${d} SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, ` +
      `run_at = COALESCE(@runAt, run_at), lease_token = NULL, lease_expires_at = NULL ` +
      `WHERE id = @id AND status = 'delivering' AND lease_token = @leaseToken`,
    extendLease:
      `UPDATE ${d} SET lease_expires_at = @leaseExpiresAt ` +
      `WHERE id = @id AND status = 'delivering' AND lease_token = @leaseToken`,
    cancel:
      `UPDATE ${d} SET status = 'cancelled', last_error = COALESCE(@reason, last_error), updated_at = @now, ` +
      `lease_token = NULL, lease_expires_at = NULL, coalesce_slot = NULL ` +
      `WHERE id = @id AND (${CLAIMABLE} OR (status = 'delivering' AND lease_token = @leaseToken))`,
    getDelivery: `SELECT ${DELIVERY_COLUMNS} FROM ${d} WHERE id = @id`,
    firstLevelRunAt:
      `SELECT priority, run_at AS at FROM ${d} INDEXED BY ${p}deliveries_due WHERE ${CLAIMABLE} ` +
      `ORDER BY priority DESC, run_at LIMIT 1`,
    nextLevelRunAt:
      `SELECT priority, run_at AS at FROM ${d} INDEXED BY ${p}deliveries_due WHERE ${CLAIMABLE} AND priority < @priority ` +
      `ORDER BY priority DESC, run_at LIMIT 1`,
    nextLeaseExpiry: `SELECT lease_expires_at AS at FROM ${d} INDEXED BY ${p}deliveries_lease WHERE status = 'delivering' ORDER BY lease_expires_at LIMIT 1`,
    requeue:
      `UPDATE ${d} SET status = 'pending', run_at = @runAt, updated_at = @now ` +
      `WHERE id = @id AND ${FINAL} AND EXISTS (SELECT 1 FROM ${p}webhooks w WHERE w.id = ${d}.webhook_id) ` +
      `RETURNING webhook_id, coalesce_key`,
    releaseSlot: `UPDATE ${d} SET coalesce_slot = NULL WHERE webhook_id = @webhookId AND coalesce_slot = @key`,
    takeSlot: `UPDATE ${d} SET coalesce_slot = @key WHERE id = @id`,

    recordSuccess:
      `UPDATE ${p}webhooks SET consecutive_failures = 0, failing_since = NULL, last_success_at = @at ` +
      `WHERE id = @id RETURNING ${HEALTH_COLUMNS}`,
    recordFailure:
      `UPDATE ${p}webhooks SET consecutive_failures = consecutive_failures + 1, ` +
      `failing_since = COALESCE(failing_since, @at), last_failure_at = @at WHERE id = @id RETURNING ${HEALTH_COLUMNS}`,
    getHealth: `SELECT ${HEALTH_COLUMNS} FROM ${p}webhooks WHERE id = @id`,
    resetHealth: `UPDATE ${p}webhooks SET consecutive_failures = 0, failing_since = NULL WHERE id = @id`,
  };
}
