/**
 * Shared pieces of the benchmark: the receiver process client, the payload, the storage write
 * counter, statistics and cleanup.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { WebhookStorage } from '../src/storage/types.js';

/** High-resolution wall-clock time in ms; the receiver uses the same formula. */
export const hrNow = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- receiver process

/** Latency percentiles in ms, emit (or request start) → receipt at the receiver. */
export interface LatencyStats {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface ReceiverStats {
  /** Requests received (all ports). */
  count: number;
  perPort: number[];
  /** The receiver process's CPU time (user + system) since the previous call, µs. */
  cpuUs: number;
  latency: LatencyStats | null;
}

interface ReceiverReply {
  id?: number;
  type?: string;
  ports?: number[];
  error?: string;
  [key: string]: unknown;
}

/**
 * Ends a forked child that exits when its parent disconnects (the receiver, a row's process):
 * disconnects, and kills it if it is still there after `killAfterMs`.
 */
export async function closeChild(child: ChildProcess, killAfterMs: number): Promise<void> {
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await gone;
  clearTimeout(timer);
}

/** The forked `bench/receiver.mjs`, driven over IPC. */
export class Receiver {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (m: ReceiverReply) => void; reject: (e: Error) => void }>();
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly ports: number[],
  ) {
    child.on('message', (message: ReceiverReply) => {
      if (typeof message?.id !== 'number') return;
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`receiver: ${message.error}`));
      else waiter.resolve(message);
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      const error = new Error(`receiver exited (code ${code}, signal ${signal})`);
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    });
  }

  /** Forks the receiver with `ports` listening ports and waits until it listens. */
  static async start(ports: number): Promise<Receiver> {
    const script = fileURLToPath(new URL('./receiver.mjs', import.meta.url));
    // execArgv: [] so the child neither loads tsx nor inherits --cpu-prof.
    const child = fork(script, ['--ports', String(ports)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const listening = await new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('receiver did not start within 10 s')), 10_000);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`receiver exited during start (code ${code})`)));
      child.on('message', (m: ReceiverReply) => {
        if (m?.type === 'ready' && Array.isArray(m.ports)) {
          clearTimeout(timer);
          resolve(m.ports);
        }
      });
    }).catch((error: unknown) => {
      child.kill();
      throw error;
    });
    child.removeAllListeners('exit');
    child.removeAllListeners('error');
    return new Receiver(child, listening);
  }

  origin(index = 0): string {
    return `http://127.0.0.1:${this.port(index)}`;
  }

  url(index = 0, path = '/hook'): string {
    return `${this.origin(index)}${path}`;
  }

  private port(index: number): number {
    const port = this.ports[index];
    if (port === undefined) throw new Error(`receiver has no port #${index}`);
    return port;
  }

  private call(cmd: string, extra: Record<string, unknown> = {}): Promise<ReceiverReply> {
    if (this.exited) return Promise.reject(new Error('receiver is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, ...extra });
    });
  }

  /** Counts and latency percentiles since the last call; resets them. */
  async stats(): Promise<ReceiverStats> {
    const m = await this.call('stats');
    return { count: m.count as number, perPort: m.perPort as number[], cpuUs: m.cpuUs as number, latency: (m.latency as LatencyStats | null) ?? null };
  }

  /** Port indices that hold requests for 30 s from now on; held requests elsewhere are answered. */
  async hang(indices: number[]): Promise<void> {
    await this.call('hang', { ports: indices });
  }

  /**
   * From now on the given port indices answer after that many ms, every other port at once (a
   * receiver that works before answering keeps a scenario from being CPU-bound).
   */
  async delay(delays: Record<number, number>): Promise<void> {
    await this.call('delay', { delays });
  }

  async close(): Promise<void> {
    if (!this.exited) await closeChild(this.child, 3_000);
  }

  /** Synchronous last resort (process 'exit' handler). */
  killNow(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------- payload

const ORDER_TEMPLATE = {
  OrderId: 100_234,
  OrderCode: 'SO-2026-100234',
  Status: 'Confirmed',
  Currency: 'EUR',
  CreatedAt: '2026-11-23T10:18:34.141Z',
  Customer: { CustomerId: 5_812, Name: 'Jane Example', Email: 'jane.example@example.com', Phone: '+31 20 123 4567' },
  ShippingAddress: { Street: 'Keizersgracht 123', PostalCode: '1015 CJ', City: 'Amsterdam', Country: 'NL' },
  Lines: [
    { Sku: 'TSHIRT-BLK-M', Description: 'T-shirt black, size M', Quantity: 2, UnitPrice: 19.95, VatRate: 21 },
    { Sku: 'HOODIE-GRY-L', Description: 'Hoodie grey, size L', Quantity: 1, UnitPrice: 49.95, VatRate: 21 },
    { Sku: 'SOCKS-3PK', Description: 'Socks, 3-pack', Quantity: 3, UnitPrice: 9.95, VatRate: 21 },
    { Sku: 'CAP-NAVY', Description: 'Cap navy, one size', Quantity: 1, UnitPrice: 14.95, VatRate: 21 },
  ],
  Totals: { Subtotal: 139.6, Shipping: 4.95, Vat: 25.09, Total: 144.55 },
  Notes: 'Leave the parcel with the neighbours at number 125 if nobody is home. Gift wrap the hoodie, please.',
  Tags: ['web', 'returning-customer', 'newsletter'],
};

/** The emitted data: ~0.9 KiB; `sentAt` first so the receiver finds it at once. */
export function eventData(): Record<string, unknown> {
  return { sentAt: hrNow(), ...ORDER_TEMPLATE };
}

let eventCounter = 0;

/**
 * A body shaped and sized like the dispatcher's envelope (`{ id, entity, event, timestamp,
 * tenantId, data }`), for the raw-HTTP rows. Serialised per request, as `emit()` does.
 */
export function envelopeBody(): string {
  const id = `evt_${String(eventCounter++).padStart(26, '0')}`;
  return JSON.stringify({ id, entity: 'order', event: 'Create', timestamp: new Date().toISOString(), tenantId: null, data: eventData() });
}

// ---------------------------------------------------------------- storage write counter

/** The storage methods that write (the contract's, `completeAttempts` and `pauseQueue` included). */
export const WRITE_METHODS = [
  'enqueueDeliveries',
  'claimDueDeliveries',
  'completeAttempt',
  'completeAttempts',
  'releaseDelivery',
  'extendLease',
  'recordWebhookResult',
  'cancelDelivery',
  'pauseQueue',
  'updateWebhook',
  'insertWebhook',
] as const;

type WriteMethod = (typeof WRITE_METHODS)[number];

/**
 * Batch methods an adapter may implement by calling the single one on itself (MemoryStorage's
 * `completeAttempts` loops over `this.completeAttempt`): those inner calls are the adapter's own
 * business, not writes the dispatcher asked for, and are not counted. The dispatcher never has a
 * single completion in flight beside a batch (its group commit writes one at a time), so no call
 * of its own is missed.
 */
const NESTED: Partial<Record<WriteMethod, WriteMethod>> = { completeAttempts: 'completeAttempt' };

/**
 * Counts calls of the write methods of a storage adapter. {@link wrap} installs a counting
 * function as an own property of the storage object for each write method it has; every other
 * property is left alone, so reads cost what they cost in the raw-HTTP rows (a Proxy's get trap
 * on every method access did not).
 */
export class WriteCounter {
  readonly counts = new Map<string, number>();

  /**
   * Makes `storage` count its write calls and returns it (the same object, changed). Methods run
   * with the storage as `this`; write methods an adapter lacks stay absent.
   */
  wrap<T extends WebhookStorage>(storage: T): T {
    const target = storage as unknown as Record<string, unknown>;
    const counts = this.counts;
    // Batch calls in progress, by the single method their inner calls are not counted for.
    const inside = new Map<WriteMethod, number>();
    for (const name of WRITE_METHODS) {
      const method = target[name];
      if (typeof method !== 'function') continue;
      const call = (args: unknown[]): unknown => (method as (...a: unknown[]) => unknown).apply(storage, args);
      const single = NESTED[name];
      const counting = single
        ? (...args: unknown[]): unknown => {
            counts.set(name, (counts.get(name) ?? 0) + 1);
            inside.set(single, (inside.get(single) ?? 0) + 1);
            const leave = () => void inside.set(single, inside.get(single)! - 1);
            let result: unknown;
            try {
              result = call(args);
            } catch (error) {
              leave();
              throw error;
            }
            void Promise.resolve(result).then(leave, leave);
            return result;
          }
        : (...args: unknown[]): unknown => {
            if (!inside.get(name)) counts.set(name, (counts.get(name) ?? 0) + 1);
            return call(args);
          };
      // Writable and configurable, like the method it shadows.
      Object.defineProperty(target, name, { value: counting, writable: true, configurable: true, enumerable: false });
    }
    return storage;
  }

  reset(): void {
    this.counts.clear();
  }

  total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}

/**
 * Counts the successes `storage` records (results of `completeAttempts` that were written with
 * outcome `succeeded`), by wrapping the method as an own property, as {@link WriteCounter} does.
 * A counter in the process costs nothing; asking the database whether a queue is empty loads it.
 */
export function countSuccesses<T extends WebhookStorage>(storage: T): { n: number } {
  const counter = { n: 0 };
  const target = storage as unknown as Record<string, unknown>;
  const complete = target.completeAttempts as WebhookStorage['completeAttempts'];
  const counting: WebhookStorage['completeAttempts'] = async (inputs) => {
    const recorded = await complete.call(storage, inputs);
    for (const [i, written] of recorded.entries()) if (written && inputs[i]!.outcome.status === 'succeeded') counter.n++;
    return recorded;
  };
  Object.defineProperty(target, 'completeAttempts', { value: counting, writable: true, configurable: true, enumerable: false });
  return counter;
}

// ---------------------------------------------------------------- statistics

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Sets every row sample of a round to take its ratio against the median of the round's R0 runs
 * (not the one run next to it: a single 0.6-s R0 run strays ±15 % on a small VM). Returns that
 * median, or null (and leaves the samples alone) when no R0 ran in the round.
 */
export function setRoundBaseline(r0Rates: readonly number[], rows: ReadonlyArray<{ baselineRate: number | null }>): number | null {
  if (r0Rates.length === 0) return null;
  const baseline = median(r0Rates);
  for (const row of rows) row.baselineRate = baseline;
  return baseline;
}

export function range(values: readonly number[]): [number, number] {
  return [Math.min(...values), Math.max(...values)];
}

/** `1,234` style with a fixed number of decimals. */
export function fmt(value: number | null | undefined, decimals = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** `median (min–max)`. */
export function fmtMedianRange(values: readonly number[], decimals = 0, suffix = ''): string {
  if (values.length === 0) return '–';
  const [lo, hi] = range(values);
  if (values.length === 1) return `${fmt(values[0], decimals)}${suffix}`;
  return `${fmt(median(values), decimals)}${suffix} (${fmt(lo, decimals)}–${fmt(hi, decimals)})`;
}

// ---------------------------------------------------------------- misc

/** A full GC between measurements, when V8 lets us have one (flag set at runtime). */
export const collectGarbage: () => void = (() => {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return () => (gc as () => void)();
  } catch {
    // not available: run without
  }
  return () => {};
})();

export class TimeoutError extends Error {}

/** Rejects with a {@link TimeoutError} when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export class InterruptedError extends Error {
  constructor() {
    super('interrupted');
  }
}

/** Cleanup actions that must run even when the benchmark fails or is interrupted. */
export class Cleanup {
  private readonly actions = new Set<() => Promise<void> | void>();
  /** Set by {@link interrupt}: nothing new may start. */
  interrupted = false;

  /** Throws an {@link InterruptedError} once the run was interrupted: call before creating resources. */
  check(): void {
    if (this.interrupted) throw new InterruptedError();
  }

  /** Marks the run interrupted and releases everything now, which also ends the work in progress. */
  async interrupt(): Promise<void> {
    this.interrupted = true;
    await this.runAll();
  }

  /**
   * Registers an action; returns a function that runs it now and unregisters it. After an
   * interrupt, runs the action at once and throws an {@link InterruptedError}.
   */
  add(action: () => Promise<void> | void): () => Promise<void> {
    if (this.interrupted) {
      void Promise.resolve()
        .then(action)
        .catch(() => undefined);
      throw new InterruptedError();
    }
    this.actions.add(action);
    return async () => {
      if (!this.actions.delete(action)) return;
      await action();
    };
  }

  private running: Promise<void> = Promise.resolve();

  /**
   * Runs every registered action, newest first, reporting (not throwing) failures. Resolves only
   * when every earlier `runAll()` has finished too.
   */
  runAll(): Promise<void> {
    this.running = this.running.then(() => this.runRegistered());
    return this.running;
  }

  private async runRegistered(): Promise<void> {
    const actions = [...this.actions].reverse();
    this.actions.clear();
    for (const action of actions) {
      try {
        await action();
      } catch (error) {
        console.error(`cleanup failed: ${(error as Error).message}`);
      }
    }
  }
}
