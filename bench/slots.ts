/**
 * The delivery pump's concurrency slots (a RunHeap ordered by priority, then admission, and a
 * counter: src/delivery/pump.ts) against p-queue (`new PQueue({ concurrency })`,
 * `add(task, { priority })`, the product card's queue) on the same workload, with no storage and
 * no HTTP: what running one task through each costs.
 *
 * ```sh
 * npx tsx bench/slots.ts                         # 200,000 tasks, 5 rounds
 * npx tsx bench/slots.ts --tasks 50000 --rounds 7
 * ```
 *
 * Workload, identical for both: N tasks (`--tasks`, default 200,000) with priorities 0–2 from a
 * fixed-seed generator, at most 16 running at once (the default per-webhook cap) and at most 32
 * admitted and unfinished (the pump's window, twice the concurrency). Admission is in batches, as
 * the pump claims: a task that finishes asks for a claim at the end of the event-loop turn
 * (setImmediate, as `wakeAfterTurn`), and that claim tops the window back up to 32. Each task
 * awaits one `setImmediate` tick: like an HTTP response it completes in a later turn of the event
 * loop, not in the same microtask checkpoint (a resolved promise would run a task and the next one
 * within one turn, which no attempt does), and it involves no I/O.
 *
 * Every run checks both variants and throws on a violation: every task ran exactly once, never
 * more than 16 at once (and 16 were reached), no task started while a task of higher priority was
 * waiting, tasks of one priority started in admission order, and some task did overtake a waiting
 * lower priority (so the order was put to the test). The checks and the admission driver cost both
 * variants the same: p-queue minus heap is what the slots themselves cost.
 *
 * Figures per task, median of the rounds (range in parentheses): wall ns, CPU ns (user + system of
 * the whole process, GC threads included) and bytes allocated on the V8 heap, from
 * `v8.GCProfiler`: the heap's used size at the end minus at the start, plus what every GC in
 * between freed (used size before minus after). A full GC runs before each measurement (outside
 * it). A third row, "task alone", runs the same task in 16 plain loops with no slots at all: a
 * reference for what the task itself costs, so each variant's own cost shows as its difference to
 * it. One warm-up round first, then every round runs the three, each round starting with the
 * next one, so the machine's drift hits all alike; ratios and differences are per round, then the
 * median.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import PQueue from 'p-queue';
import { RunHeap } from '../src/storage/run-heap.js';
import { collectGarbage, fmt, fmtMedianRange } from './common.js';

const CONCURRENCY = 16;
const WINDOW = CONCURRENCY * 2;
const PRIORITIES = 3;

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} needs a positive integer`);
  return value;
}
const TASKS = option('--tasks', 200_000);
const ROUNDS = option('--rounds', 5);

/** Priorities 0–2, the same sequence every run (xorshift32, fixed seed). */
function priorities(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) % PRIORITIES;
  }
  return out;
}
const PRIORITY = priorities(TASKS);

// ---------------------------------------------------------------- the checks and the task

/** Watches one round: exactly once, the cap, priority order. Records the first violation. */
class Checker {
  readonly runs = new Uint8Array(TASKS);
  /** Admitted and not started, by priority. */
  readonly waiting = new Int32Array(PRIORITIES);
  /** Last task started, by priority (admission order is task order). */
  readonly lastStarted = new Int32Array(PRIORITIES).fill(-1);
  running = 0;
  maxRunning = 0;
  /** Starts while a lower priority was waiting: the ordering was put to the test this often. */
  overtakes = 0;
  failure: string | null = null;

  /** `ordered`: check priority and admission order (not for the reference loops, which have neither). */
  constructor(private readonly ordered: boolean) {}

  admitted(i: number): void {
    this.waiting[PRIORITY[i]!]!++;
  }

  started(i: number): void {
    const p = PRIORITY[i]!;
    if (this.runs[i]!++ !== 0) this.fail(`task ${i} started twice`);
    if (++this.running > CONCURRENCY) this.fail(`${this.running} tasks running at once`);
    if (this.running > this.maxRunning) this.maxRunning = this.running;
    if (!this.ordered) return;
    this.waiting[p]!--;
    for (let q = p + 1; q < PRIORITIES; q++) {
      if (this.waiting[q]! > 0) this.fail(`task ${i} (priority ${p}) started while ${this.waiting[q]} of priority ${q} waited`);
    }
    for (let q = 0; q < p; q++) {
      if (this.waiting[q]! > 0) {
        this.overtakes++;
        break;
      }
    }
    if (i < this.lastStarted[p]!) this.fail(`task ${i} started after task ${this.lastStarted[p]} of the same priority`);
    this.lastStarted[p] = i;
  }

