/**
 * PostgreSQL storage: durable, shared by any number of dispatcher processes. Claims use
 * `FOR UPDATE SKIP LOCKED` over partial indexes, completions are fenced by lease tokens, enqueues
 * can join the host's own transaction (transactional outbox), and `LISTEN/NOTIFY` wakes
 * dispatchers as soon as work is committed.
 *
 * The adapter does not import `pg`: pass your own `pg.Pool` (or anything with the same shape).
 * Requires PostgreSQL 13 or later (`gen_random_uuid()` in core).
 *
 * ```ts
 * import pg from 'pg';
 * import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
 * const storage = new PostgresStorage({ pool: new pg.Pool({ connectionString }) });
 * await storage.migrate();
 * ```
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { StorageError, WebhookValidationError } from '../errors.js';
import { LeasedBodies } from './leased-bodies.js';
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
} from './types.js';

// ------------------------------------------------------------------ driver shape

/**
 * The slice of a `pg` query result the adapter reads. Typed structurally (as kysely does) so
 * the library never imports `pg` itself.
 */
export interface PostgresQueryResult {
  rows: unknown[];
  rowCount: number | null;
}

/** Anything that runs a parameterized query: a `pg.Pool`, a `pg.PoolClient`, a `pg.Client`. */
export interface PostgresQueryable {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>;
}

/** pg's config form of `query`, used for named prepared statements (see `preparedStatements`). */
interface PreparedQueryable {
  query(config: { name: string; text: string; values: unknown[] }): Promise<PostgresQueryResult>;
}

/** A `LISTEN` notification as `pg` emits it. */
export interface PostgresNotification {
  channel: string;
  payload?: string | undefined;
  processId: number;
}

/** A connection checked out of a pool (`pg.PoolClient`). */
export interface PostgresPoolClient extends PostgresQueryable {
  /** Returns the connection; passing an error destroys it instead. */
  release(error?: Error | boolean): void;
  on(event: 'notification', listener: (message: PostgresNotification) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'notification', listener: (message: PostgresNotification) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** The pool the adapter runs on (`pg.Pool`). The caller owns it: the adapter never ends it. */
export interface PostgresPool extends PostgresQueryable {
  connect(): Promise<PostgresPoolClient>;
}

/** Options of {@link PostgresStorage}. */
export interface PostgresStorageOptions {
  /** Your `pg.Pool`. It stays yours: {@link PostgresStorage.close} does not end it. */
  pool: PostgresPool;
  /** Schema holding the tables; created by `migrate()` when missing. Default `public`. */
  schema?: string;
  /** Prefix of every table and index name. Default `webhook_`. */
  tablePrefix?: string;
  /**
   * Called when a `subscribe()` connection fails. The subscription is then detached (the
   * dispatcher keeps polling); without this option the error is dropped after detaching.
   */
  onError?: (error: StorageError) => void;
  /**
   * Outside a host transaction, notify other dispatchers at most once per this many ms. Every
   * NOTIFY serialises its commit (a global lock), which capped single emits near 300/s; the
   * emitting process wakes its own dispatcher anyway, and a woken dispatcher claims everything due.
   * Enqueues in a host transaction always notify (nobody else would wake on commit). Default 50 ms;
   * 0 notifies on every enqueue.
   */
  notifyIntervalMs?: number;
  /**
   * Send the hot statements (claim, completion, enqueue outside a host transaction) as named
   * prepared statements, parsed and planned once per connection: about 30 % less server CPU per
   * delivery. Batches are padded to a few row counts so each connection keeps a handful of them.
   * Needs `pool.query` to take pg's `{ name, text, values }` form, as `pg.Pool` does; set `false`
   * for a pool that only takes `(text, values)`, or behind a pooler that does not keep prepared
   * statements (PgBouncer in transaction mode before 1.21). Default `true`.
   */
  preparedStatements?: boolean;
}

// ------------------------------------------------------------------ helpers

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
/** Longest table/index suffix appended to the prefix; Postgres truncates names over 63 bytes. */
const MAX_PREFIX_LENGTH = 32;

const CLAIMABLE_SQL = `('pending', 'scheduled')`;
const FINAL_SQL = `('succeeded', 'failed', 'cancelled')`;

/** Columns of a delivery as returned to callers (never the lease or coalescing bookkeeping). */
const DELIVERY_COLUMNS = `id, webhook_id, tenant_id, entity, event, endpoint, priority, body, content_type, status,
  attempts, run_at, created_at, updated_at, last_status, last_error, is_test, coalesce_key, coalesced_count`;

const EXECUTION_COLUMNS = `id, webhook_id, delivery_id, tenant_id, entity, event, attempt, started_at, ended_at,
  duration_ms, status, success, hard_error, error_message, error_code, method, url, request_headers, request_body,
  response_headers, response_body, next_attempt_at, coalesced_count`;

/**
 * EXECUTION_COLUMNS for reading from `executions e`: a NULL request body means "the delivery's
 * body" (see migration 2), so it is filled in from the delivery row.
 */
const EXECUTION_SELECT = EXECUTION_COLUMNS.replace(/(\w+)/g, 'e.$1').replace(
  'e.request_body',
  `COALESCE(e.request_body, (SELECT d.body FROM %DELIVERIES% d WHERE d.id = e.delivery_id), '') AS request_body`,
);

/**
 * The stored request body of a new execution: NULL when it equals the (non-empty) body of the
 * delivery row it completes, which saves writing ~1 KiB twice per attempt. A transformed body is
 * stored as sent.
 */
const STORED_REQUEST_BODY = (request: string, deliveryBody: string) =>
  `CASE WHEN ${request} <> '' AND ${request} = ${deliveryBody} THEN NULL ELSE ${request} END`;

const HEALTH_COLUMNS = 'consecutive_failures, failing_since, last_success_at, last_failure_at';

type Row = Record<string, unknown>;

/** Column types of one enqueued delivery row (DELIVERY_COLUMNS, then accepts_merges). */
const ENQUEUE_TYPES = [
  'text', 'text', 'text', 'text', 'text', 'text', 'int', 'text', 'text', 'text',
  'int', 'bigint', 'bigint', 'bigint', 'int', 'text', 'boolean', 'text', 'int', 'boolean',
] as const;

/** Column types of one completion row (see completeRound). */
const COMPLETE_TYPES = [
  'text', 'text', 'text', 'int', 'text', 'bigint', 'bigint',
  'text', 'text', 'text', 'text', 'text', 'int', 'bigint', 'float8', 'int', 'boolean',
  'boolean', 'text', 'text', 'text', 'text', 'jsonb', 'text', 'jsonb', 'text', 'bigint', 'int',
] as const;

/** Rows per multi-row statement: Postgres takes at most 65,535 parameters (28 per completion). */
const MAX_ROWS_PER_STATEMENT = 1_000;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Placeholder lists by column types and row count: batch sizes repeat, so each is built once. */
const valueRowsCache = new WeakMap<readonly string[], Map<number, string>>();

/**
 * Row counts a prepared batch statement is padded to: a connection then prepares at most these
 * few texts per kind, whatever the batch sizes.
 */
const PREPARED_ROW_COUNTS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, MAX_ROWS_PER_STATEMENT] as const;

function preparedRowCount(rows: number): number {
  for (const count of PREPARED_ROW_COUNTS) if (count >= rows) return count;
  // Callers split batches at MAX_ROWS_PER_STATEMENT: reaching this is a bug in the adapter.
  throw new StorageError(`${rows} rows exceed ${MAX_ROWS_PER_STATEMENT} per statement`);
}

/** Appends `count` all-NULL rows of `width` parameters: padding rows match no delivery. */
function padRows(params: unknown[], count: number, width: number): void {
  for (let i = count * width; i > 0; i--) params.push(null);
}

/** `($1::text, $2::int, …), (…)`: `rows` rows of typed placeholders, numbered from 1. */
function valueRows(rows: number, types: readonly string[]): string {
  let byRows = valueRowsCache.get(types);
  if (!byRows) valueRowsCache.set(types, (byRows = new Map()));
  let text = byRows.get(rows);
  if (text === undefined) {
    const out: string[] = [];
    let n = 0;
    for (let r = 0; r < rows; r++) out.push(`(${types.map((t) => `$${++n}::${t}`).join(', ')})`);
    text = out.join(', ');
    if (byRows.size < 1_000) byRows.set(rows, text);
  }
  return text;
}

// pg returns int8 as strings; convert here rather than through a global type parser the host may not want.
const num = (value: unknown): number => Number(value);
const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
const str = (value: unknown): string => value as string;
const strOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : (value as string));
// A host pool may have disabled pg's JSON parsing; accept both forms.
const json = <T>(value: unknown): T => (typeof value === 'string' ? (JSON.parse(value) as T) : (value as T));

