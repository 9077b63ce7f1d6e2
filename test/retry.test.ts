import { describe, expect, it } from 'vitest';
import { WebhookValidationError } from '../src/errors.js';
import {
  DEFAULT_RETRY_POLICY,
  SVIX_SCHEDULE,
  computeDelay,
  decideRetry,
  parseRetryAfter,
  resolveRetryPolicy,
  retryPolicySchema,
  type AttemptObservation,
  type RetryDecision,
  type RetryPolicy,
} from '../src/delivery/retry.js';

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0); // Wed, 15 Jan 2025 12:00:00 GMT
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const zero = () => 0;
const half = () => 0.5;
const one = () => 1;

const status = (code: number, retryAfter?: string | null): AttemptObservation => ({ kind: 'response', status: code, retryAfter });

/** A policy with no randomness at all: exponential 1s, 2s, 4s, ... */
const plain = resolveRetryPolicy({ backoff: { initialDelayMs: SECOND, factor: 2, jitter: false } });

/** Feeds the same outcome for attempts 1, 2, ... until the decision is not a retry. */
function runUntilDone(policy: RetryPolicy, outcome: AttemptObservation, random = half): RetryDecision[] {
  const decisions: RetryDecision[] = [];
  for (let attempt = 1; attempt <= 1_000; attempt++) {
    const decision = decideRetry(policy, attempt, outcome, NOW, random);
    decisions.push(decision);
    if (decision.action !== 'retry') break;
  }
  return decisions;
}

/** Mirror of p-retry 7.1.1 calculateDelay, written independently for the assertion. */
function pRetryDelay(attempt: number, o: { minTimeout: number; factor: number; maxTimeout: number; r: number | null }) {
  const random = o.r === null ? 1 : o.r + 1;
  return Math.min(Math.round(random * o.minTimeout * o.factor ** (attempt - 1)), o.maxTimeout);
}

function validationError(fn: () => unknown): WebhookValidationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(WebhookValidationError);
    return error as WebhookValidationError;
  }
  throw new Error('expected a WebhookValidationError');
}

describe('DEFAULT_RETRY_POLICY', () => {
  it('is 11 attempts (the first and 10 retries, as ShopCtrl) of exponential backoff with the documented defaults', () => {
    expect(DEFAULT_RETRY_POLICY).toEqual({
      maxAttempts: 11,
      schedule: null,
      backoff: { initialDelayMs: 5_000, factor: 2, maxDelayMs: 6 * HOUR, jitter: true },
      maxDelayMs: DAY,
      jitter: 0.2,
      retryOn4xx: 0,
      honorRetryAfter: true,
    });
    expect(Object.isFrozen(DEFAULT_RETRY_POLICY)).toBe(true);
    expect(Object.isFrozen(DEFAULT_RETRY_POLICY.backoff)).toBe(true);
  });

  it('SVIX_SCHEDULE holds the Svix delays after the immediate first attempt', () => {
    expect(SVIX_SCHEDULE).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(Object.isFrozen(SVIX_SCHEDULE)).toBe(true);
  });
});