  ended(): void {
    this.running--;
  }

  /** Throws unless the round was correct. */
  verify(variant: string): void {
    if (this.failure === null) {
      const missed = this.runs.indexOf(0);
      if (missed >= 0) this.failure = `task ${missed} never ran`;
      else if (this.maxRunning !== CONCURRENCY) this.failure = `at most ${this.maxRunning} ran at once, expected ${CONCURRENCY}`;
      else if (this.ordered && this.overtakes === 0) this.failure = 'no task ever overtook a lower priority: the ordering went untested';
    }
    if (this.failure !== null) throw new Error(`${variant}: ${this.failure}`);
  }

  private fail(message: string): void {
    this.failure ??= message;
  }
}

let checker = new Checker(true);

/** One task: an attempt whose response arrives in a later turn of the event loop. */
async function attempt(i: number): Promise<void> {
  checker.started(i);
  await new Promise<void>((resolve) => setImmediate(resolve));
  checker.ended();
}

// ---------------------------------------------------------------- the two ways of running tasks

/** Runs admitted tasks, at most CONCURRENCY at once, highest priority first; calls `finished` when one settles. */
interface Slots {
  admit(i: number, priority: number): void;
}
type SlotsFactory = (finished: () => void) => Slots;

/** A task waiting for a slot: the pump's ReadyEntry without the origin line. */
interface ReadyEntry {
  index: number;
  priority: number;
  /** Admission order: equal priorities start first come, first served. */
  seq: number;
}

const readyOrder = (a: ReadyEntry, b: ReadyEntry): boolean => (a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq);

/**
 * DeliveryPump's slots (src/delivery/pump.ts: `enqueue`, `startReady`, `startAttempt`, `settled`),
 * minus the per-origin lines (one origin under its ceiling only counts) and `running`.
 */
class HeapSlots implements Slots {
  private readonly ready = new RunHeap<ReadyEntry>(readyOrder);
  private readySeq = 0;
  private slotsInUse = 0;

  constructor(private readonly finished: () => void) {}

  admit(index: number, priority: number): void {
    this.ready.push({ index, priority, seq: this.readySeq++ });
    this.startReady();
  }

  private startReady(): void {
    while (this.slotsInUse < CONCURRENCY) {
      const entry = this.ready.pop();
      if (!entry) return;
      this.startAttempt(entry);
    }
  }

  private startAttempt(entry: ReadyEntry): void {
    this.slotsInUse++;
    let slotHeld = true;
    const releaseSlot = (): void => {
      if (!slotHeld) return;
      slotHeld = false;
      this.slotsInUse--;
      this.startReady();
    };
    let run: Promise<void>;
    try {
      run = attempt(entry.index);
    } catch (error) {
      run = Promise.reject(error as Error);
    }
    run.then(
      () => this.settled(releaseSlot),
      (error: unknown) => {
        checker.failure ??= String(error);
        this.settled(releaseSlot);
      },
    );
  }

  private settled(releaseSlot: () => void): void {
    releaseSlot();
    this.finished();
  }
}

/** The same with p-queue: one `add` per task, the priority in its options. */
class PQueueSlots implements Slots {
  private readonly queue = new PQueue({ concurrency: CONCURRENCY });

  constructor(private readonly finished: () => void) {}

  admit(index: number, priority: number): void {
    void this.queue.add(
      async () => {
        try {
          await attempt(index);
        } catch (error) {
          checker.failure ??= String(error);
        } finally {
          this.finished();
        }
      },
      { priority },
    );
  }
}


// ---------------------------------------------------------------- one measured run

interface Sample {
  wallNs: number;
  cpuNs: number;
  bytes: number;
}

/** Admits the tasks in claims that top the window up at the end of a turn; resolves when all finished. */
function drive(make: SlotsFactory): Promise<void> {
  return new Promise((resolve) => {
    let next = 0;
    let claimed = 0;
    let done = 0;
    let claimScheduled = false;
    const claim = (): void => {
      claimScheduled = false;
      while (claimed < WINDOW && next < TASKS) {
        const i = next++;
        claimed++;
        checker.admitted(i);
        slots.admit(i, PRIORITY[i]!);
      }
    };
    const finished = (): void => {
      claimed--;
      if (++done === TASKS) resolve();
      else if (!claimScheduled && next < TASKS) {
        claimScheduled = true;
        setImmediate(claim);
      }
    };
    const slots = make(finished);
    claim();
  });
}

/**
 * Reference, not a way to run the pump's tasks: the task alone, 16 loops each awaiting its share
 * one after another (no admission, no priorities, no slots). What the rows above it add is theirs.
 */
