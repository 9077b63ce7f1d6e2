/**
 * The SQLite schema: its migrations (versions only grow; an applied migration is never edited),
 * applying them, and the check every process makes before its first read or write that the
 * database is at the version its code was written for.
 *
 * @module
 */
import { SchemaMismatchError } from '../../errors.js';
import type { Connection } from './connection.js';

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

  {
    // Per-webhook queues (issue 17). A claim no longer walks one global priority index skipping
    // saturated endpoints: it takes ready queues from `queues` and, from each, due rows through
    // `deliveries_queue`, whose entries are one webhook's waiting rows in run_at order.
    // - queues: one row per webhook. `turn` is set while the queue is ready (its place in the
    //   round of its priority); `wake_at` is, while it is not, when to look at it again (a due
    //   retry, the end of a pause, the next token), and while it is, the earliest time it may give
    //   (for nextRunAt); `blocked_at` marks a queue that stopped at its cap (a freed place readies
    //   it, and so does a claim whose defaultConcurrency leaves room above a queue without a cap
    //   of its own). The token bucket is kept as the time it is full again (`bucket_full_at`) and the
    //   latest claim clock (`bucket_clock`): refills are then exact for any rate.
    // - ordering_keys: per (webhook, key) the last sequence given out and the sequence of the
    //   key's head (the one unfinished delivery allowed out); the others are 'held', outside the
    //   claim index.
    // - queue_signals: an enqueue inside a host transaction inserts one instead of updating the
    //   queue row, so it takes no row other claims or completions of that webhook write; the
    //   next claim consumes them.
    // - deliveries_due goes: its order (delivery priority first) is not the claim order any more,
    //   and a process still running schema 2 code fails on it ("no such index") instead of
    //   claiming past the queues' counters.
    // Queued deliveries move in place: their queue counts those in flight and wakes at the
    // earliest waiting one. Waiting deliveries of webhooks that no longer exist are cancelled, as
    // deleting the webhook would have done.
    // - written_by: the schema version of the code that last inserted the row or took it out of
    //   flight. Processes of the previous release have no version check and may still run
    //   during a rolling upgrade: their claims fail (deliveries_due is gone), but their emits,
    //   retries, releases and completions of attempts already in flight would leave queue
    //   counters and wake-ups behind. Triggers fire for exactly those writes (written_by NULL)
    //   and do what this release's code does itself: signal the queue, free the place.
    version: 3,
    sql: (p) => `
      ALTER TABLE ${p}deliveries ADD COLUMN ordering_key TEXT;
      ALTER TABLE ${p}deliveries ADD COLUMN sequence INTEGER;
      ALTER TABLE ${p}deliveries ADD COLUMN written_by INTEGER;
      DROP INDEX ${p}deliveries_due;
      CREATE INDEX ${p}deliveries_queue ON ${p}deliveries (webhook_id, run_at, id)
        WHERE status IN ('pending', 'scheduled') AND is_test = 0;
      CREATE INDEX ${p}deliveries_tests ON ${p}deliveries (run_at, id)
        WHERE status IN ('pending', 'scheduled') AND is_test = 1;
      CREATE INDEX ${p}deliveries_held ON ${p}deliveries (webhook_id, ordering_key, sequence) WHERE status = 'held';

      CREATE TABLE ${p}queues (
        webhook_id TEXT PRIMARY KEY NOT NULL,
        priority INTEGER NOT NULL,
        cap INTEGER,
        rate_per_second REAL,
        rate_burst REAL,
        bucket_full_at REAL,
        bucket_clock INTEGER,
        paused_until INTEGER,
        in_flight INTEGER NOT NULL DEFAULT 0,
        turn INTEGER,
        wake_at INTEGER,
        blocked_at INTEGER
      );
      CREATE INDEX ${p}queues_ready ON ${p}queues (priority DESC, turn) WHERE turn IS NOT NULL;
      CREATE INDEX ${p}queues_ready_at ON ${p}queues (wake_at) WHERE turn IS NOT NULL;
      CREATE INDEX ${p}queues_waiting ON ${p}queues (wake_at) WHERE turn IS NULL AND wake_at IS NOT NULL;
      CREATE INDEX ${p}queues_blocked_default ON ${p}queues (in_flight) WHERE blocked_at IS NOT NULL AND cap IS NULL;

      CREATE TABLE ${p}ordering_keys (
        webhook_id TEXT NOT NULL,
        key TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        next_seq INTEGER NOT NULL,
        PRIMARY KEY (webhook_id, key)
      ) WITHOUT ROWID;

      CREATE TABLE ${p}queue_signals (webhook_id TEXT NOT NULL, run_at INTEGER NOT NULL);
      CREATE INDEX ${p}queue_signals_run_at ON ${p}queue_signals (run_at);

      UPDATE ${p}webhooks SET record = json_insert(record, '$.concurrency', NULL, '$.rateLimit', NULL, '$.ordering', 'none');

      UPDATE ${p}deliveries SET status = 'cancelled', last_error = 'webhook was deleted', coalesce_slot = NULL,
          updated_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
        WHERE status IN ('pending', 'scheduled') AND is_test = 0
          AND NOT EXISTS (SELECT 1 FROM ${p}webhooks w WHERE w.id = ${p}deliveries.webhook_id);

      INSERT INTO ${p}queues (webhook_id, priority, in_flight, wake_at)
        SELECT w.id, coalesce(json_extract(w.record, '$.priority'), 0),
          (SELECT count(*) FROM ${p}deliveries d WHERE d.webhook_id = w.id AND d.status = 'delivering' AND d.is_test = 0),
          (SELECT min(d.run_at) FROM ${p}deliveries d WHERE d.webhook_id = w.id AND d.status IN ('pending', 'scheduled') AND d.is_test = 0)
        FROM ${p}webhooks w;

      CREATE TRIGGER ${p}deliveries_unqueued_insert AFTER INSERT ON ${p}deliveries
        WHEN NEW.written_by IS NULL AND NEW.status IN ('pending', 'scheduled') AND NEW.is_test = 0
      BEGIN
        INSERT INTO ${p}queue_signals (webhook_id, run_at) VALUES (NEW.webhook_id, NEW.run_at);
      END;
      CREATE TRIGGER ${p}deliveries_unqueued_landing AFTER UPDATE OF status ON ${p}deliveries
        WHEN NEW.written_by IS NULL AND OLD.status = 'delivering' AND NEW.status <> 'delivering' AND NEW.is_test = 0
      BEGIN
        UPDATE ${p}queues SET in_flight = max(0, in_flight - 1) WHERE webhook_id = NEW.webhook_id;
        INSERT INTO ${p}queue_signals (webhook_id, run_at) VALUES (NEW.webhook_id, NEW.run_at);
      END;
    `,
  },
];

