/**
 * The storage adapter contract. The dispatcher keeps everything durable here: webhooks, the
 * delivery queue (the backlog lives in storage; only a bounded window is held in memory) and the
 * execution log. {@link MemoryStorage} implements it for tests and single-process use; durable
 * adapters (SQLite, Postgres) implement the same contract and prove it with the conformance
 * suite exported from `webhook-dispatcher/testing`.
 *
 * All times are epoch milliseconds. Records passed in and returned are plain data: adapters
 * must not keep references to objects they are given, nor hand out references to their own state.
 *
 * @module
 */

import { WebhookValidationError } from '../errors.js';
import type { PayloadMode, PayloadTemplate } from '../payload.js';
import type { RetryPolicyInput } from '../delivery/retry.js';

/** An entity × event pair a webhook listens to. `'*'` in either field matches anything. */
export interface Trigger {
  /** Entity type: `order`, `product`, `invoice`, `shipment`, … Free string. */
  entity: string;
  /** Event name: `Create`, `Edit`, or any host-defined name. Free string. */
  event: string;
}

/** Basic HTTP authentication credentials sent with every delivery. */
export interface BasicAuth {
  username: string;
  password: string;
}

/** TLS settings of one webhook: a client certificate (mTLS) and how the server is verified. */
export interface WebhookTls {
  /** PEM client certificate chain sent to the endpoint (with `clientKey`). */
  clientCertificate: string | null;
  /** PEM private key of the client certificate. A secret: encrypted at rest by `withEncryptedSecrets`. */
  clientKey: string | null;
  /** PEM CA certificates trusted for this endpoint, instead of the system store. */
  ca: string | null;
  /** Verify the endpoint's certificate. Always true unless explicitly disabled for this webhook. */
  rejectUnauthorized: boolean;
}

/** A secret kept valid for signing until `expiresAt` after a rotation. */
export interface PreviousSecret {
  secret: string;
  expiresAt: number;
}

/** A stored webhook: where and how to deliver, and on which triggers. */
export interface WebhookRecord {
  id: string;
  url: string;
  /** HTTP method; POST unless configured. */
  method: string;
  triggers: Trigger[];
  /** Custom headers sent with every delivery. */
  headers: Record<string, string>;
  basicAuth: BasicAuth | null;
  /** Higher is sent first. */
  priority: number;
  enabled: boolean;
  /** Why the webhook is disabled, when the dispatcher disabled it. */
  disabledReason: string | null;
  /** Organization / shop scope; `null` for webhooks visible to every tenant's events. */
  tenantId: string | null;
  /** Current signing secret (`whsec_…`). */
  secret: string;
  /** Secrets still signed with during a rotation grace period. */
  previousSecrets: PreviousSecret[];
  description: string | null;
  /** Free-form host data. */
  metadata: Record<string, unknown>;
  /** Retry policy overrides on top of the dispatcher's; null inherits it. */
  retryPolicy: RetryPolicyInput | null;
  /**
   * Unique queue items: while a delivery for the same entity key is still waiting, a new emit
   * replaces its payload. `keyPath` picks the key from the data (default: `<Entity>Id`, `id`).
   * Null when off.
   */
  uniqueQueueItems: { keyPath: string | null } | null;
  /** The merchant's merge-field template; null sends the default JSON payload. */
  payload: PayloadTemplate | null;
  /** Default payload with the full record (`full`) or ids only (`thin`). Ignored with a template. */
  payloadMode: PayloadMode;
  /** Client certificate and server verification settings; null for the defaults (verify, no client cert). */
  tls: WebhookTls | null;
  /**
   * Attempts of this webhook in flight at once, counted across every process sharing the storage;
   * null: the dispatcher's `perWebhookConcurrency`.
   */
  concurrency: number | null;
  /** Token bucket for this webhook's attempts (retries spend tokens too); null: unlimited. */
  rateLimit: RateLimit | null;
  /**
   * `entity`: deliveries with the same ordering key (by default entity + record id) are sent one at
   * a time, in emit order, each with a gap-free sequence number; later ones wait while an earlier
   * one retries. `none` (the default): no ordering.
   */
  ordering: OrderingMode;
  createdAt: number;
  updatedAt: number;
}

