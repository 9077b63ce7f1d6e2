/**
 * Retry policy: after each delivery attempt, decide — as a pure function of the policy, the
 * attempt number, the outcome, `now` and a random source — whether to retry and when.
 *
 * Attempts are scheduled through storage (a `runAt` timestamp), never through timers, so nothing
 * here sleeps, reads the clock or calls `Math.random` unless the caller leaves `random` out.
 *
 * ## Classification of an attempt's outcome
 *
 * | Outcome                                   | Decision                                                  |
 * | ----------------------------------------- | --------------------------------------------------------- |
 * | HTTP 2xx                                  | `succeeded`                                               |
 * | HTTP 410 Gone                             | `disable` (the delivery fails and the webhook is disabled) |
 * | HTTP 408, 425, 429, 5xx                   | `retry` while attempts remain, else `fail`                |
 * | network error (refused, reset, timeout…)  | `retry` while attempts remain, else `fail`                |
 * | HTTP 3xx (redirects are never followed)   | 4xx rule: `fail`, unless `retryOn4xx` > 0                 |
 * | HTTP 4xx other than 408/410/425/429 (409 included) | 4xx rule: `fail`, unless `retryOn4xx` > 0        |
 * | any other status (1xx, outside 100–599)   | 4xx rule                                                  |
 * | `blocked` (SSRF guard refused the address) | `fail`, never retried                                    |
 * | `error` (local failure, e.g. a template threw) | `fail`, never retried                                |
 *
 * 3xx counts as a failure because redirects are never followed; it is not retried by default since
 * a redirect will not fix itself, but `retryOn4xx` applies to it as it does to 4xx.
 *
 * @module
 */
import { z } from 'zod';
import { WebhookValidationError } from '../errors.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Upper bound accepted for any delay setting (30 days). */
const MAX_DELAY_SETTING_MS = 30 * DAY;

/** Exponential backoff settings of a resolved {@link RetryPolicy}. */
export interface RetryBackoff {
  /** Delay before the 2nd attempt, before randomisation (p-retry's `minTimeout`). */
  readonly initialDelayMs: number;
  /** Growth factor per attempt (p-retry's `factor`). */
  readonly factor: number;
  /** Cap of a backoff delay (p-retry's `maxTimeout`); `RetryPolicy.maxDelayMs` also applies. */
  readonly maxDelayMs: number;
  /** Multiply each delay by a random factor in [1, 2) (p-retry's `randomize`). */
  readonly jitter: boolean;
}

/**
 * A fully resolved, immutable retry policy (plain data: safe to store as JSON). Build one with
 * {@link resolveRetryPolicy}.
 */
export interface RetryPolicy {
  /** Total attempts including the first. */
  readonly maxAttempts: number;
  /** Explicit delays (see {@link RetryPolicyInput.schedule}), or `null` to use `backoff`. */
  readonly schedule: readonly number[] | null;
  /** Exponential backoff, used when `schedule` is `null`. */
  readonly backoff: RetryBackoff;
  /** Cap for any computed delay, Retry-After included. */
  readonly maxDelayMs: number;
  /** ± jitter fraction for an explicit schedule (0 = none). */
  readonly jitter: number;
  /** Retries allowed for 3xx and 4xx other than 408/410/425/429. */
  readonly retryOn4xx: number;
  /** Whether `Retry-After` on 429/503 is honoured. */
  readonly honorRetryAfter: boolean;
}

const int = (field: string, min: number, max: number) =>
  z
    .number({ error: `${field} must be a number` })
    .int(`${field} must be an integer`)
    .min(min, `${field} must be at least ${min}`)
    .max(max, `${field} must be at most ${max}`);

const num = (field: string, min: number, max: number) =>
  z
    .number({ error: `${field} must be a number` })
    .min(min, `${field} must be at least ${min}`)
    .max(max, `${field} must be at most ${max}`);

const bool = (field: string) => z.boolean({ error: `${field} must be a boolean` });

const strict = <T extends z.core.$ZodLooseShape>(what: string, shape: T) =>
  z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown ${what} option ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : `${what} must be an object`,
  });