describe('attempt budget', () => {
  it.each([1, 2, 3, 10, 25])('maxAttempts=%i gives exactly N-1 retries on 500 then fails', (n) => {
    const policy = resolveRetryPolicy({ maxAttempts: n });
    const decisions = runUntilDone(policy, status(500));
    expect(decisions).toHaveLength(n);
    expect(decisions.slice(0, -1).every((d) => d.action === 'retry')).toBe(true);
    expect(decisions.at(-1)).toEqual({ action: 'fail', reason: `HTTP 500; attempts exhausted (${n})` });
  });

  it('the default policy retries up to 10 times (ShopCtrl): 11 attempts', () => {
    const decisions = runUntilDone(DEFAULT_RETRY_POLICY, status(502));
    expect(decisions).toHaveLength(11);
    expect(decisions.filter((d) => d.action === 'retry')).toHaveLength(10);
    expect(decisions.at(-1)?.action).toBe('fail');
  });

  it('fails an attempt beyond maxAttempts (policy lowered while a delivery was pending)', () => {
    expect(decideRetry(resolveRetryPolicy({ maxAttempts: 3 }), 7, status(500), NOW, half)).toMatchObject({
      action: 'fail',
    });
  });

  it('retry reasons count retries against the budget', () => {
    const policy = resolveRetryPolicy({ schedule: SVIX_SCHEDULE, jitter: 0 });
    expect(decideRetry(policy, 3, status(503), NOW)).toEqual({
      action: 'retry',
      delayMs: 30 * MINUTE,
      runAt: NOW + 30 * MINUTE,
      reason: 'HTTP 503, retry 3 of 10 in 30m',
    });
  });

  it('rejects a non-positive or fractional attempt number', () => {
    const named = (field: string) => expect.objectContaining({ name: 'WebhookValidationError', field });
    expect(() => decideRetry(DEFAULT_RETRY_POLICY, 0, status(500), NOW)).toThrow(named('attempt'));
    expect(() => decideRetry(DEFAULT_RETRY_POLICY, 1.5, status(500), NOW)).toThrow(named('attempt'));
    expect(() => computeDelay(DEFAULT_RETRY_POLICY, -1)).toThrow(named('attempt'));
    expect(() => decideRetry(DEFAULT_RETRY_POLICY, 1, status(500), Number.NaN)).toThrow(named('now'));
    expect(() => decideRetry(DEFAULT_RETRY_POLICY, 1, { kind: 'other' } as never, NOW)).toThrow(named('outcome.kind'));
  });
});

describe('explicit schedule (Svix)', () => {
  const svix = resolveRetryPolicy({ schedule: SVIX_SCHEDULE, maxAttempts: SVIX_SCHEDULE.length + 1 });

  it('gives the exact delays with jitter 0', () => {
    const policy = resolveRetryPolicy({ jitter: 0 }, svix);
    const delays = SVIX_SCHEDULE.map((_, i) => computeDelay(policy, i + 1, zero));
    expect(delays).toEqual([...SVIX_SCHEDULE]);
  });

  it('stays within ±20% by default: random=0 gives -20%, random=1 gives +20%', () => {
    SVIX_SCHEDULE.forEach((base, i) => {
      expect(computeDelay(svix, i + 1, zero)).toBe(Math.round(base * 0.8));
      expect(computeDelay(svix, i + 1, one)).toBe(Math.round(base * 1.2));
      expect(computeDelay(svix, i + 1, half)).toBe(base);
      const d = computeDelay(svix, i + 1, Math.random);
      expect(d).toBeGreaterThanOrEqual(base * 0.8);
      expect(d).toBeLessThanOrEqual(base * 1.2);
    });
  });

  it('runs 8 attempts then fails, with runAt = now + delay', () => {
    const decisions = runUntilDone(resolveRetryPolicy({ jitter: 0 }, svix), { kind: 'network', code: 'ECONNRESET' });
    expect(decisions).toHaveLength(8);
    const retries = decisions.filter((d) => d.action === 'retry');
    expect(retries.map((d) => d.delayMs)).toEqual([...SVIX_SCHEDULE]);
    expect(retries.map((d) => d.runAt)).toEqual(SVIX_SCHEDULE.map((d) => NOW + d));
    expect(retries[0]?.reason).toBe('network error (ECONNRESET), retry 1 of 7 in 5s');
    expect(decisions.at(-1)).toEqual({ action: 'fail', reason: 'network error (ECONNRESET); attempts exhausted (8)' });
  });

  it('repeats the last entry when shorter than maxAttempts - 1', () => {
    const policy = resolveRetryPolicy({ schedule: [1_000, 2_000], maxAttempts: 5, jitter: 0 });
    expect([1, 2, 3, 4].map((a) => computeDelay(policy, a))).toEqual([1_000, 2_000, 2_000, 2_000]);
  });

  it('caps schedule entries at maxDelayMs, jitter included', () => {
    const policy = resolveRetryPolicy({ schedule: [10 * HOUR], maxDelayMs: 11 * HOUR });
    expect(computeDelay(policy, 1, zero)).toBe(8 * HOUR);
    expect(computeDelay(policy, 1, one)).toBe(11 * HOUR);
  });
});

