/**
 * {@link SqliteStorage}: the storage contract on SQLite (better-sqlite3), with per-webhook queues.
 *
 * Several processes may share one database file: every write runs in a `BEGIN IMMEDIATE`
 * transaction, so writers are serialised by SQLite's file lock (with a busy timeout), a delivery
 * is claimed by one worker at a time and every queue counter is shared. better-sqlite3 is
 * synchronous, so a connection the adapter opens (`{ path }`) lives on a worker thread
 * (thread.ts) and its SQL never blocks the host's event loop; a `database` passed in is used on
 * the caller's thread. Claims and completions touch O(log n) index entries per delivery they take
 * or finish, whatever the backlog (queues.ts).
 *
 * @module
 */
import { StorageError } from '../../errors.js';
import { LeasedBodies } from '../leased-bodies.js';
import { storageFailure } from '../sql/errors.js';
import { PLAIN_IDENTIFIER, PRUNED_WITH_FAILURES, PRUNED_WITH_SUCCESSES, STRIP_BODIES, UNSTRIPPED } from '../sql/fragments.js';
import { deliveryConditions, executionConditions, listingSql, pageOf, webhookConditions, type Listing } from '../sql/listing.js';
import { DELIVERY_COLUMNS, toDelivery, toExecution, toHealth, toStatusCounts, toWebhook, type Row } from '../sql/records.js';
// The contract's types, as S.*: an adapter names nearly all of them.
import type * as S from '../types.js';
import { rebucket } from './bucket.js';
import { FALLBACK_AUTOCHECKPOINT_PAGES, SqliteCheckpointer } from './checkpointer.js';
import {
  connectionOf,
  driverPath,
  forgetConnection,
  hostConnection,
  invalidOption,
  isDatabase,
  openDatabase,
  type Connection,
  type SqliteDatabase,
} from './connection.js';
import { bucketOf, claimRows, nextRunAt, queueStats, type QueueRow } from './queues.js';
import {
  CLAIMED_BODY,
  CLAIMED_TOKEN,
  COMPLETION_WIDTH,
  encodeCompletions,
  EXECUTION_SELECT,
  packClaimedRows,
  pageSize,
  paramsInto,
  toClaimed,
  unpackClaimedRows,
  webhookParams,
  type ClaimedRow,
} from './rows.js';
import { checkSchema, migrate } from './schema.js';
import { statements, type Statements } from './statements.js';
import { SqliteThread, THREAD_CALLS, THREAD_CALLS_CLAIM, THREAD_CALLS_COMPLETE, type ThreadCalls } from './thread.js';
import { checkClaim, checkCompletions, checkEnqueue, checkPause, checkStats, queueSettings } from './validate.js';
import { Writes } from './writes.js';

export type { SqliteDatabase, SqliteStatement } from './connection.js';
export { SQLITE_SCHEMA_VERSION } from './schema.js';

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

/** One page of a listing, newest first. */
function listPage<T extends { id: string }>(c: Connection, listing: Listing, limit: number, toItem: (row: Row) => T): S.Page<T> {
  const size = pageSize(limit);
  const params: unknown[] = [];
  const sql = listingSql(listing, size, paramsInto(params));
  return pageOf(c.stmt(sql).all(params) as Row[], size, toItem);
}

const BUSY_TIMEOUT_MS = 5000;

const completeAction = (count: number): string => (count === 1 ? 'complete attempt' : 'complete attempts');

/**
 * The methods a database thread runs as they are called. `enqueueDeliveries` is not here: inside
 * a host transaction it runs on the host's connection, on the host's thread (it forwards the other
 * case itself). Claims and completions are not either: they cross in a compact form of their own
 * (see the constructor).
 */
const THREAD_METHODS = [
  'migrate',
  'insertWebhook',
  'getWebhook',
  'updateWebhook',
  'deleteWebhook',
  'listWebhooks',
  'findWebhooksForEvent',
  'extendLease',
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
  'pauseQueue',
  'getQueueStats',
] as const satisfies ReadonlyArray<keyof SqliteStorage>;