const backoffShape = {
  /** Delay before the 2nd attempt, before randomisation. Default 5,000. */
  initialDelayMs: int('backoff.initialDelayMs', 0, MAX_DELAY_SETTING_MS).optional(),
  /** Growth factor per attempt. Default 2. */
  factor: num('backoff.factor', 1, 10).optional(),
  /** Cap of a backoff delay. Default 6 h. */
  maxDelayMs: int('backoff.maxDelayMs', 0, MAX_DELAY_SETTING_MS).optional(),
  /** Multiply each delay by a random factor in [1, 2) (p-retry's `randomize`). Default true. */
  jitter: bool('backoff.jitter').optional(),
};
const backoffSchema = strict('backoff', backoffShape);

const retryPolicyShape = {
  /**
   * Total attempts including the first. Integer 1..100; default 11: the first attempt and 10
   * retries (ShopCtrl: "it would retry up to 10 times", then an alert).
   */
  maxAttempts: int('maxAttempts', 1, 100).optional(),
  /**
   * Explicit delays in ms: index 0 is the delay before the 2nd attempt, index 1 before the 3rd,
   * and so on. When shorter than `maxAttempts - 1`, the last entry repeats. Takes the place of
   * `backoff`; the two cannot be given together.
   */
  schedule: z
    .array(int('schedule entry', 0, MAX_DELAY_SETTING_MS), { error: 'schedule must be an array of delays in ms' })
    .min(1, 'schedule must not be empty')
    .max(100, 'schedule must have at most 100 entries')
    .readonly()
    .optional(),
  /**
   * Exponential backoff, used when there is no `schedule`. Defaults: `initialDelayMs` 5 000,
   * `factor` 2, `maxDelayMs` 6 h, `jitter` true (p-retry's `randomize`: multiply by 1..2).
   * Giving `backoff` in an override switches a base policy that had a schedule to backoff.
   */
  backoff: backoffSchema.optional(),
  /** Cap for any computed delay, Retry-After included. Default 24 h. */
  maxDelayMs: int('maxDelayMs', 0, MAX_DELAY_SETTING_MS).optional(),
  /** Jitter fraction applied to an explicit schedule: 0.2 means ±20% (the default); 0 disables. */
  jitter: num('jitter', 0, 1).optional(),
  /**
   * How many retries a 3xx or a 4xx other than 408/410/425/429 gets. Default 0 (not retried).
   * Counted from the first attempt: such a failure after attempt N is retried only if N ≤ this.
   */
  retryOn4xx: int('retryOn4xx', 0, 100).optional(),
  /** Honour `Retry-After` on 429 and 503 responses. Default true. */
  honorRetryAfter: bool('honorRetryAfter').optional(),
};

/**
 * zod schema of the user-facing {@link RetryPolicyInput}: a strict object (unknown keys are
 * errors), every field optional, defaults applied by {@link resolveRetryPolicy}. Every error
 * message names its field, e.g. `maxAttempts must be at least 1`, `schedule entry must be at least 0` (path `schedule.1`).
 */
export const retryPolicySchema: z.ZodObject<typeof retryPolicyShape, z.core.$strict> = strict('retry policy', retryPolicyShape).superRefine(
  (value, ctx) => {
    if (value.schedule !== undefined && value.backoff !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['backoff'],
        message: 'backoff cannot be combined with schedule; give one or the other',
      });
    }
  },
);

/**
 * User-facing retry policy. Every field is optional; {@link resolveRetryPolicy} fills the rest
 * from a base policy (by default {@link DEFAULT_RETRY_POLICY}).
 */
export type RetryPolicyInput = z.input<typeof retryPolicySchema>;

/**
 * Delays of the Svix retry schedule after the immediate first attempt: 5 s, 5 min, 30 min, 2 h,
 * 5 h, 10 h, 10 h. Svix applies ±20% jitter, which is the default `jitter`. Use it as
 * `resolveRetryPolicy({ schedule: SVIX_SCHEDULE, maxAttempts: SVIX_SCHEDULE.length + 1 })`.
 */
export const SVIX_SCHEDULE: readonly number[] = Object.freeze([
  5 * SECOND,
  5 * MINUTE,
  30 * MINUTE,
  2 * HOUR,
  5 * HOUR,
  10 * HOUR,
  10 * HOUR,
]);