describe('exponential backoff (p-retry formula)', () => {
  it('matches p-retry without randomisation at attempts 1..10 and is capped', () => {
    const policy = resolveRetryPolicy({ backoff: { initialDelayMs: 5_000, factor: 2, maxDelayMs: 600_000, jitter: false } });
    const delays = Array.from({ length: 10 }, (_, i) => computeDelay(policy, i + 1));
    const expected = Array.from({ length: 10 }, (_, i) =>
      pRetryDelay(i + 1, { minTimeout: 5_000, factor: 2, maxTimeout: 600_000, r: null }),
    );
    expect(delays).toEqual(expected);
    expect(delays).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 600_000, 600_000, 600_000]);
  });

  it('matches p-retry with randomize (multiplier random + 1) for the default policy', () => {
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const delays = Array.from({ length: 10 }, (_, i) => computeDelay(DEFAULT_RETRY_POLICY, i + 1, () => r));
      const expected = Array.from({ length: 10 }, (_, i) =>
        pRetryDelay(i + 1, { minTimeout: 5_000, factor: 2, maxTimeout: 6 * HOUR, r }),
      );
      expect(delays).toEqual(expected);
    }
    expect(computeDelay(DEFAULT_RETRY_POLICY, 1, zero)).toBe(5_000);
    expect(computeDelay(DEFAULT_RETRY_POLICY, 1, half)).toBe(7_500);
    expect(computeDelay(DEFAULT_RETRY_POLICY, 3, half)).toBe(30_000);
  });

  it('is capped by backoff.maxDelayMs and by the policy maxDelayMs', () => {
    expect(computeDelay(DEFAULT_RETRY_POLICY, 100, zero)).toBe(6 * HOUR);
    const tight = resolveRetryPolicy({ maxDelayMs: MINUTE });
    expect(computeDelay(tight, 9, zero)).toBe(MINUTE);
    const steep = resolveRetryPolicy({ backoff: { factor: 10, maxDelayMs: 30 * DAY }, maxDelayMs: 30 * DAY, maxAttempts: 100 });
    expect(computeDelay(steep, 99, one)).toBe(30 * DAY);
  });

  it('uses the factor from p-retry semantics', () => {
    const policy = resolveRetryPolicy({ backoff: { initialDelayMs: 1_000, factor: 3, jitter: false } });
    expect([1, 2, 3, 4].map((a) => computeDelay(policy, a))).toEqual([1_000, 3_000, 9_000, 27_000]);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
  });

  it('reads an IMF-fixdate relative to now', () => {
    expect(parseRetryAfter('Wed, 15 Jan 2025 12:05:00 GMT', NOW)).toBe(5 * MINUTE);
    expect(parseRetryAfter('Thu, 16 Jan 2025 12:00:00 GMT', NOW)).toBe(DAY);
  });

  it('reads the obsolete RFC 850 and asctime forms', () => {
    expect(parseRetryAfter('Wednesday, 15-Jan-25 12:00:30 GMT', NOW)).toBe(30 * SECOND);
    expect(parseRetryAfter('Wed Jan 15 13:00:00 2025', NOW)).toBe(HOUR);
    expect(parseRetryAfter('Sat Feb  1 12:00:00 2025', NOW)).toBe(17 * DAY);
  });

  it('returns 0 for a date in the past', () => {
    expect(parseRetryAfter('Tue, 14 Jan 2025 12:00:00 GMT', NOW)).toBe(0);
    // RFC 850 two-digit year more than 50 years ahead belongs to the previous century (1994).
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', Date.UTC(1994, 10, 6, 8, 49, 0))).toBe(37 * SECOND);
  });

  it.each([
    [undefined],
    [null],
    [''],
    ['   '],
    ['-5'],
    ['1.5'],
    ['soon'],
    ['120s'],
    ['10, 20'],
    ['2025-01-15T12:05:00Z'],
    ['Wed, 15 Jan 2025 12:05:00'],
    ['Wed, 31 Feb 2025 12:05:00 GMT'],
    ['Wed, 15 Foo 2025 12:05:00 GMT'],
    ['Wed, 15 Jan 2025 25:05:00 GMT'],
    ['Wed, 15 Jan 2025 12:60:00 GMT'],
  ])('returns null for %j', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeNull();
  });
});

