import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../src/delivery/breaker.js';

function breaker(options = {}) {
  let now = 1_000_000;
  const clock = { now: () => now };
  const b = new CircuitBreaker(clock, { minimumAttempts: 4, failureRateThreshold: 0.75, cooldownMs: 10_000, ...options });
  return { b, advance: (ms: number) => (now += ms), now: () => now };
}

describe('CircuitBreaker', () => {
  it('opens at the failure rate over the minimum attempts, never on a success', () => {
    const { b, now } = breaker();
    expect(b.record('e', false)).toBeNull();
    expect(b.record('e', false)).toBeNull();
    expect(b.record('e', true)).toBeNull(); // 2/3 failed, below the minimum anyway
    expect(b.record('e', false)).toBe('opened'); // 3/4 = 0.75
    expect(b.tryAcquire('e')).toBe(false);
    expect(b.pausedUntil('e')).toBe(now() + 10_000); // the cooldown
    expect(b.tryAcquire('other')).toBe(true);
    expect(b.pausedUntil('other')).toBeNull();
  });

  it('lets exactly one probe through after the cool-down; success closes, failure reopens', () => {
    const { b, advance, now } = breaker();
    for (let i = 0; i < 4; i++) b.record('e', false);
    advance(9_999);
    expect(b.tryAcquire('e')).toBe(false);
    advance(1);
    expect(b.tryAcquire('e')).toBe(true);
    expect(b.tryAcquire('e')).toBe(false); // one probe at a time
    expect(b.pausedUntil('e')).toBe(now());
    expect(b.record('e', false)).toBe('opened');
    expect(b.pausedUntil('e')).toBe(now() + 10_000);
    advance(10_000);
    expect(b.tryAcquire('e')).toBe(true);
    expect(b.record('e', true)).toBe('closed');
    expect(b.pausedUntil('e')).toBeNull();
    expect(b.tryAcquire('e')).toBe(true);
  });

  it('a probe that ends without a result can be settled, so the webhook is not paused for good', () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 4; i++) b.record('e', false);
    advance(10_000);
    expect(b.tryAcquire('e')).toBe(true);
    expect(b.isProbing('e')).toBe(true);
    expect(b.tryAcquire('e')).toBe(false);
    b.releaseProbe('e');
    expect(b.isProbing('e')).toBe(false);
    expect(b.tryAcquire('e')).toBe(true);
  });

  it('forgets failures outside the window', () => {
    const { b, advance } = breaker({ windowMs: 60_000 });
    for (let i = 0; i < 3; i++) b.record('e', false);
    advance(61_000);
    expect(b.record('e', false)).toBeNull(); // only 1 failure in the window
  });
});