/**
 * The default policy: the first attempt and up to 10 retries, 11 requests in all (ShopCtrl: "it
 * would retry up to 10 times", then an alert is created), exponential
 * backoff from 5 s with factor 2 capped at 6 h and p-retry-style randomisation, any delay capped at
 * 24 h, 4xx not retried, Retry-After honoured.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = freezePolicy({
  maxAttempts: 11,
  schedule: null,
  backoff: { initialDelayMs: 5 * SECOND, factor: 2, maxDelayMs: 6 * HOUR, jitter: true },
  maxDelayMs: DAY,
  jitter: 0.2,
  retryOn4xx: 0,
  honorRetryAfter: true,
});

function freezePolicy(policy: RetryPolicy): RetryPolicy {
  return Object.freeze({
    ...policy,
    schedule: policy.schedule === null ? null : Object.freeze([...policy.schedule]),
    backoff: Object.freeze({ ...policy.backoff }),
  });
}

/**
 * Validates `input` with {@link retryPolicySchema} and lays it over `base` (default
 * {@link DEFAULT_RETRY_POLICY}): use it for a per-webhook override on top of the dispatcher's
 * policy. Fields given replace the base's; `backoff` is merged field by field. A `schedule` in the
 * input replaces the base's schedule or backoff; a `backoff` in the input (without `schedule`)
 * switches to exponential backoff even if the base had a schedule.
 *
 * @throws {WebhookValidationError} when `input` is invalid; the message names every bad field.
 * @returns a frozen policy (`base` itself when `input` is undefined).
 */
export function resolveRetryPolicy(input?: RetryPolicyInput, base: RetryPolicy = DEFAULT_RETRY_POLICY): RetryPolicy {
  if (input === undefined) return base;
  const result = retryPolicySchema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
    throw new WebhookValidationError(issues, { context: 'invalid retry policy', cause: result.error });
  }
  const v = result.data;
  let schedule = base.schedule;
  let backoff = base.backoff;
  if (v.schedule !== undefined) {
    schedule = v.schedule;
  } else if (v.backoff !== undefined) {
    schedule = null;
    backoff = {
      initialDelayMs: v.backoff.initialDelayMs ?? base.backoff.initialDelayMs,
      factor: v.backoff.factor ?? base.backoff.factor,
      maxDelayMs: v.backoff.maxDelayMs ?? base.backoff.maxDelayMs,
      jitter: v.backoff.jitter ?? base.backoff.jitter,
    };
  }
  return freezePolicy({
    maxAttempts: v.maxAttempts ?? base.maxAttempts,
    schedule,
    backoff,
    maxDelayMs: v.maxDelayMs ?? base.maxDelayMs,
    jitter: v.jitter ?? base.jitter,
    retryOn4xx: v.retryOn4xx ?? base.retryOn4xx,
    honorRetryAfter: v.honorRetryAfter ?? base.honorRetryAfter,
  });
}

/** What happened on one delivery attempt. */
export type AttemptObservation =
  /** An HTTP response was received; `retryAfter` is the raw `Retry-After` header, if any. */
  | { kind: 'response'; status: number; retryAfter?: string | null }
  /** The endpoint was not reached, the connection was reset, or the request timed out. */
  | { kind: 'network'; code?: string }
  /** The SSRF guard refused the destination address. */
  | { kind: 'blocked' }
  /** A local failure (e.g. the template or transform threw): never retried. */
  | { kind: 'error' };

/** What to do after an attempt. `reason` is short human text for the execution log. */
export type RetryDecision =
  | { action: 'succeeded' }
  | { action: 'retry'; delayMs: number; runAt: number; reason: string }
  /** Give up: attempts exhausted or not retryable. */
  | { action: 'fail'; reason: string }
  /** 410 Gone: mark the delivery failed and disable the webhook. */
  | { action: 'disable'; reason: string };

function checkAttempt(attempt: number): void {
  if (!Number.isSafeInteger(attempt) || attempt < 1) {
    throw new WebhookValidationError([{ path: 'attempt', message: `must be a positive integer, got ${attempt}` }]);
  }
}

/** A draw from `random`, clamped to [0, 1] (NaN counts as 0). */
function draw(random: () => number): number {
  const r = random();
  return Number.isNaN(r) ? 0 : Math.min(Math.max(r, 0), 1);
}

