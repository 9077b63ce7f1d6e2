/**
 * Table names and migrations of the Postgres adapter, and the schema version check.
 *
 * Migrations are append-only: a released version is never edited, a change is a new version.
 *
 * @module
 */
import { SchemaMismatchError } from '../../errors.js';
import { num, type Row } from '../sql/records.js';
import type { PostgresQueryable } from './driver.js';
import { completeFunctionSql } from './completion.js';
import { claimFunctionSql, SCAN_FROM_START } from './queue-sql.js';

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION = 3;

/** Quoted, schema-qualified names of the adapter's tables, for one schema and prefix. */
export interface Names {
  schema: string;
  migrations: string;
  webhooks: string;
  triggers: string;
  deliveries: string;
  executions: string;
  /** One row per webhook: its queue's settings, counters and claim state. */
  queues: string;
  /** Ordering keys: the last sequence given out and the one whose turn it is. */
  keys: string;
  /** Insert-only notes "this queue may have work due at run_at", consumed by claims. */
  signals: string;
  /** Key hand-overs a completion could not make at once (the key row was locked). */
  keySignals: string;
  /** Turn numbers of ready queues (ties of `ready_at`). */
  turns: string;
  /** Unquoted prefixed name, for index names. */
  raw: (name: string) => string;
}

export function names(schema: string, tablePrefix: string): Names {
  const table = (name: string) => `"${schema}"."${tablePrefix}${name}"`;
  return {
    schema: `"${schema}"`,
    migrations: table('migrations'),
    webhooks: table('webhooks'),
    triggers: table('webhook_triggers'),
    deliveries: table('deliveries'),
    executions: table('executions'),
    queues: table('queues'),
    keys: table('ordering_keys'),
    signals: table('queue_signals'),
    keySignals: table('key_signals'),
    turns: table('queue_turns'),
    raw: (name) => `${tablePrefix}${name}`,
  };
}

interface Migration {
  version: number;
  name: string;
  statements: (n: Names) => string[];
}

const CLAIMABLE_SQL = `('pending', 'scheduled')`;
const FINAL_SQL = `('succeeded', 'failed', 'cancelled')`;

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
  {
    version: 3,
    name: 'per-webhook queues: caps, rate limits, pauses, ordering keys',
    statements: (n) => [
      `ALTER TABLE ${n.deliveries} DROP CONSTRAINT IF EXISTS "${n.raw('deliveries_status_check')}"`,
      `ALTER TABLE ${n.deliveries} ADD CONSTRAINT "${n.raw('deliveries_status_check')}"
        CHECK (status IN ('pending', 'scheduled', 'held', 'delivering', 'succeeded', 'failed', 'cancelled'))`,
      `ALTER TABLE ${n.deliveries} ADD COLUMN ordering_key text, ADD COLUMN sequence bigint`,
      // The global claim order is gone: a claim reads each queue through its own index.
      `DROP INDEX ${n.schema}."${n.raw('deliveries_claim_idx')}"`,
      `DROP INDEX ${n.schema}."${n.raw('deliveries_run_at_idx')}"`,
      // Waiting work of one queue in claim order; held and test rows stay out of it.
      `CREATE INDEX "${n.raw('deliveries_queue_idx')}" ON ${n.deliveries} (webhook_id, run_at, id)
        WHERE status IN ${CLAIMABLE_SQL} AND NOT is_test`,
      // Leases of one queue: its expired ones, to take over (deliveries_lease_idx finds the queues).
      `CREATE INDEX "${n.raw('deliveries_leased_idx')}" ON ${n.deliveries} (webhook_id, lease_expires_at)
        WHERE status = 'delivering' AND NOT is_test`,
      // Test sends go first, outside the queues.
      `CREATE INDEX "${n.raw('deliveries_tests_idx')}" ON ${n.deliveries} (run_at, id)
        WHERE is_test AND status IN ('pending', 'scheduled', 'delivering')`,
      // The next delivery of a key, when the one in front finishes.
      `CREATE INDEX "${n.raw('deliveries_held_idx')}" ON ${n.deliveries} (webhook_id, ordering_key, sequence)
        WHERE status = 'held'`,
      // Claim state of each webhook's queue. A queue is ready (ready_at set: it can give something
      // now), waiting (wake_at set: it may at that time), full (full_cap: waiting for a completion,
      // or a claim with a higher default cap), or idle (none: nothing waits).
      `CREATE TABLE ${n.queues} (
        webhook_id text COLLATE "C" PRIMARY KEY,
        priority integer NOT NULL DEFAULT 0,
        cap integer,
        rate numeric,
        burst numeric,
        tokens numeric NOT NULL DEFAULT 0,
        clock bigint NOT NULL DEFAULT 0,
        in_flight integer NOT NULL DEFAULT 0,
        paused_until bigint,
        ready_at bigint,
        ready_turn bigint,
        wake_at bigint,
        full_cap integer,
        -- Every claimable row of the queue has run_at >= scan_from. Claims start their index scans
        -- there: the rows they took stay in the index as dead entries until VACUUM, and a scan
        -- from the start of the queue would step over all of them. Lowered by the promotion of
        -- every signal (every row that becomes claimable leaves one), raised by claims.
        scan_from bigint NOT NULL DEFAULT ${SCAN_FROM_START}
      )`,
      `CREATE INDEX "${n.raw('queues_ready_idx')}" ON ${n.queues} (priority DESC, ready_at, ready_turn) WHERE ready_at IS NOT NULL`,
      `CREATE INDEX "${n.raw('queues_wake_idx')}" ON ${n.queues} (wake_at) WHERE wake_at IS NOT NULL`,
      `CREATE INDEX "${n.raw('queues_full_idx')}" ON ${n.queues} (full_cap) WHERE full_cap IS NOT NULL AND cap IS NULL`,
      `CREATE SEQUENCE ${n.turns}`,
      // freed > 0: that many places given back (run_at 0), for the next promotion to count.
      `CREATE TABLE ${n.signals} (webhook_id text COLLATE "C" NOT NULL, run_at bigint NOT NULL, freed integer NOT NULL DEFAULT 0)`,
      `CREATE INDEX "${n.raw('queue_signals_run_at_idx')}" ON ${n.signals} (run_at)`,
      `CREATE TABLE ${n.keys} (
        webhook_id text COLLATE "C" NOT NULL,
        key text NOT NULL,
        last_seq bigint NOT NULL,
        head_seq bigint,
        CONSTRAINT "${n.raw('ordering_keys_pkey')}" PRIMARY KEY (webhook_id, key)
      )`,
      `CREATE TABLE ${n.keySignals} (webhook_id text COLLATE "C" NOT NULL, key text NOT NULL, sequence bigint NOT NULL)`,
      // Every webhook gets its queue, with its settings (absent from older records: defaults).
      `INSERT INTO ${n.queues} (webhook_id, priority, cap, rate, burst, tokens)
       SELECT id, COALESCE((record->>'priority')::int, 0), (record->>'concurrency')::int,
         (record->'rateLimit'->>'perSecond')::numeric,
         COALESCE((record->'rateLimit'->>'burst')::numeric, (record->'rateLimit'->>'perSecond')::numeric),
         COALESCE((record->'rateLimit'->>'burst')::numeric, (record->'rateLimit'->>'perSecond')::numeric, 0)
       FROM ${n.webhooks}`,
      // The claim and the completion, each in one round trip and planned once (see queue-sql.ts, completion.ts).
      claimFunctionSql(n),
      completeFunctionSql(n),
      // Queued work of a webhook that is gone is still claimed (and then cancelled by the dispatcher).
      `INSERT INTO ${n.queues} (webhook_id)
       SELECT DISTINCT webhook_id FROM ${n.deliveries} WHERE status IN ('pending', 'scheduled', 'delivering') AND NOT is_test
       ON CONFLICT DO NOTHING`,
      // Deliveries in flight hold their places; each queue with work wakes at its first due row (or
      // lease expiry), so the first claim at or after it serves it.
      `UPDATE ${n.queues} q SET in_flight = s.n, wake_at = s.at
       FROM (
         SELECT webhook_id, (count(*) FILTER (WHERE status = 'delivering'))::int AS n,
           min(CASE WHEN status = 'delivering' THEN lease_expires_at ELSE run_at END) AS at
         FROM ${n.deliveries} WHERE status IN ('pending', 'scheduled', 'delivering') AND NOT is_test
         GROUP BY webhook_id
       ) s
       WHERE q.webhook_id = s.webhook_id`,
    ],
  },
];