/** A token bucket: `burst` attempts at once, refilled at `perSecond` (fractions allowed: 0.5 is one every 2 s). */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

/** How a webhook orders its deliveries: not at all, or per ordering key (see {@link WebhookRecord.ordering}). */
export type OrderingMode = 'none' | 'entity';

/**
 * Lifecycle of a delivery (one message to one webhook): `pending` (never attempted, or requeued),
 * `scheduled` (a retry waits for its `runAt`), `held` (an ordered delivery waiting for the earlier
 * deliveries of its ordering key to finish), `delivering` (claimed under a lease), and the final
 * `succeeded`, `failed`, `cancelled`.
 */
export type DeliveryStatus = 'pending' | 'scheduled' | 'held' | 'delivering' | 'succeeded' | 'failed' | 'cancelled';

/** Statuses from which a delivery can be claimed once its `runAt` is due. */
export const CLAIMABLE_STATUSES: readonly DeliveryStatus[] = ['pending', 'scheduled'];

/** Statuses after which nothing more happens unless the delivery is requeued. */
export const FINAL_STATUSES: readonly DeliveryStatus[] = ['succeeded', 'failed', 'cancelled'];

/**
 * How late an adapter may notice an expired lease: claims from `leaseExpiresAt` plus this many ms
 * on must find it (a tenth of the lease, 5 s at most). An adapter whose looks for expired leases
 * cost more the longer it runs (PostgreSQL's lease indexes keep an entry per finished delivery
 * until VACUUM) makes them only that often; a dead owner's deliveries waited a whole lease anyway.
 */
export function leaseSweepDelayMs(leaseMs: number): number {
  if (typeof leaseMs !== 'number' || !Number.isFinite(leaseMs) || leaseMs <= 0) {
    throw new WebhookValidationError([{ path: 'leaseMs', message: 'must be a positive, finite number of milliseconds' }], {
      context: 'leaseSweepDelayMs',
    });
  }
  return Math.min(leaseMs / 10, 5_000);
}

/** A message queued for one webhook. Its `id` is the `webhook-id` and never changes across attempts. */
export interface DeliveryRecord {
  id: string;
  webhookId: string;
  tenantId: string | null;
  entity: string;
  event: string;
  /**
   * The webhook URL's origin (`https://merchant.example`): deliveries to one origin share the
   * dispatcher's politeness ceiling (`perOriginConcurrency`). Stored in the `endpoint` column.
   */
  origin: string;
  priority: number;
  /** The rendered request body, stored once so every attempt sends identical bytes. */
  body: string;
  contentType: string;
  status: DeliveryStatus;
  /** Attempts made so far. */
  attempts: number;
  /** Earliest time the next attempt may start. */
  runAt: number;
  createdAt: number;
  updatedAt: number;
  /** HTTP status of the last attempt (0 when the server was not reached), null before any. */
  lastStatus: number | null;
  lastError: string | null;
  /** Marks deliveries made by test sends. */
  isTest: boolean;
  /**
   * Unique-queue-item key (e.g. `order:1`). While a claimable delivery with the same webhook and
   * key exists, enqueueing another replaces that one's body instead of adding a delivery.
   */
  coalesceKey: string | null;
  /** How many later emits were merged into this delivery by coalescing. */
  coalescedCount: number;
  /**
   * The ordering key of a delivery of an ordered webhook: at most one delivery per webhook and key
   * is claimable or in flight, the others are `held`. Null for unordered deliveries, and for
   * redeliveries, replays and test sends, which go outside ordering.
   */
  orderingKey: string | null;
  /**
   * Position of the delivery within its ordering key, from 1, gap-free: assigned by the storage when
   * it is enqueued (pass null), kept across retries and redeliveries. Null when never ordered.
   */
  sequence: number | null;
}

/** A delivery handed to one worker exclusively until `leaseExpiresAt`. */
export interface ClaimedDelivery extends DeliveryRecord {
  /** Proof of ownership. Completing or releasing requires it (fencing). */
  leaseToken: string;
  leaseExpiresAt: number;
}