function toDelivery(row: Row): DeliveryRecord {
  return {
    id: str(row.id),
    webhookId: str(row.webhook_id),
    tenantId: strOrNull(row.tenant_id),
    entity: str(row.entity),
    event: str(row.event),
    endpoint: str(row.endpoint),
    priority: num(row.priority),
    body: str(row.body),
    contentType: str(row.content_type),
    status: row.status as DeliveryStatus,
    attempts: num(row.attempts),
    runAt: num(row.run_at),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
    lastStatus: numOrNull(row.last_status),
    lastError: strOrNull(row.last_error),
    isTest: row.is_test === true,
    coalesceKey: strOrNull(row.coalesce_key),
    coalescedCount: num(row.coalesced_count),
  };
}

function toExecution(row: Row): ExecutionRecord {
  return {
    id: str(row.id),
    webhookId: str(row.webhook_id),
    deliveryId: str(row.delivery_id),
    tenantId: strOrNull(row.tenant_id),
    entity: str(row.entity),
    event: str(row.event),
    attempt: num(row.attempt),
    startedAt: num(row.started_at),
    endedAt: num(row.ended_at),
    durationMs: num(row.duration_ms),
    status: num(row.status),
    success: row.success === true,
    hardError: row.hard_error === true,
    errorMessage: strOrNull(row.error_message),
    errorCode: strOrNull(row.error_code),
    method: str(row.method),
    url: str(row.url),
    requestHeaders: json<Record<string, string>>(row.request_headers),
    requestBody: str(row.request_body),
    responseHeaders: json<Record<string, string>>(row.response_headers),
    responseBody: str(row.response_body),
    nextAttemptAt: numOrNull(row.next_attempt_at),
    coalescedCount: num(row.coalesced_count),
  };
}

function toHealth(row: Row): WebhookHealth {
  return {
    consecutiveFailures: num(row.consecutive_failures),
    failingSince: numOrNull(row.failing_since),
    lastSuccessAt: numOrNull(row.last_success_at),
    lastFailureAt: numOrNull(row.last_failure_at),
  };
}

/** Claim order of the contract; ids compared bytewise, like `COLLATE "C"`. */
function claimOrder(a: DeliveryRecord, b: DeliveryRecord): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.runAt !== b.runAt) return a.runAt - b.runAt;
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const isClaimable = (status: DeliveryStatus): boolean => status === 'pending' || status === 'scheduled';

/** Builds a WHERE clause and its positional parameters. */
class Where {
  readonly params: unknown[] = [];
  private readonly parts: string[] = [];

  /** Adds a condition; `?` in `sql` is replaced by the next parameter placeholder. */
  add(sql: string, ...values: unknown[]): this {
    let i = 0;
    this.parts.push(sql.replace(/\?/g, () => this.param(values[i++])));
    return this;
  }

  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  toString(): string {
    return this.parts.length ? `WHERE ${this.parts.join(' AND ')}` : '';
  }
}

function page<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, Math.max(0, limit));
  const more = rows.length > items.length;
  return { items, nextCursor: more && items.length > 0 ? items[items.length - 1]!.id : null };
}

/** A {@link WebhookValidationError} naming one option of the adapter. */
function invalidOption(path: string, message: string): WebhookValidationError {
  return new WebhookValidationError([{ path, message }], { context: 'PostgresStorage' });
}

function isQueryable(value: unknown): value is PostgresQueryable {
  return typeof value === 'object' && value !== null && typeof (value as PostgresQueryable).query === 'function';
}

// ------------------------------------------------------------------ migrations

interface Names {
  schema: string;
  migrations: string;
  webhooks: string;
  triggers: string;
  deliveries: string;
  executions: string;
  /** Unquoted prefixed name, for index names. */
  raw: (name: string) => string;
}

interface Migration {
  version: number;
  name: string;
  statements: (n: Names) => string[];
}