/**
 * Delay in ms before attempt `attempt + 1` (`attempt` = the 1-based number of the attempt that
 * just finished), capped at `policy.maxDelayMs`.
 *
 * - Explicit schedule: `schedule[attempt - 1]` (the last entry repeats), scaled by
 *   `1 + jitter * (2 * random() - 1)`, so `random = () => 0` gives −jitter and `() => 1` +jitter.
 * - Exponential backoff: p-retry 7.1.1's formula (its `calculateDelay` is not exported), i.e.
 *   `min(round((jitter ? random() + 1 : 1) * initialDelayMs * factor ** (attempt - 1)), backoff.maxDelayMs)`.
 *
 * @param random - source of [0, 1) numbers; defaults to `Math.random`.
 * @throws {WebhookValidationError} when `attempt` is not a positive integer.
 */
export function computeDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  checkAttempt(attempt);
  let delay: number;
  const { schedule } = policy;
  if (schedule !== null && schedule.length > 0) {
    const base = schedule[Math.min(attempt, schedule.length) - 1] ?? 0;
    const scale = policy.jitter > 0 ? 1 + policy.jitter * (2 * draw(random) - 1) : 1;
    delay = Math.round(base * scale);
  } else {
    // Mirrors `calculateDelay` in node_modules/p-retry/index.js (p-retry 7.1.1), which p-retry does
    // not export: attempt = retriesConsumed + 1, random = randomize ? Math.random() + 1 : 1,
    // timeout = min(round(random * minTimeout * factor ** (attempt - 1)), maxTimeout).
    // Our `attempt` (the attempt that just finished) equals p-retry's `retriesConsumed + 1`.
    const { initialDelayMs, factor, maxDelayMs, jitter } = policy.backoff;
    const multiplier = jitter ? draw(random) + 1 : 1;
    delay = Math.min(Math.round(multiplier * initialDelayMs * factor ** (attempt - 1)), maxDelayMs);
  }
  if (Number.isNaN(delay)) delay = policy.maxDelayMs;
  return Math.min(Math.max(delay, 0), policy.maxDelayMs);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// RFC 9110 §5.6.7: IMF-fixdate, plus the obsolete RFC 850 and asctime formats recipients must accept.
const IMF_FIXDATE = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i');
const RFC_850 = new RegExp(
  `^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`,
  'i',
);
const ASCTIME = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun) ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`, 'i');

function utc(year: number, month: string, day: number, hh: number, mm: number, ss: number): number | null {
  const m = MONTHS.indexOf(month.toLowerCase());
  if (m < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return null;
  const t = Date.UTC(year, m, day, hh, mm, Math.min(ss, 59));
  // Reject dates that do not exist (31 Feb rolls over into March).
  return new Date(t).getUTCDate() === day ? t : null;
}

function parseHttpDate(value: string, now: number): number | null {
  let match = IMF_FIXDATE.exec(value);
  if (match) {
    const [, d, mon, y, hh, mm, ss] = match;
    return utc(Number(y), mon ?? '', Number(d), Number(hh), Number(mm), Number(ss));
  }
  match = RFC_850.exec(value);
  if (match) {
    const [, d, mon, yy, hh, mm, ss] = match;
    // Two-digit year: a year more than 50 years in the future means the previous century.
    let year = 2000 + Number(yy);
    if (year > new Date(now).getUTCFullYear() + 50) year -= 100;
    return utc(year, mon ?? '', Number(d), Number(hh), Number(mm), Number(ss));
  }
  match = ASCTIME.exec(value);
  if (match) {
    const [, mon, d, hh, mm, ss, y] = match;
    return utc(Number(y), mon ?? '', Number(d?.trim()), Number(hh), Number(mm), Number(ss));
  }
  return null;
}

/**
 * Parses a `Retry-After` header value: delta-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`; the obsolete RFC 850 and asctime forms are accepted too).
 * Dates are read strictly as UTC, never through `Date.parse`, so the result does not depend on
 * the host's time zone.
 *
 * @param now - epoch ms the date is measured from.
 * @returns ms from `now` (≥ 0; a date in the past gives 0), or `null` when absent or invalid
 * (negative or fractional seconds, unknown date format, impossible date).
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (text === '') return null;
  if (/^\d+$/.test(text)) {
    const ms = Number(text) * 1000;
    return Number.isSafeInteger(ms) ? ms : Number.MAX_SAFE_INTEGER;
  }
  const at = parseHttpDate(text, now);
  if (at === null || !Number.isFinite(now)) return null;
  return Math.max(0, at - now);
}

