/**
 * Moves due deliveries from storage into a bounded in-memory window and runs them, at most
 * `concurrency` at once. Storage decides what is due and in which order (one queue per webhook:
 * caps, rate limits, ordering, taking turns); the pump only adds what a single process must add:
 * its slots, and a politeness ceiling per origin, so many merchants' webhooks on one host cannot
 * flood it from here. Deliveries over an origin's ceiling wait in its line, inside the window.
 *
 * The slots are a heap and a counter rather than p-queue: p-queue tracks every task (an options
 * copy, an id, events, two promises) for a window that never holds more than twice the
 * concurrency; bench/slots.ts measures both (bench/README.md, "Slots: p-queue vs the pump's heap").
 *
 * @module
 */
import type { Clock } from '../clock.js';
import { SchemaMismatchError } from '../errors.js';
import { RunHeap } from '../storage/run-heap.js';
import type { ClaimedDelivery, WebhookStorage } from '../storage/types.js';

/** Settings of {@link DeliveryPump}. */
export interface DeliveryPumpOptions {
  storage: WebhookStorage;
  clock: Clock;
  /** Attempts in flight at once in this process. */
  concurrency: number;
  /** Cap of webhooks without their own, passed to every claim. */
  perWebhookConcurrency: number;
  /** Attempts in flight at once to one origin from this process. */
  perOriginConcurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  /**
   * Performs one attempt. Must not throw (errors are the caller's to record). Calling
   * `releaseSlot` once the HTTP exchange is over frees its concurrency slot for the next delivery
   * while the result is still being written; the delivery counts against the window until `run`
   * settles. Resolves `true` when the write that freed the delivery's place under its webhook's
   * cap has woken the pump already (completion writes wake it once, at the end of the turn, for
   * all the results they wrote: see {@link DeliveryPump.wakeAfterTurn}); otherwise the pump
   * claims again when `run` settles.
   */
  run: (delivery: ClaimedDelivery, releaseSlot: () => void) => Promise<boolean | void>;
  onError: (error: unknown, context: string) => void;
}

interface OriginLine {
  active: number;
  /** Claimed deliveries waiting for a place at this origin, in the order they came. */
  waiting: ClaimedDelivery[];
}

/** A delivery admitted to its origin's line, waiting for a concurrency slot. */
interface ReadyEntry {
  delivery: ClaimedDelivery;
  line: OriginLine;
  origin: string;
  /** Admission order: equal priorities start first come, first served. */
  seq: number;
}

const readyOrder = (a: ReadyEntry, b: ReadyEntry): boolean =>
  a.delivery.priority !== b.delivery.priority ? a.delivery.priority > b.delivery.priority : a.seq < b.seq;