async function taskAlone(): Promise<void> {
  const loop = async (first: number): Promise<void> => {
    for (let i = first; i < TASKS; i += CONCURRENCY) await attempt(i);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, k) => loop(k)));
}

interface Variant {
  name: string;
  run: () => Promise<void>;
  /** Checked for priority and admission order. */
  ordered: boolean;
}
const VARIANTS: Variant[] = [
  { name: 'heap', run: () => drive((finished) => new HeapSlots(finished)), ordered: true },
  { name: 'p-queue', run: () => drive((finished) => new PQueueSlots(finished)), ordered: true },
  { name: 'task alone', run: taskAlone, ordered: false },
];

async function measure(variant: Variant): Promise<Sample> {
  checker = new Checker(variant.ordered);
  collectGarbage();
  const profiler = new v8.GCProfiler();
  profiler.start();
  const usedBefore = v8.getHeapStatistics().used_heap_size;
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  await variant.run();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpuBefore);
  const usedAfter = v8.getHeapStatistics().used_heap_size;
  const gcs = profiler.stop();
  let freed = 0;
  for (const gc of gcs.statistics) freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
  checker.verify(variant.name);
  return {
    wallNs: (wallMs * 1e6) / TASKS,
    cpuNs: ((cpu.user + cpu.system) * 1e3) / TASKS,
    bytes: (usedAfter - usedBefore + freed) / TASKS,
  };
}

// ---------------------------------------------------------------- rounds and report

const KEYS = ['wallNs', 'cpuNs', 'bytes'] as const;
console.log(
  `slots: ${fmt(TASKS)} tasks, concurrency ${CONCURRENCY}, window ${WINDOW}, priorities 0–${PRIORITIES - 1}; ` +
    `1 warm-up round + ${ROUNDS} rounds; node ${process.version}, p-queue ${pQueueVersion()}`,
);
for (const variant of VARIANTS) await measure(variant);

const samples = new Map<string, Sample[]>(VARIANTS.map((v) => [v.name, []]));
/** Per round: p-queue / heap, and each one's cost above the task alone. */
const ratios: Record<(typeof KEYS)[number], number[]> = { wallNs: [], cpuNs: [], bytes: [] };
const own = new Map<string, Sample[]>([
  ['heap', []],
  ['p-queue', []],
]);
for (let round = 0; round < ROUNDS; round++) {
  // Each round starts with the next variant, so none always runs first or after the same one.
  const order = VARIANTS.map((_, k) => VARIANTS[(k + round) % VARIANTS.length]!);
  const got = new Map<string, Sample>();
  for (const variant of order) got.set(variant.name, await measure(variant));
  const alone = got.get('task alone')!;
  for (const key of KEYS) ratios[key].push(got.get('p-queue')![key] / got.get('heap')![key]);
  for (const [name, list] of own) {
    const sample = got.get(name)!;
    list.push({ wallNs: sample.wallNs - alone.wallNs, cpuNs: sample.cpuNs - alone.cpuNs, bytes: sample.bytes - alone.bytes });
  }
  for (const [name, sample] of got) samples.get(name)!.push(sample);
  console.log(`round ${round + 1}: ${order.map((v) => `${v.name} ${fmt(got.get(v.name)!.wallNs)} ns, ${fmt(got.get(v.name)!.bytes)} B`).join('; ')}`);
}

const cells = (list: Sample[]): string[] => KEYS.map((key) => fmtMedianRange(list.map((s) => s[key])));
const rows = [
  ['variant', 'ns/task wall', 'ns/task CPU', 'bytes/task'],
  ...VARIANTS.map((v) => [v.name, ...cells(samples.get(v.name)!)]),
  ['p-queue / heap', ...KEYS.map((key) => fmtMedianRange(ratios[key], 2, '×'))],
  ...[...own].map(([name, list]) => [`${name} − task alone`, ...cells(list)]),
];
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log('');
for (const [r, row] of rows.entries()) {
  console.log(`| ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`);
  if (r === 0) console.log(`| ${widths.map((w, c) => (c === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`);
}
console.log('');
console.log('Median of the rounds (min–max). Ratios and differences are taken per round, then the median.');
console.log(
  'bytes/task: V8 heap allocated during the run (used size at the end − at the start + what every GC freed, from v8.GCProfiler); ' +
    'CPU: user + system of the whole process, GC threads included.',
);
console.log(
  'task alone: the same task in 16 plain loops, no slots (a reference); heap and p-queue include it, the driver and the checks. ' +
    `Checked every run: each task once, at most ${CONCURRENCY} at once, no start while a higher priority waited, FIFO within a priority.`,
);

function pQueueVersion(): string {
  const url = new URL('../node_modules/p-queue/package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}
