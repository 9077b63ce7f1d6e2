/**
 * Per-key ordering: sequence numbers given out at enqueue, and the key handed on when its head
 * (the one unfinished delivery let out) finishes by any path.
 *
 * `ordering_keys` holds, per (webhook, key), the last number given out and the head's number.
 * A new delivery is the head when every earlier one has finished (`next_seq` has caught up with
 * it); otherwise it is stored `held`, outside the claim index. Both touch only that key's row,
 * which is also what lets an enqueue inside a host transaction stay clear of other keys and of
 * the queue's row.
 *
 * @module
 */
import type { Connection } from './connection.js';
import type { QueueNotes } from './queues.js';
import type { Statements } from './statements.js';

/** Gives the next number of the key; `head`: no earlier delivery of the key is unfinished. */
export function assignSequence(c: Connection, sql: Statements, webhookId: string, key: string): { sequence: number; head: boolean } {
  const row = c.stmt(sql.assignSequence).get(webhookId, key) as { last_seq: number; next_seq: number };
  return { sequence: row.last_seq, head: row.last_seq === row.next_seq };
}

/**
 * The head `sequence` of the key reached a final status: the lowest held delivery becomes
 * `pending` (and its queue hears of it), or, with none held, the key waits for the next enqueue.
 * A caller that is not the head (a stale one) changes nothing.
 */
export function handOn(c: Connection, sql: Statements, notes: QueueNotes, webhookId: string, key: string, sequence: number): void {
  const next = c.stmt(sql.firstHeld).get(webhookId, key) as { id: string; sequence: number; run_at: number; is_test: number } | undefined;
  const moved = c.stmt(sql.advanceKey).run({ next: next?.sequence ?? null, id: webhookId, key, seq: sequence }).changes > 0;
  if (!moved || !next) return;
  c.stmt(sql.letOut).run(next.id);
  if (next.is_test === 0) notes.wake(webhookId, next.run_at);
}

/** `body` with every occurrence of `placeholder` replaced by the sequence number. */
export function withSequence(body: string, placeholder: string | undefined, sequence: number | null): string {
  if (placeholder === undefined || sequence === null || !body.includes(placeholder)) return body;
  return body.split(placeholder).join(String(sequence));
}