/** One HTTP attempt, as shown in a webhook's History (execution log). */
export interface ExecutionRecord {
  id: string;
  webhookId: string;
  deliveryId: string;
  tenantId: string | null;
  entity: string;
  event: string;
  /** 1 for the first attempt. */
  attempt: number;
  startedAt: number;
  endedAt: number;
  durationMs: number;
  /** HTTP status; 0 when the server was not reached. */
  status: number;
  success: boolean;
  /** True when the server was not reached at all (DNS, refused, TLS, blocked address, …). */
  hardError: boolean;
  errorMessage: string | null;
  /** Error code (`transport_error`, `timeout`, `address_blocked`, …) when the attempt failed locally. */
  errorCode: string | null;
  method: string;
  url: string;
  /** Headers as sent, with credentials redacted. */
  requestHeaders: Record<string, string>;
  requestBody: string;
  responseHeaders: Record<string, string>;
  /** Response body, truncated to the dispatcher's cap. */
  responseBody: string;
  /** When the next attempt is due, if one is scheduled. */
  nextAttemptAt: number | null;
  /** Emits merged into the delivery (unique queue items) before this attempt. */
  coalescedCount: number;
}

/** Consecutive-failure bookkeeping of one webhook, for auto-disable. */
export interface WebhookHealth {
  /** Failed deliveries in a row (final failures of attempts, reset by a success). */
  consecutiveFailures: number;
  /** When the current run of failures began; null when the last result was a success. */
  failingSince: number | null;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
}

/** One page of a listing plus the cursor of the next page (null at the end). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Filter of {@link WebhookStorage.listWebhooks}. */
export interface WebhookQuery {
  /** Only this tenant's webhooks. `null` selects untenanted ones; omit for all. */
  tenantId?: string | null;
  enabled?: boolean;
  limit: number;
  /** Opaque cursor from a previous page. */
  cursor?: string | null;
}

/** Filter of {@link WebhookStorage.listExecutions}. Newest first. */
export interface ExecutionQuery {
  webhookId?: string;
  deliveryId?: string;
  tenantId?: string;
  success?: boolean;
  /** Only attempts started at or after this time. */
  since?: number;
  /** Only attempts started before this time. */
  until?: number;
  limit: number;
  cursor?: string | null;
}

/** Filter of {@link WebhookStorage.listDeliveries}. Newest first. */
export interface DeliveryQuery {
  webhookId?: string;
  tenantId?: string;
  status?: DeliveryStatus;
  limit: number;
  cursor?: string | null;
}

/** Input of {@link WebhookStorage.findWebhooksForEvent}. */
export interface EventMatch {
  entity: string;
  event: string;
  /** The event's tenant; null for untenanted events. */
  tenantId: string | null;
}

/** Input of {@link WebhookStorage.claimDueDeliveries}. */
export interface ClaimRequest {
  /**
   * Claim deliveries with `runAt <= now`. Also the clock of rate limits and pauses: the dispatcher's
   * (injected in tests), never the database's.
   */
  now: number;
  /** At most this many. */
  limit: number;
  /** The claim holds until `now + leaseMs`; after that the delivery may be claimed again. */
  leaseMs: number;
  /** In-flight cap of webhooks whose `concurrency` is null. */
  defaultConcurrency: number;
}

/** The queue of one webhook, for dashboards and metrics (see {@link WebhookStorage.getQueueStats}). */
export interface QueueStats {
  webhookId: string;
  /** Deliveries waiting: due now, scheduled for later and held. */
  depth: number;
  /** Waiting deliveries whose `runAt` has come (pending or scheduled). */
  due: number;
  /** Waiting deliveries whose `runAt` is still to come (retries, mostly). */
  scheduled: number;
  /** Ordered deliveries waiting for an earlier delivery of their key. */
  held: number;
  /** Claimed and not finished, by any process. */
  inFlight: number;
  /** The `runAt` of the longest-due waiting delivery; null when nothing is due. */
  oldestDueAt: number | null;
  /** Ordering keys with held deliveries (keys blocked by an earlier delivery still in flight or retrying). */
  blockedKeys: number;
  /** Until when the webhook's queue is paused (open circuit); null when it is not. */
  pausedUntil: number | null;
}

/** What an attempt decided about its delivery. */
export interface AttemptOutcome {
  /** `scheduled` schedules another attempt at `runAt`. */
  status: 'succeeded' | 'failed' | 'scheduled';
  /** Required when `status` is `scheduled`. */
  runAt?: number;
  lastStatus: number;
  lastError: string | null;
}