describe('Retry-After in decisions', () => {
  const policy = resolveRetryPolicy({ schedule: [10 * SECOND], jitter: 0, maxDelayMs: HOUR });

  it('lengthens the delay on 429 (seconds) and 503 (HTTP-date)', () => {
    expect(decideRetry(policy, 1, status(429, '120'), NOW)).toEqual({
      action: 'retry',
      delayMs: 120_000,
      runAt: NOW + 120_000,
      reason: 'HTTP 429, retry 1 of 10 in 2m (Retry-After)',
    });
    expect(decideRetry(policy, 1, status(503, 'Wed, 15 Jan 2025 12:05:00 GMT'), NOW)).toMatchObject({
      action: 'retry',
      delayMs: 5 * MINUTE,
      runAt: NOW + 5 * MINUTE,
    });
  });

  it('never shortens the schedule delay', () => {
    expect(decideRetry(policy, 1, status(429, '1'), NOW)).toMatchObject({ delayMs: 10 * SECOND, runAt: NOW + 10 * SECOND });
    expect(decideRetry(policy, 1, status(503, 'Tue, 14 Jan 2025 12:00:00 GMT'), NOW)).toMatchObject({
      delayMs: 10 * SECOND,
    });
  });

  it('is clamped to maxDelayMs', () => {
    expect(decideRetry(policy, 1, status(429, '86400'), NOW)).toMatchObject({ delayMs: HOUR, runAt: NOW + HOUR });
    expect(decideRetry(policy, 1, status(503, '9'.repeat(400)), NOW)).toMatchObject({ delayMs: HOUR });
  });

  it('ignores invalid values', () => {
    expect(decideRetry(policy, 1, status(429, 'later'), NOW)).toMatchObject({ delayMs: 10 * SECOND });
    expect(decideRetry(policy, 1, status(429, null), NOW)).toMatchObject({ delayMs: 10 * SECOND });
  });

  it('is ignored when honorRetryAfter is false', () => {
    const ignoring = resolveRetryPolicy({ honorRetryAfter: false }, policy);
    expect(decideRetry(ignoring, 1, status(429, '120'), NOW)).toMatchObject({ delayMs: 10 * SECOND });
    expect(decideRetry(ignoring, 1, status(503, '120'), NOW)).toMatchObject({ delayMs: 10 * SECOND });
  });

  it.each([500, 502, 504, 408, 425])('is only applied to 429 and 503, not %i', (code) => {
    expect(decideRetry(policy, 1, status(code, '120'), NOW)).toMatchObject({ action: 'retry', delayMs: 10 * SECOND });
  });

  it('does not extend the attempt budget', () => {
    expect(decideRetry(policy, 11, status(429, '5'), NOW)).toEqual({
      action: 'fail',
      reason: 'HTTP 429; attempts exhausted (11)',
    });
  });
});

