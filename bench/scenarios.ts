/**
 * Scenario benchmarks, each reported as a small table: drain rate by backlog size (every adapter),
 * fairness between webhooks behind a backlog, per-entity ordering, a hanging endpoint, the cost of
 * `emit()` by number of matching webhooks, and the dispatcher's own CPU cost per delivery without
 * HTTP. They run in the runner's process, on README's default options unless they say otherwise;
 * the two per-call costs (emit, overhead) in a process of their own (scenario-process.ts).
 *
 * @module
 */
import { WebhookDispatcher, type WebhookDispatcherOptions } from '../src/dispatcher.js';
import { DEFAULTS } from '../src/input/defaults.js';
import type { EmitInput } from '../src/input/emit.js';
import { MemoryStorage } from '../src/storage/memory.js';
import { UndiciTransport } from '../src/transport/undici.js';
import { collectGarbage, eventData, fmt, fmtMedianRange, median, withTimeout, type Cleanup, type Receiver } from './common.js';
import type { Transport, TransportResponse } from '../src/transport/types.js';
import { EMIT_BATCH, openMemory, openPostgres, openSqlite, RowUnavailable, type OpenStorage, type ReceiverAddress } from './rows.js';

export interface TargetResult {
  name: string;
  /** The measured value, formatted. */
  value: string;
  /** The target, formatted (`≥ 0.9×`). */
  target: string;
  /** Null when it could not be measured. */
  pass: boolean | null;
}

export interface ScenarioResult {
  name: string;
  title: string;
  /** What was done, in one or two sentences. */
  setup: string;
  headers: string[];
  rows: string[][];
  targets: TargetResult[];
  notes: string[];
}

export interface ScenarioContext {
  receiver: Receiver;
  cleanup: Cleanup;
  quick: boolean;
  log: (line: string) => void;
}

/** What a scenario run in a process of its own gets (scenario-process.ts): the receiver's address, not its controls. */
export interface IsolatedScenarioContext extends Omit<ScenarioContext, 'receiver'> {
  receiver: ReceiverAddress;
}

const TRIGGER = [{ entity: 'order', event: 'Create' }];

/** A storage adapter a scenario can run on. */
export interface Adapter {
  name: string;
  open: OpenStorage;
}

export const MEMORY: Adapter = { name: 'memory', open: openMemory };
export const SQLITE: Adapter = { name: 'SQLite', open: (cleanup) => openSqlite(cleanup) };
export const POSTGRES: Adapter = { name: 'Postgres', open: openPostgres };

/** A MemoryStorage dispatcher (README's defaults, loopback opt-out) whose close is registered with the run's cleanup. */
function memoryDispatcher(cleanup: Cleanup, options: WebhookDispatcherOptions): { dispatcher: WebhookDispatcher; close: () => Promise<void> } {
  const dispatcher = new WebhookDispatcher({ storage: new MemoryStorage(), allowPrivateNetworks: true, ...options });
  const close = cleanup.add(() => dispatcher.close({ timeoutMs: 0 }));
  return { dispatcher, close };
}

/**
 * A dispatcher (README's defaults, loopback opt-out) on fresh storage of `adapter`; `close` closes
 * both, and is registered with the run's cleanup. Throws {@link RowUnavailable} when the adapter
 * cannot run here.
 */
async function adapterDispatcher(
  ctx: ScenarioContext,
  adapter: Adapter,
  options: WebhookDispatcherOptions,
): Promise<{ dispatcher: WebhookDispatcher; close: () => Promise<void> }> {
  ctx.cleanup.check();
  const opened = await adapter.open(ctx.cleanup);
  let dispatcher: WebhookDispatcher | undefined;
  const close = ctx.cleanup.add(async () => {
    try {
      await dispatcher?.close({ timeoutMs: 0 });
    } finally {
      await opened.dispose();
    }
  });
  try {
    dispatcher = new WebhookDispatcher({ storage: opened.storage, allowPrivateNetworks: true, ...options });
  } catch (error) {
    await close();
    throw error;
  }
  return { dispatcher, close };
}

/** `count` emits in batches of {@link EMIT_BATCH} concurrent calls (a SQL adapter writes each batch together). */
async function emitMany(dispatcher: WebhookDispatcher, count: number, input: (i: number) => EmitInput): Promise<void> {
  for (let sent = 0; sent < count; ) {
    const batch: Promise<unknown>[] = [];
    for (const end = Math.min(count, sent + EMIT_BATCH); sent < end; sent++) batch.push(dispatcher.emit(input(sent)));
    await Promise.all(batch);
  }
}

