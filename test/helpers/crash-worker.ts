/**
 * The process the crash-recovery tests kill (`test/durability.*.test.ts`).
 *
 * Run as a script, it opens a durable storage (a SQLite file or a Postgres schema), registers one
 * or more webhooks pointing at the test's receiver, emits `count` deliveries, prints one JSON line with
 * their ids and starts dispatching. It then runs until it is killed: the test SIGKILLs it in the
 * middle of the backlog, so it dies holding leases and with attempts in flight.
 *
 * ```sh
 * node --import tsx test/helpers/crash-worker.ts --adapter sqlite --target /tmp/x.db --url http://127.0.0.1:1234
 * node --import tsx test/helpers/crash-worker.ts --adapter postgres --target wd_schema --url …
 * ```
 *
 * The package is imported through relative paths to `src`: vitest's aliases do not apply in a
 * child process. Postgres is reached like the tests reach it (PGHOST, PGPORT, PGUSER, PGDATABASE,
 * defaulting to postgres@127.0.0.1:5432/test).
 *
 * Imported (by the tests), the module only exports {@link startCrashWorker}, which spawns the
 * script and waits for its ids; the script part runs only when this file is the entry point.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { WebhookStorage } from '../../src/index.js';

// ------------------------------------------------------------------ parent side

/** What the worker is told to do. */
export interface CrashWorkerOptions {
  adapter: 'sqlite' | 'postgres';
  /** The SQLite file path, or the Postgres schema. */
  target: string;
  /** The receiver's origin (`http://127.0.0.1:<port>`); webhook `i` posts to `/hooks/<i>` there. */
  url: string;
  /** Deliveries to emit before dispatching starts: `count / webhooks` events, each fanning out to every webhook. */
  count: number;
  /**
   * Webhooks registered (`/hooks/0`, `/hooks/1`, … on `url`). Several webhooks per event
   * mean fewer commits for the same backlog, which matters on Postgres: every committed enqueue
   * NOTIFYs, and notifying commits are serialized by the server. Default 1.
   */
  webhooks?: number;
  /** The worker dispatcher's `concurrency` (and per-endpoint cap); it claims up to twice that. */
  concurrency: number;
  leaseMs: number;
  requestTimeoutMs: number;
}

/** A running worker. */
export interface CrashWorker {
  /** Ids (`webhook-id`) of every delivery the worker emitted, in emit order. */
  readonly ids: string[];
  readonly webhookIds: string[];
  readonly process: ChildProcess;
  /** Everything the worker wrote to stderr so far. */
  stderr(): string;
  /** SIGKILLs the worker (no cleanup of any kind runs) and resolves once it has exited. */
  kill(): Promise<NodeJS.Signals | null>;
}

interface StartedMessage {
  type: 'started';
  webhookIds: string[];
  ids: string[];
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = 'test/helpers/crash-worker.ts';

/**
 * Spawns `node --import tsx test/helpers/crash-worker.ts …` and resolves once the worker has
 * emitted everything and started dispatching. Rejects (and kills the worker) when it exits or
 * stays silent for `timeoutMs`.
 */
export function startCrashWorker(options: CrashWorkerOptions, timeoutMs = 15_000): Promise<CrashWorker> {
  const args = [
    '--import',
    'tsx',
    SCRIPT,
    `--adapter=${options.adapter}`,
    `--target=${options.target}`,
    `--url=${options.url}`,
    `--count=${options.count}`,
    `--webhooks=${options.webhooks ?? 1}`,
    `--concurrency=${options.concurrency}`,
    `--lease-ms=${options.leaseMs}`,
    `--request-timeout-ms=${options.requestTimeoutMs}`,
    // Never outlive the test process: the worker exits when its stdin (a pipe from us) closes.
    '--exit-with-parent',
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<NodeJS.Signals | null>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done(child.signalCode);
    else child.once('exit', (_code, signal) => done(signal));
  });