describe('classification', () => {
  it.each([200, 201, 202, 204, 299])('%i succeeds', (code) => {
    expect(decideRetry(DEFAULT_RETRY_POLICY, 1, status(code), NOW)).toEqual({ action: 'succeeded' });
  });

  it('succeeds even on the last attempt', () => {
    expect(decideRetry(DEFAULT_RETRY_POLICY, 10, status(200), NOW)).toEqual({ action: 'succeeded' });
  });

  it('410 Gone disables the webhook, whatever the attempt and retryOn4xx', () => {
    const expected = { action: 'disable', reason: 'endpoint answered 410 Gone' };
    expect(decideRetry(DEFAULT_RETRY_POLICY, 1, status(410), NOW)).toEqual(expected);
    expect(decideRetry(resolveRetryPolicy({ retryOn4xx: 5 }), 1, status(410), NOW)).toEqual(expected);
    expect(decideRetry(DEFAULT_RETRY_POLICY, 10, status(410), NOW)).toEqual(expected);
  });

  it.each([400, 401, 403, 404, 409, 413, 422])('%i fails by default', (code) => {
    expect(decideRetry(DEFAULT_RETRY_POLICY, 1, status(code), NOW)).toEqual({
      action: 'fail',
      reason: `HTTP ${code} is not retried`,
    });
  });

  it('404 is retried exactly twice with retryOn4xx=2', () => {
    const policy = resolveRetryPolicy({ retryOn4xx: 2 });
    const decisions = runUntilDone(policy, status(404));
    expect(decisions.map((d) => d.action)).toEqual(['retry', 'retry', 'fail']);
    expect(decisions[0]).toMatchObject({ reason: expect.stringMatching(/^HTTP 404, retry 1 of 2 in /) });
    expect(decisions[2]).toEqual({ action: 'fail', reason: 'HTTP 404; retries exhausted (2)' });
  });

  it('retryOn4xx never exceeds maxAttempts', () => {
    const policy = resolveRetryPolicy({ retryOn4xx: 50, maxAttempts: 3 });
    expect(runUntilDone(policy, status(400)).map((d) => d.action)).toEqual(['retry', 'retry', 'fail']);
  });

  it.each([300, 301, 302, 303, 304, 307, 308])('3xx (%i) is a failure following the 4xx rule', (code) => {
    expect(decideRetry(DEFAULT_RETRY_POLICY, 1, status(code), NOW)).toEqual({
      action: 'fail',
      reason: `HTTP ${code} is not retried`,
    });
    const lenient = resolveRetryPolicy({ retryOn4xx: 1 });
    expect(runUntilDone(lenient, status(code)).map((d) => d.action)).toEqual(['retry', 'fail']);
  });

  it.each([100, 199, 600, 0])('unexpected status %i follows the 4xx rule', (code) => {
    expect(decideRetry(DEFAULT_RETRY_POLICY, 1, status(code), NOW)).toMatchObject({ action: 'fail' });
  });

  it.each([408, 425, 429, 500, 501, 502, 503, 504, 599])('%i is retried until attempts run out', (code) => {
    const decisions = runUntilDone(DEFAULT_RETRY_POLICY, status(code));
    expect(decisions.map((d) => d.action)).toEqual([...Array(10).fill('retry'), 'fail']);
  });

  it.each([{ kind: 'network' } as const, { kind: 'network', code: 'ETIMEDOUT' } as const])(
    'network error %j is retried until attempts run out',
    (outcome) => {
      const decisions = runUntilDone(DEFAULT_RETRY_POLICY, outcome);
      expect(decisions.map((d) => d.action)).toEqual([...Array(10).fill('retry'), 'fail']);
    },
  );

  it('names the network error in the reason', () => {
    expect(decideRetry(plain, 1, { kind: 'network' }, NOW)).toMatchObject({ reason: 'network error, retry 1 of 10 in 1s' });
  });

  it('blocked and error are never retried, even with retries left and retryOn4xx', () => {
    const policy = resolveRetryPolicy({ retryOn4xx: 5, maxAttempts: 100 });
    expect(decideRetry(policy, 1, { kind: 'blocked' }, NOW)).toEqual({
      action: 'fail',
      reason: 'address blocked by the SSRF guard; not retried',
    });
    expect(decideRetry(policy, 1, { kind: 'error' }, NOW)).toEqual({
      action: 'fail',
      reason: 'local error before sending; not retried',
    });
  });

  it('is pure: the same inputs give the same decision', () => {
    const a = decideRetry(DEFAULT_RETRY_POLICY, 4, status(500), NOW, () => 0.3);
    const b = decideRetry(DEFAULT_RETRY_POLICY, 4, status(500), NOW, () => 0.3);
    expect(a).toEqual(b);
    expect(a).toMatchObject({ action: 'retry', delayMs: 52_000, runAt: NOW + 52_000 });
  });

  it('formats long delays compactly in the reason', () => {
    const policy = resolveRetryPolicy({ schedule: [SVIX_SCHEDULE[5] ?? 0, 90 * SECOND, 250], jitter: 0 });
    expect(decideRetry(policy, 1, status(500), NOW)).toMatchObject({ reason: 'HTTP 500, retry 1 of 10 in 10h' });
    expect(decideRetry(policy, 2, status(500), NOW)).toMatchObject({ reason: 'HTTP 500, retry 2 of 10 in 1m30s' });
    expect(decideRetry(policy, 3, status(500), NOW)).toMatchObject({ reason: 'HTTP 500, retry 3 of 10 in 250ms' });
  });
});

