/**
 * The statements behind the per-webhook queues: promotion (due signals, expired leases,
 * wake-ups), the claim, the shared tail of every write that ends or returns a delivery (freed
 * places, signals, key hand-over), the deferred key hand-overs, `nextRunAt` and the queue figures.
 *
 * Lock order, so no two of these deadlock: several queue rows are always locked in `webhook_id`
 * order, in one statement (a claim locks them in its first statement after hand-overs, which wait
 * for no queue row; completions lock none: a freed place is a signal); a claim never waits for a
 * delivery row while it holds queue rows (SKIP LOCKED); ordering key rows are taken with SKIP
 * LOCKED by hand-overs (a key held by a host transaction defers its hand-over to a `key_signals`
 * row instead of waiting).
 *
 * Every row that becomes claimable, and every place given back, leaves a signal (insert-only), so
 * no queue state judged by a claim can strand work: a claim decides from a snapshot taken while it
 * holds the queue rows, and what becomes claimable (or free) after waits as a signal until the
 * next promotion.
 *
 * Every time is a parameter (the dispatcher's clock), never the database's `now()`.
 *
 * @module
 */
import { CLAIMABLE, statusIn } from '../sql/fragments.js';
import { DELIVERY_COLUMNS } from '../sql/records.js';
import { CLAIMABLE_STATUSES } from '../types.js';
import type { Names } from './schema.js';

/** Largest int4: "no limit" for rooms that a cap or a bucket does not bound. */
const NO_LIMIT = 2_147_483_647;

/** `scan_from` of a queue whose rows have not been seen yet (a new or migrated queue): no bound. */
export const SCAN_FROM_START = '-9223372036854775808';
/** `scan_from` of a queue with no claimable row: the next signal lowers it. */
const SCAN_FROM_END = '9223372036854775807';

/** The queue columns a claim reads. */
const QUEUE_COLUMNS = ['webhook_id', 'priority', 'cap', 'rate', 'burst', 'tokens', 'clock', 'in_flight', 'paused_until', 'ready_at', 'ready_turn', 'scan_from']
  .map((c) => `q.${c}`)
  .join(', ');

/**
 * Ready queues a claim looks at beyond its limit. Readiness is hopeful: a webhook update, a pause's
 * end or a wake-up makes a queue ready that may have nothing due after all, and a claim that
 * looked only at as many queues as its limit could come back short while other queues had due
 * work (and an idle pump would then sleep a poll interval). Each spare costs a probe of its index.
 */
const SPARE_QUEUES = 4;

/** Signals and wake-ups consumed by one promotion: the rest wait for the next claim. */
const PROMOTE_BATCH = 5_000;

/**
 * The first statement of a claim's transaction (after deferred hand-overs): locks, in
 * `webhook_id` order, the queues it may serve (`$2` limit, `$4` default cap) — ready ones by
 * priority and turn, and full ones a higher default cap opens — together with those that have
 * signals, wake-ups or expired leases due at `$1`, and promotes these: consumes their signals,
 * takes the places that freed-place signals give back off `in_flight`, and makes ready the queues
 * with work due (signals of rows that became claimable: enqueues, retries, releases, requeues,
 * hand-overs; in a sweep, expired leases, found through the global lease index: a crashed owner
 * completes nothing; wake-ups: pause ends, next tokens) and the full ones that got places back
 * (ready since their last claim, as they would have been but for the cap). Lowers each signalled
 * queue's `scan_from` to its earliest signal. Returns the ids of the locked queues in one array.
 * The claim statement runs after, so its snapshot is taken with these rows
 * held: everything that changed them before is in it, and everything after waits.
 */
