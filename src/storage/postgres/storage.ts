/**
 * {@link PostgresStorage}: the {@link WebhookStorage} contract on PostgreSQL, one queue per webhook.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { StorageError } from '../../errors.js';
import { storageFailure } from '../sql/errors.js';
import { LeasedBodies } from '../leased-bodies.js';
import { PLAIN_IDENTIFIER, RESET_HEALTH, UNSTARTED_STATUSES, WEBHOOK_DELETED, statusIn } from '../sql/fragments.js';
import { claimOrder } from '../sql/order.js';
import { DELIVERY_COLUMNS, num, numOrNull, str, toDelivery, toQueueStats, toStatusCounts, toWebhook, type Row } from '../sql/records.js';
// The contract's types, as S.*: an adapter names nearly all of them.
import type * as S from '../types.js';
import { completeFunctionName, executionSelect, finishSql, requestBodyParam, type CompleteColumn } from './completion.js';
import {
  MAX_ROWS_PER_STATEMENT,
  asError,
  chunks,
  invalid,
  isQueryable,
  type PostgresPool,
  type PostgresQueryResult,
  type PostgresQueryable,
  type PreparedQueryable,
} from './driver.js';
import { enqueue, needsTransaction, type EnqueueContext } from './enqueue.js';
import { Listening } from './listen.js';
import type { PostgresStorageOptions } from './driver.js';
import { pruneIn, requeueIn } from './maintenance.js';
import { findWebhooks, listDeliveries, listExecutions, listWebhooks, readHealth, recordResult } from './reads.js';
import { LeaseSweeps } from './lease-sweeps.js';
import { claimFunctionName, nextRunAtSql, queueStatsSql } from './queue-sql.js';
import { SCHEMA_VERSION, databaseVersion, mismatch, names, runMigrations, type Names } from './schema.js';
import { checkClaim, checkCompletion, checkTime, queueSettings } from './validate.js';

/** Longest prefix: Postgres truncates names over 63 bytes, and the longest suffix is 31. */
const MAX_PREFIX_LENGTH = 32;

/**
 * {@link S.WebhookStorage} on PostgreSQL (13+), through a `pg.Pool` you provide.
 *
 * - Tables live in `schema` with names starting `tablePrefix`; run {@link migrate} at startup
 *   (safe from many processes at once). A process whose code expects another schema version
 *   refuses its first call with a `SchemaMismatchError`.
 * - One queue row per webhook holds its cap, in-flight count, token bucket, pause and claim state;
 *   claims take ready queues in priority and turn order and read each one's due rows through its
 *   own index, so their cost does not grow with any backlog. Completions never lock it: they leave
 *   insert-only signals that the next claim counts.
 * - `enqueueDeliveries(…, { transaction: client })` writes through your open transaction (a `pg`
 *   client after `BEGIN`) and locks nothing but the ordering key rows of what it enqueues.
 * - {@link subscribe} holds one pooled connection per subscription for `LISTEN`, and listens
 *   again after the connection is lost.
 *
 * Driver failures are thrown as {@link StorageError} with the `pg` error as `cause`.
 */
export class PostgresStorage implements S.WebhookStorage {
  readonly #pool: PostgresPool;
  readonly #schema: string;
  readonly #onError: ((error: StorageError) => void) | undefined;
  readonly #n: Names;
  /** NOTIFY channel shared by every adapter on the same tables. */
  readonly #channel: string;
  readonly #notifyIntervalMs: number;
  readonly #executionSelect: string;
  /** Bodies this adapter leased: a completion sends NULL for the same body (stored once). */
  readonly #leasedBodies = new LeasedBodies();
  readonly #prepared: boolean;
  /** Prepared statement names by text (a hash: the text names schema, prefix and row count). */
  readonly #statementNames = new Map<string, string>();
  readonly #statementTexts = new Map<string, string>();
  readonly #enqueueContext: EnqueueContext;
  #lastNotifyAt = -Infinity;
  readonly #leaseSweeps = new LeaseSweeps();
  readonly #subscriptions = new Set<Listening>();
  #schemaCheck: Promise<void> | null = null;
  #schemaChecked = false;
  #closed = false;

