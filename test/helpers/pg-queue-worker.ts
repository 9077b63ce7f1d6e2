/**
 * A claim/complete loop on a Postgres schema, run as a child process by the two-process tests
 * (`test/postgres-two-processes.serial.test.ts`): several such processes share one database the way
 * dispatcher processes do, without the dispatcher (the tests are about the storage).
 *
 * ```sh
 * node --import tsx test/helpers/pg-queue-worker.ts --schema wd_x --name a [--loops 3] [--limit 5] …
 * ```
 *
 * It prints `{"type":"ready"}` once connected, waits for a line `go` on stdin, then runs `loops`
 * concurrent loops: claim (clock: `Date.now()`), "attempt" each delivery for a random few ms, and
 * complete the batch with one `completeAttempts` (a retry for a `--fail-rate` share of first
 * attempts). Every recorded completion is printed as a JSON line. It exits when no delivery is
 * left unfinished, or when its stdin closes (never outliving the test).
 *
 * Imported, it exports {@link startQueueWorker}, which spawns it.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// ------------------------------------------------------------------ parent side

export interface QueueWorkerOptions {
  schema: string;
  name: string;
  /** Concurrent claim/complete loops in the process. */
  loops?: number;
  /** Claim limit of each loop. */
  limit?: number;
  leaseMs?: number;
  defaultConcurrency?: number;
  /** Share of first attempts that end in a retry 5 ms later. */
  failRate?: number;
  /** Longest simulated attempt, in ms. */
  workMs?: number;
  /**
   * After this many recorded completions, claim one more batch, print `{"type":"hung"}` and never
   * complete it: the state of a process that dies mid-attempt (the test then SIGKILLs it).
   */
  hangAfter?: number;
}

/** A line the worker printed for a recorded completion. */
export interface CompletionLine {
  type: 'completed';
  worker: string;
  id: string;
  webhookId: string;
  orderingKey: string | null;
  sequence: number | null;
  outcome: 'succeeded' | 'scheduled';
}