/** Counts successful deliveries per webhook; `waitFor` resolves once a webhook has had `n`. */
class SuccessCounter {
  private readonly counts = new Map<string, number>();
  private readonly waiters: Array<{ webhookId: string; n: number; resolve: () => void }> = [];
  failures = 0;

  constructor(dispatcher: WebhookDispatcher) {
    dispatcher.on('delivery.attempted', ({ delivery, execution }) => {
      if (!execution.success) {
        this.failures++;
        return;
      }
      const n = (this.counts.get(delivery.webhookId) ?? 0) + 1;
      this.counts.set(delivery.webhookId, n);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i]!;
        if (w.webhookId === delivery.webhookId && n >= w.n) {
          this.waiters.splice(i, 1);
          w.resolve();
        }
      }
    });
  }

  count(webhookId: string): number {
    return this.counts.get(webhookId) ?? 0;
  }

  waitFor(webhookId: string, n: number): Promise<void> {
    if (this.count(webhookId) >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ webhookId, n, resolve }));
  }
}

/** Runs `body` per adapter; an adapter that cannot run here (or breaks) gets a note instead of numbers. */
async function perAdapter<T>(
  ctx: ScenarioContext,
  scenario: string,
  adapters: readonly Adapter[],
  body: (adapter: Adapter) => Promise<T>,
): Promise<Map<string, T | { unavailable: string }>> {
  const results = new Map<string, T | { unavailable: string }>();
  for (const adapter of adapters) {
    if (ctx.cleanup.interrupted) break;
    try {
      results.set(adapter.name, await body(adapter));
    } catch (error) {
      if (ctx.cleanup.interrupted) throw error;
      const message = error instanceof RowUnavailable ? error.message : `error: ${firstLine(error)}`;
      ctx.log(`${scenario} (${adapter.name}): ${message}`);
      results.set(adapter.name, { unavailable: message });
    }
  }
  return results;
}

const isUnavailable = (value: unknown): value is { unavailable: string } =>
  typeof value === 'object' && value !== null && 'unavailable' in value;

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!.slice(0, 200);
}

// ---------------------------------------------------------------- backlog

/** Backlog sizes of the backlog and fairness scenarios. */
export const backlogSizes = (quick: boolean) => ({ small: 1_000, big: quick ? 20_000 : 100_000 });

/**
 * Drain rate of a large backlog on one webhook vs a small one, on each adapter: the queue must not
 * slow down as it grows. Every run of an adapter shares one warmed transport, so none pays for
 * opening connections; each run has fresh storage.
 */