  constructor(options: PostgresStorageOptions) {
    if (typeof options !== 'object' || options === null) throw invalid('', 'options must be an object with a `pool`');
    const { pool, schema = 'public', tablePrefix = 'webhook_', onError, notifyIntervalMs = 50, preparedStatements = true } = options;
    if (typeof preparedStatements !== 'boolean') throw invalid('preparedStatements', 'must be a boolean');
    if (typeof notifyIntervalMs !== 'number' || !Number.isFinite(notifyIntervalMs) || notifyIntervalMs < 0) {
      throw invalid('notifyIntervalMs', 'must be a number >= 0');
    }
    if (!isQueryable(pool) || typeof (pool as PostgresPool).connect !== 'function') {
      throw invalid('pool', 'must be a pg.Pool (with query() and connect())');
    }
    if (typeof schema !== 'string' || !PLAIN_IDENTIFIER.test(schema) || schema.length > 63) {
      throw invalid('schema', `must match ${PLAIN_IDENTIFIER} and be at most 63 characters, got ${JSON.stringify(schema)}`);
    }
    if (typeof tablePrefix !== 'string' || (tablePrefix !== '' && !PLAIN_IDENTIFIER.test(tablePrefix)) || tablePrefix.length > MAX_PREFIX_LENGTH) {
      throw invalid('tablePrefix', `must be empty or match ${PLAIN_IDENTIFIER}, at most ${MAX_PREFIX_LENGTH} characters, got ${JSON.stringify(tablePrefix)}`);
    }
    if (onError !== undefined && typeof onError !== 'function') throw invalid('onError', 'must be a function');
    this.#prepared = preparedStatements;
    this.#notifyIntervalMs = notifyIntervalMs;
    this.#pool = pool;
    this.#schema = schema;
    this.#onError = onError;
    this.#n = names(schema, tablePrefix);
    this.#executionSelect = executionSelect(this.#n);
    // Channel names are identifiers (63 bytes at most); hash long ones so LISTEN and pg_notify agree.
    const channel = `${schema}.${tablePrefix}deliveries`;
    this.#channel = channel.length <= 63 ? channel : `${channel.slice(0, 46)}_${createHash('sha256').update(channel).digest('hex').slice(0, 16)}`;
    this.#enqueueContext = {
      n: this.#n,
      channel: this.#channel,
      statementText: (shape, build) => this.#statementText(shape, build),
      run: (q, text, params, prepared) => (prepared ? this.#hotQuery(q, text, params) : q.query(text, params)),
    };
  }

  /**
   * Creates the schema (when missing) and applies pending migrations, in one transaction under an
   * advisory lock. Throws a `SchemaMismatchError` when the database is newer than this code.
   */
  async migrate(): Promise<void> {
    await this.#guard('migrate', () => this.#transaction((client) => runMigrations(client, this.#n, this.#schema)), false);
    this.#schemaChecked = true;
  }

  // ---------------------------------------------------------------- webhooks