/** Compact duration for log lines: `250ms`, `5s`, `1m30s`, `2h`, `10h5m`. */
function formatDuration(ms: number): string {
  if (ms < SECOND) return `${Math.round(ms)}ms`;
  const total = Math.round(ms / SECOND);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const parts: string[] = [];
  if (h > 0) parts.push(`${h}h`);
  if (m > 0) parts.push(`${m}m`);
  if (s > 0 && h === 0) parts.push(`${s}s`);
  return parts.join('') || '0s';
}

const TRANSIENT_4XX = new Set([408, 425, 429]);

/**
 * Decides what follows an attempt (see the module's classification table).
 *
 * - 2xx → `succeeded`; 410 → `disable`; `blocked` and `error` → `fail`, never retried.
 * - 408, 425, 429, 5xx and network errors → `retry` while `attempt < maxAttempts`, else `fail`.
 * - 3xx, other 4xx (409 included) and any other status → `retry` only while
 *   `attempt ≤ retryOn4xx` (and attempts remain), else `fail`; by default never retried.
 * - On 429 and 503 with a valid `Retry-After` and `honorRetryAfter`, the delay is
 *   `min(max(scheduleDelay, retryAfterMs), maxDelayMs)`: Retry-After can lengthen the wait but
 *   never shortens the schedule's (jittered) delay, and never exceeds `maxDelayMs`.
 *
 * @param attempt - 1-based number of the attempt that just finished.
 * @param now - epoch ms; `runAt = now + delayMs`.
 * @param random - source of [0, 1) numbers for jitter; defaults to `Math.random`.
 * @throws {WebhookValidationError} when `attempt` is not a positive integer or `now` is not finite.
 */
export function decideRetry(
  policy: RetryPolicy,
  attempt: number,
  outcome: AttemptObservation,
  now: number,
  random: () => number = Math.random,
): RetryDecision {
  checkAttempt(attempt);
  if (!Number.isFinite(now)) throw new WebhookValidationError([{ path: 'now', message: `must be a finite epoch ms, got ${now}` }]);

  let what: string;
  let retries: number; // retries this kind of failure may have in total
  let retryAfter: string | null | undefined;
  switch (outcome.kind) {
    case 'blocked':
      return { action: 'fail', reason: 'address blocked by the SSRF guard; not retried' };
    case 'error':
      return { action: 'fail', reason: 'local error before sending; not retried' };
    case 'network':
      what = outcome.code ? `network error (${outcome.code})` : 'network error';
      retries = policy.maxAttempts - 1;
      break;
    case 'response': {
      const { status } = outcome;
      if (status >= 200 && status <= 299) return { action: 'succeeded' };
      if (status === 410) return { action: 'disable', reason: 'endpoint answered 410 Gone' };
      what = `HTTP ${status}`;
      if (TRANSIENT_4XX.has(status) || (status >= 500 && status <= 599)) {
        retries = policy.maxAttempts - 1;
        if (policy.honorRetryAfter && (status === 429 || status === 503)) retryAfter = outcome.retryAfter;
      } else {
        if (policy.retryOn4xx === 0) return { action: 'fail', reason: `${what} is not retried` };
        retries = Math.min(policy.retryOn4xx, policy.maxAttempts - 1);
      }
      break;
    }
    default: {
      const unknown: never = outcome;
      throw new WebhookValidationError([{ path: 'outcome.kind', message: `unknown attempt outcome ${JSON.stringify(unknown)}` }]);
    }
  }

  if (attempt > retries) {
    return {
      action: 'fail',
      reason:
        retries < policy.maxAttempts - 1
          ? `${what}; retries exhausted (${retries})`
          : `${what}; attempts exhausted (${policy.maxAttempts})`,
    };
  }

  let delayMs = computeDelay(policy, attempt, random);
  let note = '';
  const retryAfterMs = parseRetryAfter(retryAfter, now);
  if (retryAfterMs !== null && retryAfterMs > delayMs) {
    delayMs = Math.min(retryAfterMs, policy.maxDelayMs);
    note = ' (Retry-After)';
  }
  return {
    action: 'retry',
    delayMs,
    runAt: now + delayMs,
    reason: `${what}, retry ${attempt} of ${retries} in ${formatDuration(delayMs)}${note}`,
  };
}