/** Input of {@link WebhookStorage.completeAttempt}. */
export interface CompleteAttempt {
  deliveryId: string;
  leaseToken: string;
  outcome: AttemptOutcome;
  /** Appended to the execution log in the same write. */
  execution: ExecutionRecord;
}

/** Options every write that can join a host transaction accepts. */
export interface WriteOptions {
  /**
   * A text that stands for the sequence number in the bodies of ordered deliveries (a template's
   * `{{meta.sequence}}`): the storage replaces every occurrence with the number it assigns, in the
   * same write. Omit when no body carries it.
   */
  sequencePlaceholder?: string;
  /**
   * The host's open transaction (a `pg` client inside BEGIN, the same better-sqlite3 Database
   * inside a transaction, …). When given, the adapter writes through it and does not commit: the
   * write becomes visible, and is delivered, only if the host commits. Adapters that cannot join
   * a transaction throw when one is passed.
   */
  transaction?: unknown;
}

/** Result of {@link WebhookStorage.enqueueDeliveries}, in input order. */
export interface EnqueueResult {
  deliveries: Array<{
    /** Id of the delivery that will carry this message: the new one, or the one it was merged into. */
    id: string;
    webhookId: string;
    /** True when the message replaced the body of an existing claimable delivery (unique queue items). */
    coalesced: boolean;
    /** The delivery's sequence within its ordering key; null when unordered. */
    sequence: number | null;
  }>;
}

/** Input of {@link WebhookStorage.requeueDeliveries}: finished deliveries to attempt again. */
export interface RequeueRequest {
  /** Requeue exactly these (any final status). */
  deliveryIds?: readonly string[];
  /** Or: every delivery of this webhook (and/or tenant) in `statuses` … */
  webhookId?: string;
  tenantId?: string;
  /** … with one of these final statuses (default `['failed']`) … */
  statuses?: readonly DeliveryStatus[];
  /** … last updated at or after this time. */
  since?: number;
  /** When they become due. */
  runAt: number;
  now: number;
}

/** Input of {@link WebhookStorage.prune}. Times are cut-offs: records older than them are affected. */
export interface PruneRequest {
  /** Blank request and response bodies of successful executions started before this. */
  stripSuccessfulBodiesBefore?: number;
  /** Delete successful executions and succeeded deliveries older than this. */
  deleteSucceededBefore?: number;
  /** Delete failed executions and failed/cancelled deliveries older than this. */
  deleteFailedBefore?: number;
}

/** What {@link WebhookStorage.prune} removed or blanked. */
export interface PruneResult {
  executionsDeleted: number;
  executionsStripped: number;
  deliveriesDeleted: number;
}

/**
 * The storage adapter contract.
 *
 * Guarantees every implementation must give (the conformance suite checks them):
 * - **Exclusive claims.** Under concurrent invocation of {@link claimDueDeliveries} (from one or
 *   many processes), a due delivery is returned to exactly one caller until its lease expires.
 * - **Expired leases are claimable.** A `delivering` delivery whose lease has expired is due again
 *   (its owner died or stalled), at the latest for claims {@link leaseSweepDelayMs} after its
 *   expiry; claiming it issues a new lease token.
 * - **Fencing.** {@link completeAttempt}, {@link releaseDelivery} and {@link extendLease} succeed only
 *   with the current lease token; a worker whose lease was taken over gets `false` and must drop
 *   its result.
 * - **One queue per webhook.** A webhook's waiting deliveries form its queue. A claim serves test
 *   sends (`isTest`) first, in `runAt` then id order, outside every queue rule below. Then it takes
 *   queues that can give something now (due work, room under the cap, a token, not paused):
 *   higher webhook `priority` first, then the queue that has been ready longest (a queue that was
 *   just served goes behind the other ready queues of its priority, so equal queues take turns);
 *   from each, its due deliveries in `runAt` then id order, at most `cap − inFlight` of them and at
 *   most the whole tokens of its bucket.
 * - **Caps are shared.** A webhook's `inFlight` counts its claimed, unfinished deliveries of every
 *   process; the cap is its `concurrency`, or the claim's `defaultConcurrency`. A completion, release,
 *   cancellation or lease expiry frees the place.
 * - **Rate limits are shared.** Each claimed delivery spends one token of its webhook's bucket,
 *   which starts full and refills at `perSecond` up to `burst`, by the latest `now` claims have
 *   given (a claim with an earlier `now` adds nothing and moves nothing back). A webhook without
 *   `rateLimit` is not limited; a changed `rateLimit` keeps the tokens, up to the new `burst`.
 * - **Pauses.** A webhook paused until `t` ({@link pauseQueue}) gives nothing to claims with `now < t`.
 * - **Cost.** A claim's cost grows with what it takes, not with the size of any queue's backlog nor
 *   with deliveries scheduled for later (an index, or a heap, per queue).
 * - **Ordering.** For a delivery with an `orderingKey`, the storage assigns the next `sequence` of
 *   its webhook and key (from 1, gap-free, in enqueue order) and replaces the write's
 *   `sequencePlaceholder` in its body with it. At most one delivery per webhook and key is
 *   claimable, in flight or waiting for a retry: the one with the lowest unfinished sequence; the
 *   others are `held`. When that one reaches a final status by any path (completion, cancellation,
 *   a final status given at enqueue, deletion of its webhook), the next unfinished sequence becomes
 *   `pending`, so no key stalls. {@link requeueDeliveries} takes a delivery out of ordering
 *   (`orderingKey` becomes null; `sequence` is kept).
 * - **Atomic completion.** The delivery's new state and its execution record are written together.
 * - **Pagination.** Listings are newest first and stable: following `nextCursor` visits every
 *   record once.
 */