/** Append-only: never edit a released migration, add a new version. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    statements: (n) => [
      `CREATE TABLE ${n.webhooks} (
        id text COLLATE "C" PRIMARY KEY,
        tenant_id text,
        enabled boolean NOT NULL,
        created_at bigint NOT NULL,
        record jsonb NOT NULL,
        consecutive_failures integer NOT NULL DEFAULT 0,
        failing_since bigint,
        last_success_at bigint,
        last_failure_at bigint
      )`,
      `CREATE INDEX "${n.raw('webhooks_tenant_idx')}" ON ${n.webhooks} (tenant_id, id)`,
      `CREATE TABLE ${n.triggers} (
        webhook_id text COLLATE "C" NOT NULL
          CONSTRAINT "${n.raw('triggers_webhook_fk')}" REFERENCES ${n.webhooks} (id) ON DELETE CASCADE,
        entity text NOT NULL,
        event text NOT NULL,
        CONSTRAINT "${n.raw('triggers_pkey')}" PRIMARY KEY (webhook_id, entity, event)
      )`,
      `CREATE INDEX "${n.raw('triggers_event_idx')}" ON ${n.triggers} (entity, event)`,
      // No foreign key to webhooks: deliveries outlive a deleted webhook (cancelled, still listed).
      `CREATE TABLE ${n.deliveries} (
        id text COLLATE "C" PRIMARY KEY,
        webhook_id text COLLATE "C" NOT NULL,
        tenant_id text,
        entity text NOT NULL,
        event text NOT NULL,
        endpoint text NOT NULL,
        priority integer NOT NULL,
        body text NOT NULL,
        content_type text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'scheduled', 'delivering', 'succeeded', 'failed', 'cancelled')),
        attempts integer NOT NULL,
        run_at bigint NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        last_status integer,
        last_error text,
        is_test boolean NOT NULL,
        coalesce_key text,
        coalesced_count integer NOT NULL,
        lease_token text,
        lease_expires_at bigint,
        accepts_merges boolean NOT NULL DEFAULT false
      )`,
      `CREATE INDEX "${n.raw('deliveries_claim_idx')}" ON ${n.deliveries} (priority DESC, run_at, created_at, id)
        WHERE status IN ${CLAIMABLE_SQL}`,
      `CREATE INDEX "${n.raw('deliveries_run_at_idx')}" ON ${n.deliveries} (run_at) WHERE status IN ${CLAIMABLE_SQL}`,
      `CREATE INDEX "${n.raw('deliveries_lease_idx')}" ON ${n.deliveries} (lease_expires_at) WHERE status = 'delivering'`,
      `CREATE INDEX "${n.raw('deliveries_webhook_idx')}" ON ${n.deliveries} (webhook_id, id COLLATE "C")`,
      `CREATE INDEX "${n.raw('deliveries_tenant_idx')}" ON ${n.deliveries} (tenant_id, id COLLATE "C")`,
      `CREATE INDEX "${n.raw('deliveries_finished_idx')}" ON ${n.deliveries} (updated_at) WHERE status IN ${FINAL_SQL}`,
      // The merge target of a key: set while claimable and not attempted since it was (re)queued.
      // Keyed on this flag, not on the status: a retried delivery and a newer one with the same
      // key may both be claimable (the retry's body may already have reached the receiver).
      `CREATE UNIQUE INDEX "${n.raw('deliveries_coalesce_idx')}" ON ${n.deliveries} (webhook_id, coalesce_key)
        WHERE accepts_merges`,
      `CREATE TABLE ${n.executions} (
        id text COLLATE "C" PRIMARY KEY,
        webhook_id text COLLATE "C" NOT NULL,
        delivery_id text COLLATE "C" NOT NULL,
        tenant_id text,
        entity text NOT NULL,
        event text NOT NULL,
        attempt integer NOT NULL,
        started_at bigint NOT NULL,
        ended_at bigint NOT NULL,
        duration_ms double precision NOT NULL,
        status integer NOT NULL,
        success boolean NOT NULL,
        hard_error boolean NOT NULL,
        error_message text,
        error_code text,
        method text NOT NULL,
        url text NOT NULL,
        request_headers jsonb NOT NULL,
        request_body text NOT NULL,
        response_headers jsonb NOT NULL,
        response_body text NOT NULL,
        next_attempt_at bigint,
        coalesced_count integer NOT NULL
      )`,
      `CREATE INDEX "${n.raw('executions_webhook_idx')}" ON ${n.executions} (webhook_id, id COLLATE "C")`,
      `CREATE INDEX "${n.raw('executions_delivery_idx')}" ON ${n.executions} (delivery_id, id COLLATE "C")`,
      `CREATE INDEX "${n.raw('executions_tenant_idx')}" ON ${n.executions} (tenant_id, id COLLATE "C")`,
      `CREATE INDEX "${n.raw('executions_started_idx')}" ON ${n.executions} (started_at)`,
    ],
  },
  {
    version: 2,
    name: 'dedupe execution request bodies; tenant indexes only for tenanted rows',
    statements: (n) => [
      // NULL = the delivery's body (the usual case): the body is then stored once, not per attempt.
      // Materialised before that body can change (requeued merge target) or go (prune).
      `ALTER TABLE ${n.executions} ALTER COLUMN request_body DROP NOT NULL`,
      // Listings filter on `tenant_id = $n`, which never matches NULL: untenanted rows (every row,
      // for a host without tenants) need no entry, and each non-HOT update of a delivery wrote one.
      `DROP INDEX ${n.schema}."${n.raw('deliveries_tenant_idx')}"`,
      `CREATE INDEX "${n.raw('deliveries_tenant_idx')}" ON ${n.deliveries} (tenant_id, id COLLATE "C")
        WHERE tenant_id IS NOT NULL`,
      `DROP INDEX ${n.schema}."${n.raw('executions_tenant_idx')}"`,
      `CREATE INDEX "${n.raw('executions_tenant_idx')}" ON ${n.executions} (tenant_id, id COLLATE "C")
        WHERE tenant_id IS NOT NULL`,
    ],
  },
];

// ------------------------------------------------------------------ the adapter

interface EnqueueRow {
  index: number;
  delivery: DeliveryRecord;
  acceptsMerges: boolean;
}

/**
 * {@link WebhookStorage} on PostgreSQL (13+), through a `pg.Pool` you provide.
 *
 * - Tables live in `schema` with names starting `tablePrefix`; run {@link migrate} at startup
 *   (safe from many processes at once).
 * - Claims are exclusive across processes (`FOR UPDATE SKIP LOCKED`), use partial indexes, and
 *   return deliveries in the contract's claim order.
 * - `enqueueDeliveries(…, { transaction: client })` writes through your open transaction
 *   (a `pg` client after `BEGIN`): the deliveries exist, and wake dispatchers, only if you commit.
 * - {@link subscribe} holds one pooled connection per subscription for `LISTEN`.
 *
 * Driver failures are thrown as {@link StorageError} with the `pg` error as `cause`.
 */
export class PostgresStorage implements WebhookStorage {
  /** Every write is a round trip and a commit: the dispatcher gathers concurrent writes into one. */
  readonly groupCommit = true;
  private readonly pool: PostgresPool;
  private readonly schema: string;
  private readonly onError: ((error: StorageError) => void) | undefined;
  private readonly n: Names;
  /** NOTIFY channel shared by every adapter on the same tables. */
  private readonly channel: string;
  private readonly notifyIntervalMs: number;
  /** EXECUTION_SELECT on this adapter's tables. */
  private readonly executionSelect: string;
  /** Bodies this adapter leased: a completion sends NULL for the same body (see migration 2). */
  private readonly leasedBodies = new LeasedBodies();
  private readonly prepared: boolean;
  /** Prepared statement names by text (a hash: the text names schema, prefix and row count). */
  private readonly statementNames = new Map<string, string>();
  /** Hot statement texts by shape (see statementText). */
  private readonly statementTexts = new Map<string, string>();
  private lastNotifyAt = -Infinity;
  private readonly subscriptions = new Set<() => Promise<void>>();
  private closed = false;

  constructor(options: PostgresStorageOptions) {
    if (typeof options !== 'object' || options === null) {
      throw invalidOption('', 'options must be an object with a `pool`');
    }
    const { pool, schema = 'public', tablePrefix = 'webhook_', onError, notifyIntervalMs = 50, preparedStatements = true } = options;
    if (typeof preparedStatements !== 'boolean') {
      throw invalidOption('preparedStatements', 'must be a boolean');
    }
    this.prepared = preparedStatements;
    if (!Number.isFinite(notifyIntervalMs) || notifyIntervalMs < 0) {
      throw invalidOption('notifyIntervalMs', 'must be a number >= 0');
    }
    this.notifyIntervalMs = notifyIntervalMs;
    if (!isQueryable(pool) || typeof (pool as PostgresPool).connect !== 'function') {
      throw invalidOption('pool', 'must be a pg.Pool (with query() and connect())');
    }
    if (typeof schema !== 'string' || !IDENTIFIER.test(schema) || schema.length > 63) {
      throw invalidOption('schema', `must match ${IDENTIFIER} and be at most 63 characters, got ${JSON.stringify(schema)}`);
    }
    if (typeof tablePrefix !== 'string' || (tablePrefix !== '' && !IDENTIFIER.test(tablePrefix)) || tablePrefix.length > MAX_PREFIX_LENGTH) {
      throw invalidOption(
        'tablePrefix',
        `must be empty or match ${IDENTIFIER}, at most ${MAX_PREFIX_LENGTH} characters, got ${JSON.stringify(tablePrefix)}`,
      );
    }
    if (onError !== undefined && typeof onError !== 'function') {
      throw invalidOption('onError', 'must be a function');
    }
    this.pool = pool;
    this.schema = schema;
    this.onError = onError;
    const table = (name: string) => `"${schema}"."${tablePrefix}${name}"`;
    this.n = {
      schema: `"${schema}"`,
      migrations: table('migrations'),
      webhooks: table('webhooks'),
      triggers: table('webhook_triggers'),
      deliveries: table('deliveries'),
      executions: table('executions'),
      raw: (name) => `${tablePrefix}${name}`,
    };
    this.executionSelect = EXECUTION_SELECT.replace('%DELIVERIES%', this.n.deliveries);
    // Channel names are identifiers (63 bytes at most); hash long ones so LISTEN and pg_notify agree.
    const channel = `${schema}.${tablePrefix}deliveries`;
    this.channel =
      channel.length <= 63 ? channel : `${channel.slice(0, 46)}_${createHash('sha256').update(channel).digest('hex').slice(0, 16)}`;
  }

