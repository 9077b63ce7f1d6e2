/**
 * When a claim also looks for expired leases (a sweep): every {@link leaseSweepDelayMs}, the
 * contract's bound, not in every claim.
 *
 * A delivery that leaves 'delivering' keeps its entries in the lease indexes until VACUUM, and a
 * look for expired leases steps over every one whose lease time has passed: on a long drain, tens
 * of thousands per claim. Leases expire only when a process dies (or hangs past its lease), so
 * finding them up to one sweep interval late costs little: the dead process's deliveries already
 * waited a whole lease.
 *
 * @module
 */

import { leaseSweepDelayMs } from '../types.js';

export class LeaseSweeps {
  #next = -Infinity;
  #last = -Infinity;

  /** Whether a claim at `now` (leases of `leaseMs`) sweeps; if so, the next one is an interval later. */
  take(now: number, leaseMs: number): boolean {
    // A clock that went back (an injected one, reset) sweeps at once.
    if (now < this.#next && now >= this.#last) return false;
    this.#last = now;
    // The contract's bound: a lease that expired before this sweep was found by it; one that
    // expires after is found by the first claim an interval later (or before).
    this.#next = now + leaseSweepDelayMs(leaseMs);
    return true;
  }

  /** The earliest time from `at` on at which a claim sweeps. */
  firstSweepFrom(at: number): number {
    return Math.max(at, this.#next);
  }

  /** A sweep that did not happen (its claim failed): the next claim sweeps. */
  missed(): void {
    this.#next = -Infinity;
  }
}