export interface WebhookStorage {
  /** Creates tables or indexes if the adapter needs them. Idempotent. */
  migrate?(): Promise<void>;

  insertWebhook(webhook: WebhookRecord): Promise<void>;
  getWebhook(id: string): Promise<WebhookRecord | null>;
  /**
   * Replaces the stored webhook with the same id; its queue follows the new `priority`,
   * `concurrency` and `rateLimit` from the next claim. Returns false when it does not exist.
   */
  updateWebhook(webhook: WebhookRecord): Promise<boolean>;
  /**
   * Deletes the webhook and cancels its waiting deliveries (pending, scheduled, held). Deliveries in
   * flight finish under their lease. Returns false when it did not exist.
   */
  deleteWebhook(id: string): Promise<boolean>;
  listWebhooks(query: WebhookQuery): Promise<Page<WebhookRecord>>;
  /**
   * Enabled webhooks with a trigger matching the entity and event (`'*'` matches anything), whose
   * tenant is the event's tenant or null. Called on every emit: adapters should index triggers.
   */
  findWebhooksForEvent(match: EventMatch): Promise<WebhookRecord[]>;

  /**
   * Adds deliveries, all or none. A delivery with a `coalesceKey` whose webhook already has a
   * delivery with the same key that is waiting and has not been claimed since it was queued (or
   * requeued) is merged into it instead: the existing delivery keeps its id, priority and `runAt`,
   * takes the new `body`, and its `coalescedCount` grows by one. A delivery that was claimed (in
   * flight, or a retry waiting as `scheduled`) never absorbs emits, since its body may already have
   * been sent. Atomic under concurrency: two enqueues with the same key never leave two mergeable
   * deliveries.
   */
  enqueueDeliveries(deliveries: readonly DeliveryRecord[], options?: WriteOptions): Promise<EnqueueResult>;
  /**
   * Optional capability: throws a `WebhookValidationError` naming `transaction` when `transaction`
   * cannot be a host transaction of this adapter (the checks {@link enqueueDeliveries} makes
   * before writing). The dispatcher calls it on every `emit({ transaction })`, also when no
   * webhook matches, so a wrong value shows in development rather than when a merchant first
   * subscribes. Synchronous and free of I/O.
   */
  checkTransaction?(transaction: unknown): void;
  /** Claims due deliveries exclusively (see the interface guarantees), marking them `delivering`. */
  claimDueDeliveries(request: ClaimRequest): Promise<ClaimedDelivery[]>;
  /**
   * Records an attempt's outcome and its execution record atomically: `attempts` grows by one,
   * `lastStatus`/`lastError` are set, the lease is cleared, the webhook's `inFlight` shrinks, and
   * the status becomes the outcome's (`scheduled` also sets `runAt`; an ordered delivery keeps its
   * key's turn while it waits for the retry). False, and nothing written, when the lease was lost.
   */
  completeAttempt(input: CompleteAttempt): Promise<boolean>;
  /**
   * Several attempts' results in one write (one transaction, one round trip). Each item behaves
   * exactly as {@link completeAttempt} would on its own (fenced by its lease token, delivery and
   * execution written together); the result says, in input order, which were recorded. If the call
   * throws, nothing of it was written. The dispatcher gathers the completions of attempts that
   * finish together into one call.
   */
  completeAttempts(inputs: readonly CompleteAttempt[]): Promise<boolean[]>;
  /**
   * Gives a claimed delivery back without an attempt (shutdown, window trimming): it becomes
   * claimable again (`pending` if never attempted, else `scheduled`) at `runAt` (default:
   * unchanged), and `attempts` is unchanged. False when the lease was lost.
   */
  releaseDelivery(deliveryId: string, leaseToken: string, runAt?: number): Promise<boolean>;
  /** Pushes a lease's expiry to `leaseExpiresAt`. False when the lease was lost. */
  extendLease(deliveryId: string, leaseToken: string, leaseExpiresAt: number): Promise<boolean>;
  /**
   * Cancels a delivery: a waiting one (`pending`, `scheduled`, `held`) always, a `delivering` one
   * only with its current lease token (fencing). `reason` is kept as `lastError`. False when nothing
   * was cancelled.
   */
  cancelDelivery(deliveryId: string, options?: { leaseToken?: string; reason?: string; now?: number }): Promise<boolean>;
  getDelivery(id: string): Promise<DeliveryRecord | null>;
  listDeliveries(query: DeliveryQuery): Promise<Page<DeliveryRecord>>;
  /**
   * Earliest time something may become claimable: the `runAt` of a waiting delivery (pending or
   * scheduled), a lease expiry (or, for an adapter that notices expired leases late, the first
   * claim that will), the end of a pause or the next token of a queue with due work. Null
   * when there is nothing. May be early (the dispatcher then finds nothing and asks again), never
   * late. Lets the dispatcher sleep until then.
   */
  nextRunAt(): Promise<number | null>;
  /**
   * Makes final deliveries claimable again (`pending` at `runAt`, attempts kept, same id): replay
   * after an outage. They go outside ordering (`orderingKey` becomes null, `sequence` is kept).
   * Returns the ids requeued.
   */
  requeueDeliveries(request: RequeueRequest): Promise<string[]>;