export function lockAndPromoteSql(n: Names, sweep: string): string {
  const openable = (q: string) => `${q}full_cap IS NOT NULL AND ${q}cap IS NULL AND ${q}full_cap < $4::int AND ${q}ready_at IS NULL`;
  return `WITH due AS (
      SELECT ctid AS tid, webhook_id FROM ${n.signals} WHERE run_at <= $1::bigint ORDER BY run_at LIMIT ${PROMOTE_BATCH}
    ), woke AS (
      SELECT webhook_id, wake_at AS at FROM ${n.queues} WHERE wake_at <= $1 ORDER BY wake_at LIMIT ${PROMOTE_BATCH}
    ), lapsed AS (
      -- Only in a sweep (see claimSql). Through the global lease index, from its start: test sends
      -- are dropped after the limit, as a filter on them would let the plan read the per-queue
      -- lease index in full instead.
      SELECT webhook_id, at FROM (
        SELECT webhook_id, lease_expires_at AS at, is_test FROM ${n.deliveries}
        WHERE ${sweep} AND status = 'delivering' AND lease_expires_at <= $1 ORDER BY lease_expires_at LIMIT ${PROMOTE_BATCH}
      ) l WHERE NOT is_test
    ), wanted AS (
      SELECT webhook_id FROM due UNION SELECT webhook_id FROM woke UNION SELECT webhook_id FROM lapsed
    ), candidates AS (
      SELECT webhook_id FROM wanted
      UNION (SELECT webhook_id FROM ${n.queues} WHERE ready_at IS NOT NULL ORDER BY priority DESC, ready_at, ready_turn LIMIT $2::int + ${SPARE_QUEUES})
      UNION (SELECT webhook_id FROM ${n.queues} WHERE ${openable('')} LIMIT $2)
    ), locked AS (
      SELECT q.webhook_id, q.ready_at, q.full_cap FROM ${n.queues} q
      WHERE q.webhook_id IN (SELECT webhook_id FROM candidates)
        -- Rechecked on the latest row after waiting for it: another claim may have served it.
        AND (q.ready_at IS NOT NULL OR (${openable('q.')}) OR q.webhook_id IN (SELECT webhook_id FROM wanted))
      ORDER BY q.webhook_id FOR UPDATE
    ), consumed AS (
      -- Only what is deleted here counts: a claim that waited for these rows may find its signals gone.
      DELETE FROM ${n.signals} s USING due
      WHERE s.ctid = due.tid AND (due.webhook_id IN (SELECT webhook_id FROM locked)
        OR NOT EXISTS (SELECT 1 FROM ${n.queues} q WHERE q.webhook_id = due.webhook_id))
      RETURNING s.webhook_id, s.run_at, s.freed
    ), targets AS (
      SELECT x.webhook_id, min(x.at) FILTER (WHERE x.freed = 0) AS at, sum(x.freed)::int AS freed,
        -- The earliest row made claimable: the claim must scan from there.
        min(x.at) FILTER (WHERE x.signal AND x.freed = 0) AS claimable_from,
        l.ready_at IS NULL AND (min(x.at) FILTER (WHERE x.freed = 0) IS NOT NULL OR l.full_cap IS NOT NULL) AS wake
      FROM (
        SELECT webhook_id, run_at AS at, freed, true AS signal FROM consumed
        UNION ALL SELECT webhook_id, at, 0, false FROM woke UNION ALL SELECT webhook_id, at, 0, false FROM lapsed
      ) x JOIN locked l USING (webhook_id)
      GROUP BY x.webhook_id, l.ready_at, l.full_cap
    ), promoted AS (
      UPDATE ${n.queues} q SET in_flight = GREATEST(0, q.in_flight - t.freed),
        ready_at = CASE WHEN t.wake THEN COALESCE(t.at, q.clock) ELSE q.ready_at END,
        ready_turn = CASE WHEN t.wake THEN nextval('${n.turns}') ELSE q.ready_turn END,
        wake_at = CASE WHEN t.wake THEN NULL ELSE q.wake_at END,
        full_cap = CASE WHEN t.wake THEN NULL ELSE q.full_cap END,
        scan_from = LEAST(q.scan_from, t.claimable_from)
      FROM targets t
      WHERE q.webhook_id = t.webhook_id AND (t.wake OR t.freed > 0 OR t.claimable_from < q.scan_from)
    )
    SELECT COALESCE(array_agg(webhook_id), '{}') FROM locked`;
}

/**
 * The claim, inside the transaction that locked its queues (`$5`: those it may serve and those its
 * promotion made ready): `$1` now, `$2` limit, `$3` lease ms, `$4` default cap, `sweep` (`$6`
 * here). Test sends first (their own index); then the first `$2` ready queues by priority and turn
 * (and full ones a higher default cap opens), each giving its first due rows (from its
 * `scan_from`; in a sweep, expired leases too) up to `min(cap − live, whole tokens)`, the whole
 * cut at the limit in that order; then each reached queue's new state in the same statement (it
 * reads the snapshot before its own lease, so the next due row is found past the ones it took,
 * and becomes the queue's `scan_from`). Rows that become claimable after its snapshot leave a
 * signal that no promotion can consume before this transaction ends.
 *
 * Why `sweep`: a row that leaves 'delivering' keeps its entries in the lease indexes until
 * VACUUM, and each one whose lease time has passed is stepped over by every look for expired
 * leases. Those looks (here and in the promotion) run only when the caller asks, a few times per
 * lease, instead of in every claim: expired leases are found at most one sweep interval later.
 */