export async function backlogScenario(ctx: ScenarioContext, adapters: readonly Adapter[] = [MEMORY, SQLITE, POSTGRES]): Promise<ScenarioResult> {
  const { small, big } = backlogSizes(ctx.quick);
  // A 100k drain takes tens of seconds on a small machine: fewer repetitions of the big one.
  const bigReps = ctx.quick ? 2 : 1;
  // warm-up (not recorded), then small, big, small, big, …, small
  const plan: Array<{ size: number; record: boolean }> = [{ size: small, record: false }];
  for (let rep = 0; rep < bigReps; rep++) plan.push({ size: small, record: true }, { size: big, record: true });
  plan.push({ size: small, record: true });

  const results = await perAdapter(ctx, 'backlog', adapters, async (adapter) => {
    // The transport the dispatcher builds by default, kept across runs (the dispatcher does not own it).
    const transport = new UndiciTransport({ addressGuard: { allowPrivateNetworks: true }, connectionsPerOrigin: DEFAULTS.perOriginConcurrency });
    const closeTransport = ctx.cleanup.add(() => transport.close());
    const samples = new Map<number, { rate: number[]; firstRate: number[]; enqueueUs: number[]; cpuUs: number[] }>([
      [small, { rate: [], firstRate: [], enqueueUs: [], cpuUs: [] }],
      [big, { rate: [], firstRate: [], enqueueUs: [], cpuUs: [] }],
    ]);
    try {
      for (const { size, record } of plan) {
        collectGarbage();
        const { dispatcher, close } = await adapterDispatcher(ctx, adapter, { autoStart: false, transport });
        try {
          await dispatcher.createWebhook({ url: ctx.receiver.url(0), triggers: TRIGGER });
          const e0 = performance.now();
          await emitMany(dispatcher, size, () => ({ entity: 'order', event: 'Create', data: eventData() }));
          const enqueueUs = ((performance.now() - e0) * 1000) / size;
          // When the first `small` deliveries are done: a big backlog's start-up against a small one's.
          let delivered = 0;
          let firstSeconds = 0;
          let t0 = 0;
          dispatcher.on('delivery.succeeded', () => {
            if (++delivered === small) firstSeconds = (performance.now() - t0) / 1000;
          });
          await ctx.receiver.stats();
          const cpu0 = process.cpuUsage();
          t0 = performance.now();
          dispatcher.start();
          await withTimeout(dispatcher.drain(), 240_000, `draining ${size}`);
          const seconds = (performance.now() - t0) / 1000;
          const cpu = process.cpuUsage(cpu0);
          const received = (await ctx.receiver.stats()).count;
          if (received !== size) throw new Error(`backlog ${size}: receiver got ${received} requests`);
          if (record) {
            const s = samples.get(size)!;
            s.rate.push(size / seconds);
            s.firstRate.push(small / firstSeconds);
            s.enqueueUs.push(enqueueUs);
            s.cpuUs.push((cpu.user + cpu.system) / size);
          }
          ctx.log(
            `${record ? '' : '(warm-up) '}backlog ${fmt(size)} (${adapter.name}): ${fmt(size / seconds)} deliveries/s, ` +
              `first ${fmt(small)} at ${fmt(small / firstSeconds)}/s, CPU ${fmt((cpu.user + cpu.system) / size)} µs/delivery (enqueue ${fmt(enqueueUs, 1)} µs/emit)`,
          );
        } finally {
          await close();
        }
      }
    } finally {
      await closeTransport();
    }
    return samples;
  });

  const rows: string[][] = [];
  const targets: TargetResult[] = [];
  for (const adapter of adapters) {
    const result = results.get(adapter.name);
    if (result === undefined) continue;
    if (isUnavailable(result)) {
      rows.push([adapter.name, '–', '–', result.unavailable, '–', '–', '–', '–']);
      targets.push({ name: `drain rate at ${fmt(big)} / at ${fmt(small)} (${adapter.name})`, value: result.unavailable, target: '≥ 0.90×', pass: null });
      continue;
    }
    const ratio = median(result.get(big)!.rate) / median(result.get(small)!.rate);
    for (const size of [small, big]) {
      const s = result.get(size)!;
      rows.push([
        adapter.name,
        fmt(size),
        String(s.rate.length),
        fmtMedianRange(s.rate),
        size === big ? `${fmt(ratio, 2)}×` : '',
        size === big ? fmtMedianRange(s.firstRate) : '',
        fmt(median(s.cpuUs)),
        fmtMedianRange(s.enqueueUs, 1),
      ]);
    }
    targets.push({ name: `drain rate at ${fmt(big)} / at ${fmt(small)} (${adapter.name})`, value: `${fmt(ratio, 2)}×`, target: '≥ 0.90×', pass: ratio >= 0.9 });
  }
  return {
    name: 'backlog',
    title: `Draining a ${fmt(big)} backlog vs a ${fmt(small)} backlog on one webhook`,
    setup:
      `Per adapter: enqueued with \`autoStart: false\` (emits in batches of ${EMIT_BATCH} concurrent calls, 1 webhook), then \`start()\` and \`drain()\` timed; ` +
      `${bigReps + 1} runs of ${fmt(small)} and ${bigReps} of ${fmt(big)}, interleaved, after a warm-up run; fresh storage per run, ` +
      `one warmed transport shared by an adapter's runs; README's defaults (${DEFAULTS.perWebhookConcurrency} in flight).`,
    headers: ['adapter', 'backlog', 'runs', 'deliveries/s', 'big / small', `first ${fmt(small)}, deliveries/s`, 'CPU µs/delivery', 'enqueue µs/emit'],
    rows,
    targets,
    notes: [
      `"first ${fmt(small)}": the rate of the big backlog's first ${fmt(small)} deliveries, from \`start()\`: the same start-up ` +
        `as the small run, with the big backlog behind it. The small run's rate carries the run's fixed costs (first claims, ` +
        'garbage collection after the emits, the end of `drain()`) over few deliveries, so "big / small" can exceed 1; ' +
        `the first ${fmt(small)} against the small run compares like with like. CPU is this process's, all threads, over the drain.`,
    ],
  };
}