  /** Inserts a webhook, its triggers and its queue. Throws a {@link StorageError} when the id exists. */
  async insertWebhook(webhook: S.WebhookRecord): Promise<void> {
    const settings = queueSettings(webhook);
    await this.#guard('insertWebhook', async () => {
      try {
        await this.#transaction(async (client) => {
          await client.query(
            `INSERT INTO ${this.#n.webhooks} (id, tenant_id, enabled, created_at, record) VALUES ($1, $2, $3, $4, $5::jsonb)`,
            [webhook.id, webhook.tenantId, webhook.enabled, webhook.createdAt, JSON.stringify(webhook)],
          );
          await this.#insertTriggers(client, webhook);
          await client.query(
            `INSERT INTO ${this.#n.queues} (webhook_id, priority, cap, rate, burst, tokens)
             VALUES ($1, $2::int, $3::int, $4::numeric, $5::numeric, COALESCE($5::numeric, 0))
             ON CONFLICT (webhook_id) DO UPDATE SET priority = $2, cap = $3, rate = $4, burst = $5, tokens = COALESCE($5, 0)`,
            [webhook.id, ...settings],
          );
        });
      } catch (error) {
        if ((error as { code?: unknown }).code === '23505') throw new StorageError(`webhook ${webhook.id} already exists`, { cause: error });
        throw error;
      }
    });
  }

  async getWebhook(id: string): Promise<S.WebhookRecord | null> {
    return this.#guard('getWebhook', async () => {
      const result = await this.#pool.query(`SELECT record FROM ${this.#n.webhooks} WHERE id = $1`, [id]);
      const row = result.rows[0] as Row | undefined;
      return row ? toWebhook(row) : null;
    });
  }

  /**
   * Replaces the record and its triggers (health columns are left alone) and the queue's settings:
   * tokens are kept up to the new burst (a new limit starts full), and the queue is looked at by
   * the next claim.
   */
  async updateWebhook(webhook: S.WebhookRecord): Promise<boolean> {
    const settings = queueSettings(webhook);
    return this.#guard('updateWebhook', () =>
      this.#transaction(async (client) => {
        const updated = await client.query(
          `UPDATE ${this.#n.webhooks} SET tenant_id = $2, enabled = $3, created_at = $4, record = $5::jsonb WHERE id = $1`,
          [webhook.id, webhook.tenantId, webhook.enabled, webhook.createdAt, JSON.stringify(webhook)],
        );
        if (updated.rowCount !== 1) return false;
        await client.query(`DELETE FROM ${this.#n.triggers} WHERE webhook_id = $1`, [webhook.id]);
        await this.#insertTriggers(client, webhook);
        await client.query(
          `INSERT INTO ${this.#n.queues} AS q (webhook_id, priority, cap, rate, burst, tokens)
           VALUES ($1, $2::int, $3::int, $4::numeric, $5::numeric, COALESCE($5::numeric, 0))
           ON CONFLICT (webhook_id) DO UPDATE SET priority = $2, cap = $3, rate = $4, burst = $5,
             tokens = CASE WHEN $4::numeric IS NULL THEN q.tokens WHEN q.rate IS NULL THEN $5 ELSE LEAST(q.tokens, $5) END,
             ready_at = COALESCE(q.ready_at, q.clock), ready_turn = COALESCE(q.ready_turn, nextval('${this.#n.turns}')),
             wake_at = NULL, full_cap = NULL`,
          [webhook.id, ...settings],
        );
        return true;
      }),
    );
  }

  /**
   * Deletes the webhook (triggers cascade), cancels its waiting deliveries, held ones included, and
   * forgets its ordering keys. Its queue row stays for the deliveries still in flight.
   */
  async deleteWebhook(id: string): Promise<boolean> {
    return this.#guard('deleteWebhook', async () => {
      const result = await this.#pool.query(
        `WITH deleted AS (DELETE FROM ${this.#n.webhooks} WHERE id = $1 RETURNING id),
         cancelled AS (
           UPDATE ${this.#n.deliveries} SET status = 'cancelled', last_error = '${WEBHOOK_DELETED}', updated_at = $2,
             accepts_merges = false
           WHERE webhook_id IN (SELECT id FROM deleted) AND ${statusIn(UNSTARTED_STATUSES)}
         ), forgotten AS (
           DELETE FROM ${this.#n.keys} WHERE webhook_id IN (SELECT id FROM deleted)
         )
         SELECT count(*)::int AS n FROM deleted`,
        [id, Date.now()],
      );
      return num((result.rows[0] as Row | undefined)?.n) > 0;
    });
  }

  /** Lists webhooks newest first (ids are time-ordered). */
  async listWebhooks(query: S.WebhookQuery): Promise<S.Page<S.WebhookRecord>> {
    return this.#guard('listWebhooks', () => listWebhooks(this.#pool, this.#n, query));
  }

  /** Enabled webhooks whose triggers match (with `*` wildcards), via the (entity, event) index. */
  async findWebhooksForEvent(match: S.EventMatch): Promise<S.WebhookRecord[]> {
    return this.#guard('findWebhooksForEvent', () => findWebhooks(this.#pool, this.#n, match));
  }

  // ---------------------------------------------------------------- delivery queue

  /**
   * Throws unless `transaction` looks like a pg client (has `query()`). Whether BEGIN was called
   * shows only at the write, which then fails with a StorageError.
   */
  checkTransaction(transaction: unknown): asserts transaction is PostgresQueryable {
    if (!isQueryable(transaction)) throw invalid('transaction', 'must be a pg client (with query()) on which you called BEGIN');
  }

  /**
   * Inserts deliveries (all or none), merging unique queue items, and numbers ordered ones; then
   * notifies subscribers, which Postgres delivers only when the transaction commits. With
   * `options.transaction` it writes through your transaction, under a savepoint.
   */
  async enqueueDeliveries(deliveries: readonly S.DeliveryRecord[], options?: S.WriteOptions): Promise<S.EnqueueResult> {
    if (!Array.isArray(deliveries)) throw invalid('deliveries', 'must be an array of delivery records');
    const host = options?.transaction;
    if (host !== undefined) this.checkTransaction(host);
    const placeholder = options?.sequencePlaceholder ?? null;
    if (placeholder !== null && (typeof placeholder !== 'string' || placeholder === '')) {
      throw invalid('sequencePlaceholder', 'must be a non-empty string');
    }
    if (deliveries.length === 0) return { deliveries: [] };
    return this.#guard('enqueueDeliveries', async () => {
      if (host !== undefined) {
        // A savepoint keeps a failed enqueue from aborting the host's whole transaction.
        try {
          await host.query('SAVEPOINT webhook_dispatcher_enqueue');
        } catch (error) {
          if ((error as { code?: unknown }).code === '25P01') {
            throw new StorageError('options.transaction is not inside a transaction: call BEGIN on that client first', { cause: error });
          }
          throw error;
        }
        try {
          // The host's client is not the adapter's: plain text statements only.
          const results = await enqueue(this.#enqueueContext, host, deliveries, { notify: true, prepared: false, placeholder });
          await host.query('RELEASE SAVEPOINT webhook_dispatcher_enqueue');
          return { deliveries: results };
        } catch (error) {
          try {
            await host.query('ROLLBACK TO SAVEPOINT webhook_dispatcher_enqueue');
            await host.query('RELEASE SAVEPOINT webhook_dispatcher_enqueue');
          } catch {
            // The host's transaction is aborted then; its COMMIT will report it. The first error matters.
          }
          throw error;
        }
      }
      const now = performance.now();
      const notify = now - this.#lastNotifyAt >= this.#notifyIntervalMs;
      if (notify) this.#lastNotifyAt = now;
      const write = (q: PostgresQueryable) => enqueue(this.#enqueueContext, q, deliveries, { notify, prepared: this.#prepared, placeholder });
      // One statement is its own transaction: insert, signal and notify commit together.
      const results = needsTransaction(deliveries) ? await this.#transaction(write) : await write(this.#pool);
      return { deliveries: results };
    });
  }

  /**
   * One call of the claim function: it locks the queues it serves, hands on deferred keys,
   * promotes due signals, expired leases (when this claim sweeps, see {@link LeaseSweeps}) and
   * wake-ups, and claims (see `claimFunctionSql`).
   */
  async claimDueDeliveries(request: S.ClaimRequest): Promise<S.ClaimedDelivery[]> {
    checkClaim(request);
    return this.#guard('claimDueDeliveries', async () => {
      if (request.limit === 0) return [];
      const sweep = this.#leaseSweeps.take(request.now, request.leaseMs);
      // One round trip, one transaction.
      let result;
      try {
        result = await this.#hotQuery(this.#pool, this.#statementText('claim', () => `SELECT c FROM ${claimFunctionName(this.#n)}($1, $2, $3, $4, $5) c`), [
          request.now,
          request.limit,
          request.leaseMs,
          request.defaultConcurrency,
          sweep,
        ]);
      } catch (error) {
        if (sweep) this.#leaseSweeps.missed();
        throw error;
      }
      const rows = (result.rows as Array<{ c: Row }>).map((r) => r.c);
      // RETURNING has no order: tests first, then queue by queue, each in runAt then id order.
      rows.sort((a, b) => num(a.rank) - num(b.rank) || claimOrder(num(a.run_at), str(a.id), num(b.run_at), str(b.id)));
      return rows.map((row): S.ClaimedDelivery => {
        const claimed = { ...toDelivery(row), leaseToken: str(row.lease_token), leaseExpiresAt: num(row.lease_expires_at) };
        this.#leasedBodies.remember(claimed.leaseToken, claimed.body);
        return claimed;
      });
    });
  }

  /** One completion: see {@link completeAttempts}. */
  async completeAttempt(input: S.CompleteAttempt): Promise<boolean> {
    const [recorded] = await this.completeAttempts([input]);
    return recorded === true;
  }

  /**
   * Completions in one statement (one round trip, one commit): fenced updates, execution inserts,
   * freed places and re-timed queues (locked in id order), keys handed on. A batch naming one
   * delivery twice is split into rounds inside one transaction (one statement cannot update a row twice).
   */
  async completeAttempts(inputs: readonly S.CompleteAttempt[]): Promise<boolean[]> {
    if (!Array.isArray(inputs)) throw invalid('inputs', 'must be an array of completions');
    inputs.forEach(checkCompletion);
    if (inputs.length === 0) return [];
    return this.#guard('completeAttempts', async () => {
      const rounds: S.CompleteAttempt[][] = [];
      const seen = new Map<string, number>();
      for (const input of inputs) {
        const round = seen.get(input.deliveryId) ?? 0;
        seen.set(input.deliveryId, round + 1);
        (rounds[round] ??= []).push(input);
      }
      const statements = rounds.flatMap((round) => chunks(round, MAX_ROWS_PER_STATEMENT));
      const recorded = new Set<string>();
      if (statements.length === 1) await this.#completeRound(this.#pool, statements[0]!, recorded);
      else await this.#transaction(async (client) => {
        for (const statement of statements) await this.#completeRound(client, statement, recorded);
      });
      return inputs.map((input) => recorded.has(input.execution.id));
    });
  }

  async #completeRound(q: PostgresQueryable, round: readonly S.CompleteAttempt[], recorded: Set<string>): Promise<void> {
    const rows = round.map((input): Record<CompleteColumn, unknown> => {
      const { deliveryId, leaseToken, outcome, execution: e } = input;
      return {
        delivery_id: deliveryId, lease_token: leaseToken, outcome: outcome.status, last_status: outcome.lastStatus,
        last_error: outcome.lastError, ended_at: e.endedAt, run_at: outcome.status === 'scheduled' ? (outcome.runAt ?? e.endedAt) : null,
        id: e.id, webhook_id: e.webhookId, tenant_id: e.tenantId, entity: e.entity, event: e.event, attempt: e.attempt,
        started_at: e.startedAt, duration_ms: e.durationMs, status: e.status, success: e.success, hard_error: e.hardError,
        error_message: e.errorMessage, error_code: e.errorCode, method: e.method, url: e.url, request_headers: e.requestHeaders,
        request_body: requestBodyParam(this.#leasedBodies, input), response_headers: e.responseHeaders, response_body: e.responseBody,
        next_attempt_at: e.nextAttemptAt, coalesced_count: e.coalescedCount,
      };
    });
    const text = this.#statementText('complete', () => `SELECT c AS id FROM ${completeFunctionName(this.#n)}($1::json) c`);
    const result = await this.#hotQuery(q, text, [JSON.stringify(rows)]);
    for (const row of result.rows as Row[]) recorded.add(str(row.id));
  }

  /** Fenced: back to `pending` (never attempted) or `scheduled`, attempts unchanged; frees its place. */
  async releaseDelivery(deliveryId: string, leaseToken: string, runAt?: number): Promise<boolean> {
    if (runAt !== undefined) checkTime('runAt', runAt);
    this.#leasedBodies.forget(leaseToken);
    return this.#guard('releaseDelivery', async () => {
      const result = await this.#pool.query(
        finishSql(
          this.#n,
          `UPDATE ${this.#n.deliveries}
           SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END,
             run_at = COALESCE($3::bigint, run_at), lease_token = NULL, lease_expires_at = NULL
           WHERE id = $1 AND status = 'delivering' AND lease_token = $2
           RETURNING id, webhook_id, is_test, status, run_at, ordering_key, sequence, true AS freed, false AS advance`,
        ),
        [deliveryId, leaseToken, runAt ?? null],
      );
      return num((result.rows[0] as Row | undefined)?.n) === 1;
    });
  }

  /** Fenced lease extension. */
  async extendLease(deliveryId: string, leaseToken: string, leaseExpiresAt: number): Promise<boolean> {
    checkTime('leaseExpiresAt', leaseExpiresAt);
    return this.#guard('extendLease', async () => {
      const result = await this.#pool.query(
        `UPDATE ${this.#n.deliveries} SET lease_expires_at = $3 WHERE id = $1 AND status = 'delivering' AND lease_token = $2`,
        [deliveryId, leaseToken, leaseExpiresAt],
      );
      return result.rowCount === 1;
    });
  }

  /**
   * Cancels a waiting delivery, or a delivering one with its current lease token: frees its place
   * when it was in flight, and hands its key on when it was its key's turn.
   */
  async cancelDelivery(deliveryId: string, options: { leaseToken?: string; reason?: string; now?: number } = {}): Promise<boolean> {
    if (options.now !== undefined) checkTime('now', options.now);
    if (options.leaseToken !== undefined) this.#leasedBodies.forget(options.leaseToken);
    return this.#guard('cancelDelivery', async () => {
      const result = await this.#pool.query(
        finishSql(
          this.#n,
          `UPDATE ${this.#n.deliveries} d
           SET status = 'cancelled', last_error = COALESCE($3::text, d.last_error), updated_at = $4,
             lease_token = NULL, lease_expires_at = NULL, accepts_merges = false
           FROM target t
           WHERE d.id = t.id AND (${statusIn(UNSTARTED_STATUSES, 't.status')} OR (t.status = 'delivering' AND d.lease_token = $2::text))
           RETURNING d.id, d.webhook_id, d.is_test, d.status, d.run_at, d.ordering_key, d.sequence,
             t.status = 'delivering' AS freed, t.status <> 'held' AS advance`,
          // Locked first, so its status is the latest one (a hand-over may just have made it its key's turn).
          `target AS (SELECT id, status FROM ${this.#n.deliveries} WHERE id = $1 FOR UPDATE)`,
        ),
        [deliveryId, options.leaseToken ?? null, options.reason ?? null, options.now ?? Date.now()],
      );
      return num((result.rows[0] as Row | undefined)?.n) === 1;
    });
  }

  async getDelivery(id: string): Promise<S.DeliveryRecord | null> {
    return this.#guard('getDelivery', async () => {
      const result = await this.#pool.query(`SELECT ${DELIVERY_COLUMNS} FROM ${this.#n.deliveries} WHERE id = $1`, [id]);
      const row = result.rows[0] as Row | undefined;
      return row ? toDelivery(row) : null;
    });
  }

  /** Lists deliveries newest first. */
  async listDeliveries(query: S.DeliveryQuery): Promise<S.Page<S.DeliveryRecord>> {
    return this.#guard('listDeliveries', () => listDeliveries(this.#pool, this.#n, query));
  }

  /** Earliest ready queue, wake-up, unconsumed signal or test send; each an index lookup. */
  async nextRunAt(): Promise<number | null> {
    return this.#guard('nextRunAt', async () => {
      const result = await this.#pool.query(nextRunAtSql(this.#n));
      const row = result.rows[0] as Row | undefined;
      const next = numOrNull(row?.next);
      const lease = numOrNull(row?.lease_next);
      // An expired lease is found by the first sweep at or after its expiry, not before: a pump
      // that woke at the expiry itself would find nothing and sleep a whole poll interval.
      const found = lease === null ? null : this.#leaseSweeps.firstSweepFrom(lease);
      return next === null ? found : found === null ? next : Math.min(next, found);
    });
  }

  /** Deliveries by status, for metrics (a scan of the status column). */
  async countDeliveries(): Promise<Partial<Record<S.DeliveryStatus, number>>> {
    return this.#guard('countDeliveries', async () => {
      const result = await this.#pool.query(`SELECT status, count(*)::int AS n FROM ${this.#n.deliveries} GROUP BY status`);
      return toStatusCounts(result.rows as Row[]);
    });
  }

  /** Makes final deliveries `pending` again, outside ordering; see `requeueIn`. */
  async requeueDeliveries(request: S.RequeueRequest): Promise<string[]> {
    checkTime('runAt', request.runAt);
    checkTime('now', request.now);
    return this.#guard('requeueDeliveries', () => this.#transaction((client) => requeueIn(client, this.#n, request)));
  }

  // ---------------------------------------------------------------- queues

  /** Pauses (or with null resumes) a queue; a waiting queue is looked at again by the next claim. */
  async pauseQueue(webhookId: string, until: number | null): Promise<void> {
    if (typeof webhookId !== 'string') throw invalid('webhookId', 'must be a string');
    if (until !== null) checkTime('until', until);
    await this.#guard('pauseQueue', () =>
      this.#pool.query(
        `UPDATE ${this.#n.queues} SET paused_until = $2::bigint,
           wake_at = CASE WHEN ready_at IS NULL AND (wake_at IS NOT NULL OR full_cap IS NOT NULL)
             THEN LEAST(wake_at, COALESCE($2, clock)) ELSE wake_at END
         WHERE webhook_id = $1`,
        [webhookId, until],
      ),
    );
  }

  /** The queue's figures as of `now` (counts of its rows). */
  async getQueueStats(webhookId: string, now: number): Promise<S.QueueStats | null> {
    checkTime('now', now);
    return this.#guard('getQueueStats', async () => {
      const result = await this.#pool.query(queueStatsSql(this.#n), [webhookId, now]);
      const row = result.rows[0] as Row | undefined;
      if (!row) return null;
      return toQueueStats(webhookId, now, {
        due: num(row.due),
        scheduled: num(row.scheduled),
        held: num(row.held),
        inFlight: num(row.in_flight),
        oldestDueAt: numOrNull(row.oldest_due),
        blockedKeys: num(row.blocked_keys),
        pausedUntil: numOrNull(row.paused_until),
      });
    });
  }

  // ---------------------------------------------------------------- execution log, health, retention

  /** Lists executions newest first; `since`/`until` bound `startedAt`. */
  async listExecutions(query: S.ExecutionQuery): Promise<S.Page<S.ExecutionRecord>> {
    return this.#guard('listExecutions', () => listExecutions(this.#pool, this.#n, this.#executionSelect, query));
  }

  /** One atomic UPDATE, so concurrent reports from several processes all count. */
  async recordWebhookResult(webhookId: string, success: boolean, at: number): Promise<S.WebhookHealth | null> {
    return this.#guard('recordWebhookResult', () => recordResult(this.#pool, this.#n, webhookId, success, at));
  }

  async getWebhookHealth(webhookId: string): Promise<S.WebhookHealth | null> {
    return this.#guard('getWebhookHealth', () => readHealth(this.#pool, this.#n, webhookId));
  }

  /** Zeroes the failure run, keeping the last success/failure times. */
  async resetWebhookHealth(webhookId: string): Promise<void> {
    await this.#guard('resetWebhookHealth', () =>
      this.#pool.query(`UPDATE ${this.#n.webhooks} SET ${RESET_HEALTH} WHERE id = $1`, [webhookId]),
    );
  }

  /** Deletes, then blanks, old records in one transaction. */
  async prune(request: S.PruneRequest): Promise<S.PruneResult> {
    return this.#guard('prune', () => this.#transaction((client) => pruneIn(client, this.#n, request)));
  }

  // ---------------------------------------------------------------- notifications

  /**
   * Holds a pooled connection on `LISTEN` and calls `listener` for each committed enqueue (from any
   * process). A lost connection is reported to `options.onError` and replaced (with backoff), and
   * the listener is called once when listening again. The returned function `UNLISTEN`s and gives
   * the connection back.
   */
  async subscribe(listener: () => void): Promise<() => Promise<void>> {
    if (typeof listener !== 'function') throw invalid('listener', 'must be a function');
    if (this.#closed) throw new StorageError('PostgresStorage is closed');
    const listening = new Listening({ pool: this.#pool, channel: this.#channel, listener, onError: (e) => this.#onError?.(e) });
    await this.#guard('subscribe', () => listening.start());
    this.#subscriptions.add(listening);
    const unsubscribe = async (): Promise<void> => {
      this.#subscriptions.delete(listening);
      await listening.end();
    };
    if (this.#closed) {
      // close() ran while LISTEN was in flight: it could not see this subscription.
      await unsubscribe();
      throw new StorageError('PostgresStorage is closed');
    }
    return unsubscribe;
  }

  /** Ends this adapter's subscriptions. The pool is the caller's and stays open. */
  async close(): Promise<void> {
    this.#closed = true;
    const subscriptions = [...this.#subscriptions];
    this.#subscriptions.clear();
    await Promise.all(subscriptions.map((s) => s.end()));
  }

  // ---------------------------------------------------------------- internals

  async #insertTriggers(client: PostgresQueryable, webhook: S.WebhookRecord): Promise<void> {
    if (webhook.triggers.length === 0) return;
    await client.query(
      `INSERT INTO ${this.#n.triggers} (webhook_id, entity, event)
       SELECT $1, entity, event FROM unnest($2::text[], $3::text[]) AS t(entity, event) ON CONFLICT DO NOTHING`,
      [webhook.id, webhook.triggers.map((t) => t.entity), webhook.triggers.map((t) => t.event)],
    );
  }

  /**
   * The text of a hot statement, built once per shape (kind and row count) and then reused as the
   * same string: a rebuilt text would be hashed for the prepared-statement name on every call.
   */
  #statementText(shape: string, build: () => string): string {
    let text = this.#statementTexts.get(shape);
    if (text === undefined) {
      text = build();
      if (this.#statementTexts.size < 1_000) this.#statementTexts.set(shape, text);
    }
    return text;
  }

  /** Runs a hot statement: prepared by name when `preparedStatements` is on (parsed and planned once per connection). */
  #hotQuery(q: PostgresQueryable, text: string, values: unknown[]): Promise<PostgresQueryResult> {
    if (!this.#prepared) return q.query(text, values);
    let name = this.#statementNames.get(text);
    if (name === undefined) {
      name = `wd_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
      this.#statementNames.set(text, name);
    }
    return (q as unknown as PreparedQueryable).query({ name, text, values });
  }

  /**
   * Runs `fn` in a transaction on a connection of the pool. While the adapter holds the connection
   * it listens for its errors (a server restart between two statements would otherwise be an
   * unhandled `error` event), and a connection that failed is destroyed, never pooled.
   */
  async #transaction<T>(fn: (client: PostgresQueryable) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    const onError = (error: Error) => (broken ??= error);
    client.on('error', onError);
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
        broken ??= asError(rollbackError);
      }
      throw error;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /** Checks the schema version once (the first call refuses on a mismatch; a failure to ask is retried). */
  #checkSchema(): Promise<void> {
    this.#schemaCheck ??= databaseVersion(this.#pool, this.#n).then(
      (version) => {
        if (version !== SCHEMA_VERSION) {
          this.#schemaCheck = null;
          throw mismatch(version);
        }
        this.#schemaChecked = true;
      },
      (error: unknown) => {
        this.#schemaCheck = null;
        throw error;
      },
    );
    return this.#schemaCheck;
  }

  /** Wraps driver failures in {@link StorageError}; the library's own errors pass through. */
  async #guard<T>(operation: string, fn: () => Promise<T>, checkSchema = true): Promise<T> {
    try {
      if (checkSchema && !this.#schemaChecked) await this.#checkSchema();
      return await fn();
    } catch (error) {
      throw storageFailure(`PostgresStorage.${operation}`, error);
    }
  }
}