export function claimSql(n: Names, sweep = '$6::boolean'): string {
  const D = n.deliveries;
  return `WITH tests AS (
      SELECT id FROM ${D}
      WHERE is_test AND status IN ('pending', 'scheduled', 'delivering') AND run_at <= $1::bigint
        AND (status <> 'delivering' OR lease_expires_at <= $1)
      ORDER BY run_at, id LIMIT $2::int FOR UPDATE SKIP LOCKED
    ), budget AS (
      SELECT GREATEST(0, $2 - (SELECT count(*) FROM tests))::int AS n
    ), picked AS (
      (SELECT ${QUEUE_COLUMNS}
      FROM ${n.queues} q WHERE q.webhook_id = ANY ($5::text[]) AND q.ready_at IS NOT NULL
      ORDER BY q.priority DESC, q.ready_at, q.ready_turn LIMIT $2 + ${SPARE_QUEUES})
      UNION ALL
      (SELECT ${QUEUE_COLUMNS}
      FROM ${n.queues} q WHERE q.webhook_id = ANY ($5::text[])
        AND q.ready_at IS NULL AND q.full_cap IS NOT NULL AND q.cap IS NULL AND q.full_cap < $4 LIMIT $2)
    ), slots AS (
      SELECT p.*, e.expired,
        row_number() OVER (ORDER BY p.priority DESC, COALESCE(p.ready_at, p.clock), p.ready_turn NULLS LAST, p.webhook_id) AS rank,
        CASE WHEN p.rate IS NULL THEN NULL ELSE LEAST(p.burst, p.tokens + GREATEST(0, $1 - p.clock) * p.rate / 1000) END AS refilled
      FROM picked p CROSS JOIN LATERAL (
        SELECT count(*)::int AS expired FROM ${D} d
        WHERE ${sweep} AND d.webhook_id = p.webhook_id AND d.status = 'delivering' AND NOT d.is_test AND d.lease_expires_at <= $1
      ) e
    ), rooms AS (
      SELECT s.*, GREATEST(0, LEAST(
          COALESCE(s.cap, $4) - (s.in_flight - s.expired),
          CASE WHEN s.rate IS NULL THEN ${NO_LIMIT} ELSE floor(s.refilled) END,
          CASE WHEN s.paused_until > $1 THEN 0 ELSE ${NO_LIMIT} END,
          -- Never more than the claim can take: rows are locked before the cut at the limit.
          (SELECT n FROM budget)
        ))::int AS room
      FROM slots s ORDER BY s.rank
    ), taken AS (
      SELECT r.webhook_id, r.rank, x.id, x.expired_row
      FROM rooms r CROSS JOIN LATERAL (
        SELECT * FROM (
          SELECT d.id, d.run_at, false AS expired_row FROM ${D} d
          WHERE d.webhook_id = r.webhook_id AND ${statusIn(CLAIMABLE_STATUSES, 'd.status')} AND NOT d.is_test
            AND d.run_at >= r.scan_from AND d.run_at <= $1
          ORDER BY d.run_at, d.id LIMIT r.room FOR UPDATE SKIP LOCKED
        ) fresh
        UNION ALL
        SELECT * FROM (
          SELECT d.id, d.run_at, true AS expired_row FROM ${D} d
          WHERE ${sweep} AND d.webhook_id = r.webhook_id AND d.status = 'delivering' AND NOT d.is_test AND d.lease_expires_at <= $1
          ORDER BY d.lease_expires_at LIMIT r.room FOR UPDATE SKIP LOCKED
        ) expired
        ORDER BY run_at, id LIMIT r.room
      ) x
      WHERE r.room > 0
      LIMIT (SELECT n FROM budget)
    ), picks AS (
      SELECT id, 0::bigint AS rank FROM tests UNION ALL SELECT id, rank FROM taken
    ), leased AS (
      UPDATE ${D} d SET status = 'delivering', lease_token = gen_random_uuid()::text, lease_expires_at = $1 + $3::bigint,
        updated_at = $1, accepts_merges = false
      FROM picks p WHERE d.id = p.id
      RETURNING ${DELIVERY_COLUMNS.replace(/(\w+)/g, 'd.$1')}, d.lease_token, d.lease_expires_at, p.rank
    ), served AS (
      SELECT webhook_id, count(*)::int AS n, (count(*) FILTER (WHERE NOT expired_row))::int AS fresh FROM taken GROUP BY webhook_id
    ), span AS (
      SELECT COALESCE(max(rank), 0) AS last_rank, count(*) >= (SELECT n FROM budget) AS cut FROM taken
    ), after AS (
      SELECT r.webhook_id, r.cap, r.rate, r.refilled, r.clock, r.paused_until, r.in_flight, r.expired, r.ready_at, r.ready_turn,
        COALESCE(s.n, 0) AS n, COALESCE(s.fresh, 0) AS fresh, (NOT sp.cut OR r.rank < sp.last_rank OR COALESCE(s.n, 0) > 0) AS reached,
        nx.run_at AS next_run
      FROM rooms r CROSS JOIN span sp LEFT JOIN served s USING (webhook_id)
      LEFT JOIN LATERAL (
        -- The first row it did not take, locked by someone else or not: the queue's next scan_from.
        SELECT d.run_at FROM ${D} d
        WHERE d.webhook_id = r.webhook_id AND ${statusIn(CLAIMABLE_STATUSES, 'd.status')} AND NOT d.is_test
          AND d.run_at >= r.scan_from AND NOT EXISTS (SELECT 1 FROM taken t WHERE t.id = d.id)
        ORDER BY d.run_at, d.id LIMIT 1
      ) nx ON true
    ), judged AS (
      SELECT a.*, COALESCE(a.paused_until > $1, false) AS paused,
        a.in_flight - a.expired + a.n >= COALESCE(a.cap, $4) AS full,
        (a.next_run <= $1 OR a.expired - (a.n - a.fresh) > 0) IS TRUE AS has_due,
        CASE WHEN a.rate IS NULL THEN NULL ELSE a.refilled - a.n END AS tokens_left,
        a.next_run AS next_work
      FROM after a
    ), decided AS (
      SELECT j.*,
        (NOT j.paused AND NOT j.full AND j.has_due AND (j.rate IS NULL OR j.tokens_left >= 1)) AS ready,
        CASE WHEN j.rate IS NOT NULL AND j.tokens_left < 1
          THEN GREATEST(j.clock, $1) + ceil((1 - j.tokens_left) * 1000 / j.rate)::bigint END AS token_at
      FROM judged j
    ), requeued AS (
      UPDATE ${n.queues} q SET
        in_flight = q.in_flight + c.fresh,
        tokens = CASE WHEN c.rate IS NULL THEN q.tokens ELSE c.tokens_left END,
        clock = GREATEST(q.clock, $1),
        ready_at = CASE WHEN NOT c.reached THEN q.ready_at WHEN c.ready THEN (CASE WHEN c.n > 0 THEN $1 ELSE COALESCE(q.ready_at, $1) END) END,
        ready_turn = CASE WHEN NOT c.reached THEN q.ready_turn
          WHEN c.ready THEN (CASE WHEN c.n > 0 OR q.ready_turn IS NULL THEN nextval('${n.turns}') ELSE q.ready_turn END) END,
        wake_at = CASE
          WHEN NOT c.reached THEN q.wake_at
          WHEN c.ready THEN NULL
          WHEN c.paused THEN (CASE WHEN c.has_due THEN c.paused_until WHEN c.next_work IS NULL THEN NULL
            ELSE GREATEST(c.paused_until, c.next_work) END)
          WHEN c.full THEN NULL
          WHEN c.has_due THEN c.token_at
          ELSE c.next_work END,
        full_cap = CASE WHEN NOT c.reached THEN q.full_cap
          WHEN NOT c.ready AND NOT c.paused AND c.full THEN COALESCE(c.cap, $4) END,
        -- Nothing left: whatever becomes claimable later leaves a signal that lowers it.
        scan_from = CASE WHEN NOT c.reached THEN q.scan_from ELSE COALESCE(c.next_work, ${SCAN_FROM_END}) END
      FROM decided c WHERE q.webhook_id = c.webhook_id
    )
    SELECT * FROM leased`;
}