// ---------------------------------------------------------------- fairness

/** Answer delay of the fairness scenario's receiver ports: latency-bound, not CPU-bound. */
const FAIR_DELAY_MS = 20;
const FAIR_FRESH = 1_000;

/**
 * Webhook B's fresh deliveries behind webhook A's backlog, vs B alone. The receiver answers after
 * 20 ms, so each webhook is bound by its cap (16 in flight: at most 800/s), not by the CPU the two
 * share: a fair core gives B its cap's rate whatever waits in A's queue. A and B are two merchants
 * (two receiver ports, so two origins).
 */
export async function fairnessScenario(ctx: ScenarioContext, adapters: readonly Adapter[] = [MEMORY]): Promise<ScenarioResult> {
  const { big } = backlogSizes(ctx.quick);
  const reps = ctx.quick ? 2 : 3;
  const [portA, portB] = [1, 2];
  const results = await perAdapter(ctx, 'fairness', adapters, async (adapter) => {
    const rates = { alone: [] as number[], behind: [] as number[], aDuring: [] as number[] };
    await ctx.receiver.delay({ [portA]: FAIR_DELAY_MS, [portB]: FAIR_DELAY_MS });
    try {
      for (let rep = 0; rep <= reps; rep++) {
        // rep 0 warms up both variants
        for (const variant of ['alone', 'behind'] as const) {
          collectGarbage();
          const { dispatcher, close } = await adapterDispatcher(ctx, adapter, { autoStart: false });
          try {
            const a = await dispatcher.createWebhook({ url: ctx.receiver.url(portA), triggers: [{ entity: 'order', event: 'Create' }] });
            const b = await dispatcher.createWebhook({ url: ctx.receiver.url(portB), triggers: [{ entity: 'order', event: 'Edit' }] });
            const successes = new SuccessCounter(dispatcher);
            const backlog = variant === 'behind' ? (rep === 0 ? Math.min(big, 5_000) : big) : 0;
            await emitMany(dispatcher, backlog, () => ({ entity: 'order', event: 'Create', data: eventData() }));
            dispatcher.start();
            // A at full speed before B's events arrive.
            if (backlog) await withTimeout(successes.waitFor(a.id, 100), 60_000, 'A starting');
            const aBefore = successes.count(a.id);
            const t0 = performance.now();
            await emitMany(dispatcher, FAIR_FRESH, () => ({ entity: 'order', event: 'Edit', data: eventData() }));
            await withTimeout(successes.waitFor(b.id, FAIR_FRESH), 120_000, `B's ${fmt(FAIR_FRESH)} deliveries (${variant})`);
            const seconds = (performance.now() - t0) / 1000;
            const aRate = (successes.count(a.id) - aBefore) / seconds;
            if (successes.failures > 0) throw new Error(`${successes.failures} attempts failed`);
            if (rep > 0) {
              rates[variant].push(FAIR_FRESH / seconds);
              if (variant === 'behind') rates.aDuring.push(aRate);
            }
            ctx.log(
              `${rep === 0 ? '(warm-up) ' : ''}fairness ${variant} (${adapter.name}): B ${fmt(FAIR_FRESH / seconds)} deliveries/s` +
                (backlog ? ` behind ${fmt(backlog)} of A (A meanwhile ${fmt(aRate)}/s)` : ''),
            );
          } finally {
            await close();
          }
        }
      }
    } finally {
      await ctx.receiver.delay({});
    }
    return rates;
  });

  const rows: string[][] = [];
  const targets: TargetResult[] = [];
  const targetName = (adapter: Adapter) => `B behind A's ${fmt(big)} backlog / B alone (${adapter.name}, ${FAIR_DELAY_MS} ms receiver)`;
  for (const adapter of adapters) {
    const result = results.get(adapter.name);
    if (result === undefined) continue;
    if (isUnavailable(result)) {
      rows.push([adapter.name, result.unavailable, '–', '–', '–']);
      targets.push({ name: targetName(adapter), value: result.unavailable, target: '≥ 0.80×', pass: null });
      continue;
    }
    const ratio = median(result.behind) / median(result.alone);
    rows.push([adapter.name, fmtMedianRange(result.alone), fmtMedianRange(result.behind), fmtMedianRange(result.aDuring), `${fmt(ratio, 2)}×`]);
    targets.push({ name: targetName(adapter), value: `${fmt(ratio, 2)}×`, target: '≥ 0.80×', pass: ratio >= 0.8 });
  }
  return {
    name: 'fairness',
    title: `Fairness: webhook B's ${fmt(FAIR_FRESH)} fresh deliveries behind webhook A's ${fmt(big)} backlog`,
    setup:
      `Two webhooks on two receiver ports that answer after ${FAIR_DELAY_MS} ms; README's defaults (${DEFAULTS.perWebhookConcurrency} in flight per webhook). ` +
      `"behind": A's ${fmt(big)} emitted with \`autoStart: false\`, then \`start()\`, and once A has delivered 100, B's ${fmt(FAIR_FRESH)} are emitted ` +
      `(batches of ${EMIT_BATCH}); timed from B's first emit to its last success. "alone": the same without A's backlog. ` +
      `${reps} runs of each, interleaved, after a warm-up pair; fresh storage per run.`,
    headers: ['adapter', 'B alone, deliveries/s', 'B behind A, deliveries/s', 'A meanwhile, deliveries/s', 'behind / alone'],
    rows,
    targets,
    notes: [`With a ${FAIR_DELAY_MS} ms answer and ${DEFAULTS.perWebhookConcurrency} in flight, a webhook's ceiling is ${fmt((1000 / FAIR_DELAY_MS) * DEFAULTS.perWebhookConcurrency)} deliveries/s.`],
  };
}