describe('resolveRetryPolicy', () => {
  it('returns the base when there is no input', () => {
    expect(resolveRetryPolicy()).toBe(DEFAULT_RETRY_POLICY);
    expect(resolveRetryPolicy(undefined, plain)).toBe(plain);
    expect(resolveRetryPolicy({})).toEqual(DEFAULT_RETRY_POLICY);
  });

  it('merges per-webhook overrides onto the dispatcher policy', () => {
    const dispatcher = resolveRetryPolicy({ schedule: SVIX_SCHEDULE, maxAttempts: 8, retryOn4xx: 1, maxDelayMs: 12 * HOUR });
    const webhook = resolveRetryPolicy({ maxAttempts: 3, honorRetryAfter: false }, dispatcher);
    expect(webhook).toEqual({
      maxAttempts: 3,
      schedule: [...SVIX_SCHEDULE],
      backoff: DEFAULT_RETRY_POLICY.backoff,
      maxDelayMs: 12 * HOUR,
      jitter: 0.2,
      retryOn4xx: 1,
      honorRetryAfter: false,
    });
    // The base is untouched.
    expect(dispatcher.maxAttempts).toBe(8);
    expect(dispatcher.honorRetryAfter).toBe(true);
  });

  it('merges backoff field by field', () => {
    const base = resolveRetryPolicy({ backoff: { initialDelayMs: 1_000, factor: 3 } });
    const merged = resolveRetryPolicy({ backoff: { jitter: false } }, base);
    expect(merged.backoff).toEqual({ initialDelayMs: 1_000, factor: 3, maxDelayMs: 6 * HOUR, jitter: false });
    expect(merged.schedule).toBeNull();
  });

  it('a schedule replaces backoff, and a backoff override replaces a base schedule', () => {
    const scheduled = resolveRetryPolicy({ schedule: [1_000, 2_000] });
    expect(scheduled.schedule).toEqual([1_000, 2_000]);
    expect(computeDelay(resolveRetryPolicy({ jitter: 0 }, scheduled), 2)).toBe(2_000);
    const back = resolveRetryPolicy({ backoff: { jitter: false } }, scheduled);
    expect(back.schedule).toBeNull();
    expect(computeDelay(back, 2)).toBe(10_000);
    const override = resolveRetryPolicy({ schedule: [7_000] }, scheduled);
    expect(override.schedule).toEqual([7_000]);
  });

  it('returns a frozen policy that does not alias the input', () => {
    const schedule = [1_000, 2_000];
    const policy = resolveRetryPolicy({ schedule });
    schedule[0] = 99;
    expect(policy.schedule).toEqual([1_000, 2_000]);
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.schedule)).toBe(true);
    expect(Object.isFrozen(policy.backoff)).toBe(true);
  });

  it('throws a WebhookValidationError naming the field', () => {
    const error = validationError(() => resolveRetryPolicy({ maxAttempts: 0 }));
    expect(error.field).toBe('maxAttempts');
    expect(error.message).toMatch(/maxAttempts must be at least 1/);
    const schedule = validationError(() => resolveRetryPolicy({ schedule: [1_000, -5] }));
    expect(schedule.field).toBe('schedule.1');
    expect(schedule.message).toMatch(/schedule entry must be at least 0/);
  });
});

