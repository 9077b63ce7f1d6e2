/**
 * The fixed SQL of the adapter for one table prefix, prepared lazily and cached per connection.
 * Every statement that reads deliveries names the index it must use: a claim that fell back to a
 * table scan would still be correct, only slower with every row of backlog.
 *
 * @module
 */
import { CLAIMABLE, FINAL, RESET_HEALTH, UNSTARTED_STATUSES, WEBHOOK_DELETED, countMerge, recordResultSql, statusIn } from '../sql/fragments.js';
import { DELIVERY_COLUMNS, HEALTH_COLUMNS } from '../sql/records.js';
import { CLAIMABLE_STATUSES } from '../types.js';
import { DELIVERY_INSERT_COLUMNS, DELIVERY_INSERT_WIDTH } from './rows.js';
import { SQLITE_SCHEMA_VERSION } from './schema.js';

/** Waiting rows of a queue: the partial index `deliveries_queue` has exactly these terms. */
export const QUEUED = `${CLAIMABLE} AND is_test = 0`;
/** Waiting test sends: the partial index `deliveries_tests`. */
export const QUEUED_TESTS = `${CLAIMABLE} AND is_test = 1`;
/** Not started: what deleting the webhook, or a cancellation without a lease, ends. */
const UNSTARTED = statusIn(UNSTARTED_STATUSES);

export type Statements = ReturnType<typeof statements>;