/** The schema version this build reads and writes. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The version the database is at for tables with prefix `p`: 0 without a migrations table. */
function databaseVersion(c: Connection, p: string): number {
  const table = c.stmt(`SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?`).get(`${p}migrations`);
  if (!table) return 0;
  const row = c.stmt(`SELECT max(version) AS version FROM ${p}migrations`).get() as { version: number | null };
  return row.version ?? 0;
}

function mismatch(found: number, p: string): SchemaMismatchError {
  const expected = SQLITE_SCHEMA_VERSION;
  const message =
    found > expected
      ? `SqliteStorage: the database (tables ${p}*) is at schema version ${found}, newer than version ${expected} this process was ` +
        `built for: another process runs a later webhook-dispatcher; upgrade this process before it reads or writes anything`
      : found === 0
        ? `SqliteStorage: the database has no webhook-dispatcher schema (tables ${p}*); call migrate() first`
        : `SqliteStorage: the database (tables ${p}*) is at schema version ${found}, older than version ${expected} this process ` +
          `needs; call migrate() first`;
  return new SchemaMismatchError(message, found, expected);
}

/**
 * Throws {@link SchemaMismatchError} unless the database is at {@link SQLITE_SCHEMA_VERSION}.
 * Checked once per connection and prefix (two reads), before the first other statement.
 */
export function checkSchema(c: Connection, p: string): void {
  if (c.checkedPrefixes.has(p)) return;
  const found = databaseVersion(c, p);
  if (found !== SQLITE_SCHEMA_VERSION) throw mismatch(found, p);
  c.checkedPrefixes.add(p);
}

/**
 * Applies every migration not yet recorded in `<prefix>migrations`, all in one `BEGIN IMMEDIATE`
 * transaction, so concurrent callers in several processes apply each migration once. Refuses a
 * database newer than this build (its code would not know what the newer schema requires).
 */
export function migrate(c: Connection, p: string): void {
  const db = c.db;
  c.transaction(() => {
    const found = databaseVersion(c, p);
    if (found > SQLITE_SCHEMA_VERSION) throw mismatch(found, p);
    db.exec(`CREATE TABLE IF NOT EXISTS ${p}migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)`);
    const applied = new Set((db.prepare(`SELECT version FROM ${p}migrations`).all() as Array<{ version: number }>).map((r) => r.version));
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql(p));
      db.prepare(`INSERT INTO ${p}migrations (version, applied_at) VALUES (?, ?)`).run(migration.version, Date.now());
    }
  });
  c.checkedPrefixes.add(p);
}
