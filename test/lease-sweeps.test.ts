/**
 * The contract's bound on noticing an expired lease (`leaseSweepDelayMs`) and the Postgres
 * adapter's schedule of looks for expired leases (`LeaseSweeps`), with the injected clock's numbers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WebhookValidationError } from 'webhook-dispatcher';
import { leaseSweepDelayMs } from 'webhook-dispatcher/testing';
import { LeaseSweeps } from '../src/storage/postgres/lease-sweeps.js';

describe('leaseSweepDelayMs', () => {
  it('is a tenth of the lease, 5 s at most', () => {
    expect(leaseSweepDelayMs(1_000)).toBe(100);
    expect(leaseSweepDelayMs(60_000)).toBe(5_000);
    expect(leaseSweepDelayMs(3_600_000)).toBe(5_000);
  });

  it('rejects anything but a positive, finite number of ms with a WebhookValidationError naming leaseMs', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constantFrom(0, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
          fc.double({ max: 0, noNaN: true }),
          fc.string(),
          fc.constant(null),
          fc.constant(undefined),
          fc.bigInt(),
        ),
        (bad) => {
          let caught: unknown;
          try {
            leaseSweepDelayMs(bad as number);
          } catch (error) {
            caught = error;
          }
          expect(caught).toBeInstanceOf(WebhookValidationError);
          expect((caught as WebhookValidationError).field).toBe('leaseMs');
        },
      ),
    );
  });
});

describe('LeaseSweeps', () => {
  it('sweeps at the first claim, then not before an interval has passed', () => {
    const sweeps = new LeaseSweeps();
    expect(sweeps.take(1_000, 1_000)).toBe(true);
    expect(sweeps.take(1_050, 1_000)).toBe(false);
    expect(sweeps.take(1_099, 1_000)).toBe(false);
    expect(sweeps.take(1_100, 1_000)).toBe(true);
  });

  it('sweeps at once when the clock goes back, or after a sweep whose claim failed', () => {
    const sweeps = new LeaseSweeps();
    expect(sweeps.take(5_000, 1_000)).toBe(true);
    expect(sweeps.take(4_000, 1_000)).toBe(true);
    expect(sweeps.take(4_010, 1_000)).toBe(false);
    sweeps.missed();
    expect(sweeps.take(4_020, 1_000)).toBe(true);
  });

  it('names the first sweep at or after a lease expiry', () => {
    const sweeps = new LeaseSweeps();
    expect(sweeps.firstSweepFrom(7)).toBe(7);
    sweeps.take(950, 1_000);
    expect(sweeps.firstSweepFrom(1_000)).toBe(1_050);
    expect(sweeps.firstSweepFrom(2_000)).toBe(2_000);
  });

  it('never lets an expired lease go unnoticed past the bound, whatever the claims (random schedules)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1_000, max: 120_000 }),
        fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 0, max: 100_000 }),
        (leaseMs, steps, expiry) => {
          const sweeps = new LeaseSweeps();
          let now = 0;
          let lastSweep = -Infinity;
          for (const step of steps) {
            now += step;
            if (sweeps.take(now, leaseMs)) lastSweep = now;
            // A claim at least the bound after the expiry sweeps, or a sweep since the expiry found it.
            if (now >= expiry + leaseSweepDelayMs(leaseMs)) expect(lastSweep).toBeGreaterThanOrEqual(expiry);
          }
        },
      ),
    );
  });
});
