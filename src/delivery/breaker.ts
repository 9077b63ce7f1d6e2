/**
 * Per-webhook circuit breaker. When most recent attempts of a webhook fail, it stops sending for a
 * cool-down (the dispatcher pauses the webhook's queue in storage, so every process stops), then
 * lets one probe through: success closes the circuit, failure opens it again. A dead endpoint thus
 * stops consuming slots and connections. The failure counts are this process's; the pause is
 * shared. Defaults follow Convoy: open at ≥ 70 % failures over ≥ 10 attempts in 5 minutes, probe
 * after 30 s.
 *
 * @module
 */
import { z } from 'zod';
import type { Clock } from '../clock.js';

const circuitBreakerShape = {
  /** Failure share (0–1] at or above which the circuit opens. Default 0.7. */
  failureRateThreshold: z.number().gt(0).max(1).optional(),
  /** Attempts needed in the window before the rate counts. Default 10. */
  minimumAttempts: z.number().int().min(1).optional(),
  /** Sliding window length. Default 5 minutes. */
  windowMs: z.number().int().min(1_000).optional(),
  /** How long the circuit stays open before a probe. Default 30 s. */
  cooldownMs: z.number().int().min(100).optional(),
};

/** Validates the breaker settings. */
export const circuitBreakerSchema: z.ZodObject<typeof circuitBreakerShape, z.core.$strict> = z.strictObject(circuitBreakerShape);
/** Breaker settings (the dispatcher's `circuitBreaker` option). */
export type CircuitBreakerOptions = z.input<typeof circuitBreakerSchema>;

const BUCKETS = 10;

interface CircuitState {
  /** Ring of per-bucket counts covering the window. */
  buckets: Array<{ start: number; ok: number; failed: number }>;
  state: 'closed' | 'open' | 'half-open';
  openUntil: number;
  probeInFlight: boolean;
}

/** What changed after a recorded result, for events. */
export type BreakerTransition = 'opened' | 'closed' | null;

/** Tracks attempt results per webhook and answers whether sending is allowed now. */
export class CircuitBreaker {
  private readonly threshold: number;
  private readonly minimum: number;
  private readonly windowMs: number;
  private readonly cooldownMs: number;
  private readonly circuits = new Map<string, CircuitState>();

  constructor(
    private readonly clock: Clock,
    options: CircuitBreakerOptions = {},
  ) {
    this.threshold = options.failureRateThreshold ?? 0.7;
    this.minimum = options.minimumAttempts ?? 10;
    this.windowMs = options.windowMs ?? 5 * 60_000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
  }

  /**
   * Whether an attempt of the webhook may start now. In the half-open state only one probe is
   * allowed at a time; the caller must then {@link record} its result.
   */
  tryAcquire(webhookId: string): boolean {
    const s = this.circuits.get(webhookId);
    if (!s || s.state === 'closed') return true;
    if (s.state === 'open') {
      if (this.clock.now() < s.openUntil) return false;
      s.state = 'half-open';
      s.probeInFlight = false;
    }
    if (s.probeInFlight) return false;
    s.probeInFlight = true;
    return true;
  }

  /** When the webhook may next be tried, or null when its circuit is closed. */
  pausedUntil(webhookId: string): number | null {
    const s = this.circuits.get(webhookId);
    if (!s || s.state === 'closed') return null;
    // Half-open: a probe is out; the others may be retried as soon as it closes the circuit.
    return s.state === 'open' ? s.openUntil : this.clock.now();
  }

  /** True while the webhook's probe is out (half-open). */
  isProbing(webhookId: string): boolean {
    const s = this.circuits.get(webhookId);
    return s?.state === 'half-open' && s.probeInFlight;
  }

  /**
   * Settles a probe that ended without a result about the endpoint (aborted by shutdown, lease
   * lost, address refused locally): the next attempt may probe again.
   */
  releaseProbe(webhookId: string): void {
    const s = this.circuits.get(webhookId);
    if (s?.state === 'half-open') s.probeInFlight = false;
  }

  /** Records an attempt's result; returns the transition it caused. */
  record(webhookId: string, success: boolean): BreakerTransition {
    const now = this.clock.now();
    let s = this.circuits.get(webhookId);
    if (!s) {
      if (success) return null; // healthy webhooks need no state
      s = { buckets: [], state: 'closed', openUntil: 0, probeInFlight: false };
      this.circuits.set(webhookId, s);
    }
    if (s.state === 'half-open') {
      s.probeInFlight = false;
      if (success) {
        this.circuits.delete(webhookId);
        return 'closed';
      }
      s.state = 'open';
      s.openUntil = now + this.cooldownMs;
      return 'opened';
    }
    this.count(s, now, success);
    if (s.state === 'closed' && !success) {
      let ok = 0;
      let failed = 0;
      for (const b of s.buckets) {
        ok += b.ok;
        failed += b.failed;
      }
      const total = ok + failed;
      if (failed === 0) {
        this.circuits.delete(webhookId);
      } else if (total >= this.minimum && failed / total >= this.threshold) {
        s.state = 'open';
        s.openUntil = now + this.cooldownMs;
        s.buckets = [];
        return 'opened';
      }
    }
    return null;
  }

  private count(s: CircuitState, now: number, success: boolean): void {
    const width = this.windowMs / BUCKETS;
    const start = Math.floor(now / width) * width;
    s.buckets = s.buckets.filter((b) => b.start > now - this.windowMs);
    let bucket = s.buckets[s.buckets.length - 1];
    if (!bucket || bucket.start !== start) {
      bucket = { start, ok: 0, failed: 0 };
      s.buckets.push(bucket);
    }
    if (success) bucket.ok++;
    else bucket.failed++;
  }
}