  const kill = async (): Promise<NodeJS.Signals | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  };

  return new Promise<CrashWorker>((resolveStart, rejectStart) => {
    let stdout = '';
    const fail = (reason: string) => {
      clearTimeout(timer);
      void kill();
      rejectStart(new Error(`crash worker ${reason}\n--- worker stderr ---\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`did not start within ${timeoutMs} ms`), timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(`exited early (code ${code}, signal ${signal})`);
    const onError = (error: Error) => fail(`could not be spawned: ${error.message}`);
    child.once('exit', onExit);
    child.once('error', onError);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline < 0) return;
      const line = stdout.slice(0, newline);
      stdout = stdout.slice(newline + 1);
      let message: StartedMessage;
      try {
        message = JSON.parse(line) as StartedMessage;
      } catch {
        fail(`printed something unexpected: ${line.slice(0, 200)}`);
        return;
      }
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
      resolveStart({
        ids: message.ids,
        webhookIds: message.webhookIds,
        process: child,
        stderr: () => stderr,
        kill,
      });
    });
  });
}

// ------------------------------------------------------------------ worker side

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      adapter: { type: 'string' },
      target: { type: 'string' },
      url: { type: 'string' },
      count: { type: 'string', default: '3000' },
      webhooks: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '8' },
      'lease-ms': { type: 'string', default: '1000' },
      'request-timeout-ms': { type: 'string', default: '500' },
      'exit-with-parent': { type: 'boolean', default: false },
    },
  });
  if (values['exit-with-parent']) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  }
  const { adapter, target, url } = values;
  if ((adapter !== 'sqlite' && adapter !== 'postgres') || !target || !url) {
    throw new Error('usage: crash-worker --adapter sqlite|postgres --target <file|schema> --url <receiver origin> [--count n] [--webhooks n] [--exit-with-parent]');
  }
  const count = Number(values.count);
  const concurrency = Number(values.concurrency);
  const webhookCount = Number(values.webhooks);
  if (!Number.isInteger(count / webhookCount)) throw new Error('--count must be a multiple of --webhooks');

  // Relative imports: this runs outside vitest, whose aliases of `webhook-dispatcher` do not apply.
  const { WebhookDispatcher } = await import('../../src/index.js');
  let storage: WebhookStorage;
  if (adapter === 'sqlite') {
    const { SqliteStorage } = await import('../../src/storage/sqlite.js');
    storage = new SqliteStorage({ path: target });
  } else {
    const { default: pg } = await import('pg');
    const { PostgresStorage } = await import('../../src/storage/postgres.js');
    const pool = new pg.Pool({
      host: process.env.PGHOST ?? '127.0.0.1',
      port: Number(process.env.PGPORT ?? 5432),
      user: process.env.PGUSER ?? 'postgres',
      database: process.env.PGDATABASE ?? 'test',
    });
    storage = new PostgresStorage({ pool, schema: target });
  }
  await storage.migrate?.();

  const dispatcher = new WebhookDispatcher({
    storage,
    // The receiver is on 127.0.0.1: explicit opt-out of the SSRF guard, which blocks loopback by default.
    allowPrivateNetworks: true,
    circuitBreaker: false,
    autoStart: false,
    concurrency,
    perWebhookConcurrency: concurrency,
    // Short leases, so the survivor can take this process's deliveries over soon after it dies.
    leaseMs: Number(values['lease-ms']),
    requestTimeoutMs: Number(values['request-timeout-ms']),
    pollIntervalMs: 100,
  });
  dispatcher.on('error', ({ error, context }) => {
    process.stderr.write(`dispatcher error (${context}): ${error instanceof Error ? error.message : String(error)}\n`);
  });

  const webhookIds: string[] = [];
  for (let i = 0; i < webhookCount; i++) {
    const hook = await dispatcher.createWebhook({ url: new URL(`/hooks/${i}`, url).href, triggers: [{ entity: 'order', event: 'Create' }] });
    webhookIds.push(hook.id);
  }
  const events = count / webhookCount;
  const ids: string[] = [];
  for (let start = 0; start < events; start += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, events - start) }, (_, i) =>
        dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: start + i, OrderCode: `SO-${start + i}` } }),
      ),
    );
    for (const result of batch) for (const d of result.deliveries) ids.push(d.id);
  }
  process.stdout.write(`${JSON.stringify({ type: 'started', webhookIds, ids } satisfies StartedMessage)}\n`);
  dispatcher.start();
  // The dispatcher's timers are unref'd: stay alive until killed, even if the backlog runs out.
  setInterval(() => undefined, 60_000);
}

const isEntryPoint = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntryPoint) {
  main().catch((error: unknown) => {
    process.stderr.write(`crash worker failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