/**
 * {@link S.WebhookStorage} in SQLite via better-sqlite3: durable, shareable by several processes
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
 * holds the write lock, this adapter's own writes on another connection (claims of every webhook
 * included: SQLite has one writer per file) wait up to busy_timeout, on the database thread with
 * `{ path }`, so keep host transactions short. Inside a host transaction the enqueue writes only
 * its delivery rows, the ordering-key row of each key it numbers and an insert-only signal for the
 * queue; the queue row itself is updated by the next claim. When the host's transaction is on the
 * adapter's own Database, the adapter's other writes made meanwhile join that transaction too.
 *
 * `storage.enqueueDeliveries` runs synchronously before its promise settles, so it also works
 * inside a better-sqlite3 `db.transaction(() => …)` callback; `dispatcher.emit` does not (it awaits
 * the webhook lookup first, after the callback has committed): with `emit`, open the transaction
 * with `db.exec('BEGIN IMMEDIATE')` and `COMMIT` after the emit resolves.
 */
export class SqliteStorage implements S.WebhookStorage {
  /** The connection, on this thread; null when it lives on the database thread (`#thread`). */
  readonly #db: SqliteDatabase | null;
  /** The database thread running this adapter's calls (`{ path }` with `worker` on), else null. */
  readonly #thread: SqliteThread | null = null;
  /** The WAL checkpoint thread of the file this adapter opened on this thread, if any. */
  #checkpointer: SqliteCheckpointer | null = null;
  readonly #ownsDatabase: boolean;
  readonly #prefix: string;
  readonly #sql: Statements;
  readonly #writes: Writes;
  #closed = false;
  /** Bodies this adapter leased: an execution sending the same body stores NULL (see migration 2). */
  readonly #leasedBodies = new LeasedBodies();

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
    if (typeof prefix !== 'string' || !PLAIN_IDENTIFIER.test(prefix)) {
      throw invalidOption('tablePrefix', `must match ${String(PLAIN_IDENTIFIER)}, got ${JSON.stringify(prefix)}`);
    }
    if ((options.database === undefined) === (options.path === undefined)) {
      throw invalidOption(options.database === undefined ? 'path' : 'database', 'pass exactly one of { database } (a better-sqlite3 Database) or { path }');
    }
    this.#prefix = prefix;
    this.#sql = statements(prefix);
    this.#writes = new Writes(prefix, this.#sql);
    if (options.database !== undefined) {
      if (!isDatabase(options.database)) throw invalidOption('database', 'must be a better-sqlite3 Database');
      // A connection the host opened stays on the host's thread with the host's settings.
      if (options.worker !== undefined || options.checkpoints !== undefined) {
        throw invalidOption(options.worker !== undefined ? 'worker' : 'checkpoints', 'goes with { path }, not with a { database } you pass in');
      }
      if (!options.database.open) throw invalidOption('database', 'is closed');
      this.#db = options.database;
      this.#ownsDatabase = false;
    } else {
      if (typeof options.path !== 'string' || options.path === '') throw invalidOption('path', 'must be a non-empty string');
      if (options.worker !== undefined && typeof options.worker !== 'boolean') throw invalidOption('worker', 'must be a boolean');
      if (options.checkpoints !== undefined && options.checkpoints !== 'background' && options.checkpoints !== 'auto') {
        throw invalidOption('checkpoints', "must be 'background' or 'auto'");
      }
      this.#ownsDatabase = true;
      if (options.worker !== false) {
        driverPath();
        this.#db = null;
        const thread = new SqliteThread({
          moduleUrl: import.meta.url,
          path: options.path,
          tablePrefix: options.tablePrefix,
          checkpoints: options.checkpoints,
        });
        this.#thread = thread;
        // Every call but an outbox enqueue (which must run on the host's connection, here) goes
        // to the database thread: own properties shadow the in-thread methods below.
        const forwarded: Partial<Record<keyof SqliteStorage, (...args: never[]) => Promise<unknown>>> = {
          // Rows come back as arrays and become records here; the leased bodies are remembered on
          // this side, so a completion sends an execution's body only when it differs.
          claimDueDeliveries: (request: S.ClaimRequest) => this.#claimOnThread(thread, request),
          completeAttempts: (inputs: readonly S.CompleteAttempt[]) => this.#completeOnThread(thread, inputs),
          completeAttempt: async (input: S.CompleteAttempt) => (await this.completeAttempts([input]))[0]!,
          releaseDelivery: (deliveryId: string, leaseToken: string, runAt?: number) => {
            this.#leasedBodies.forget(leaseToken);
            return thread.call('releaseDelivery', runAt === undefined ? [deliveryId, leaseToken] : [deliveryId, leaseToken, runAt]);
          },
          cancelDelivery: (deliveryId: string, options?: { leaseToken?: string }) => {
            if (options?.leaseToken !== undefined) this.#leasedBodies.forget(options.leaseToken);
            return thread.call('cancelDelivery', options === undefined ? [deliveryId] : [deliveryId, options]);
          },
        };
        for (const method of THREAD_METHODS) forwarded[method] = (...args: unknown[]) => thread.call(method, args);
        for (const [method, value] of Object.entries(forwarded)) {
          // Writable and configurable like a method: spies and wrappers (vi.spyOn, proxies) keep working.
          Object.defineProperty(this, method, { value, writable: true, configurable: true });
        }
        return;
      }
      this.#db = openDatabase(options.path);
    }
    const db = this.#db;
    // What a database thread runs for the claims and completions its host encodes (worker.ts).
    const threadCalls: ThreadCalls = {
      claim: (request) => packClaimedRows(this.#claimRows(request)),
      complete: (encoded) => this.#complete(encoded),
    };
    Object.defineProperty(this, THREAD_CALLS, { value: threadCalls });
    try {
      this.#configure(db);
      if (options.path !== undefined && options.checkpoints !== 'auto' && !db.memory) {
        // The checkpoint thread does the copying and fsyncs; this connection only if it falls far behind.
        db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
        this.#checkpointer = new SqliteCheckpointer(options.path, driverPath());
      }
    } catch (error) {
      if (this.#ownsDatabase) db.close();
      throw new StorageError(`SqliteStorage: cannot configure the database: ${(error as Error).message}`, { cause: error });
    }
  }

  #configure(db: SqliteDatabase): void {
    const busy = Number(db.pragma('busy_timeout', { simple: true }));
    if (this.#ownsDatabase || !(busy >= BUSY_TIMEOUT_MS)) db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // WAL lets readers run while a writer commits. It cannot be switched on inside a
    // transaction, and does not apply to in-memory databases.
    if (!db.memory && !db.inTransaction && String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') {
      db.pragma('journal_mode = WAL');
    }
    if (this.#ownsDatabase) {
      // With WAL: no fsync per commit; an app crash loses nothing, a power cut at most the last commits.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
    }
  }

  /**
   * Creates or upgrades the tables: applies every migration not yet recorded in
   * `<prefix>migrations`, all in one `BEGIN IMMEDIATE` transaction, so concurrent callers in
   * several processes apply each migration once. Idempotent. An upgrade keeps every queued
   * delivery (pending, scheduled, in flight) in its webhook's new queue.
   *
   * @throws {SchemaMismatchError} when the database is newer than this build.
   */
  async migrate(): Promise<void> {
    this.#run('migrate', (c) => migrate(c, this.#prefix), false);
  }

  /** @throws {WebhookValidationError} naming the field when `concurrency`, `rateLimit`, … are invalid. */
  async insertWebhook(webhook: S.WebhookRecord): Promise<void> {
    const settings = queueSettings(webhook);
    this.#run('insert webhook', (c) => {
      c.transaction(() => {
        if (c.stmt(this.#sql.webhookExists).get({ id: webhook.id })) {
          throw new StorageError(`webhook ${webhook.id} already exists`);
        }
        c.stmt(this.#sql.insertWebhook).run(webhookParams(webhook));
        this.#insertTriggers(c, webhook);
        const rate = settings.rateLimit;
        c.stmt(this.#sql.insertQueue).run({
          id: webhook.id,
          priority: settings.priority,
          cap: settings.cap,
          perSecond: rate?.perSecond ?? null,
          burst: rate?.burst ?? null,
        });
      });
    });
  }