export interface QueueWorker {
  readonly process: ChildProcess;
  /** Completions recorded so far. */
  readonly completed: CompletionLine[];
  /** Resolves once the worker holds leases it will never complete (see `hangAfter`). */
  readonly hung: Promise<void>;
  /** Tells it to start. */
  go(): void;
  /** Resolves with the exit code (null when killed). */
  readonly exited: Promise<number | null>;
  stderr(): string;
  kill(): Promise<number | null>;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Spawns a worker and resolves once it is connected and waiting for `go()`. */
export function startQueueWorker(options: QueueWorkerOptions, timeoutMs = 20_000): Promise<QueueWorker> {
  const args = [
    '--import', 'tsx', 'test/helpers/pg-queue-worker.ts',
    `--schema=${options.schema}`, `--name=${options.name}`, `--loops=${options.loops ?? 3}`, `--limit=${options.limit ?? 5}`,
    `--lease-ms=${options.leaseMs ?? 30_000}`, `--default-concurrency=${options.defaultConcurrency ?? 8}`,
    `--fail-rate=${options.failRate ?? 0}`, `--work-ms=${options.workMs ?? 3}`, `--hang-after=${options.hangAfter ?? 0}`,
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  // 'close', not 'exit': it comes after the last of stdout has been read.
  const exited = new Promise<number | null>((done) => child.once('close', (code) => done(code)));
  const completed: CompletionLine[] = [];
  let markHung = (): void => undefined;
  const hung = new Promise<void>((done) => (markHung = done));
  return new Promise<QueueWorker>((resolveStart, rejectStart) => {
    let buffered = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rejectStart(new Error(`queue worker did not start within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    void exited.then((code) => {
      if (started) return;
      clearTimeout(timer);
      rejectStart(new Error(`queue worker exited early (${code})\n${stderr}`));
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, newline)) as { type: string };
        buffered = buffered.slice(newline + 1);
        if (line.type === 'completed') completed.push(line as CompletionLine);
        if (line.type === 'hung') markHung();
        if (line.type === 'ready' && !started) {
          started = true;
          clearTimeout(timer);
          resolveStart({
            process: child,
            completed,
            hung,
            exited,
            go: () => child.stdin.write('go\n'),
            stderr: () => stderr,
            kill: async () => {
              if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
              return exited;
            },
          });
        }
      }
    });
  });
}

// ------------------------------------------------------------------ worker side

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      schema: { type: 'string' },
      name: { type: 'string' },
      loops: { type: 'string' },
      limit: { type: 'string' },
      'lease-ms': { type: 'string' },
      'default-concurrency': { type: 'string' },
      'fail-rate': { type: 'string' },
      'work-ms': { type: 'string' },
      'hang-after': { type: 'string' },
    },
  });
  const schema = values.schema!;
  const name = values.name!;
  const [loops, limit, leaseMs, defaultConcurrency] = [values.loops, values.limit, values['lease-ms'], values['default-concurrency']].map(Number);
  const failRate = Number(values['fail-rate']);
  const workMs = Number(values['work-ms']);
  const hangAfter = Number(values['hang-after']);
  let recordedCount = 0;
  let hanging = false;
  const forever = () => new Promise<never>(() => undefined);

  // Relative imports: vitest's aliases do not apply in a child process.
  const { default: pg } = await import('pg');
  const { PostgresStorage } = await import('../../src/storage/postgres.js');
  const { makeExecution } = await import('../../src/testing/fixtures.js');
  const pool = new pg.Pool({
    host: process.env.PGHOST ?? '127.0.0.1',
    port: Number(process.env.PGPORT ?? 5432),
    user: process.env.PGUSER ?? 'postgres',
    database: process.env.PGDATABASE ?? 'test',
    max: loops! + 2,
  });
  pool.on('error', (error) => process.stderr.write(`pool: ${error.message}\n`));
  const storage = new PostgresStorage({ pool, schema });
  await storage.nextRunAt(); // connects and checks the schema version
  const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('end', () => process.exit(0));
  const go = new Promise<void>((start) =>
    process.stdin.on('data', (chunk: string) => {
      input += chunk;
      if (input.includes('go\n')) start();
    }),
  );
  print({ type: 'ready' });
  await go;

  const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
  const unfinished = async () =>
    Number(
      (
        (await pool.query(`SELECT count(*)::int AS n FROM "${schema}".webhook_deliveries WHERE status NOT IN ('succeeded', 'failed', 'cancelled')`))
          .rows[0] as { n: number }
      ).n,
    );
  const loop = async (): Promise<void> => {
    for (;;) {
      if (hanging) await forever();
      const claimed = await storage.claimDueDeliveries({ now: Date.now(), limit: limit!, leaseMs: leaseMs!, defaultConcurrency: defaultConcurrency! });
      if (hangAfter > 0 && recordedCount >= hangAfter && claimed.length > 0) {
        hanging = true; // every loop stops before its next claim
        print({ type: 'hung', held: claimed.length });
        await forever(); // holds its leases until killed
      }
      if (claimed.length === 0) {
        if ((await unfinished()) === 0) return;
        await sleep(2);
        continue;
      }
      const outcomes = await Promise.all(
        claimed.map(async (d) => {
          await sleep(Math.random() * workMs);
          const retry = d.attempts === 0 && Math.random() < failRate;
          const at = Date.now();
          return {
            deliveryId: d.id,
            leaseToken: d.leaseToken,
            outcome: retry
              ? { status: 'scheduled' as const, runAt: at + 5, lastStatus: 503, lastError: 'HTTP 503' }
              : { status: 'succeeded' as const, lastStatus: 200, lastError: null },
            execution: makeExecution(d, { startedAt: at, endedAt: at, success: !retry, status: retry ? 503 : 200 }),
          };
        }),
      );
      const recorded = await storage.completeAttempts(outcomes);
      recorded.forEach((ok, i) => {
        const d = claimed[i]!;
        if (ok) {
          recordedCount++;
          print({ type: 'completed', worker: name, id: d.id, webhookId: d.webhookId, orderingKey: d.orderingKey, sequence: d.sequence, outcome: outcomes[i]!.outcome.status });
        }
      });
    }
  };
  await Promise.all(Array.from({ length: loops! }, loop));
  await pool.end();
  // Writes to a pipe are asynchronous: exit only once the last line is out.
  await new Promise<void>((flushed) => process.stdout.write('', () => flushed()));
  process.exit(0);
}

const isEntryPoint = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntryPoint) {
  main().catch((error: unknown) => {
    process.stderr.write(`queue worker failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
