/**
 * Scenario benchmarks, each reported as a small table: backlog size, a hanging endpoint, the
 * cost of `emit()` by number of matching webhooks, and the dispatcher's own CPU cost per delivery
 * without HTTP. All on MemoryStorage.
 *
 * @module
 */
import { WebhookDispatcher, type WebhookDispatcherOptions } from '../src/dispatcher.js';
import { MemoryStorage } from '../src/storage/memory.js';
import { NodeHttpTransport } from '../src/transport/node-http.js';
import { collectGarbage, eventData, fmt, fmtMedianRange, median, withTimeout, type Cleanup, type Receiver } from './common.js';
import type { Transport, TransportResponse } from '../src/transport/types.js';
import { EMIT_BATCH, IN_FLIGHT } from './rows.js';

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

const TRIGGER = [{ entity: 'order', event: 'Create' }];

/** A MemoryStorage dispatcher whose close is registered with the run's cleanup. */
function memoryDispatcher(cleanup: Cleanup, options: WebhookDispatcherOptions): { dispatcher: WebhookDispatcher; close: () => Promise<void> } {
  const dispatcher = new WebhookDispatcher({
    storage: new MemoryStorage(),
    circuitBreaker: false,
    allowPrivateNetworks: true,
    ...options,
  });
  const close = cleanup.add(() => dispatcher.close({ timeoutMs: 0 }));
  return { dispatcher, close };
}

// ---------------------------------------------------------------- backlog

/**
 * Drain rate of a large backlog vs a small one: the queue must not slow down as it grows. Both
 * sizes share one warmed transport, so neither pays for opening connections.
 */
export async function backlogScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const small = 1_000;
  const big = ctx.quick ? 20_000 : 100_000;
  // A 100k drain takes tens of seconds on a small machine: fewer repetitions of the big one.
  const bigReps = ctx.quick ? 2 : 1;
  const transport = new NodeHttpTransport({ addressGuard: { allowPrivateNetworks: true } });
  const closeTransport = ctx.cleanup.add(() => transport.close());
  const samples = new Map<number, { rate: number[]; enqueueUs: number[] }>([
    [small, { rate: [], enqueueUs: [] }],
    [big, { rate: [], enqueueUs: [] }],
  ]);
  // warm-up (not recorded), then small, big, small, big, …, small
  const plan: Array<{ size: number; record: boolean }> = [{ size: small, record: false }];
  for (let rep = 0; rep < bigReps; rep++) plan.push({ size: small, record: true }, { size: big, record: true });
  plan.push({ size: small, record: true });
  try {
    for (const { size, record } of plan) {
      collectGarbage();
      const { dispatcher, close } = memoryDispatcher(ctx.cleanup, {
        autoStart: false,
        transport,
        concurrency: IN_FLIGHT,
        perWebhookConcurrency: IN_FLIGHT,
      });
      try {
        await dispatcher.createWebhook({ url: ctx.receiver.url(0), triggers: TRIGGER });
        const e0 = performance.now();
        for (let i = 0; i < size; i++) await dispatcher.emit({ entity: 'order', event: 'Create', data: eventData() });
        const enqueueUs = ((performance.now() - e0) * 1000) / size;
        await ctx.receiver.stats();
        const t0 = performance.now();
        dispatcher.start();
        await withTimeout(dispatcher.drain(), 240_000, `draining ${size}`);
        const seconds = (performance.now() - t0) / 1000;
        const received = (await ctx.receiver.stats()).count;
        if (received !== size) throw new Error(`backlog ${size}: receiver got ${received} requests`);
        if (record) {
          const s = samples.get(size)!;
          s.rate.push(size / seconds);
          s.enqueueUs.push(enqueueUs);
        }
        ctx.log(
          `${record ? '' : '(warm-up) '}backlog ${fmt(size)}: ${fmt(size / seconds)} deliveries/s (enqueue ${fmt(enqueueUs, 1)} µs/emit)`,
        );
      } finally {
        await close();
      }
    }
  } finally {
    await closeTransport();
  }
  const smallRate = median(samples.get(small)!.rate);
  const bigRate = median(samples.get(big)!.rate);
  const ratio = bigRate / smallRate;
  return {
    name: 'backlog',
    title: `Draining a ${fmt(big)} backlog vs a ${fmt(small)} backlog (MemoryStorage)`,
    setup:
      `Enqueued with \`autoStart: false\` (awaited emits, 1 webhook), then \`start()\` and \`drain()\` timed; ` +
      `${bigReps + 1} runs of ${fmt(small)} and ${bigReps} of ${fmt(big)}, interleaved, after a warm-up run; ` +
      `one warmed transport shared by all runs; concurrency ${IN_FLIGHT}.`,
    headers: ['backlog', 'runs', 'deliveries/s', 'enqueue µs/emit'],
    rows: [small, big].map((size) => [
      fmt(size),
      String(samples.get(size)!.rate.length),
      fmtMedianRange(samples.get(size)!.rate),
      fmtMedianRange(samples.get(size)!.enqueueUs, 1),
    ]),
    targets: [
      {
        name: `drain rate at ${fmt(big)} / at ${fmt(small)}`,
        value: `${fmt(ratio, 2)}×`,
        target: '≥ 0.90×',
        pass: ratio >= 0.9,
      },
    ],
    notes: [],
  };
}