  async getWebhook(id: string): Promise<S.WebhookRecord | null> {
    return this.#run('get webhook', (c) => {
      const row = c.stmt(this.#sql.getWebhook).get({ id }) as Row | undefined;
      return row ? toWebhook(row) : null;
    });
  }

  /** The queue takes the new priority, cap and rate limit (keeping its tokens) from the next claim. */
  async updateWebhook(webhook: S.WebhookRecord): Promise<boolean> {
    const settings = queueSettings(webhook);
    return this.#run('update webhook', (c) =>
      c.transaction(() => {
        // The health columns are deliberately not in this UPDATE: they survive edits.
        if (c.stmt(this.#sql.updateWebhook).run(webhookParams(webhook)).changes === 0) return false;
        c.stmt(this.#sql.deleteTriggers).run({ id: webhook.id });
        this.#insertTriggers(c, webhook);
        // A webhook an older release inserted has no queue row yet.
        c.stmt(this.#sql.makeQueue).run(webhook.id);
        const q = c.stmt(this.#sql.getQueue).get({ id: webhook.id }) as QueueRow;
        const old = bucketOf(q);
        const rate = settings.rateLimit;
        const same = old.perSecond === (rate?.perSecond ?? null) && old.burst === (rate?.burst ?? null);
        const bucket = same ? old : rebucket(old, rate);
        c.stmt(this.#sql.updateQueueSettings).run({
          id: webhook.id,
          priority: settings.priority,
          cap: settings.cap,
          perSecond: bucket.perSecond,
          burst: bucket.burst,
          fullAt: bucket.fullAt,
        });
        return true;
      }),
    );
  }

  /** Cancels its waiting deliveries (held ones too) and drops its queue and ordering keys. */
  async deleteWebhook(id: string): Promise<boolean> {
    return this.#run('delete webhook', (c) =>
      c.transaction(() => {
        if (c.stmt(this.#sql.deleteWebhook).run({ id }).changes === 0) return false;
        c.stmt(this.#sql.deleteTriggers).run({ id });
        c.stmt(this.#sql.cancelForDeletedWebhook).run({ id, now: Date.now() });
        c.stmt(this.#sql.deleteQueue).run({ id });
        c.stmt(this.#sql.deleteKeys).run({ id });
        return true;
      }),
    );
  }

  async listWebhooks(query: S.WebhookQuery): Promise<S.Page<S.WebhookRecord>> {
    return this.#run('list webhooks', (c) =>
      listPage(c, { select: 'record', from: `${this.#prefix}webhooks`, conditions: webhookConditions(query) }, query.limit, toWebhook),
    );
  }

  async findWebhooksForEvent(match: S.EventMatch): Promise<S.WebhookRecord[]> {
    return this.#run('find webhooks for event', (c) => {
      const rows = c.stmt(this.#sql.findWebhooks).all({ entity: match.entity, event: match.event, tenantId: match.tenantId }) as Row[];
      return rows.map(toWebhook);
    });
  }

  /** Throws unless `transaction` is an open better-sqlite3 Database inside a transaction. */
  checkTransaction(transaction: unknown): void {
    hostConnection(transaction);
  }

  /**
   * Inserts the deliveries in one transaction (or one savepoint of the host's transaction, see
   * `options.transaction`), numbering ordered ones and merging coalescable ones.
   *
   * @throws {WebhookValidationError} naming `transaction` when `options.transaction` is not a
   *   better-sqlite3 Database inside a transaction, or the field of a delivery that cannot be
   *   enqueued (a status other than waiting or final, …).
   */
  async enqueueDeliveries(deliveries: readonly S.DeliveryRecord[], options?: S.WriteOptions): Promise<S.EnqueueResult> {
    const host = options?.transaction === undefined ? null : hostConnection(options.transaction);
    const placeholder = options?.sequencePlaceholder;
    if (host === null && this.#thread) {
      return this.#thread.call('enqueueDeliveries', [deliveries, placeholder === undefined ? {} : { sequencePlaceholder: placeholder }]);
    }
    checkEnqueue(deliveries, options);
    return this.#run('enqueue deliveries', (c) => this.#writes.enqueue(c, deliveries, placeholder, host !== null), true, host);
  }

  async claimDueDeliveries(request: S.ClaimRequest): Promise<S.ClaimedDelivery[]> {
    checkClaim(request);
    if (pageSize(request.limit) === 0) return [];
    return this.#claimed(request, this.#claimRows(request));
  }

  /** The claim on the database thread: the rows cross as one packed array. */
  async #claimOnThread(thread: SqliteThread, request: S.ClaimRequest): Promise<S.ClaimedDelivery[]> {
    checkClaim(request);
    if (pageSize(request.limit) === 0) return [];
    const { now, limit, leaseMs, defaultConcurrency } = request;
    const packed = await thread.call<unknown[]>(THREAD_CALLS_CLAIM, [{ now, limit, leaseMs, defaultConcurrency }]);
    return this.#claimed(request, unpackClaimedRows(packed));
  }

  /** Claimed rows in claim order, as a validated request with a positive limit takes them. */
  #claimRows(request: S.ClaimRequest): ClaimedRow[] {
    return this.#run('claim deliveries', (c) => c.transaction(() => claimRows(c, this.#sql, request, pageSize(request.limit))));
  }

  /** Records of claimed rows, their bodies remembered for the completions. */
  #claimed(request: S.ClaimRequest, rows: ClaimedRow[]): S.ClaimedDelivery[] {
    const leaseExpiresAt = request.now + request.leaseMs;
    return rows.map((row) => {
      this.#leasedBodies.remember(row[CLAIMED_TOKEN], row[CLAIMED_BODY]);
      return toClaimed(row, leaseExpiresAt);
    });
  }

  async completeAttempt(input: S.CompleteAttempt): Promise<boolean> {
    return (await this.completeAttempts([input]))[0]!;
  }

  /** All in one transaction (one commit), each item fenced on its own. */
  async completeAttempts(inputs: readonly S.CompleteAttempt[]): Promise<boolean[]> {
    checkCompletions(inputs);
    if (inputs.length === 0) return [];
    return this.#complete(this.#encode(inputs));
  }

  /** Completions on the database thread: they cross encoded (see `encodeCompletions`). */
  async #completeOnThread(thread: SqliteThread, inputs: readonly S.CompleteAttempt[]): Promise<boolean[]> {
    checkCompletions(inputs);
    if (inputs.length === 0) return [];
    return thread.call<boolean[]>(THREAD_CALLS_COMPLETE, [this.#encode(inputs)]);
  }

  #encode(inputs: readonly S.CompleteAttempt[]): unknown[] {
    try {
      return encodeCompletions(inputs, this.#leasedBodies);
    } catch (error) {
      throw storageFailure(`SqliteStorage: ${completeAction(inputs.length)}`, error);
    }
  }

  #complete(encoded: unknown[]): boolean[] {
    return this.#run(completeAction(encoded.length / COMPLETION_WIDTH), (c) => this.#writes.complete(c, encoded));
  }

  async releaseDelivery(deliveryId: string, leaseToken: string, runAt?: number): Promise<boolean> {
    return this.#run('release delivery', (c) => {
      this.#leasedBodies.forget(leaseToken);
      return this.#writes.release(c, deliveryId, leaseToken, runAt ?? null, Date.now());
    });
  }

  async extendLease(deliveryId: string, leaseToken: string, leaseExpiresAt: number): Promise<boolean> {
    return this.#run('extend lease', (c) => c.stmt(this.#sql.extendLease).run({ id: deliveryId, leaseToken, leaseExpiresAt }).changes > 0);
  }

  async cancelDelivery(deliveryId: string, options: { leaseToken?: string; reason?: string; now?: number } = {}): Promise<boolean> {
    return this.#run('cancel delivery', (c) => {
      if (options.leaseToken !== undefined) this.#leasedBodies.forget(options.leaseToken);
      return this.#writes.cancel(c, deliveryId, options.leaseToken ?? null, options.reason ?? null, options.now ?? Date.now());
    });
  }

  async getDelivery(id: string): Promise<S.DeliveryRecord | null> {
    return this.#run('get delivery', (c) => {
      const row = c.stmt(this.#sql.getDelivery).get({ id }) as Row | undefined;
      return row ? toDelivery(row) : null;
    });
  }

  async listDeliveries(query: S.DeliveryQuery): Promise<S.Page<S.DeliveryRecord>> {
    return this.#run('list deliveries', (c) =>
      listPage(c, { select: DELIVERY_COLUMNS, from: `${this.#prefix}deliveries`, conditions: deliveryConditions(query) }, query.limit, toDelivery),
    );
  }

  async nextRunAt(): Promise<number | null> {
    return this.#run('next run time', (c) => nextRunAt(c, this.#sql));
  }

  /** Deliveries by status, for metrics (a scan of the status column). */
  async countDeliveries(): Promise<Partial<Record<S.DeliveryStatus, number>>> {
    return this.#run('count deliveries', (c) => {
      return toStatusCounts(c.stmt(`SELECT status, count(*) AS n FROM ${this.#prefix}deliveries GROUP BY status`).all() as Row[]);
    });
  }

  async requeueDeliveries(request: S.RequeueRequest): Promise<string[]> {
    return this.#run('requeue deliveries', (c) => this.#writes.requeue(c, request));
  }

  async listExecutions(query: S.ExecutionQuery): Promise<S.Page<S.ExecutionRecord>> {
    const p = this.#prefix;
    // A NULL request_body is the delivery's body: one primary-key lookup per such row.
    const from = `${p}executions e LEFT JOIN ${p}deliveries d ON e.request_body IS NULL AND d.id = e.delivery_id`;
    return this.#run('list executions', (c) =>
      listPage(c, { select: EXECUTION_SELECT, from, conditions: executionConditions(query), alias: 'e.' }, query.limit, toExecution),
    );
  }

  async recordWebhookResult(webhookId: string, success: boolean, at: number): Promise<S.WebhookHealth | null> {
    return this.#run('record webhook result', (c) => {
      // One UPDATE … RETURNING: the increment is atomic across connections.
      const row = c.stmt(success ? this.#sql.recordSuccess : this.#sql.recordFailure).get({ id: webhookId, at }) as Row | undefined;
      return row ? toHealth(row) : null;
    });
  }

  async getWebhookHealth(webhookId: string): Promise<S.WebhookHealth | null> {
    return this.#run('get webhook health', (c) => {
      const row = c.stmt(this.#sql.getHealth).get({ id: webhookId }) as Row | undefined;
      return row ? toHealth(row) : null;
    });
  }

  async resetWebhookHealth(webhookId: string): Promise<void> {
    this.#run('reset webhook health', (c) => {
      c.stmt(this.#sql.resetHealth).run({ id: webhookId });
    });
  }

  async prune(request: S.PruneRequest): Promise<S.PruneResult> {
    return this.#run('prune', (c) => {
      const { stripSuccessfulBodiesBefore: strip, deleteSucceededBefore: okBefore, deleteFailedBefore: failBefore } = request;
      const p = this.#prefix;
      return c.transaction(() => {
        const result: S.PruneResult = { executionsDeleted: 0, executionsStripped: 0, deliveriesDeleted: 0 };
        if (okBefore !== undefined) {
          result.executionsDeleted += c.stmt(`DELETE FROM ${p}executions WHERE success = 1 AND started_at < @before`).run({ before: okBefore }).changes;
        }
        if (failBefore !== undefined) {
          result.executionsDeleted += c.stmt(`DELETE FROM ${p}executions WHERE success = 0 AND started_at < @before`).run({ before: failBefore }).changes;
        }
        if (strip !== undefined) {
          result.executionsStripped = c
            .stmt(`UPDATE ${p}executions SET ${STRIP_BODIES} WHERE success = 1 AND started_at < @before AND ${UNSTRIPPED}`)
            .run({ before: strip }).changes;
        }
        if (okBefore !== undefined) {
          result.deliveriesDeleted += c
            .stmt(`DELETE FROM ${p}deliveries WHERE ${PRUNED_WITH_SUCCESSES} AND updated_at < @before`)
            .run({ before: okBefore }).changes;
        }
        if (failBefore !== undefined) {
          result.deliveriesDeleted += c
            .stmt(`DELETE FROM ${p}deliveries WHERE ${PRUNED_WITH_FAILURES} AND updated_at < @before`)
            .run({ before: failBefore }).changes;
        }
        return result;
      });
    });
  }

  /**
   * Pauses the webhook's queue until `until` (null lifts the pause); a webhook that does not exist
   * is left alone.
   */
  async pauseQueue(webhookId: string, until: number | null): Promise<void> {
    checkPause(webhookId, until);
    this.#run('pause queue', (c) => {
      c.transaction(() => {
        if (until === null) c.stmt(this.#sql.unpause).run({ id: webhookId });
        else c.stmt(this.#sql.pause).run({ id: webhookId, until });
      });
    });
  }

  async getQueueStats(webhookId: string, now: number): Promise<S.QueueStats | null> {
    checkStats(webhookId, now);
    return this.#run('get queue stats', (c) => queueStats(c, this.#sql, webhookId, now));
  }

  /**
   * Closes the connection when the adapter opened it (`{ path }`); a Database passed in stays
   * open. Afterwards every method rejects. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#thread) await this.#thread.close();
    await this.#checkpointer?.close();
    if (this.#ownsDatabase && this.#db?.open) {
      forgetConnection(this.#db);
      this.#db.close();
    }
  }

  #insertTriggers(c: Connection, webhook: S.WebhookRecord): void {
    for (const t of webhook.triggers) {
      c.stmt(this.#sql.insertTrigger).run({ entity: t.entity, event: t.event, id: webhook.id });
    }
  }

  /**
   * Runs driver work on the adapter's connection (or `host`'s), after checking once that the
   * database is at this build's schema version, turning driver failures into
   * {@link StorageError} with the cause attached.
   */
  #run<T>(action: string, fn: (c: Connection) => T, checked = true, host: Connection | null = null): T {
    try {
      const c = host ?? this.#connection();
      if (checked) checkSchema(c, this.#prefix);
      return fn(c);
    } catch (error) {
      throw storageFailure(`SqliteStorage: ${action}`, error);
    }
  }

  #connection(): Connection {
    if (this.#closed) throw new StorageError('SqliteStorage is closed');
    // Only an outbox enqueue runs here in thread mode, and it uses the host's connection.
    if (this.#db === null) throw new StorageError('SqliteStorage: the connection is on the database thread');
    return connectionOf(this.#db);
  }
}