describe('retryPolicySchema', () => {
  const messages = (value: unknown) => {
    const result = retryPolicySchema.safeParse(value);
    expect(result.success).toBe(false);
    return result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
  };

  it('accepts valid input, including an empty object', () => {
    expect(retryPolicySchema.safeParse({}).success).toBe(true);
    const full = {
      maxAttempts: 8,
      schedule: [...SVIX_SCHEDULE],
      maxDelayMs: DAY,
      jitter: 0.2,
      retryOn4xx: 2,
      honorRetryAfter: false,
    };
    expect(retryPolicySchema.parse(full)).toEqual(full);
    expect(retryPolicySchema.parse({ backoff: { initialDelayMs: 0, factor: 1.5, maxDelayMs: HOUR, jitter: true } })).toEqual({
      backoff: { initialDelayMs: 0, factor: 1.5, maxDelayMs: HOUR, jitter: true },
    });
  });

  it.each<[unknown, RegExp]>([
    [{ maxAttempts: 0 }, /^maxAttempts: maxAttempts must be at least 1$/],
    [{ maxAttempts: 101 }, /^maxAttempts: maxAttempts must be at most 100$/],
    [{ maxAttempts: 2.5 }, /^maxAttempts: maxAttempts must be an integer$/],
    [{ maxAttempts: '3' }, /^maxAttempts: maxAttempts must be a number$/],
    [{ maxAttempts: Number.NaN }, /^maxAttempts: maxAttempts must be a number$/],
    [{ schedule: [5_000, -1] }, /^schedule\.1: schedule entry must be at least 0$/],
    [{ schedule: [] }, /^schedule: schedule must not be empty$/],
    [{ schedule: 5_000 }, /^schedule: schedule must be an array/],
    [{ schedule: [Number.POSITIVE_INFINITY] }, /^schedule\.0: schedule entry must be a number$/],
    [{ jitter: 1.5 }, /^jitter: jitter must be at most 1$/],
    [{ jitter: -0.1 }, /^jitter: jitter must be at least 0$/],
    [{ maxDelayMs: -1 }, /^maxDelayMs: maxDelayMs must be at least 0$/],
    [{ retryOn4xx: -1 }, /^retryOn4xx: retryOn4xx must be at least 0$/],
    [{ honorRetryAfter: 'yes' }, /^honorRetryAfter: honorRetryAfter must be a boolean$/],
    [{ backoff: { factor: 0.5 } }, /^backoff\.factor: backoff\.factor must be at least 1$/],
    [{ backoff: { initialDelayMs: -1 } }, /^backoff\.initialDelayMs: backoff\.initialDelayMs must be at least 0$/],
    [{ backoff: { jitter: 1 } }, /^backoff\.jitter: backoff\.jitter must be a boolean$/],
    [{ backoff: { minTimeout: 1 } }, /^backoff: unknown backoff option "minTimeout"$/],
    [{ retries: 3 }, /^: unknown retry policy option "retries"$/],
    [{ schedule: [1_000], backoff: {} }, /^backoff: backoff cannot be combined with schedule/],
    [null, /^: retry policy must be an object$/],
  ])('rejects %j naming the field', (value, pattern) => {
    expect(messages(value)).toEqual(expect.arrayContaining([expect.stringMatching(pattern)]));
  });
});