export function statements(p: string) {
  const d = `${p}deliveries`;
  const q = `${p}queues`;
  const k = `${p}ordering_keys`;
  // Set by every statement that takes a delivery out of flight: such writes keep the queue state
  // in the same transaction, so migration 3's triggers for older code must not fire on them.
  const ours = `written_by = ${SQLITE_SCHEMA_VERSION}`;
  const lease = `status = 'delivering', lease_token = lower(hex(randomblob(16))), lease_expires_at = @leaseExpiresAt, updated_at = @now, coalesce_slot = NULL`;
  // The queue's place behind every ready queue of its priority (the round's end).
  const lastTurn = `(SELECT coalesce(max(o.turn), 0) + 1 FROM ${q} AS o WHERE o.turn IS NOT NULL AND o.priority = ${q}.priority)`;
  // When the queue's earliest waiting row is due; NULL when it has none.
  const firstWaiting =
    `(SELECT f.run_at FROM ${d} AS f INDEXED BY ${p}deliveries_queue WHERE f.webhook_id = ${q}.webhook_id ` +
    `AND ${statusIn(CLAIMABLE_STATUSES, 'f.status')} AND f.is_test = 0 ORDER BY f.run_at, f.id LIMIT 1)`;
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
      `UPDATE ${d} SET status = 'cancelled', last_error = '${WEBHOOK_DELETED}', updated_at = @now, coalesce_slot = NULL ` +
      `WHERE webhook_id = @id AND ${UNSTARTED}`,
    cancelOrphans:
      `UPDATE ${d} SET status = 'cancelled', last_error = '${WEBHOOK_DELETED}', updated_at = @now, coalesce_slot = NULL ` +
      `WHERE id IN (SELECT value FROM json_each(@ids)) AND ${CLAIMABLE}`,

    // ------------------------------------------------------------------ queue rows
    insertQueue:
      `INSERT INTO ${q} (webhook_id, priority, cap, rate_per_second, rate_burst) VALUES (@id, @priority, @cap, @perSecond, @burst)`,
    getQueue:
      `SELECT webhook_id, priority, cap, rate_per_second, rate_burst, bucket_full_at, bucket_clock, paused_until, in_flight ` +
      `FROM ${q} WHERE webhook_id = @id`,
    // Whether deliveries of the webhook can be queued: 2 when its queue row exists, 1 when only
    // the webhook does (written by an older release: the row is made on demand), 0 when neither.
    queueState: `SELECT coalesce((SELECT 2 FROM ${q} WHERE webhook_id = @id), (SELECT 1 FROM ${p}webhooks WHERE id = @id), 0) AS state`,
    // The queue row of a webhook that has none, from its record.
    makeQueue:
      `INSERT OR IGNORE INTO ${q} (webhook_id, priority, cap, rate_per_second, rate_burst) ` +
      `SELECT id, coalesce(json_extract(record, '$.priority'), 0), json_extract(record, '$.concurrency'), ` +
      `json_extract(record, '$.rateLimit.perSecond'), json_extract(record, '$.rateLimit.burst') FROM ${p}webhooks WHERE id = ?`,
    deleteQueue: `DELETE FROM ${q} WHERE webhook_id = @id`,
    deleteKeys: `DELETE FROM ${k} WHERE webhook_id = @id`,
    // New settings; the queue is looked at again from its earliest waiting row (or goes idle).
    updateQueueSettings:
      `UPDATE ${q} SET priority = @priority, cap = @cap, rate_per_second = @perSecond, rate_burst = @burst, ` +
      `bucket_full_at = @fullAt, turn = NULL, blocked_at = NULL, wake_at = ${firstWaiting} WHERE webhook_id = @id`,
    pause:
      `UPDATE ${q} SET paused_until = @until, turn = NULL, ` +
      `wake_at = CASE WHEN turn IS NOT NULL OR wake_at IS NOT NULL THEN max(@until, ${firstWaiting}) ELSE wake_at END ` +
      `WHERE webhook_id = @id`,
    unpause:
      `UPDATE ${q} SET paused_until = NULL, turn = NULL, blocked_at = NULL, wake_at = ${firstWaiting} ` +
      `WHERE webhook_id = @id AND paused_until IS NOT NULL`,
    // Frees `freed` places (a queue stopped at its cap is ready again) and/or tells the queue it
    // has waiting work from `at`.
    touch:
      `UPDATE ${q} SET in_flight = max(0, in_flight - @freed), ` +
      `turn = CASE WHEN @freed > 0 AND blocked_at IS NOT NULL THEN coalesce(turn, ${lastTurn}) ELSE turn END, ` +
      `wake_at = CASE WHEN @freed > 0 AND blocked_at IS NOT NULL ` +
      `THEN min(blocked_at, coalesce(@at, blocked_at), coalesce(wake_at, blocked_at)) ` +
      `WHEN @at IS NULL THEN wake_at ELSE min(coalesce(wake_at, @at), @at) END, ` +
      `blocked_at = CASE WHEN @freed > 0 THEN NULL ELSE blocked_at END WHERE webhook_id = @id`,
    // {@link touch} for places freed in a queue not stopped at its cap, with no new waiting work:
    // only the count changes, and no indexed column is written.
    free: `UPDATE ${q} SET in_flight = max(0, in_flight - @freed) WHERE webhook_id = @id AND blocked_at IS NULL`,
    insertSignal: `INSERT INTO ${p}queue_signals (webhook_id, run_at) VALUES (?, ?)`,

    // ------------------------------------------------------------------ claims
    reclaimExpired:
      `UPDATE ${d} INDEXED BY ${p}deliveries_lease SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, ` +
      `lease_token = NULL, lease_expires_at = NULL, ${ours} WHERE status = 'delivering' AND lease_expires_at < @now ` +
      `RETURNING id, webhook_id, is_test, run_at`,
    takeSignals: `DELETE FROM ${p}queue_signals RETURNING webhook_id, run_at`,
    dueWakes:
      `SELECT webhook_id FROM ${q} INDEXED BY ${p}queues_waiting WHERE turn IS NULL AND wake_at IS NOT NULL AND wake_at <= @now ` +
      `ORDER BY wake_at`,
    promote: `UPDATE ${q} SET turn = ${lastTurn} WHERE webhook_id = @id`,
    // Queues stopped at the default cap of an earlier claim that this claim's default leaves room in.
    roomyBlocked:
      `SELECT webhook_id FROM ${q} INDEXED BY ${p}queues_blocked_default WHERE blocked_at IS NOT NULL AND cap IS NULL ` +
      `AND in_flight < @cap ORDER BY in_flight`,
    unblock: `UPDATE ${q} SET turn = coalesce(turn, ${lastTurn}), wake_at = blocked_at, blocked_at = NULL WHERE webhook_id = @id`,
    firstReady:
      `SELECT webhook_id, priority, cap, rate_per_second, rate_burst, bucket_full_at, bucket_clock, paused_until, in_flight, ` +
      `turn, wake_at, blocked_at FROM ${q} INDEXED BY ${p}queues_ready WHERE turn IS NOT NULL ORDER BY priority DESC, turn LIMIT 1`,
    // Whether a ready queue of the priority comes after the turn (else that turn is the round's end).
    laterTurn:
      `SELECT 1 AS later FROM ${q} INDEXED BY ${p}queues_ready WHERE turn IS NOT NULL AND priority = @priority AND turn > @turn LIMIT 1`,
    // A queue that stays where it is in the round: the columns its indexes hold are left out of the
    // SET (SQLite rewrites an index entry for every indexed column assigned, even to its own value).
    setQueueFlight: `UPDATE ${q} SET in_flight = @inFlight, bucket_full_at = @fullAt, bucket_clock = @clock WHERE webhook_id = @id`,
    setQueueState:
      `UPDATE ${q} SET in_flight = @inFlight, bucket_full_at = @fullAt, bucket_clock = @clock, ` +
      `turn = CASE WHEN @ready THEN ${lastTurn} ELSE NULL END, wake_at = @wakeAt, blocked_at = @blockedAt WHERE webhook_id = @id`,
    claimTests:
      `UPDATE ${d} SET ${lease} WHERE id IN (` +
      `SELECT id FROM ${d} INDEXED BY ${p}deliveries_tests WHERE ${QUEUED_TESTS} AND run_at <= @now ORDER BY run_at, id LIMIT @limit` +
      `) RETURNING ${DELIVERY_COLUMNS}, lease_token`,
    testDue: `SELECT 1 AS due FROM ${d} INDEXED BY ${p}deliveries_tests WHERE ${QUEUED_TESTS} AND run_at <= @now LIMIT 1`,
    claimFromQueue:
      `UPDATE ${d} SET ${lease} WHERE id IN (` +
      `SELECT id FROM ${d} INDEXED BY ${p}deliveries_queue WHERE webhook_id = @id AND ${QUEUED} AND run_at <= @now ` +
      `ORDER BY run_at, id LIMIT @limit) RETURNING ${DELIVERY_COLUMNS}, lease_token`,
    firstWaiting: `SELECT run_at FROM ${d} INDEXED BY ${p}deliveries_queue WHERE webhook_id = @id AND ${QUEUED} ORDER BY run_at, id LIMIT 1`,

    // ------------------------------------------------------------------ deliveries
    deliveryExists: `SELECT 1 AS found FROM ${d} WHERE id = @id`,
    insertDelivery: `INSERT INTO ${d} (${DELIVERY_INSERT_COLUMNS}) VALUES (${new Array<string>(DELIVERY_INSERT_WIDTH).fill('?').join(', ')})`,
    slotHolder: `SELECT id, sequence FROM ${d} WHERE webhook_id = ? AND coalesce_slot = ?`,
    merge:
      `UPDATE ${d} SET body = ?, content_type = ?, ${countMerge()}, updated_at = ? WHERE id = ?`,
    // Positional (hot): [status, runAt, lastStatus, lastError, updatedAt, id, leaseToken].
    complete:
      `UPDATE ${d} SET status = ?, attempts = attempts + 1, run_at = COALESCE(?, run_at), ` +
      `last_status = ?, last_error = ?, updated_at = ?, lease_token = NULL, lease_expires_at = NULL, ${ours} ` +
      `WHERE id = ? AND status = 'delivering' AND lease_token = ? RETURNING webhook_id, is_test, ordering_key, sequence`,
    release:
      `UPDATE ${d} SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, ` +
      `run_at = COALESCE(@runAt, run_at), lease_token = NULL, lease_expires_at = NULL, ${ours} ` +
      `WHERE id = @id AND status = 'delivering' AND lease_token = @leaseToken RETURNING webhook_id, is_test, run_at`,
    extendLease:
      `UPDATE ${d} SET lease_expires_at = @leaseExpiresAt ` +
      `WHERE id = @id AND status = 'delivering' AND lease_token = @leaseToken`,
    cancel:
      `UPDATE ${d} SET status = 'cancelled', last_error = COALESCE(@reason, last_error), updated_at = @now, ` +
      `lease_token = NULL, lease_expires_at = NULL, coalesce_slot = NULL, ${ours} ` +
      `WHERE id = @id AND (${UNSTARTED} OR (status = 'delivering' AND lease_token = @leaseToken)) ` +
      `RETURNING webhook_id, is_test, ordering_key, sequence`,
    statusOf: `SELECT status FROM ${d} WHERE id = @id`,
    getDelivery: `SELECT ${DELIVERY_COLUMNS} FROM ${d} WHERE id = @id`,
    requeue:
      `UPDATE ${d} SET status = 'pending', run_at = @runAt, updated_at = @now, ordering_key = NULL ` +
      `WHERE id = @id AND ${FINAL} AND EXISTS (SELECT 1 FROM ${p}webhooks w WHERE w.id = ${d}.webhook_id) ` +
      `RETURNING webhook_id, coalesce_key, is_test`,
    releaseSlot: `UPDATE ${d} SET coalesce_slot = NULL WHERE webhook_id = @webhookId AND coalesce_slot = @key`,
    takeSlot: `UPDATE ${d} SET coalesce_slot = @key WHERE id = @id`,

    // ------------------------------------------------------------------ ordering keys
    // The next number of the key; `next_seq` is its head's (the one unfinished delivery let out).
    assignSequence:
      `INSERT INTO ${k} (webhook_id, key, last_seq, next_seq) VALUES (?, ?, 1, 1) ` +
      `ON CONFLICT (webhook_id, key) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq, next_seq`,
    firstHeld:
      `SELECT id, sequence, run_at, is_test FROM ${d} INDEXED BY ${p}deliveries_held ` +
      `WHERE webhook_id = ? AND ordering_key = ? AND status = 'held' ORDER BY sequence LIMIT 1`,
    // Hands the key on from its head `seq` (only from the head: a stale caller changes nothing).
    advanceKey:
      `UPDATE ${k} SET next_seq = coalesce(@next, last_seq + 1) WHERE webhook_id = @id AND key = @key AND next_seq = @seq`,
    letOut: `UPDATE ${d} SET status = 'pending' WHERE id = ? AND status = 'held'`,

    // ------------------------------------------------------------------ next run time, figures
    nextWake: `SELECT wake_at AS at FROM ${q} INDEXED BY ${p}queues_waiting WHERE turn IS NULL AND wake_at IS NOT NULL ORDER BY wake_at LIMIT 1`,
    nextReady: `SELECT coalesce(wake_at, 0) AS at FROM ${q} INDEXED BY ${p}queues_ready_at WHERE turn IS NOT NULL ORDER BY wake_at LIMIT 1`,
    nextSignal: `SELECT run_at AS at FROM ${p}queue_signals INDEXED BY ${p}queue_signals_run_at ORDER BY run_at LIMIT 1`,
    nextTest: `SELECT run_at AS at FROM ${d} INDEXED BY ${p}deliveries_tests WHERE ${QUEUED_TESTS} ORDER BY run_at, id LIMIT 1`,
    nextLeaseExpiry:
      `SELECT lease_expires_at AS at FROM ${d} INDEXED BY ${p}deliveries_lease WHERE status = 'delivering' ` +
      `ORDER BY lease_expires_at LIMIT 1`,
    countDue:
      `SELECT count(*) AS n, min(run_at) AS oldest FROM ${d} INDEXED BY ${p}deliveries_queue ` +
      `WHERE webhook_id = @id AND ${QUEUED} AND run_at <= @now`,
    countLater: `SELECT count(*) AS n FROM ${d} INDEXED BY ${p}deliveries_queue WHERE webhook_id = @id AND ${QUEUED} AND run_at > @now`,
    // Keys counted by grouping along the index (count(DISTINCT) would sort them again).
    countHeld:
      `SELECT count(*) AS n, (SELECT count(*) FROM (SELECT 1 FROM ${d} INDEXED BY ${p}deliveries_held ` +
      `WHERE webhook_id = @id AND status = 'held' GROUP BY ordering_key)) AS keys ` +
      `FROM ${d} INDEXED BY ${p}deliveries_held WHERE webhook_id = @id AND status = 'held'`,

    // ------------------------------------------------------------------ health
    recordSuccess: `UPDATE ${p}webhooks SET ${recordResultSql(true, '@at')} WHERE id = @id RETURNING ${HEALTH_COLUMNS}`,
    recordFailure: `UPDATE ${p}webhooks SET ${recordResultSql(false, '@at')} WHERE id = @id RETURNING ${HEALTH_COLUMNS}`,
    getHealth: `SELECT ${HEALTH_COLUMNS} FROM ${p}webhooks WHERE id = @id`,
    resetHealth: `UPDATE ${p}webhooks SET ${RESET_HEALTH} WHERE id = @id`,
  };
}