  /**
   * Creates the schema (when missing) and applies pending migrations, in one transaction under
   * an advisory lock: concurrent callers wait for each other and then find nothing to do.
   */
  async migrate(): Promise<void> {
    await this.guard('migrate', () =>
      this.transaction(async (client) => {
        // Keyed on the schema, not the prefix: adapters with different prefixes may race to create it.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`webhook-dispatcher:migrate:${this.schema}`]);
        // CREATE SCHEMA needs the CREATE privilege on the database even with IF NOT EXISTS: skip it when present.
        const schema = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema]);
        if (schema.rows.length === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.n.schema}`);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${this.n.migrations} (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
          )`,
        );
        const applied = await client.query(`SELECT version FROM ${this.n.migrations}`);
        const done = new Set((applied.rows as Row[]).map((r) => num(r.version)));
        for (const migration of MIGRATIONS) {
          if (done.has(migration.version)) continue;
          for (const statement of migration.statements(this.n)) await client.query(statement);
          await client.query(`INSERT INTO ${this.n.migrations} (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
        }
      }),
    );
  }

  // ---------------------------------------------------------------- webhooks

  /** Inserts a webhook and its triggers. Throws a {@link StorageError} when the id exists. */
  async insertWebhook(webhook: WebhookRecord): Promise<void> {
    await this.guard('insertWebhook', async () => {
      try {
        await this.transaction(async (client) => {
          await client.query(
            `INSERT INTO ${this.n.webhooks} (id, tenant_id, enabled, created_at, record) VALUES ($1, $2, $3, $4, $5::jsonb)`,
            [webhook.id, webhook.tenantId, webhook.enabled, webhook.createdAt, JSON.stringify(webhook)],
          );
          await this.insertTriggers(client, webhook);
        });
      } catch (error) {
        if ((error as { code?: unknown }).code === '23505') {
          throw new StorageError(`webhook ${webhook.id} already exists`, { cause: error });
        }
        throw error;
      }
    });
  }

  /** Reads one webhook. */
  async getWebhook(id: string): Promise<WebhookRecord | null> {
    return this.guard('getWebhook', async () => {
      const result = await this.pool.query(`SELECT record FROM ${this.n.webhooks} WHERE id = $1`, [id]);
      const row = result.rows[0] as Row | undefined;
      return row ? json<WebhookRecord>(row.record) : null;
    });
  }

  /** Replaces the record and its triggers; the health columns are left alone. */
  async updateWebhook(webhook: WebhookRecord): Promise<boolean> {
    return this.guard('updateWebhook', () =>
      this.transaction(async (client) => {
        const updated = await client.query(
          `UPDATE ${this.n.webhooks} SET tenant_id = $2, enabled = $3, created_at = $4, record = $5::jsonb WHERE id = $1`,
          [webhook.id, webhook.tenantId, webhook.enabled, webhook.createdAt, JSON.stringify(webhook)],
        );
        if (updated.rowCount !== 1) return false;
        await client.query(`DELETE FROM ${this.n.triggers} WHERE webhook_id = $1`, [webhook.id]);
        await this.insertTriggers(client, webhook);
        return true;
      }),
    );
  }

  /** Deletes the webhook (triggers cascade) and cancels its claimable deliveries, in one statement. */
  async deleteWebhook(id: string): Promise<boolean> {
    return this.guard('deleteWebhook', async () => {
      const result = await this.pool.query(
        `WITH deleted AS (DELETE FROM ${this.n.webhooks} WHERE id = $1 RETURNING id),
         cancelled AS (
           UPDATE ${this.n.deliveries} SET status = 'cancelled', last_error = 'webhook was deleted', updated_at = $2,
             accepts_merges = false
           WHERE webhook_id IN (SELECT id FROM deleted) AND status IN ${CLAIMABLE_SQL}
         )
         SELECT count(*)::int AS n FROM deleted`,
        [id, Date.now()],
      );
      return num((result.rows[0] as Row | undefined)?.n) > 0;
    });
  }

  /** Lists webhooks newest first (ids are time-ordered). */
  async listWebhooks(query: WebhookQuery): Promise<Page<WebhookRecord>> {
    return this.guard('listWebhooks', async () => {
      const where = new Where();
      if (query.tenantId === null) where.add('tenant_id IS NULL');
      else if (query.tenantId !== undefined) where.add('tenant_id = ?', query.tenantId);
      if (query.enabled !== undefined) where.add('enabled = ?', query.enabled);
      if (query.cursor) where.add('id < ?', query.cursor);
      const limit = where.param(Math.max(0, query.limit) + 1);
      const result = await this.pool.query(
        `SELECT record FROM ${this.n.webhooks} ${where} ORDER BY id DESC LIMIT ${limit}`,
        where.params,
      );
      return page((result.rows as Row[]).map((r) => json<WebhookRecord>(r.record)), query.limit);
    });
  }

  /** Enabled webhooks whose triggers match (with `*` wildcards), via the (entity, event) index. */
  async findWebhooksForEvent(match: EventMatch): Promise<WebhookRecord[]> {
    return this.guard('findWebhooksForEvent', async () => {
      const result = await this.pool.query(
        `SELECT w.record FROM ${this.n.webhooks} w
         WHERE w.enabled AND (w.tenant_id IS NULL OR w.tenant_id = $3)
           AND w.id IN (
             SELECT t.webhook_id FROM ${this.n.triggers} t
             WHERE t.entity IN ($1, '*') AND t.event IN ($2, '*')
           )
         ORDER BY w.id`,
        [match.entity, match.event, match.tenantId],
      );
      return (result.rows as Row[]).map((r) => json<WebhookRecord>(r.record));
    });
  }

  // ---------------------------------------------------------------- delivery queue

  /**
   * Inserts deliveries with one multi-row statement per round, all in one transaction (yours,
   * under a savepoint, when `options.transaction` is given), then notifies subscribers: the
   * notification is delivered by Postgres only when that transaction commits.
   *
   * Coalescing is `INSERT … ON CONFLICT` on the partial unique index of merge targets, so
   * concurrent enqueues of one key serialize on that index entry. A batch holding the same key
   * twice is split into rounds (the n-th occurrence of each key in round n), because one
   * statement cannot update the same row twice; rounds above 1,000 rows are split too (the
   * protocol's parameter limit). Several statements run in one transaction.
   */
  /**
   * Throws unless `transaction` looks like a pg client (has `query()`). Whether BEGIN was called
   * shows only at the write, which then fails with a StorageError.
   */
  checkTransaction(transaction: unknown): asserts transaction is PostgresQueryable {
    if (!isQueryable(transaction)) throw invalidOption('transaction', 'must be a pg client (with query()) on which you called BEGIN');
  }

  async enqueueDeliveries(deliveries: readonly DeliveryRecord[], options?: WriteOptions): Promise<EnqueueResult> {
    const host = options?.transaction;
    if (host !== undefined) this.checkTransaction(host);
    if (deliveries.length === 0) return { deliveries: [] };
    const rounds = this.enqueueRounds(deliveries);
    const results = new Array<EnqueueResult['deliveries'][number]>(deliveries.length);
    return this.guard('enqueueDeliveries', async () => {
      if (host !== undefined) {
        // A savepoint keeps a failed enqueue from aborting the host's whole transaction.
        try {
          await host.query('SAVEPOINT webhook_dispatcher_enqueue');
        } catch (error) {
          if ((error as { code?: unknown }).code === '25P01') {
            throw new StorageError('options.transaction is not inside a transaction: call BEGIN on that client first', {
              cause: error,
            });
          }
          throw error;
        }
        try {
          // The host's client is not the adapter's: plain text statements only.
          for (const round of rounds) await this.enqueueRound(host, round, results, false, false);
          await host.query('SELECT pg_notify($1, $2)', [this.channel, '']);
          await host.query('RELEASE SAVEPOINT webhook_dispatcher_enqueue');
        } catch (error) {
          try {
            await host.query('ROLLBACK TO SAVEPOINT webhook_dispatcher_enqueue');
            await host.query('RELEASE SAVEPOINT webhook_dispatcher_enqueue');
          } catch {
            // The host's transaction is aborted then; its COMMIT will report it. The first error matters.
          }
          throw error;
        }
      } else {
        const now = performance.now();
        const notify = now - this.lastNotifyAt >= this.notifyIntervalMs;
        if (notify) this.lastNotifyAt = now;
        if (rounds.length === 1) {
          // One statement is its own transaction: insert and notify commit together.
          await this.enqueueRound(this.pool, rounds[0]!, results, notify, this.prepared);
        } else {
          await this.transaction(async (client) => {
            for (const [i, round] of rounds.entries()) {
              await this.enqueueRound(client, round, results, notify && i === rounds.length - 1, this.prepared);
            }
          });
        }
      }
      return { deliveries: results };
    });
  }

  /**
   * One statement claims the best due deliveries: expired leases (via the lease index) and
   * pending/scheduled ones (via the claim index) are each selected in claim order with
   * `FOR UPDATE SKIP LOCKED`, merged, cut to `limit`, and leased. Two arms instead of one OR, so
   * each can walk its own partial index.
   */
  async claimDueDeliveries(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    return this.guard('claimDueDeliveries', async () => {
      if (request.limit <= 0) return [];
      const result = await this.hotQuery(
        this.pool,
        `WITH expired AS (
           SELECT id, priority, run_at, created_at FROM ${this.n.deliveries}
           WHERE status = 'delivering' AND lease_expires_at <= $1::bigint AND NOT (endpoint = ANY($4::text[]))
           ORDER BY priority DESC, run_at, created_at, id
           LIMIT $2::int FOR UPDATE SKIP LOCKED
         ), ready AS (
           SELECT id, priority, run_at, created_at FROM ${this.n.deliveries}
           WHERE status IN ${CLAIMABLE_SQL} AND run_at <= $1 AND NOT (endpoint = ANY($4::text[]))
           ORDER BY priority DESC, run_at, created_at, id
           LIMIT $2 FOR UPDATE SKIP LOCKED
         ), due AS (
           SELECT id FROM (SELECT * FROM expired UNION ALL SELECT * FROM ready) candidates
           ORDER BY priority DESC, run_at, created_at, id
           LIMIT $2
         )
         UPDATE ${this.n.deliveries} d
         SET status = 'delivering', lease_token = gen_random_uuid()::text, lease_expires_at = $1 + $3::bigint,
           updated_at = $1, accepts_merges = false
         FROM due WHERE d.id = due.id
         RETURNING ${DELIVERY_COLUMNS.replace(/(\w+)/g, 'd.$1')}, d.lease_token, d.lease_expires_at`,
        [request.now, request.limit, request.leaseMs, [...(request.excludeEndpoints ?? [])]],
      );
      const claimed = (result.rows as Row[]).map(
        (row): ClaimedDelivery => ({
          ...toDelivery(row),
          leaseToken: str(row.lease_token),
          leaseExpiresAt: num(row.lease_expires_at),
        }),
      );
      for (const delivery of claimed) this.leasedBodies.remember(delivery.leaseToken, delivery.body);
      // RETURNING has no defined order.
      return claimed.sort(claimOrder);
    });
  }

  /** Fenced update and execution insert in one statement: no lease, no row, no execution. */
  async completeAttempt(input: CompleteAttempt): Promise<boolean> {
    return this.guard('completeAttempt', async () => {
      const { outcome, execution: e } = input;
      const runAt = outcome.status === 'scheduled' ? (outcome.runAt ?? e.endedAt) : null;
      const result = await this.pool.query(
        `WITH done AS (
           UPDATE ${this.n.deliveries}
           SET status = $3, attempts = attempts + 1, last_status = $4, last_error = $5, updated_at = $6,
             run_at = COALESCE($7::bigint, run_at), lease_token = NULL, lease_expires_at = NULL
           WHERE id = $1 AND status = 'delivering' AND lease_token = $2
           RETURNING id, body
         )
         INSERT INTO ${this.n.executions} (${EXECUTION_COLUMNS})
         SELECT $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,
           $25::jsonb, ${STORED_REQUEST_BODY('$26::text', 'done.body')}, $27::jsonb, $28, $29, $30
         FROM done`,
        [
          input.deliveryId,
          input.leaseToken,
          outcome.status,
          outcome.lastStatus,
          outcome.lastError,
          e.endedAt,
          runAt,
          e.id,
          e.webhookId,
          e.deliveryId,
          e.tenantId,
          e.entity,
          e.event,
          e.attempt,
          e.startedAt,
          e.endedAt,
          e.durationMs,
          e.status,
          e.success,
          e.hardError,
          e.errorMessage,
          e.errorCode,
          e.method,
          e.url,
          JSON.stringify(e.requestHeaders),
          this.requestBodyParam(input),
          JSON.stringify(e.responseHeaders),
          e.responseBody,
          e.nextAttemptAt,
          e.coalescedCount,
        ],
      );
      return result.rowCount === 1;
    });
  }

  /**
   * Many completions in one statement (one round trip, one commit): the fenced updates and the
   * execution inserts for the deliveries whose lease held. A batch naming one delivery twice is
   * split into rounds inside one transaction, since one statement cannot update a row twice.
   */
  async completeAttempts(inputs: readonly CompleteAttempt[]): Promise<boolean[]> {
    if (inputs.length === 0) return [];
    return this.guard('completeAttempts', async () => {
      const rounds: CompleteAttempt[][] = [];
      const seen = new Map<string, number>();
      for (const input of inputs) {
        const round = seen.get(input.deliveryId) ?? 0;
        seen.set(input.deliveryId, round + 1);
        (rounds[round] ??= []).push(input);
      }
      const statements = rounds.flatMap((round) => chunks(round, MAX_ROWS_PER_STATEMENT));
      const recorded = new Set<string>();
      if (statements.length === 1) {
        await this.completeRound(this.pool, statements[0]!, recorded);
      } else {
        await this.transaction(async (client) => {
          for (const statement of statements) await this.completeRound(client, statement, recorded);
        });
      }
      return inputs.map((input) => recorded.has(input.execution.id));
    });
  }

  private async completeRound(q: PostgresQueryable, round: readonly CompleteAttempt[], recorded: Set<string>): Promise<void> {
    const params: unknown[] = [];
    for (const input of round) {
      const { deliveryId, leaseToken, outcome, execution: e } = input;
      params.push(
        deliveryId, leaseToken, outcome.status, outcome.lastStatus, outcome.lastError, e.endedAt,
        outcome.status === 'scheduled' ? (outcome.runAt ?? e.endedAt) : null,
        e.id, e.webhookId, e.tenantId, e.entity, e.event, e.attempt, e.startedAt, e.durationMs, e.status, e.success,
        e.hardError, e.errorMessage, e.errorCode, e.method, e.url, JSON.stringify(e.requestHeaders), this.requestBodyParam(input),
        JSON.stringify(e.responseHeaders), e.responseBody, e.nextAttemptAt, e.coalescedCount,
      );
    }
    // Prepared: padded to a few row counts with all-NULL rows, which match no delivery.
    const rows = this.prepared ? preparedRowCount(round.length) : round.length;
    padRows(params, rows - round.length, COMPLETE_TYPES.length);
    const result = await this.hotQuery(q, this.statementText(`complete:${rows}`, () =>
      `WITH input (delivery_id, lease_token, outcome, last_status, last_error, ended_at, run_at, id, webhook_id,
             tenant_id, entity, event, attempt, started_at, duration_ms, status, success, hard_error, error_message,
             error_code, method, url, request_headers, request_body, response_headers, response_body, next_attempt_at,
             coalesced_count) AS (
           VALUES ${valueRows(rows, COMPLETE_TYPES)}
         ), done AS (
           UPDATE ${this.n.deliveries} d
           SET status = i.outcome, attempts = d.attempts + 1, last_status = i.last_status, last_error = i.last_error,
             updated_at = i.ended_at, run_at = COALESCE(i.run_at, d.run_at), lease_token = NULL, lease_expires_at = NULL
           FROM input i
           WHERE d.id = i.delivery_id AND d.status = 'delivering' AND d.lease_token = i.lease_token
           RETURNING d.id, d.body
         )
         INSERT INTO ${this.n.executions} (${EXECUTION_COLUMNS})
         SELECT i.id, i.webhook_id, i.delivery_id, i.tenant_id, i.entity, i.event, i.attempt, i.started_at, i.ended_at,
           i.duration_ms, i.status, i.success, i.hard_error, i.error_message, i.error_code, i.method, i.url,
           i.request_headers, ${STORED_REQUEST_BODY('i.request_body', 'done.body')}, i.response_headers, i.response_body,
           i.next_attempt_at, i.coalesced_count
         FROM input i JOIN done ON done.id = i.delivery_id
         RETURNING id`), params);
    for (const row of result.rows as Row[]) recorded.add(str(row.id));
  }

  /**
   * The text of a hot statement, built once per shape (kind and row count) and then reused as the
   * same string: a rebuilt ~25 KB text would be hashed for the prepared-statement name lookup and
   * compared with the prepared one by pg on every call.
   */
  private statementText(shape: string, build: () => string): string {
    let text = this.statementTexts.get(shape);
    if (text === undefined) {
      text = build();
      if (this.statementTexts.size < 1_000) this.statementTexts.set(shape, text);
    }
    return text;
  }

  /**
   * The request body to send for an execution: null ("the delivery's body") when it is the body
   * this adapter leased, instead of ~1 KiB the server would only compare and drop.
   */
  private requestBodyParam(input: CompleteAttempt): string | null {
    const body = input.execution.requestBody;
    return this.leasedBodies.takeIsLeasedBody(input.leaseToken, body) ? null : body;
  }

  /**
   * Runs a hot-path statement on the adapter's own pool or one of its connections: prepared by
   * name when `preparedStatements` is on (pg parses and plans it once per connection).
   */
  private hotQuery(q: PostgresQueryable, text: string, values: unknown[]): Promise<PostgresQueryResult> {
    if (!this.prepared) return q.query(text, values);
    let name = this.statementNames.get(text);
    if (name === undefined) {
      name = `wd_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
      this.statementNames.set(text, name);
    }
    return (q as unknown as PreparedQueryable).query({ name, text, values });
  }

  /** Fenced: back to `pending` (never attempted) or `scheduled`, attempts unchanged. */
  async releaseDelivery(deliveryId: string, leaseToken: string, runAt?: number): Promise<boolean> {
    this.leasedBodies.forget(leaseToken);
    return this.guard('releaseDelivery', async () => {
      const result = await this.pool.query(
        `UPDATE ${this.n.deliveries}
         SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END,
           run_at = COALESCE($3::bigint, run_at), lease_token = NULL, lease_expires_at = NULL
         WHERE id = $1 AND status = 'delivering' AND lease_token = $2`,
        [deliveryId, leaseToken, runAt ?? null],
      );
      return result.rowCount === 1;
    });
  }

  /** Fenced lease extension. */
  async extendLease(deliveryId: string, leaseToken: string, leaseExpiresAt: number): Promise<boolean> {
    return this.guard('extendLease', async () => {
      const result = await this.pool.query(
        `UPDATE ${this.n.deliveries} SET lease_expires_at = $3
         WHERE id = $1 AND status = 'delivering' AND lease_token = $2`,
        [deliveryId, leaseToken, leaseExpiresAt],
      );
      return result.rowCount === 1;
    });
  }

  /** Cancels a claimable delivery, or a delivering one with its current lease token. */
  async cancelDelivery(
    deliveryId: string,
    options: { leaseToken?: string; reason?: string; now?: number } = {},
  ): Promise<boolean> {
    if (options.leaseToken !== undefined) this.leasedBodies.forget(options.leaseToken);
    return this.guard('cancelDelivery', async () => {
      const result = await this.pool.query(
        `UPDATE ${this.n.deliveries}
         SET status = 'cancelled', last_error = COALESCE($3::text, last_error), updated_at = $4,
           lease_token = NULL, lease_expires_at = NULL, accepts_merges = false
         WHERE id = $1 AND (status IN ${CLAIMABLE_SQL} OR (status = 'delivering' AND lease_token = $2::text))`,
        [deliveryId, options.leaseToken ?? null, options.reason ?? null, options.now ?? Date.now()],
      );
      return result.rowCount === 1;
    });
  }

  /** Reads one delivery (without lease details). */
  async getDelivery(id: string): Promise<DeliveryRecord | null> {
    return this.guard('getDelivery', async () => {
      const result = await this.pool.query(`SELECT ${DELIVERY_COLUMNS} FROM ${this.n.deliveries} WHERE id = $1`, [id]);
      const row = result.rows[0] as Row | undefined;
      return row ? toDelivery(row) : null;
    });
  }

  /** Lists deliveries newest first. */
  async listDeliveries(query: DeliveryQuery): Promise<Page<DeliveryRecord>> {
    return this.guard('listDeliveries', async () => {
      const where = new Where();
      if (query.webhookId !== undefined) where.add('webhook_id = ?', query.webhookId);
      if (query.tenantId !== undefined) where.add('tenant_id = ?', query.tenantId);
      if (query.status !== undefined) where.add('status = ?', query.status);
      if (query.cursor) where.add('id < ?', query.cursor);
      const limit = where.param(Math.max(0, query.limit) + 1);
      const result = await this.pool.query(
        `SELECT ${DELIVERY_COLUMNS} FROM ${this.n.deliveries} ${where} ORDER BY id DESC LIMIT ${limit}`,
        where.params,
      );
      return page((result.rows as Row[]).map(toDelivery), query.limit);
    });
  }

  /** Earliest claimable `runAt` or lease expiry; each side is one index lookup. */
  async nextRunAt(): Promise<number | null> {
    return this.guard('nextRunAt', async () => {
      const result = await this.pool.query(
        `SELECT LEAST(
           (SELECT min(run_at) FROM ${this.n.deliveries} WHERE status IN ${CLAIMABLE_SQL}),
           (SELECT min(lease_expires_at) FROM ${this.n.deliveries} WHERE status = 'delivering')
         ) AS next`,
      );
      return numOrNull((result.rows[0] as Row | undefined)?.next);
    });
  }

  /** Deliveries by status, for metrics (a scan of the status column). */
  async countDeliveries(): Promise<Partial<Record<DeliveryStatus, number>>> {
    return this.guard('countDeliveries', async () => {
      const result = await this.pool.query(`SELECT status, count(*)::int AS n FROM ${this.n.deliveries} GROUP BY status`);
      return Object.fromEntries((result.rows as Array<{ status: DeliveryStatus; n: number }>).map((r) => [r.status, r.n]));
    });
  }

  /**
   * Makes final deliveries `pending` again, skipping those whose webhook is gone. A requeued
   * delivery with a coalescing key becomes that key's merge target (the last one, when several
   * share a key), as in {@link MemoryStorage}.
   */
  async requeueDeliveries(request: RequeueRequest): Promise<string[]> {
    return this.guard('requeueDeliveries', () =>
      this.transaction(async (client) => {
        const where = new Where();
        if (request.deliveryIds) {
          where.add('d.id = ANY(?::text[])', [...request.deliveryIds]);
        } else {
          where.add('d.status = ANY(?::text[])', [...(request.statuses ?? ['failed'])]);
          if (request.webhookId !== undefined) where.add('d.webhook_id = ?', request.webhookId);
          if (request.tenantId !== undefined) where.add('d.tenant_id = ?', request.tenantId);
          if (request.since !== undefined) where.add('d.updated_at >= ?', request.since);
        }
        where.add(`d.status IN ${FINAL_SQL}`);
        where.add(`EXISTS (SELECT 1 FROM ${this.n.webhooks} w WHERE w.id = d.webhook_id)`);
        const runAt = where.param(request.runAt);
        const now = where.param(request.now);
        const result = await client.query(
          `UPDATE ${this.n.deliveries} d
           SET status = 'pending', run_at = ${runAt}, updated_at = ${now}, lease_token = NULL, lease_expires_at = NULL
           ${where}
           RETURNING d.id, d.webhook_id, d.coalesce_key`,
          where.params,
        );
        const rows = result.rows as Row[];
        const order = request.deliveryIds ? new Map(request.deliveryIds.map((id, i) => [id, i] as const)) : null;
        rows.sort((a, b) =>
          order
            ? order.get(str(a.id))! - order.get(str(b.id))!
            : str(a.id) < str(b.id) ? -1 : str(a.id) > str(b.id) ? 1 : 0,
        );
        const winners = new Map<string, Row>();
        for (const row of rows) {
          if (row.coalesce_key !== null) winners.set(`${str(row.webhook_id)}\0${str(row.coalesce_key)}`, row);
        }
        if (winners.size > 0) {
          const targets = [...winners.values()];
          // A merge target's body may be replaced by a later enqueue: its past executions keep their own copy.
          await client.query(
            `UPDATE ${this.n.executions} e SET request_body = d.body
             FROM ${this.n.deliveries} d
             WHERE d.id = ANY($1::text[]) AND e.delivery_id = d.id AND e.request_body IS NULL`,
            [targets.map((r) => r.id)],
          );
          await client.query(
            `UPDATE ${this.n.deliveries} SET accepts_merges = false
             WHERE accepts_merges AND (webhook_id, coalesce_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
            [targets.map((r) => r.webhook_id), targets.map((r) => r.coalesce_key)],
          );
          await client.query(`UPDATE ${this.n.deliveries} SET accepts_merges = true WHERE id = ANY($1::text[])`, [
            targets.map((r) => r.id),
          ]);
        }
        return rows.map((r) => str(r.id));
      }),
    );
  }

  // ---------------------------------------------------------------- execution log

  /** Lists executions newest first; `since`/`until` bound `startedAt`. */
  async listExecutions(query: ExecutionQuery): Promise<Page<ExecutionRecord>> {
    return this.guard('listExecutions', async () => {
      const where = new Where();
      if (query.webhookId !== undefined) where.add('webhook_id = ?', query.webhookId);
      if (query.deliveryId !== undefined) where.add('delivery_id = ?', query.deliveryId);
      if (query.tenantId !== undefined) where.add('tenant_id = ?', query.tenantId);
      if (query.success !== undefined) where.add('success = ?', query.success);
      if (query.since !== undefined) where.add('started_at >= ?', query.since);
      if (query.until !== undefined) where.add('started_at < ?', query.until);
      if (query.cursor) where.add('id < ?', query.cursor);
      const limit = where.param(Math.max(0, query.limit) + 1);
      const result = await this.pool.query(
        `SELECT ${this.executionSelect} FROM ${this.n.executions} e ${where} ORDER BY e.id DESC LIMIT ${limit}`,
        where.params,
      );
      return page((result.rows as Row[]).map(toExecution), query.limit);
    });
  }

  // ---------------------------------------------------------------- health

  /** One atomic UPDATE, so concurrent reports from several processes all count. */
  async recordWebhookResult(webhookId: string, success: boolean, at: number): Promise<WebhookHealth | null> {
    return this.guard('recordWebhookResult', async () => {
      const set = success
        ? 'consecutive_failures = 0, failing_since = NULL, last_success_at = $2'
        : 'consecutive_failures = consecutive_failures + 1, failing_since = COALESCE(failing_since, $2), last_failure_at = $2';
      const result = await this.pool.query(
        `UPDATE ${this.n.webhooks} SET ${set} WHERE id = $1 RETURNING ${HEALTH_COLUMNS}`,
        [webhookId, at],
      );
      const row = result.rows[0] as Row | undefined;
      return row ? toHealth(row) : null;
    });
  }

  /** Reads the health columns (zeroed until the first result). */
  async getWebhookHealth(webhookId: string): Promise<WebhookHealth | null> {
    return this.guard('getWebhookHealth', async () => {
      const result = await this.pool.query(`SELECT ${HEALTH_COLUMNS} FROM ${this.n.webhooks} WHERE id = $1`, [webhookId]);
      const row = result.rows[0] as Row | undefined;
      return row ? toHealth(row) : null;
    });
  }

  /** Zeroes the failure run, keeping the last success/failure times. */
  async resetWebhookHealth(webhookId: string): Promise<void> {
    await this.guard('resetWebhookHealth', () =>
      this.pool.query(`UPDATE ${this.n.webhooks} SET consecutive_failures = 0, failing_since = NULL WHERE id = $1`, [
        webhookId,
      ]),
    );
  }

  // ---------------------------------------------------------------- retention

  /** Deletes, then blanks, old records in one transaction. */
  async prune(request: PruneRequest): Promise<PruneResult> {
    return this.guard('prune', () =>
      this.transaction(async (client) => {
        const result: PruneResult = { executionsDeleted: 0, executionsStripped: 0, deliveriesDeleted: 0 };
        const { stripSuccessfulBodiesBefore: strip, deleteSucceededBefore: okBefore, deleteFailedBefore: failBefore } = request;
        const executions: string[] = [];
        const deliveries: string[] = [];
        const params: unknown[] = [];
        if (okBefore !== undefined) {
          params.push(okBefore);
          executions.push(`(success AND started_at < $${params.length})`);
          deliveries.push(`(status = 'succeeded' AND updated_at < $${params.length})`);
        }
        if (failBefore !== undefined) {
          params.push(failBefore);
          executions.push(`(NOT success AND started_at < $${params.length})`);
          deliveries.push(`(status IN ('failed', 'cancelled') AND updated_at < $${params.length})`);
        }
        if (executions.length > 0) {
          const deleted = await client.query(`DELETE FROM ${this.n.executions} WHERE ${executions.join(' OR ')}`, params);
          result.executionsDeleted = deleted.rowCount ?? 0;
        }
        if (strip !== undefined) {
          const stripped = await client.query(
            // A NULL request body is the delivery's, never empty (see STORED_REQUEST_BODY): not yet stripped.
            `UPDATE ${this.n.executions} SET request_body = '', response_body = ''
             WHERE success AND started_at < $1 AND (request_body IS NULL OR request_body <> '' OR response_body <> '')`,
            [strip],
          );
          result.executionsStripped = stripped.rowCount ?? 0;
        }
        if (deliveries.length > 0) {
          // Executions outlive their delivery under other rules: those still sharing its body get a copy first.
          const deleted = await client.query(
            `WITH gone AS (
               DELETE FROM ${this.n.deliveries} WHERE ${deliveries.join(' OR ')} RETURNING id, body
             ), kept AS (
               UPDATE ${this.n.executions} e SET request_body = gone.body
               FROM gone WHERE e.delivery_id = gone.id AND e.request_body IS NULL
             )
             SELECT count(*)::int AS n FROM gone`,
            params,
          );
          result.deliveriesDeleted = num((deleted.rows[0] as Row | undefined)?.n ?? 0);
        }
        return result;
      }),
    );
  }

  // ---------------------------------------------------------------- notifications

  /**
   * Holds a pooled connection on `LISTEN` and calls `listener` for each committed enqueue (from
   * any process). Connection errors detach the subscription and go to `options.onError`; the
   * returned function `UNLISTEN`s and gives the connection back.
   */
  async subscribe(listener: () => void): Promise<() => Promise<void>> {
    if (this.closed) throw new StorageError('PostgresStorage is closed');
    const client = await this.guard('subscribe', () => this.pool.connect());
    const listen = `"${this.channel}"`;
    let active = true;
    const detach = (error?: Error) => {
      active = false;
      client.removeListener('notification', onNotification);
      client.removeListener('error', onClientError);
      this.subscriptions.delete(unsubscribe);
      client.release(error);
    };
    const onNotification = (message: PostgresNotification) => {
      if (!active || message.channel !== this.channel) return;
      try {
        listener();
      } catch (error) {
        this.onError?.(new StorageError('subscribe listener threw', { cause: error }));
      }
    };
    const onClientError = (error: Error) => {
      if (!active) return;
      detach(error);
      this.onError?.(new StorageError(`LISTEN connection failed: ${error.message}`, { cause: error }));
    };
    const unsubscribe = async (): Promise<void> => {
      if (!active) return;
      active = false;
      try {
        await client.query(`UNLISTEN ${listen}`);
        detach();
      } catch (error) {
        // The connection is unusable: destroy it rather than return a listening one to the pool.
        detach(error instanceof Error ? error : new Error(String(error)));
      }
    };
    client.on('notification', onNotification);
    client.on('error', onClientError);
    try {
      await client.query(`LISTEN ${listen}`);
    } catch (error) {
      if (active) detach(error instanceof Error ? error : new Error(String(error)));
      throw new StorageError(`PostgresStorage.subscribe failed: ${(error as Error).message}`, { cause: error });
    }
    this.subscriptions.add(unsubscribe);
    if (this.closed) {
      // close() ran while LISTEN was in flight: it could not see this subscription.
      await unsubscribe();
      throw new StorageError('PostgresStorage is closed');
    }
    return unsubscribe;
  }

  /** Ends this adapter's subscriptions. The pool is the caller's and stays open. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.subscriptions].map((unsubscribe) => unsubscribe()));
  }

  // ---------------------------------------------------------------- internals

  private async insertTriggers(client: PostgresQueryable, webhook: WebhookRecord): Promise<void> {
    if (webhook.triggers.length === 0) return;
    await client.query(
      `INSERT INTO ${this.n.triggers} (webhook_id, entity, event)
       SELECT $1, entity, event FROM unnest($2::text[], $3::text[]) AS t(entity, event)
       ON CONFLICT DO NOTHING`,
      [webhook.id, webhook.triggers.map((t) => t.entity), webhook.triggers.map((t) => t.event)],
    );
  }

  /** Splits a batch so no round holds one merge key twice; keyed rows sorted to lock in a fixed order. */
  private enqueueRounds(deliveries: readonly DeliveryRecord[]): EnqueueRow[][] {
    const rounds: EnqueueRow[][] = [];
    const seen = new Map<string, number>();
    for (const [index, delivery] of deliveries.entries()) {
      const acceptsMerges = delivery.coalesceKey !== null && isClaimable(delivery.status);
      let round = 0;
      if (acceptsMerges) {
        const key = `${delivery.webhookId}\0${delivery.coalesceKey}`;
        round = seen.get(key) ?? 0;
        seen.set(key, round + 1);
      }
      (rounds[round] ??= []).push({ index, delivery, acceptsMerges });
    }
    const lockKey = (r: EnqueueRow) => (r.acceptsMerges ? `0${r.delivery.webhookId}\0${r.delivery.coalesceKey}` : '1');
    for (const round of rounds) round.sort((a, b) => (lockKey(a) < lockKey(b) ? -1 : lockKey(a) > lockKey(b) ? 1 : a.index - b.index));
    return rounds.flatMap((round) => chunks(round, MAX_ROWS_PER_STATEMENT));
  }

  private async enqueueRound(
    q: PostgresQueryable,
    round: EnqueueRow[],
    results: EnqueueResult['deliveries'],
    notify: boolean,
    prepared: boolean,
  ): Promise<void> {
    // One row of typed placeholders per delivery: arrays (unnest) would make pg escape every body
    // into an array literal, and the server parse it back, at ~1 KiB per delivery.
    const params: unknown[] = [];
    for (const { delivery: d, acceptsMerges } of round) {
      params.push(
        d.id, d.webhookId, d.tenantId, d.entity, d.event, d.endpoint, d.priority, d.body, d.contentType, d.status,
        d.attempts, d.runAt, d.createdAt, d.updatedAt, d.lastStatus, d.lastError, d.isTest, d.coalesceKey,
        d.coalescedCount, acceptsMerges,
      );
    }
    // Prepared: padded to a few row counts with all-NULL rows, which the WHERE drops.
    const rowCount = prepared ? preparedRowCount(round.length) : round.length;
    padRows(params, rowCount - round.length, ENQUEUE_TYPES.length);
    const insert = this.statementText(`enqueue:${rowCount}`, () => `INSERT INTO ${this.n.deliveries} AS d (${DELIVERY_COLUMNS}, accepts_merges)
      SELECT * FROM (VALUES ${valueRows(rowCount, ENQUEUE_TYPES)}) AS v (${DELIVERY_COLUMNS}, accepts_merges)
      WHERE v.id IS NOT NULL
      ON CONFLICT (webhook_id, coalesce_key) WHERE accepts_merges
      DO UPDATE SET body = EXCLUDED.body, content_type = EXCLUDED.content_type,
        coalesced_count = d.coalesced_count + 1, updated_at = EXCLUDED.created_at
      RETURNING d.id, d.webhook_id, d.coalesce_key, (d.xmax <> 0) AS coalesced`);
    let text = insert;
    if (notify) {
      // The notification is queued inside the statement's transaction and sent only on commit.
      params.push(this.channel);
      const channelParam = params.length;
      text = this.statementText(`enqueue+notify:${rowCount}`, () => `WITH ins AS (${insert}) SELECT ins.* FROM ins, (SELECT pg_notify($${channelParam}, '')) AS notified`);
    }
    const result = prepared ? await this.hotQuery(q, text, params) : await q.query(text, params);
    const byId = new Map(round.map((r) => [r.delivery.id, r] as const));
    const byKey = new Map(
      round.filter((r) => r.acceptsMerges).map((r) => [`${r.delivery.webhookId}\0${r.delivery.coalesceKey}`, r] as const),
    );
    const rows = result.rows as Row[];
    if (rows.length !== round.length) {
      throw new StorageError(`enqueue wrote ${rows.length} rows for ${round.length} deliveries`);
    }
    for (const row of rows) {
      const coalesced = row.coalesced === true;
      const input = coalesced ? byKey.get(`${str(row.webhook_id)}\0${str(row.coalesce_key)}`) : byId.get(str(row.id));
      if (!input) throw new StorageError(`enqueue returned an unexpected row ${str(row.id)}`);
      results[input.index] = { id: str(row.id), webhookId: input.delivery.webhookId, coalesced };
    }
  }

  private async transaction<T>(fn: (client: PostgresQueryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // Never return a connection stuck in a transaction to the pool.
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** Wraps driver failures in {@link StorageError}; the library's own errors pass through. */
  private async guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof StorageError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new StorageError(`PostgresStorage.${operation} failed: ${message}`, { cause: error });
    }
  }
}
