/**
 * In-process counters and an attempt latency reservoir: what a host scrapes or shows on a status
 * page. Counting is a few integer increments per attempt.
 *
 * @module
 */

/** Attempt latency summary in ms over the most recent attempts (up to 1,024). */
export interface LatencySummary {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

/** What {@link MetricsRecorder.snapshot} returns (and `WebhookDispatcher.getMetrics()` extends). */
export interface DeliveryMetrics {
  /** Since the dispatcher started. */
  emits: number;
  deliveriesQueued: number;
  deliveriesCoalesced: number;
  attempts: number;
  /** Attempts by result: `succeeded`, `retry_scheduled`, `failed`, `error` (not reached). */
  attemptsByOutcome: Record<'succeeded' | 'retry_scheduled' | 'failed', number>;
  /** Attempts whose endpoint was not reached (status 0). */
  hardErrors: number;
  webhooksDisabled: number;
  attemptLatencyMs: LatencySummary;
}

const RESERVOIR = 1024;

/** Counts delivery lifecycle facts for {@link DeliveryMetrics}. */
export class MetricsRecorder {
  private emits = 0;
  private queued = 0;
  private coalesced = 0;
  private attempts = 0;
  private readonly byOutcome = { succeeded: 0, retry_scheduled: 0, failed: 0 };
  private hardErrors = 0;
  private disabled = 0;
  private readonly latencies = new Float64Array(RESERVOIR);
  private latencyCount = 0;

  recordEmit(queued: number, coalesced: number): void {
    this.emits++;
    this.queued += queued;
    this.coalesced += coalesced;
  }

  recordAttempt(outcome: keyof MetricsRecorder['byOutcome'], durationMs: number, hardError: boolean): void {
    this.attempts++;
    this.byOutcome[outcome]++;
    if (hardError) this.hardErrors++;
    this.latencies[this.latencyCount % RESERVOIR] = durationMs;
    this.latencyCount++;
  }

  recordDisabled(): void {
    this.disabled++;
  }

  snapshot(): DeliveryMetrics {
    const n = Math.min(this.latencyCount, RESERVOIR);
    const sorted = Array.from(this.latencies.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number) => (n === 0 ? null : sorted[Math.min(n - 1, Math.floor(q * n))]!);
    return {
      emits: this.emits,
      deliveriesQueued: this.queued,
      deliveriesCoalesced: this.coalesced,
      attempts: this.attempts,
      attemptsByOutcome: { ...this.byOutcome },
      hardErrors: this.hardErrors,
      webhooksDisabled: this.disabled,
      attemptLatencyMs: { count: this.latencyCount, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: n === 0 ? null : sorted[n - 1]! },
    };
  }
}