// ---------------------------------------------------------------- ordering

const ORDER_KEYS = 1_000;

/**
 * An ordered webhook (`ordering: 'entity'`) vs the same webhook unordered, on the same emits: 1,000
 * orders (distinct `OrderId`, so 1,000 ordering keys), each edited several times. Timed like the
 * D rows, from the first emit to `drain()`: the emits assign sequence numbers, so they count.
 */
export async function orderingScenario(ctx: ScenarioContext, adapters: readonly Adapter[] = [MEMORY]): Promise<ScenarioResult> {
  const n = ctx.quick ? 3_000 : 5_000;
  const reps = ctx.quick ? 3 : 5;
  const results = await perAdapter(ctx, 'ordering', adapters, async (adapter) => {
    const rates = { none: [] as number[], entity: [] as number[] };
    for (let rep = 0; rep <= reps; rep++) {
      // rep 0 warms up both variants
      for (const ordering of ['none', 'entity'] as const) {
        collectGarbage();
        const { dispatcher, close } = await adapterDispatcher(ctx, adapter, {});
        try {
          await dispatcher.createWebhook({ url: ctx.receiver.url(0), triggers: TRIGGER, ordering });
          const count = rep === 0 ? Math.min(n, 1_000) : n;
          await ctx.receiver.stats();
          const t0 = performance.now();
          await emitMany(dispatcher, count, (i) => ({ entity: 'order', event: 'Create', data: { ...eventData(), OrderId: i % ORDER_KEYS } }));
          await withTimeout(dispatcher.drain(), 120_000, `ordering ${ordering}`);
          const seconds = (performance.now() - t0) / 1000;
          const received = (await ctx.receiver.stats()).count;
          if (received !== count) throw new Error(`ordering ${ordering}: receiver got ${received} of ${count} requests`);
          if (rep > 0) rates[ordering].push(count / seconds);
          ctx.log(`${rep === 0 ? '(warm-up) ' : ''}ordering ${ordering} (${adapter.name}): ${fmt(count / seconds)} deliveries/s`);
        } finally {
          await close();
        }
      }
    }
    return rates;
  });

  const rows: string[][] = [];
  const targets: TargetResult[] = [];
  const targetName = (adapter: Adapter) => `ordered (${fmt(ORDER_KEYS)} keys) / unordered (${adapter.name})`;
  for (const adapter of adapters) {
    const result = results.get(adapter.name);
    if (result === undefined) continue;
    if (isUnavailable(result)) {
      rows.push([adapter.name, result.unavailable, '–', '–']);
      targets.push({ name: targetName(adapter), value: result.unavailable, target: '≥ 0.70×', pass: null });
      continue;
    }
    const ratio = median(result.entity) / median(result.none);
    rows.push([adapter.name, fmtMedianRange(result.none), fmtMedianRange(result.entity), `${fmt(ratio, 2)}×`]);
    targets.push({ name: targetName(adapter), value: `${fmt(ratio, 2)}×`, target: '≥ 0.70×', pass: ratio >= 0.7 });
  }
  return {
    name: 'ordering',
    title: `Per-entity ordering: ${fmt(ORDER_KEYS)} keys vs unordered`,
    setup:
      `One webhook, \`ordering: 'entity'\` vs \`'none'\`, README's defaults otherwise; ${fmt(n)} emits (batches of ${EMIT_BATCH}) of orders ` +
      `with ${fmt(ORDER_KEYS)} distinct \`OrderId\`s (the default ordering key), timed from the first emit to \`drain()\`; ` +
      `${reps} runs of each, interleaved, after a warm-up pair; fresh storage per run.`,
    headers: ['adapter', 'unordered, deliveries/s', 'ordered, deliveries/s', 'ordered / unordered'],
    rows,
    targets,
    notes: [],
  };
}

