/**
 * The SQLite schema as released before per-webhook queues (schema version 2, branch main at
 * 4558287), copied verbatim from that release's migrations and frozen here: upgrade tests build a
 * database exactly as a deployed process left it, whatever the adapter's migrations become.
 * Never edit this file to follow the adapter.
 */
import type Database from 'better-sqlite3';

const MAIN_MIGRATIONS: ReadonlyArray<{ version: number; sql: (p: string) => string }> = [
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

/** Creates the version-2 schema with table prefix `p`, as `migrate()` of that release did. */
export function createSchemaV2(db: Database.Database, p = 'webhook_'): void {
  db.exec(`CREATE TABLE IF NOT EXISTS ${p}migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)`);
  for (const migration of MAIN_MIGRATIONS) {
    db.exec(migration.sql(p));
    db.prepare(`INSERT INTO ${p}migrations (version, applied_at) VALUES (?, ?)`).run(migration.version, Date.UTC(2029, 0, 1));
  }
}

/**
 * Write statements of that release's adapter, verbatim (prefix `webhook_`): what a process still
 * running it does to an upgraded database during a rolling upgrade. Its claims name
 * `deliveries_due`, which migration 3 drops, so they fail; these do not.
 */
export const V2_WRITES = {
  insertWebhook:
    `INSERT INTO webhook_webhooks (id, tenant_id, enabled, created_at, record) ` + `VALUES (@id, @tenantId, @enabled, @createdAt, @record)`,
  // Positional, in the order of the release's DELIVERY_INSERT_COLUMNS.
  enqueue:
    `INSERT INTO webhook_deliveries (id, webhook_id, tenant_id, entity, event, endpoint, priority, body, content_type, status, attempts, run_at, ` +
    `created_at, updated_at, last_status, last_error, is_test, coalesce_key, coalesced_count, coalesce_slot) VALUES (${new Array<string>(20).fill('?').join(', ')}) ` +
    `ON CONFLICT (webhook_id, coalesce_slot) WHERE coalesce_slot IS NOT NULL DO UPDATE SET ` +
    `body = excluded.body, content_type = excluded.content_type, coalesced_count = coalesced_count + 1, ` +
    `updated_at = excluded.created_at ` +
    `RETURNING id`,
  claimAtLevel:
    `UPDATE webhook_deliveries SET status = 'delivering', lease_token = lower(hex(randomblob(16))), lease_expires_at = @leaseExpiresAt, ` +
    `updated_at = @now, coalesce_slot = NULL WHERE id IN (` +
    `SELECT id FROM webhook_deliveries INDEXED BY webhook_deliveries_due WHERE status IN ('pending', 'scheduled') AND priority = @priority AND run_at <= @now ` +
    `ORDER BY run_at, created_at, id LIMIT @limit) RETURNING id, lease_token`,
  // Positional: status, runAt, lastStatus, lastError, updatedAt, id, leaseToken.
  complete:
    `UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, run_at = COALESCE(?, run_at), ` +
    `last_status = ?, last_error = ?, updated_at = ?, lease_token = NULL, lease_expires_at = NULL ` +
    `WHERE id = ? AND status = 'delivering' AND lease_token = ?`,
  release:
    `UPDATE webhook_deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, ` +
    `run_at = COALESCE(@runAt, run_at), lease_token = NULL, lease_expires_at = NULL ` +
    `WHERE id = @id AND status = 'delivering' AND lease_token = @leaseToken`,
};