/**
 * The claim as one server-side function (one round trip, one transaction): hands on deferred keys
 * when there are any ({@link handoverSignalsSql}), locks and promotes the queues it may serve
 * ({@link lockAndPromoteSql}), then claims ({@link claimSql}) from a snapshot taken with them
 * held. A claim lost in a crash before the WAL reaches the disk only makes its deliveries claimable
 * again (its promotion and hand-overs are undone with it, their signals back), so it does not wait
 * for the flush (`synchronous_commit` off for this transaction only). Rows come back as JSON.
 */
export function claimFunctionSql(n: Names): string {
  const claim = claimSql(n, 'sweep')
    .replace(/\$5::text\[\]/g, 'held_ids')
    .replace(/SELECT \* FROM leased$/, 'SELECT row_to_json(l) FROM leased l');
  return `CREATE OR REPLACE FUNCTION ${claimFunctionName(n)}(bigint, integer, bigint, integer, boolean) RETURNS SETOF json
    LANGUAGE plpgsql VOLATILE
    -- Planning the claim costs more than running it: plan it once, reuse the plan for every call.
    SET plan_cache_mode = force_generic_plan
    AS $claim$
    DECLARE held_ids text[]; handed integer; sweep constant boolean := $5;
    BEGIN
      PERFORM set_config('synchronous_commit', 'off', true);
      -- Before the queues are locked: the rows it hands on are promoted by this claim.
      IF EXISTS (SELECT 1 FROM ${n.keySignals}) THEN
        ${handoverSignalsSql(n)} INTO handed;
      END IF;
      ${lockAndPromoteSql(n, 'sweep')} INTO held_ids;
      RETURN QUERY ${claim};
    END
    $claim$`;
}