  listExecutions(query: ExecutionQuery): Promise<Page<ExecutionRecord>>;

  /**
   * Records the final result of a delivery for the webhook's consecutive-failure count: a success
   * resets it, a failure increments it (atomic increment: several processes may report at once).
   * Returns the updated health, or null when the webhook does not exist.
   */
  recordWebhookResult(webhookId: string, success: boolean, at: number): Promise<WebhookHealth | null>;
  /** The webhook's health; a zeroed record for a webhook with no results yet; null when it does not exist. */
  getWebhookHealth(webhookId: string): Promise<WebhookHealth | null>;
  /** Zeroes the failure count (on re-enable). */
  resetWebhookHealth(webhookId: string): Promise<void>;

  /** Retention: deletes or blanks old records as requested. */
  prune(request: PruneRequest): Promise<PruneResult>;

  /**
   * Pauses a webhook's queue until `until` (an open circuit): claims with an earlier `now` take
   * none of its deliveries. `null` lifts a pause. Deliveries in flight are not affected.
   */
  pauseQueue(webhookId: string, until: number | null): Promise<void>;
  /** The webhook's queue as of `now`; null when the webhook does not exist. */
  getQueueStats(webhookId: string, now: number): Promise<QueueStats | null>;

  /** Optional capability: deliveries by status (the queue depth), for metrics. May scan the table. */
  countDeliveries?(): Promise<Partial<Record<DeliveryStatus, number>>>;

  /**
   * Optional capability: calls `listener` soon after deliveries are enqueued and committed by any
   * process (e.g. Postgres LISTEN/NOTIFY), so dispatchers wake without waiting for their poll.
   * Resolves to an unsubscribe function.
   */
  subscribe?(listener: () => void): Promise<() => Promise<void>>;

  /** Releases connections or handles the adapter owns (not ones the user passed in). */
  close?(): Promise<void>;
}