// ---------------------------------------------------------------- hanging endpoint

const ENDPOINTS = 10;
const HUNG = ENDPOINTS - 1;

/**
 * Throughput of 9 healthy webhooks while a 10th hangs (accepts, never answers for 30 s), vs without
 * the hang, on README's defaults: the hung webhook holds its cap's slots and no more.
 */
export async function hangScenario(ctx: ScenarioContext, deliveries: number): Promise<ScenarioResult> {
  const events = Math.ceil(deliveries / ENDPOINTS);
  const othersExpected = events * (ENDPOINTS - 1);
  const reps = ctx.quick ? 3 : 5;
  const rates = { healthy: [] as number[], hanging: [] as number[] };
  for (let rep = 1; rep <= reps; rep++) {
    for (const variant of ['healthy', 'hanging'] as const) {
      collectGarbage();
      await ctx.receiver.hang(variant === 'hanging' ? [HUNG] : []);
      const { dispatcher, close } = memoryDispatcher(ctx.cleanup, {
        // The hang must outlast the run: no attempt may time out and free its slot meanwhile.
        requestTimeoutMs: 120_000,
        leaseMs: 240_000,
      });
      try {
        const hooks = [];
        for (let i = 0; i < ENDPOINTS; i++) hooks.push(await dispatcher.createWebhook({ url: ctx.receiver.url(i), triggers: TRIGGER }));
        const hungId = hooks[HUNG]!.id;
        let others = 0;
        let failed = 0;
        let resolveDone!: () => void;
        const done = new Promise<void>((resolve) => (resolveDone = resolve));
        dispatcher.on('delivery.attempted', ({ delivery, execution }) => {
          if (delivery.webhookId === hungId) return;
          if (!execution.success) failed++;
          if (++others === othersExpected) resolveDone();
        });
        await ctx.receiver.stats();
        const t0 = performance.now();
        for (let i = 0; i < events; i++) await dispatcher.emit({ entity: 'order', event: 'Create', data: eventData() });
        await withTimeout(done, 120_000, `hang scenario (${variant})`);
        const seconds = (performance.now() - t0) / 1000;
        const stats = await ctx.receiver.stats();
        if (failed > 0) throw new Error(`hang scenario (${variant}): ${failed} deliveries to healthy endpoints failed`);
        rates[variant].push(othersExpected / seconds);
        ctx.log(
          `hang ${variant} rep ${rep}/${reps}: healthy endpoints ${fmt(othersExpected / seconds)} deliveries/s ` +
            `(hung endpoint received ${fmt(stats.perPort[HUNG] ?? 0)})`,
        );
      } finally {
        await close();
        await ctx.receiver.hang([]);
      }
    }
  }
  const ratio = median(rates.hanging) / median(rates.healthy);
  return {
    name: 'hang',
    title: `${ENDPOINTS} endpoints, one hanging 30 s: throughput of the other ${ENDPOINTS - 1}`,
    setup:
      `${ENDPOINTS} webhooks on ${ENDPOINTS} receiver ports, every emit matches all of them; ${fmt(events)} emits ` +
      `(${fmt(othersExpected)} deliveries to the healthy 9, timed to the last one); README's defaults (concurrency ` +
      `${DEFAULTS.concurrency}, ${DEFAULTS.perWebhookConcurrency} per webhook) with requestTimeoutMs 120 000; ${reps} repetitions, variants interleaved.`,
    headers: ['variant', 'healthy endpoints, deliveries/s'],
    rows: [
      ['all 10 answer', fmtMedianRange(rates.healthy)],
      ['#10 hangs', fmtMedianRange(rates.hanging)],
    ],
    targets: [{ name: 'healthy throughput with a hung endpoint / without', value: `${fmt(ratio, 2)}×`, target: '≥ 0.90×', pass: ratio >= 0.9 }],
    notes: [
      `Without the hang, the 10th webhook shares the ${DEFAULTS.concurrency} slots too; with it, its ${DEFAULTS.perWebhookConcurrency} stay stuck on the hung endpoint. ` +
        'On loopback the rate is CPU-bound, so a ratio near (or above) 1 is expected when the cap works.',
    ],
  };
}

