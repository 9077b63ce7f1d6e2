/**
 * The writes that change a delivery's place in its queue: enqueue (with coalescing and sequence
 * numbers), completion, release, cancellation and requeue. Each runs in one transaction with the
 * queue and ordering-key updates it implies.
 *
 * @module
 */
import { StorageError } from '../../errors.js';
import { FINAL, WEBHOOK_DELETED } from '../sql/fragments.js';
import { EXECUTION_COLUMNS } from '../sql/records.js';
import type { DeliveryRecord, DeliveryStatus, EnqueueResult, RequeueRequest } from '../types.js';
import type { Connection } from './connection.js';
import { assignSequence, handOn, withSequence } from './ordering.js';
import { QueueNotes } from './queues.js';
import {
  chunkSize,
  COMPLETE_PARAMS,
  COMPLETION_DELIVERY_ID,
  COMPLETION_ENDED_AT,
  COMPLETION_RUN_AT,
  COMPLETION_WIDTH,
  DELIVERY_INSERT_COLUMNS,
  DELIVERY_INSERT_WIDTH,
  deliveryValues,
  EXECUTION_REQUEST_HEADERS,
  EXECUTION_RESPONSE_HEADERS,
  EXECUTION_WIDTH,
  where,
} from './rows.js';
import type { Statements } from './statements.js';

type Stored = Parameters<typeof deliveryValues>[3];

export class Writes {
  private readonly multiRowSqlCache = { deliveries: [] as string[], executions: [] as string[] };

  constructor(
    private readonly prefix: string,
    private readonly sql: Statements,
  ) {}

  /**
   * Inserts the deliveries in one transaction (or one savepoint of the host's). Inside a host
   * transaction (`host`) it writes only delivery rows, the ordering-key rows of the keys it
   * numbers, and insert-only queue signals: no row a claim or completion of another key writes.
   */
  enqueue(c: Connection, deliveries: readonly DeliveryRecord[], placeholder: string | undefined, host: boolean): EnqueueResult {
    const sql = this.sql;
    return c.transaction(() => {
      const result: EnqueueResult = { deliveries: [] };
      const seen = new Set<string>();
      const alive = new Map<string, boolean>();
      const notes = new QueueNotes();
      // Rows no later row of the batch can merge into go in multi-row INSERTs at the end.
      const plain: Array<{ d: DeliveryRecord; stored: Stored }> = [];
      for (const d of deliveries) {
        if (seen.has(d.id)) throw new StorageError(`delivery ${d.id} already exists`);
        seen.add(d.id);
        let exists = alive.get(d.webhookId);
        if (exists === undefined) {
          const { state } = c.stmt(sql.queueState).get({ id: d.webhookId }) as { state: number };
          // A webhook an older release inserted has no queue row yet: it is made here (an insert).
          if (state === 1) c.stmt(sql.makeQueue).run(d.webhookId);
          alive.set(d.webhookId, (exists = state > 0));
        }
        if (!exists) {
          // The webhook was deleted after the caller found it: cancelled, as deleting it would have.
          plain.push({ d, stored: { status: 'cancelled', body: d.body, sequence: null, lastError: WEBHOOK_DELETED, coalesceSlot: null } });
          result.deliveries.push({ id: d.id, webhookId: d.webhookId, coalesced: false, sequence: null });
          continue;
        }
        const waiting = d.status === 'pending' || d.status === 'scheduled';
        const coalesceKey = d.coalesceKey ?? null;
        if (waiting && coalesceKey !== null) {
          // A duplicate id must fail the batch, not be merged, so it is checked first.
          if (c.stmt(sql.deliveryExists).get({ id: d.id })) throw new StorageError(`delivery ${d.id} already exists`);
          const holder = c.stmt(sql.slotHolder).get(d.webhookId, coalesceKey) as { id: string; sequence: number | null } | undefined;
          if (holder) {
            // The merged delivery keeps its id, place, run time and number.
            c.stmt(sql.merge).run(withSequence(d.body, placeholder, holder.sequence), d.contentType, d.createdAt, holder.id);
            result.deliveries.push({ id: holder.id, webhookId: d.webhookId, coalesced: true, sequence: holder.sequence });
            continue;
          }
        }
        let status: DeliveryStatus = d.status;
        let sequence: number | null = null;
        const orderingKey = d.orderingKey ?? null;
        if (orderingKey !== null) {
          const given = assignSequence(c, sql, d.webhookId, orderingKey);
          sequence = given.sequence;
          // Final already (a render failure): the key moves past it at once. Waiting behind an
          // unfinished earlier one: held.
          if (!waiting && given.head) handOn(c, sql, notes, d.webhookId, orderingKey, sequence);
          else if (waiting && !given.head) status = 'held';
        }
        const stored: Stored = {
          status,
          body: withSequence(d.body, placeholder, sequence),
          sequence,
          lastError: d.lastError,
          coalesceSlot: waiting ? coalesceKey : null,
        };
        if (waiting && status !== 'held' && !d.isTest) notes.wake(d.webhookId, d.runAt);
        // A row holding a coalescing slot is inserted now: a later row of the batch may merge into it.
        if (stored.coalesceSlot !== null) c.stmt(sql.insertDelivery).run(deliveryValues([], 0, d, stored));
        else plain.push({ d, stored });
        result.deliveries.push({ id: d.id, webhookId: d.webhookId, coalesced: false, sequence });
      }
      this.insertPlain(c, plain);
      if (host) notes.signal(c, sql);
      else notes.flush(c, sql, 0);
      return result;
    });
  }

