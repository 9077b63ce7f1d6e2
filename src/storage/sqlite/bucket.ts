/**
 * A webhook's token bucket as the queue row keeps it: not a token count refilled by elapsed time
 * (a float summed claim after claim drifts, and "one every 2 s" would come a hair late), but the
 * time the bucket is full again (`fullAt`, null: full) and the latest claim clock (`clock`).
 * Tokens at `t` are `burst − (fullAt − t) × perSecond / 1000`; spending `n` pushes `fullAt` by
 * `n × 1000 / perSecond`. A claim whose `now` is behind `clock` is treated as at `clock`: it
 * neither adds tokens nor takes back any.
 *
 * @module
 */
import type { RateLimit } from '../types.js';

export interface Bucket {
  /** Null: not rate limited. */
  perSecond: number | null;
  burst: number | null;
  fullAt: number | null;
  clock: number | null;
}

// Absorbs rounding in `fullAt − t` (fractions of a millisecond times a rate): a token that is
// due by the arithmetic is never withheld by a last-bit error.
const EPSILON = 1e-9;

/** The time a claim at `now` sees the bucket at: never before the latest claim's. */
export function bucketTime(bucket: Bucket, now: number): number {
  return bucket.clock === null ? now : Math.max(bucket.clock, now);
}

function exactTokens(bucket: Bucket, perSecond: number, t: number): number {
  const burst = Math.max(1, bucket.burst ?? 1);
  const deficitMs = bucket.fullAt === null ? 0 : Math.max(0, bucket.fullAt - t);
  return burst - (deficitMs * perSecond) / 1000;
}

/** Whole tokens at `t` (see {@link bucketTime}); Infinity without a rate limit. */
export function wholeTokens(bucket: Bucket, t: number): number {
  if (bucket.perSecond === null) return Infinity;
  return Math.max(0, Math.floor(exactTokens(bucket, bucket.perSecond, t) + EPSILON));
}

/** `fullAt` after spending `n` tokens at `t`. */
export function spend(bucket: Bucket, t: number, n: number): number | null {
  if (bucket.perSecond === null || n <= 0) return bucket.fullAt;
  return Math.max(bucket.fullAt ?? t, t) + (n * 1000) / bucket.perSecond;
}

/**
 * The whole millisecond from which the bucket holds a token again, after `now`: may be early by
 * less than a millisecond (the claim then finds none and names the time again), never late.
 */
export function nextTokenAt(bucket: Bucket, now: number): number {
  if (bucket.perSecond === null || bucket.fullAt === null) return now;
  const burst = Math.max(1, bucket.burst ?? 1);
  return Math.max(now + 1, Math.floor(bucket.fullAt - ((burst - 1) * 1000) / bucket.perSecond));
}

/**
 * The bucket under a changed rate limit: the tokens it holds at its clock are kept, up to the new
 * burst; a new limit starts full; no limit keeps nothing.
 */
export function rebucket(old: Bucket, next: RateLimit | null): Bucket {
  if (next === null) return { perSecond: null, burst: null, fullAt: null, clock: old.clock };
  const fresh: Bucket = { perSecond: next.perSecond, burst: next.burst, fullAt: null, clock: old.clock };
  if (old.perSecond === null || old.clock === null || old.fullAt === null) return fresh;
  const kept = Math.min(exactTokens(old, old.perSecond, old.clock), next.burst);
  if (kept >= next.burst) return fresh;
  return { ...fresh, fullAt: old.clock + ((next.burst - kept) * 1000) / next.perSecond };
}
