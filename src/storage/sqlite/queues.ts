/**
 * Per-webhook queues in SQL: what a claim does, how every other write keeps a queue's state
 * (ready, waiting for a time, stopped at its cap, idle) in step, and the figures read from it.
 *
 * A queue is in the ready index only while it may give something now; waiting queues sit in an
 * index by the time to look at them again, idle ones in neither. A claim therefore reads the
 * queues it serves and the rows it takes, plus the events since the last claim (expired leases,
 * signals of host-transaction enqueues, wake-ups), each once: never a backlog, never retries
 * scheduled for later, never queues with nothing to give.
 *
 * @module
 */
import { toQueueStats } from '../sql/records.js';
import type { ClaimRequest, QueueStats } from '../types.js';
import { bucketTime, nextTokenAt, spend, wholeTokens, type Bucket } from './bucket.js';
import type { Connection } from './connection.js';
import { claimedRowOrder, type ClaimedRow } from './rows.js';
import type { Statements } from './statements.js';

/** A queue row as the claim reads it. */
export interface QueueRow {
  webhook_id: string;
  priority: number;
  cap: number | null;
  rate_per_second: number | null;
  rate_burst: number | null;
  bucket_full_at: number | null;
  bucket_clock: number | null;
  paused_until: number | null;
  in_flight: number;
}

/** A ready queue as the claim reads it: also its place in the round and its wake-up time. */
interface ReadyQueueRow extends QueueRow {
  turn: number;
  wake_at: number | null;
  blocked_at: number | null;
}

export function bucketOf(q: QueueRow): Bucket {
  return { perSecond: q.rate_per_second, burst: q.rate_burst, fullAt: q.bucket_full_at, clock: q.bucket_clock };
}

/**
 * What a transaction did to queues, applied once per queue at its end ({@link QueueNotes.flush}):
 * places freed, and the earliest time of waiting work that appeared (a retry, a release, a
 * delivery let out by its ordering key, an enqueue).
 */
export class QueueNotes {
  private readonly notes = new Map<string, { freed: number; at: number | null; back: string[] }>();

  private note(webhookId: string) {
    let note = this.notes.get(webhookId);
    if (!note) this.notes.set(webhookId, (note = { freed: 0, at: null, back: [] }));
    return note;
  }

  /** A delivery of the webhook left flight (completed, released, cancelled, lease expired). */
  free(webhookId: string): void {
    this.note(webhookId).freed++;
  }

  /**
   * The webhook has waiting work due at `at`. `back`: a delivery that returned to waiting from
   * flight, cancelled by {@link flush} if its webhook is gone (no queue would ever serve it).
   */
  wake(webhookId: string, at: number, back?: string): void {
    const note = this.note(webhookId);
    note.at = note.at === null ? at : Math.min(note.at, at);
    if (back !== undefined) note.back.push(back);
  }

  get size(): number {
    return this.notes.size;
  }

  /** Writes the notes into the queue rows (in webhook id order: the same lock order everywhere). */
  flush(c: Connection, sql: Statements, now: number): void {
    for (const webhookId of [...this.notes.keys()].sort()) {
      const note = this.notes.get(webhookId)!;
      if (note.at === null && note.freed > 0 && c.stmt(sql.free).run({ freed: note.freed, id: webhookId }).changes > 0) continue;
      const params = { freed: note.freed, at: note.at, id: webhookId };
      if (c.stmt(sql.touch).run(params).changes > 0) continue;
      // No queue row: a webhook an older release inserted gets one; a deleted webhook's
      // deliveries coming back to waiting are cancelled, as deleting it would have done.
      if (c.stmt(sql.makeQueue).run(webhookId).changes > 0) c.stmt(sql.touch).run(params);
      else if (note.back.length > 0) c.stmt(sql.cancelOrphans).run({ ids: JSON.stringify(note.back), now });
    }
    this.notes.clear();
  }