if (MIGRATIONS[MIGRATIONS.length - 1]!.version !== SCHEMA_VERSION) throw new Error('SCHEMA_VERSION is not the last migration');

/** The schema version of the database: 0 when the tables are not there. */
export async function databaseVersion(q: PostgresQueryable, n: Names): Promise<number> {
  try {
    const result = await q.query(`SELECT COALESCE(max(version), 0) AS v FROM ${n.migrations}`);
    return num((result.rows[0] as Row | undefined)?.v ?? 0);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // undefined_table, invalid_schema_name: never migrated.
    if (code === '42P01' || code === '3F000') return 0;
    throw error;
  }
}

/** The error a process refuses with when the database is at another version. */
export function mismatch(version: number): SchemaMismatchError {
  const message =
    version > SCHEMA_VERSION
      ? `the database schema is at version ${version}, newer than this code's ${SCHEMA_VERSION}: another process runs a later ` +
        'webhook-dispatcher; upgrade this process before it claims or writes'
      : `the database schema is at version ${version}, this code expects ${SCHEMA_VERSION}: call storage.migrate() first` +
        (version > 0 ? ' (and stop processes running an older webhook-dispatcher, which do not check the version)' : '');
  return new SchemaMismatchError(`PostgresStorage: ${message}`, version, SCHEMA_VERSION);
}

/**
 * Creates the schema (when missing) and applies the missing migrations, inside the caller's
 * transaction, under an advisory lock: concurrent callers wait and then find nothing to do.
 * Refuses a database newer than this code.
 */
export async function runMigrations(client: PostgresQueryable, n: Names, schema: string): Promise<void> {
  // Keyed on the schema, not the prefix: adapters with different prefixes may race to create it.
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`webhook-dispatcher:migrate:${schema}`]);
  // CREATE SCHEMA needs the CREATE privilege on the database even with IF NOT EXISTS: skip it when present.
  const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  if (exists.rows.length === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS ${n.schema}`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${n.migrations} (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`,
  );
  const applied = await client.query(`SELECT version FROM ${n.migrations}`);
  const done = new Set((applied.rows as Row[]).map((r) => num(r.version)));
  const newest = Math.max(0, ...done);
  if (newest > SCHEMA_VERSION) throw mismatch(newest);
  for (const migration of MIGRATIONS) {
    if (done.has(migration.version)) continue;
    for (const statement of migration.statements(n)) await client.query(statement);
    await client.query(`INSERT INTO ${n.migrations} (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
  }
}
