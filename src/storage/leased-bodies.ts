/**
 * The body of each delivery an adapter leased, by lease token, until the attempt completes. A
 * durable adapter uses it to tell that an execution's request body is the delivery's own body
 * (the usual case, unless a transform changed it) without comparing it in the database or sending
 * it there again, and then stores it once.
 *
 * Keyed by lease token: while a lease holds, the delivery's body cannot change (only claimable
 * deliveries take merges), and a completion that passes the adapter's token fence holds the very
 * lease the body was read under.
 *
 * @module
 */

/** Leases never completed (the process stopped, a lease was lost) must not pile up: the oldest go first. */
const DEFAULT_CAPACITY = 10_000;

/** Bounded memo of leased delivery bodies (see the module comment). */
export class LeasedBodies {
  private readonly bodies = new Map<string, string>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  /** Remembers the body leased under `leaseToken`. */
  remember(leaseToken: string, body: string): void {
    const bodies = this.bodies;
    if (bodies.size >= this.capacity) {
      // Insertion order is lease order: drop the older half. A forgotten lease only means its
      // execution stores (or sends) the body in full.
      for (const token of bodies.keys()) {
        bodies.delete(token);
        if (bodies.size < this.capacity / 2) break;
      }
    }
    bodies.set(leaseToken, body);
  }

  /** Forgets the lease (released, cancelled or completed). */
  forget(leaseToken: string): void {
    this.bodies.delete(leaseToken);
  }

  /**
   * Forgets the lease and says whether `requestBody` is the non-empty body leased under it. An
   * empty body is never shared, so that '' keeps meaning "stripped" where adapters store it.
   */
  takeIsLeasedBody(leaseToken: string, requestBody: string): boolean {
    const leased = this.bodies.get(leaseToken);
    if (leased === undefined) return false;
    this.bodies.delete(leaseToken);
    return leased !== '' && leased === requestBody;
  }

  get size(): number {
    return this.bodies.size;
  }
}