  /** Inserts in chunks of a power of two rows, so few distinct statements are prepared. */
  private insertPlain(c: Connection, rows: ReadonlyArray<{ d: DeliveryRecord; stored: Stored }>): void {
    for (let start = 0; start < rows.length; ) {
      const count = chunkSize(rows.length - start);
      const values = new Array<unknown>(count * DELIVERY_INSERT_WIDTH);
      for (let i = 0; i < count; i++) deliveryValues(values, i * DELIVERY_INSERT_WIDTH, rows[start + i]!.d, rows[start + i]!.stored);
      try {
        c.stmt(this.multiRowSql('deliveries', count)).run(values);
      } catch (error) {
        if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          // The statement was undone; name the delivery that was already there.
          const existing = rows.slice(start, start + count).find((r) => c.stmt(this.sql.deliveryExists).get({ id: r.d.id }));
          throw new StorageError(`delivery ${existing?.d.id ?? '(unknown)'} already exists`, { cause: error });
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

  /**
   * Completions as `encodeCompletions` (rows.ts) writes them, all in one transaction (one commit), each
   * item fenced by its lease token on its own.
   */
  complete(c: Connection, encoded: readonly unknown[]): boolean[] {
    const sql = this.sql;
    const count = encoded.length / COMPLETION_WIDTH;
    return c.transaction(() => {
      const notes = new QueueNotes();
      let now = 0;
      // Pushed, not preallocated: a packed array crosses the thread boundary as one block.
      const recorded: boolean[] = [];
      // The executions of the items that kept their lease, inserted together at the end.
      let values: unknown[] | null = null;
      let rows = 0;
      for (let i = 0; i < count; i++) {
        const at = i * COMPLETION_WIDTH;
        const endedAt = encoded[at + COMPLETION_ENDED_AT] as number;
        now = Math.max(now, endedAt);
        const runAt = encoded[at + COMPLETION_RUN_AT] as number | null;
        const row = c.stmt(sql.complete).get(encoded.slice(at, at + COMPLETE_PARAMS)) as
          | { webhook_id: string; is_test: number; ordering_key: string | null; sequence: number | null }
          | undefined;
        recorded.push(row !== undefined);
        if (!row) continue; // lease lost: fenced off, nothing written
        if (row.is_test === 0) {
          notes.free(row.webhook_id);
          if (runAt !== null) notes.wake(row.webhook_id, runAt, encoded[at + COMPLETION_DELIVERY_ID] as string);
        }
        // A retry keeps its key's turn; a final outcome hands the key on.
        if (runAt === null && row.ordering_key !== null && row.sequence !== null) {
          handOn(c, sql, notes, row.webhook_id, row.ordering_key, row.sequence);
        }
        values ??= new Array<unknown>(count * EXECUTION_WIDTH);
        const to = rows * EXECUTION_WIDTH;
        for (let k = 0; k < EXECUTION_WIDTH; k++) values[to + k] = encoded[at + COMPLETE_PARAMS + k];
        values[to + EXECUTION_REQUEST_HEADERS] = JSON.stringify(values[to + EXECUTION_REQUEST_HEADERS]);
        values[to + EXECUTION_RESPONSE_HEADERS] = JSON.stringify(values[to + EXECUTION_RESPONSE_HEADERS]);
        rows++;
      }
      notes.flush(c, sql, now);
      for (let start = 0; start < rows; ) {
        const size = chunkSize(rows - start);
        const chunk = size * EXECUTION_WIDTH === values!.length ? values! : values!.slice(start * EXECUTION_WIDTH, (start + size) * EXECUTION_WIDTH);
        c.stmt(this.multiRowSql('executions', size)).run(chunk);
        start += size;
      }
      return recorded;
    });
  }

  release(c: Connection, deliveryId: string, leaseToken: string, runAt: number | null, now: number): boolean {
    const sql = this.sql;
    return c.transaction(() => {
      const row = c.stmt(sql.release).get({ id: deliveryId, leaseToken, runAt }) as { webhook_id: string; is_test: number; run_at: number } | undefined;
      if (!row) return false;
      if (row.is_test === 0) {
        const notes = new QueueNotes();
        notes.free(row.webhook_id);
        notes.wake(row.webhook_id, row.run_at, deliveryId);
        notes.flush(c, sql, now);
      }
      return true;
    });
  }

  cancel(c: Connection, deliveryId: string, leaseToken: string | null, reason: string | null, now: number): boolean {
    const sql = this.sql;
    return c.transaction(() => {
      const before = c.stmt(sql.statusOf).get({ id: deliveryId }) as { status: DeliveryStatus } | undefined;
      if (!before) return false;
      const row = c.stmt(sql.cancel).get({ id: deliveryId, leaseToken, reason, now }) as
        | { webhook_id: string; is_test: number; ordering_key: string | null; sequence: number | null }
        | undefined;
      if (!row) return false;
      const notes = new QueueNotes();
      if (before.status === 'delivering' && row.is_test === 0) notes.free(row.webhook_id);
      // Only a key's head is out of `held`: cancelling it lets the next one out.
      if (before.status !== 'held' && row.ordering_key !== null && row.sequence !== null) {
        handOn(c, sql, notes, row.webhook_id, row.ordering_key, row.sequence);
      }
      notes.flush(c, sql, now);
      return true;
    });
  }

  requeue(c: Connection, request: RequeueRequest): string[] {
    const sql = this.sql;
    return c.transaction(() => {
      let candidates: readonly string[];
      if (request.deliveryIds) {
        candidates = request.deliveryIds;
      } else {
        const conditions = [FINAL, 'status IN (SELECT value FROM json_each(@statuses))'];
        if (request.webhookId !== undefined) conditions.push('webhook_id = @webhookId');
        if (request.tenantId !== undefined) conditions.push('tenant_id = @tenantId');
        if (request.since !== undefined) conditions.push('updated_at >= @since');
        const rows = c.stmt(`SELECT id FROM ${this.prefix}deliveries${where(conditions)} ORDER BY id`).all({
          statuses: JSON.stringify(request.statuses ?? ['failed']),
          webhookId: request.webhookId ?? null,
          tenantId: request.tenantId ?? null,
          since: request.since ?? null,
        }) as Array<{ id: string }>;
        candidates = rows.map((r) => r.id);
      }
      const notes = new QueueNotes();
      const requeued: string[] = [];
      for (const id of candidates) {
        // Out of ordering (the key has moved on; its number is kept).
        const row = c.stmt(sql.requeue).get({ id, runAt: request.runAt, now: request.now }) as
          | { webhook_id: string; coalesce_key: string | null; is_test: number }
          | undefined;
        if (!row) continue; // not final, gone, or its webhook was deleted
        if (row.coalesce_key !== null) {
          // The requeued delivery absorbs later emits for its key from now on.
          const slot = { id, webhookId: row.webhook_id, key: row.coalesce_key };
          c.stmt(sql.releaseSlot).run(slot);
          c.stmt(sql.takeSlot).run(slot);
        }
        if (row.is_test === 0) notes.wake(row.webhook_id, request.runAt);
        requeued.push(id);
      }
      notes.flush(c, sql, request.now);
      return requeued;
    });
  }
}