  /**
   * Inside a host transaction: one insert-only signal per queue instead of updating its row, which
   * other claims and completions of the webhook write (the next claim consumes the signals).
   */
  signal(c: Connection, sql: Statements): void {
    for (const [webhookId, note] of this.notes) {
      if (note.at !== null) c.stmt(sql.insertSignal).run(webhookId, note.at);
    }
    this.notes.clear();
  }
}

/**
 * Claims as the storage contract orders them: test sends first, then ready queues by webhook
 * priority and turn, from each its due rows up to its room under the cap and its whole tokens.
 * Runs inside the caller's transaction. Rows come back in claim order.
 */
export function claimRows(c: Connection, sql: Statements, request: ClaimRequest, limit: number): ClaimedRow[] {
  const { now, defaultConcurrency } = request;
  const leaseExpiresAt = now + request.leaseMs;

  // Events since the last claim, each handled once: expired leases (their owners died or stalled:
  // the rows wait again, their places are freed), and enqueues made inside host transactions.
  const notes = new QueueNotes();
  const expired = c.stmt(sql.reclaimExpired).all({ now }) as Array<{ id: string; webhook_id: string; is_test: number; run_at: number }>;
  for (const row of expired) {
    if (row.is_test === 1) continue; // outside every queue
    notes.free(row.webhook_id);
    notes.wake(row.webhook_id, row.run_at, row.id);
  }
  for (const signal of c.stmt(sql.takeSignals).all() as Array<{ webhook_id: string; run_at: number }>) {
    notes.wake(signal.webhook_id, signal.run_at);
  }
  notes.flush(c, sql, now);
  // Waiting queues whose time has come join the end of the round, earliest first.
  for (const { webhook_id } of c.stmt(sql.dueWakes).all({ now }) as Array<{ webhook_id: string }>) {
    c.stmt(sql.promote).run({ id: webhook_id });
  }
  // The default cap is the claim's: one with more room than the claim that stopped a queue at it
  // (another process's setting, a changed option) reopens the queue. Usually an empty range.
  for (const { webhook_id } of c.stmt(sql.roomyBlocked).all({ cap: defaultConcurrency }) as Array<{ webhook_id: string }>) {
    c.stmt(sql.unblock).run({ id: webhook_id });
  }

  // Test sends are rare: a read finds none for a fraction of what the claiming UPDATE costs empty.
  const out = c.stmt(sql.testDue).get({ now }) ? (c.allRaw(sql.claimTests, { now, limit, leaseExpiresAt }) as ClaimedRow[]) : [];
  out.sort(claimedRowOrder);

  const visited = new Set<string>();
  while (out.length < limit) {
    const q = c.stmt(sql.firstReady).get() as ReadyQueueRow | undefined;
    // A queue goes back into the round only when the limit stopped it, so a second visit in one
    // claim cannot happen; the check keeps a corrupted row from looping.
    if (!q || visited.has(q.webhook_id)) break;
    visited.add(q.webhook_id);
    serve(c, sql, q, { now, leaseExpiresAt, cap: q.cap ?? defaultConcurrency, room: limit - out.length }, out);
  }
  return out;
}

