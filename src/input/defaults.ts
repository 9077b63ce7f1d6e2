/**
 * Every default of the dispatcher in one place, and the header names users cannot set.
 *
 * @module
 */
/** Every default of the dispatcher. */
export const DEFAULTS = {
  concurrency: 64,
  /** A webhook's cap of attempts in flight (across processes) unless it sets its own. */
  perWebhookConcurrency: 16,
  /** Politeness: attempts in flight to one origin from one process, whatever the webhooks. */
  perOriginConcurrency: 32,
  headerPrefix: 'X-Pakk',
  method: 'POST',
  priority: 0,
  leaseMs: 60_000,
  pollIntervalMs: 1_000,
  requestTimeoutMs: 15_000,
  maxResponseBodyBytes: 20_000,
  secretRotationGraceMs: 24 * 60 * 60 * 1000,
  listLimit: 50,
  maxListLimit: 1_000,
  /** Svix disables an endpoint after 5 days of continuous failure. */
  autoDisableAfterFailingForMs: 5 * 24 * 60 * 60 * 1000,
  retentionIntervalMs: 60 * 60 * 1000,
  /** Payloads above this are refused at emit time (Standard Webhooks advises keeping them small). */
  maxPayloadBytes: 1024 * 1024,
  /** Real-time reuse of a webhook read by the attempt path. */
  webhookCacheMs: 1_000,
  /** Priority of test sends: ahead of everything queued. */
  testPriority: 1_000_000,
} as const;

/** Header names the library sets itself or that would let a user corrupt the HTTP framing. */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
]);