// ---------------------------------------------------------------- emit cost

/**
 * µs per `emit()` call with 0, 1, 10, 100 matching webhooks, nothing delivered (`autoStart: false`).
 * Calls are timed in segments of at most 20,000 queued deliveries, each on a fresh dispatcher, so
 * the figure is not inflated by garbage collection of an ever-growing in-memory backlog (the
 * backlog scenario covers size effects).
 */
export async function emitScenario(ctx: IsolatedScenarioContext): Promise<ScenarioResult> {
  const counts = [0, 1, 10, 100];
  const rounds = ctx.quick ? 3 : 5;
  const baseCalls = ctx.quick ? 5_000 : 20_000;
  const maxDeliveries = 20_000;
  const segmentDeliveries = 20_000;
  const callsFor = (k: number) => (k <= 1 ? baseCalls : Math.max(200, Math.floor(maxDeliveries / k)));
  const segmentFor = (k: number) => (k === 0 ? callsFor(k) : Math.max(100, Math.floor(segmentDeliveries / k)));
  const samples = new Map<number, number[]>(counts.map((k) => [k, []]));

  /**
   * Runs `calls` emits on a fresh dispatcher with `k` webhooks; returns the ms they took. The
   * inputs are built before the clock starts: building the host's record is not emit()'s cost.
   */
  const segment = async (k: number, calls: number): Promise<number> => {
    const { dispatcher, close } = memoryDispatcher(ctx.cleanup, { autoStart: false });
    try {
      for (let i = 0; i < k; i++) await dispatcher.createWebhook({ url: ctx.receiver.url(0), triggers: TRIGGER });
      const inputs = Array.from({ length: calls }, () => ({ entity: 'order', event: 'Create', data: eventData() }));
      collectGarbage();
      const t0 = performance.now();
      for (const input of inputs) await dispatcher.emit(input);
      return performance.now() - t0;
    } finally {
      await close();
    }
  };
  /**
   * The target's unit: µs to JSON.stringify one event's data, which every emit with a matching
   * webhook does once (the body must be stored). Measured in each round, so the target is a ratio
   * within one run and does not move with the machine's speed (this VM's moved 2–3× between sessions).
   */
  const stringifyUs = (): number => {
    const inputs = Array.from({ length: 5_000 }, () => eventData());
    let length = 0;
    const t0 = performance.now();
    for (const data of inputs) length += JSON.stringify(data).length;
    const us = ((performance.now() - t0) * 1000) / inputs.length;
    return length > 0 ? us : NaN;
  };
  const reference: number[] = [];

  for (let round = 1; round <= rounds; round++) {
    const line: string[] = [];
    for (const k of counts) {
      await segment(k, Math.min(1_000, segmentFor(k))); // warm-up, not timed
      const calls = callsFor(k);
      let ms = 0;
      for (let done = 0; done < calls; ) {
        const n = Math.min(segmentFor(k), calls - done);
        ms += await segment(k, n);
        done += n;
      }
      const us = (ms * 1000) / calls;
      samples.get(k)!.push(us);
      line.push(`${k}: ${fmt(us, 1)} µs`);
    }
    stringifyUs(); // warm-up
    reference.push(stringifyUs());
    ctx.log(`emit cost round ${round}/${rounds}: ${line.join(', ')}; JSON.stringify of the data ${fmt(reference.at(-1)!, 1)} µs`);
  }
  const ten = median(samples.get(10)!);
  // Per round, against that round's reference, then the median: drift between rounds cancels.
  const ratios = samples.get(10)!.map((us, i) => us / reference[i]!);
  const ratio = median(ratios);
  return {
    name: 'emit',
    title: '`emit()` cost by number of matching webhooks (MemoryStorage, nothing delivered)',
    setup:
      `\`autoStart: false\`; awaited calls, one at a time, ~1 KiB data (built before timing); per measurement ${counts
        .map((k) => `${fmt(callsFor(k))} calls with ${k}`)
        .join(', ')} webhooks, timed in segments of ≤ ${fmt(segmentDeliveries)} queued deliveries on fresh dispatchers, ` +
      `after a warm-up segment; ${rounds} rounds.`,
    headers: ['matching webhooks', 'µs per emit()', 'µs per delivery queued'],
    rows: [
      ...counts.map((k) => {
        const v = samples.get(k)!;
        return [String(k), fmtMedianRange(v, 1), k === 0 ? '–' : fmt(median(v) / k, 2)];
      }),
      ['(reference: JSON.stringify of the data alone)', fmtMedianRange(reference, 1), '–'],
    ],
    targets: [
      {
        name: 'emit() with 10 matching webhooks / JSON.stringify of its data',
        value: `${fmt(ratio, 2)}× (${fmt(ten, 1)} µs)`,
        target: '≤ 4.00×',
        pass: ratio <= 4,
      },
    ],
    notes: [
      `emit() with 10 webhooks took ${fmtMedianRange(ratios, 2, '×')} the time of serialising its data once (per round, ` +
        "against the round's reference row); the target is that ratio, measured in the same run.",
    ],
  };
}