/** Takes what one ready queue can give into `out` and writes the queue's new state. */
function serve(
  c: Connection,
  sql: Statements,
  q: ReadyQueueRow,
  claim: { now: number; leaseExpiresAt: number; cap: number; room: number },
  out: ClaimedRow[],
): void {
  const { now, cap } = claim;
  const bucket = bucketOf(q);
  const t = bucketTime(bucket, now);
  const state = {
    id: q.webhook_id,
    inFlight: q.in_flight,
    fullAt: bucket.fullAt,
    clock: bucket.perSecond === null ? bucket.clock : t,
    ready: 0,
    wakeAt: null as number | null,
    blockedAt: null as number | null,
  };
  if (q.paused_until !== null && q.paused_until > now) {
    state.wakeAt = q.paused_until;
  } else if (q.in_flight >= cap) {
    state.blockedAt = now;
  } else if (wholeTokens(bucket, t) < 1) {
    state.wakeAt = nextTokenAt(bucket, now);
  } else {
    const want = Math.min(claim.room, cap - q.in_flight, wholeTokens(bucket, t));
    const rows = c.allRaw(sql.claimFromQueue, { id: q.webhook_id, now, limit: want, leaseExpiresAt: claim.leaseExpiresAt }) as ClaimedRow[];
    rows.sort(claimedRowOrder);
    for (const row of rows) out.push(row);
    state.inFlight += rows.length;
    const after: Bucket = { ...bucket, fullAt: spend(bucket, t, rows.length) };
    state.fullAt = after.fullAt;
    const next = c.stmt(sql.firstWaiting).get({ id: q.webhook_id }) as { run_at: number } | undefined;
    if (next === undefined) {
      // Idle: the next enqueue, retry or release wakes it.
    } else if (state.inFlight >= cap) {
      state.blockedAt = now;
    } else if (wholeTokens(after, t) < 1) {
      state.wakeAt = Math.max(next.run_at, nextTokenAt(after, now));
    } else if (next.run_at > now) {
      state.wakeAt = next.run_at;
    } else {
      // More is due now: back in the round, behind the others of its priority.
      state.ready = 1;
      state.wakeAt = now;
    }
  }
  // Ready again and already at the round's end, with its wake-up time passed: it keeps its turn and
  // wake-up time (a past one means "now" as well), so the queue indexes are not written.
  const stays =
    state.ready === 1 &&
    q.blocked_at === null &&
    q.wake_at !== null &&
    q.wake_at <= now &&
    c.stmt(sql.laterTurn).get({ priority: q.priority, turn: q.turn }) === undefined;
  c.stmt(stays ? sql.setQueueFlight : sql.setQueueState).run(stays ? { id: state.id, inFlight: state.inFlight, fullAt: state.fullAt, clock: state.clock } : state);
}

/** See `WebhookStorage.nextRunAt`: one index seek per kind of event, on one snapshot. */
export function nextRunAt(c: Connection, sql: Statements): number | null {
  return c.read(() => {
    let earliest: number | null = null;
    const consider = (row: unknown, offset = 0) => {
      const at = (row as { at: number } | undefined)?.at;
      if (at !== undefined && at !== null && (earliest === null || at + offset < earliest)) earliest = at + offset;
    };
    consider(c.stmt(sql.nextReady).get());
    consider(c.stmt(sql.nextWake).get());
    consider(c.stmt(sql.nextSignal).get());
    consider(c.stmt(sql.nextTest).get());
    // A lease is taken over once its expiry has passed (`<`), so the millisecond after.
    consider(c.stmt(sql.nextLeaseExpiry).get(), 1);
    return earliest;
  });
}

/** See `WebhookStorage.getQueueStats`: counts over the queue's index ranges, on one snapshot. */
export function queueStats(c: Connection, sql: Statements, webhookId: string, now: number): QueueStats | null {
  return c.read(() => {
    const q = c.stmt(sql.getQueue).get({ id: webhookId }) as (QueueRow & { paused_until: number | null }) | undefined;
    if (!q) return null;
    const due = c.stmt(sql.countDue).get({ id: webhookId, now }) as { n: number; oldest: number | null };
    const later = c.stmt(sql.countLater).get({ id: webhookId, now }) as { n: number };
    const held = c.stmt(sql.countHeld).get({ id: webhookId }) as { n: number; keys: number };
    return toQueueStats(webhookId, now, {
      due: due.n,
      scheduled: later.n,
      held: held.n,
      inFlight: q.in_flight,
      oldestDueAt: due.n > 0 ? due.oldest : null,
      blockedKeys: held.keys,
      pausedUntil: q.paused_until,
    });
  });
}