/** The claim → slot → attempt loop behind the dispatcher. */
export class DeliveryPump {
  // Admissions of one priority come in seq order: the run heap takes them in O(1).
  private readonly ready = new RunHeap<ReadyEntry>(readyOrder);
  private readySeq = 0;
  /** Concurrency slots in use (an attempt holds one until its HTTP exchange is over). */
  private slotsInUse = 0;
  /**
   * Most deliveries claimed and not finished: twice the concurrency, so the deliveries left when a
   * refill starts keep the slots busy while the claim is in flight.
   */
  private readonly window: number;
  private readonly lines = new Map<string, OriginLine>();
  private claimedCount = 0;
  private running = false;
  private fillPromise: Promise<void> | null = null;
  private refillRequested = false;
  private lastFillClaimed = 0;
  /** The last fill stopped at the window's size: every finished delivery makes room to claim into. */
  private windowFull = false;
  private timer: NodeJS.Timeout | null = null;
  /** A wake is due at the end of the turn, and no wake has looked since it was asked for. */
  private wakeScheduled = false;
  private immediatePending = false;
  private readonly scheduledWake = (): void => {
    this.immediatePending = false;
    if (this.wakeScheduled) this.wake();
  };
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: DeliveryPumpOptions) {
    this.window = options.concurrency * 2;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Deliveries claimed by this process and not finished. */
  get inFlight(): number {
    return this.claimedCount;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  /**
   * Looks for due work once the current event-loop turn is over: the places that every result
   * written in this turn freed are claimed together (responses that arrive together are read in
   * one turn). Further calls before then do nothing more.
   */
  wakeAfterTurn(): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    if (this.immediatePending) return;
    this.immediatePending = true;
    setImmediate(this.scheduledWake);
  }

  /** Looks for due work now (after an emit, a completion, or a timer). */
  wake(): void {
    // This look (or the fill it joins) covers a wake scheduled for the end of the turn.
    this.wakeScheduled = false;
    if (!this.running || this.claimedCount >= this.window) return;
    if (this.fillPromise) {
      this.refillRequested = true;
      return;
    }
    this.fillPromise = this.fill().finally(() => {
      this.fillPromise = null;
      // A wake that arrived while this fill was finishing must not wait for the next poll.
      if (this.refillRequested && this.running) {
        this.refillRequested = false;
        this.wake();
      }
    });
  }

  /** Resolves when nothing due is left for this process and nothing it claimed is unfinished. */
  async drain(): Promise<void> {
    for (;;) {
      this.wake();
      // Every fill started so far, including one woken again as the previous one ended.
      while (this.fillPromise) await this.fillPromise;
      await this.idle();
      if (!this.running) return;
      // A wake scheduled for the end of the turn (after completions) has not looked yet.
      if (this.fillPromise || this.wakeScheduled) continue;
      if (this.lastFillClaimed === 0 && this.claimedCount === 0) return;
    }
  }

  /**
   * Stops claiming, releases claimed-but-unstarted deliveries back to storage, and waits for
   * attempts in progress (up to `timeoutMs`, after which `abort` is called so they end).
   */
  async stop(timeoutMs: number, abort: () => void): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.fillPromise) await this.fillPromise.catch(() => undefined);
    // Claimed and not started means waiting for a slot (ready) or for its origin (a line).
    const release: ClaimedDelivery[] = [];
    for (let entry = this.ready.pop(); entry !== undefined; entry = this.ready.pop()) release.push(entry.delivery);
    for (const line of this.lines.values()) {
      release.push(...line.waiting);
      line.waiting.length = 0;
    }
    await Promise.all(
      release.map(async (d) => {
        try {
          await this.options.storage.releaseDelivery(d.id, d.leaseToken);
        } catch (error) {
          this.options.onError(error, `release ${d.id}`);
        } finally {
          this.finished();
        }
      }),
    );
    let deadline: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      deadline = setTimeout(() => {
        abort();
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.idle(), timedOut]);
    clearTimeout(deadline);
    await this.idle();
  }

  private idle(): Promise<void> {
    if (this.claimedCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private finished(): void {
    this.claimedCount--;
    if (this.claimedCount === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private async fill(): Promise<void> {
    const { storage, clock, leaseMs, perWebhookConcurrency } = this.options;
    let claimedTotal = 0;
    let exhausted = false;
    try {
      do {
        this.refillRequested = false;
        while (this.running && this.claimedCount < this.window) {
          const limit = this.window - this.claimedCount;
          const batch = await storage.claimDueDeliveries({ now: clock.now(), limit, leaseMs, defaultConcurrency: perWebhookConcurrency });
          claimedTotal += batch.length;
          for (const delivery of batch) this.admit(delivery);
          if (batch.length < limit) {
            exhausted = true;
            break;
          }
        }
      } while (this.refillRequested && this.running);
    } catch (error) {
      this.options.onError(error, 'claim');
      if (error instanceof SchemaMismatchError) {
        // This code and the database disagree on the schema: claiming on would fail every time
        // (or worse, strand rows a newer process expects). Stop until someone upgrades or migrates.
        this.running = false;
        return;
      }
      exhausted = true; // try again after the poll interval
    }
    this.lastFillClaimed = claimedTotal;
    this.windowFull = !exhausted && this.claimedCount >= this.window;
    // With a full window, completions trigger the next claim; only a drained queue needs a timer.
    if (this.running && exhausted) await this.armTimer();
  }

  /** Sleeps until the next scheduled delivery or the poll interval, whichever is sooner. */
  private async armTimer(): Promise<void> {
    let delay = this.options.pollIntervalMs;
    // With deliveries in flight, each completion claims again: the poll is only a safety net, and
    // asking storage for the next run time after every claim would double the round trips.
    if (this.claimedCount > 0) {
      // A safety net already set stays as it is: setting a fresh timer after every claim (one per
      // completion) would cost a timer per delivery.
      if (!this.timer) this.setTimer(delay);
      return;
    }
    try {
      const next = await this.options.storage.nextRunAt();
      // Work already due but not claimed waits for a place under its webhook's cap: a completion
      // wakes the pump, so only future work may shorten the sleep.
      const now = this.options.clock.now();
      if (next !== null && next > now) delay = Math.min(delay, next - now);
    } catch (error) {
      this.options.onError(error, 'nextRunAt');
    }
    this.setTimer(delay);
  }

  private setTimer(delay: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    // Never spin: a due-but-capped delivery is picked up when a place frees, not by polling.
    this.timer = setTimeout(() => {
      this.timer = null;
      this.wake();
    }, Math.max(delay, 10));
    // A pending poll must not keep the host process alive on its own.
    this.timer.unref();
  }

  private admit(delivery: ClaimedDelivery): void {
    this.claimedCount++;
    const origin = delivery.origin;
    let line = this.lines.get(origin);
    if (!line) this.lines.set(origin, (line = { active: 0, waiting: [] }));
    if (line.active < this.options.perOriginConcurrency) this.enqueue(delivery, line, origin);
    else line.waiting.push(delivery);
  }

  private enqueue(delivery: ClaimedDelivery, line: OriginLine, origin: string): void {
    line.active++;
    this.ready.push({ delivery, line, origin, seq: this.readySeq++ });
    this.startReady();
  }

  /** Starts ready deliveries while slots are free. */
  private startReady(): void {
    while (this.slotsInUse < this.options.concurrency && this.running) {
      const entry = this.ready.pop();
      if (!entry) return;
      this.startAttempt(entry);
    }
  }

  private startAttempt({ delivery, line, origin }: ReadyEntry): void {
    this.slotsInUse++;
    let slotHeld = true;
    // The slot is the HTTP slot: it frees at releaseSlot (or when run settles, whichever is first).
    const releaseSlot = (): void => {
      if (!slotHeld) return;
      slotHeld = false;
      this.slotsInUse--;
      line.active--;
      const next = line.waiting.shift();
      if (next && this.running) this.enqueue(next, line, origin);
      else if (line.active === 0 && line.waiting.length === 0 && this.lines.get(origin) === line) this.lines.delete(origin);
      this.startReady();
    };
    let attempt: Promise<boolean | void>;
    try {
      attempt = this.options.run(delivery, releaseSlot);
    } catch (error) {
      attempt = Promise.reject(error as Error);
    }
    attempt.then(
      (woken) => this.settled(releaseSlot, woken === true),
      (error: unknown) => {
        this.options.onError(error, `attempt ${delivery.id}`);
        this.settled(releaseSlot, false);
      },
    );
  }

  private settled(releaseSlot: () => void, woken: boolean): void {
    releaseSlot();
    this.finished();
    // A finished delivery freed a place under its webhook's cap in storage: claim again, unless
    // the write that freed it woke the pump already. Waking once per delivery of a completion
    // batch sent one claim for the freed places and then empty ones, a round trip each.
    if (!woken || this.windowFull) this.wake();
  }
}