/** The schema-qualified name of the claim function. */
export function claimFunctionName(n: Names): string {
  return `${n.schema}."${n.raw('claim')}"`;
}

/**
 * The end of every statement that finishes a delivery or gives it back, after a CTE `done`
 * returning (id, webhook_id, is_test, status, run_at, ordering_key, sequence, freed, advance):
 * signals the rows that are claimable again (retries, releases, the next delivery of a key) and
 * the places of `freed` rows (taken off the queue's count, and a full queue made ready, by the
 * next claim's promotion), and hands each finished key (`advance`) to its next held delivery.
 * Insert-only on the queue side: it locks no queue row, so claims never wait for a completion's
 * commit (its WAL flush), nor a completion for a claim.
 */
export function finishTailSql(n: Names): string {
  return `, fin AS (
      SELECT webhook_id, ordering_key, sequence FROM done WHERE advance AND ordering_key IS NOT NULL AND NOT is_test
    )${handoverSql(n, 'fin')}
    , signalled AS (
      INSERT INTO ${n.signals} (webhook_id, run_at, freed)
      SELECT webhook_id, min(run_at), 0 FROM (
        SELECT webhook_id, run_at FROM done WHERE ${CLAIMABLE} AND NOT is_test
        UNION ALL SELECT webhook_id, run_at FROM flipped
      ) back
      GROUP BY webhook_id
      UNION ALL
      -- Places given back: the next claim's promotion counts them (run_at 0: due at once).
      SELECT webhook_id, 0, count(*)::int FROM done WHERE freed AND NOT is_test GROUP BY webhook_id
    )`;
}

/**
 * Hands each finished key in CTE `fin` (webhook_id, ordering_key, sequence) to its next held
 * delivery (defines `klocked`, `nxt`, `flipped`, `keyed`, `deferred`). A key row locked by
 * someone else (a host transaction enqueueing for that key) is not waited for: the hand-over is
 * written to `key_signals` and done by a later claim.
 */
export function handoverSql(n: Names, fin: string): string {
  return `, klocked AS (
      SELECT k.webhook_id, k.key FROM ${n.keys} k
      JOIN ${fin} f ON f.webhook_id = k.webhook_id AND f.ordering_key = k.key AND f.sequence = k.head_seq
      ORDER BY k.webhook_id, k.key FOR UPDATE OF k SKIP LOCKED
    ), nxt AS (
      SELECT kl.webhook_id, kl.key, h.id, h.sequence, h.run_at FROM klocked kl CROSS JOIN LATERAL (
        SELECT d.id, d.sequence, d.run_at FROM ${n.deliveries} d
        WHERE d.webhook_id = kl.webhook_id AND d.ordering_key = kl.key AND d.status = 'held'
        ORDER BY d.sequence LIMIT 1 FOR UPDATE
      ) h
    ), flipped AS (
      UPDATE ${n.deliveries} d SET status = 'pending' FROM nxt WHERE d.id = nxt.id RETURNING d.webhook_id, d.run_at
    ), keyed AS (
      UPDATE ${n.keys} k SET head_seq = nxt.sequence
      FROM klocked kl LEFT JOIN nxt ON nxt.webhook_id = kl.webhook_id AND nxt.key = kl.key
      WHERE k.webhook_id = kl.webhook_id AND k.key = kl.key
    ), deferred AS (
      INSERT INTO ${n.keySignals} (webhook_id, key, sequence)
      SELECT f.webhook_id, f.ordering_key, f.sequence FROM ${fin} f
      WHERE NOT EXISTS (SELECT 1 FROM klocked kl WHERE kl.webhook_id = f.webhook_id AND kl.key = f.ordering_key)
        AND EXISTS (SELECT 1 FROM ${n.keys} k WHERE k.webhook_id = f.webhook_id AND k.key = f.ordering_key AND k.head_seq = f.sequence)
    )`;
}