// ---------------------------------------------------------------- the dispatcher's own cost

/** Answers every request in-process with `200 ok`: no sockets, no HTTP parsing. */
class InProcessTransport implements Transport {
  sent = 0;
  private static readonly OK: TransportResponse = { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok', bodyTruncated: false };

  async send(): Promise<TransportResponse> {
    this.sent++;
    return { ...InProcessTransport.OK, headers: { ...InProcessTransport.OK.headers } };
  }
}

/**
 * CPU per delivery of everything the dispatcher does besides HTTP: the D-mem row (same emits,
 * same settings) with a transport that answers in-process. Added to R0's CPU per request, it
 * gives the best ratio the dispatcher can reach with this HTTP client on a CPU-bound machine.
 */
export async function overheadScenario(ctx: IsolatedScenarioContext): Promise<ScenarioResult> {
  const n = ctx.quick ? 5_000 : 20_000;
  const rounds = ctx.quick ? 3 : 5;
  const cpu: number[] = [];
  const rates: number[] = [];
  const run = async (count: number): Promise<{ cpuUs: number; ms: number }> => {
    const transport = new InProcessTransport();
    const { dispatcher, close } = memoryDispatcher(ctx.cleanup, { transport });
    try {
      await dispatcher.createWebhook({ url: ctx.receiver.url(0), triggers: TRIGGER });
      collectGarbage();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let sent = 0; sent < count; ) {
        const batch: Promise<unknown>[] = [];
        for (const end = Math.min(count, sent + EMIT_BATCH); sent < end; sent++) {
          batch.push(dispatcher.emit({ entity: 'order', event: 'Create', data: eventData() }));
        }
        await Promise.all(batch);
      }
      await dispatcher.drain();
      const ms = performance.now() - t0;
      const used = process.cpuUsage(cpu0);
      if (transport.sent !== count) throw new Error(`sent ${transport.sent} of ${count}`);
      return { cpuUs: used.user + used.system, ms };
    } finally {
      await close();
    }
  };
  await run(Math.min(2_000, n)); // warm-up
  for (let round = 1; round <= rounds; round++) {
    const { cpuUs, ms } = await run(n);
    cpu.push(cpuUs / n);
    rates.push((n * 1000) / ms);
    ctx.log(`overhead round ${round}/${rounds}: ${fmt(cpuUs / n, 1)} µs CPU per delivery, ${fmt((n * 1000) / ms)} deliveries/s`);
  }
  return {
    name: 'overhead',
    title: "The dispatcher's own cost: D-mem without HTTP",
    setup:
      `The D-mem row's dispatcher (MemoryStorage, README's defaults, same emits and body) with a transport that answers ` +
      `\`200 ok\` in-process; ${fmt(n)} deliveries per run, ${rounds} runs after a warm-up run.`,
    headers: ['what', 'CPU µs/delivery', 'deliveries/s'],
    rows: [['emit → sign → record, no HTTP', fmtMedianRange(cpu, 1), fmtMedianRange(rates)]],
    targets: [],
    notes: [
      "On a CPU-bound sender, D-mem's ratio to R0 is at most R0's CPU per request / (R0's CPU per request + this cost).",
    ],
  };
}