// ---------------------------------------------------------------- hanging endpoint

const ENDPOINTS = 10;
const HUNG = ENDPOINTS - 1;
const PER_ENDPOINT = 8;

/** Throughput of 9 healthy endpoints while a 10th hangs (accepts, never answers for 30 s), vs without the hang. */
export async function hangScenario(ctx: ScenarioContext, deliveries: number): Promise<ScenarioResult> {
  const events = Math.ceil(deliveries / ENDPOINTS);
  const othersExpected = events * (ENDPOINTS - 1);
  const reps = 5;
  const rates = { healthy: [] as number[], hanging: [] as number[] };
  for (let rep = 1; rep <= reps; rep++) {
    for (const variant of ['healthy', 'hanging'] as const) {
      collectGarbage();
      await ctx.receiver.hang(variant === 'hanging' ? [HUNG] : []);
      const { dispatcher, close } = memoryDispatcher(ctx.cleanup, {
        concurrency: IN_FLIGHT,
        perWebhookConcurrency: PER_ENDPOINT,
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
      `(${fmt(othersExpected)} deliveries to the healthy 9, timed to the last one); concurrency ${IN_FLIGHT}, ` +
      `perWebhookConcurrency ${PER_ENDPOINT}, requestTimeoutMs 120 000; ${reps} repetitions, variants interleaved.`,
    headers: ['variant', 'healthy endpoints, deliveries/s'],
    rows: [
      ['all 10 answer', fmtMedianRange(rates.healthy)],
      ['#10 hangs', fmtMedianRange(rates.hanging)],
    ],
    targets: [{ name: 'healthy throughput with a hung endpoint / without', value: `${fmt(ratio, 2)}×`, target: '≥ 0.90×', pass: ratio >= 0.9 }],
    notes: [
      'Without the hang, the 10th endpoint shares the 64 slots too; with it, 8 slots stay stuck on the hung endpoint. ' +
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
export async function emitScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
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
   * The machine's speed in the same units: µs to JSON.stringify one event's data, which every emit
   * with a matching webhook does once (the body must be stored). Absolute targets move with it.
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
    targets: [{ name: 'emit() with 10 matching webhooks', value: `${fmt(ten, 1)} µs`, target: '≤ 20 µs', pass: ten <= 20 }],
    notes: [
      `emit() with 10 webhooks took ${fmt(ten / median(reference), 1)}× the time of serialising its data once; ` +
        'the target is absolute, so it moves with the speed of the machine, which the reference row shows.',
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
export async function overheadScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const n = ctx.quick ? 5_000 : 20_000;
  const rounds = ctx.quick ? 3 : 5;
  const cpu: number[] = [];
  const rates: number[] = [];
  const run = async (count: number): Promise<{ cpuUs: number; ms: number }> => {
    const transport = new InProcessTransport();
    const { dispatcher, close } = memoryDispatcher(ctx.cleanup, {
      transport,
      concurrency: IN_FLIGHT,
      perWebhookConcurrency: IN_FLIGHT,
    });
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
      `The D-mem row's dispatcher (MemoryStorage, concurrency 64, same emits and body) with a transport that answers ` +
      `\`200 ok\` in-process; ${fmt(n)} deliveries per run, ${rounds} runs after a warm-up run.`,
    headers: ['what', 'CPU µs/delivery', 'deliveries/s'],
    rows: [['emit → sign → record, no HTTP', fmtMedianRange(cpu, 1), fmtMedianRange(rates)]],
    targets: [],
    notes: [
      "On a CPU-bound sender, D-mem's ratio to R0 is at most R0's CPU per request / (R0's CPU per request + this cost).",
    ],
  };
}