/** Deferred hand-overs whose key is free now; the woken queues learn of it through signals. */
export function handoverSignalsSql(n: Names): string {
  return `WITH pending_ks AS (
      SELECT ctid AS tid, webhook_id, key AS ordering_key, sequence FROM ${n.keySignals} LIMIT 100
    )${handoverSql(n, 'pending_ks')}
    , cleared AS (
      DELETE FROM ${n.keySignals} s USING pending_ks p
      WHERE s.ctid = p.tid AND (
        EXISTS (SELECT 1 FROM klocked kl WHERE kl.webhook_id = p.webhook_id AND kl.key = p.ordering_key)
        OR NOT EXISTS (SELECT 1 FROM ${n.keys} k WHERE k.webhook_id = p.webhook_id AND k.key = p.ordering_key AND k.head_seq = p.sequence))
    ), woken AS (
      INSERT INTO ${n.signals} (webhook_id, run_at) SELECT webhook_id, run_at FROM flipped
    )
    SELECT count(*)::int AS n FROM klocked`;
}

/**
 * Earliest time anything may become claimable (see `nextRunAt`); may be early, never late. The
 * earliest lease of the queues comes apart (`lease_next`): only a sweep finds it expired, so the
 * adapter weighs it against its next sweep.
 */
export function nextRunAtSql(n: Names): string {
  return `SELECT LEAST(
      (SELECT ready_at FROM ${n.queues} WHERE ready_at IS NOT NULL ORDER BY priority DESC, ready_at, ready_turn LIMIT 1),
      (SELECT min(wake_at) FROM ${n.queues} WHERE wake_at IS NOT NULL),
      (SELECT min(run_at) FROM ${n.signals} WHERE freed = 0),
      -- Places given back matter only to a full queue, which is ready again since its last claim.
      (SELECT min(q.clock) FROM ${n.signals} s JOIN ${n.queues} q USING (webhook_id) WHERE s.freed > 0 AND q.full_cap IS NOT NULL),
      (SELECT min(run_at) FROM ${n.deliveries} WHERE is_test AND ${CLAIMABLE}),
      (SELECT min(lease_expires_at) FROM ${n.deliveries} WHERE is_test AND status = 'delivering')
    ) AS next,
    (SELECT min(lease_expires_at) FROM ${n.deliveries} WHERE status = 'delivering' AND NOT is_test) AS lease_next`;
}

/** The figures of one queue as of `$2` (counts read the queue's rows: for dashboards, not hot paths). */
export function queueStatsSql(n: Names): string {
  const D = n.deliveries;
  const waiting = `webhook_id = $1 AND ${CLAIMABLE} AND NOT is_test`;
  return `SELECT
      (SELECT count(*) FROM ${D} WHERE ${waiting} AND run_at <= $2::bigint)::int AS due,
      (SELECT count(*) FROM ${D} WHERE ${waiting} AND run_at > $2)::int AS scheduled,
      (SELECT min(run_at) FROM ${D} WHERE ${waiting} AND run_at <= $2) AS oldest_due,
      (SELECT count(*) FROM ${D} WHERE webhook_id = $1 AND status = 'held')::int AS held,
      (SELECT count(DISTINCT ordering_key) FROM ${D} WHERE webhook_id = $1 AND status = 'held')::int AS blocked_keys,
      (SELECT count(*) FROM ${D} WHERE webhook_id = $1 AND status = 'delivering' AND NOT is_test
         AND lease_expires_at > $2)::int AS in_flight,
      (SELECT paused_until FROM ${n.queues} WHERE webhook_id = $1) AS paused_until
    FROM ${n.webhooks} w WHERE w.id = $1`;
}
