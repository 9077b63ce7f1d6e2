/**
 * Each throughput row runs in a Node process of its own (bench/row-worker.ts), started once and
 * reused for every round, so rounds stay interleaved while no row runs in a JavaScript engine
 * warmed, shaped and filled by the others. A host uses one storage adapter per process; measured
 * in one process, the dispatcher's code was first compiled for MemoryStorage's objects and then
 * had to deoptimise for SqliteStorage's and PostgresStorage's (D-sqlite measured 0.40× R0 after
 * D-mem in the same process, 0.44–0.47× without it).
 *
 * The parent drives each measurement in three steps (prepare, run, teardown) so that it can reset
 * and read the shared receiver's counters around the timed part only.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { closeChild } from './common.js';

/** Parent → child. */
export type RowCommand =
  | { id: number; cmd: 'prepare'; n: number }
  | { id: number; cmd: 'run' }
  | { id: number; cmd: 'teardown' };

/** What the timed part of one measurement produced, measured in the row's process. */
export interface RowRunResult {
  seconds: number;
  /** The row process's CPU (user + system, all threads) over the timed part, µs. */
  cpuUs: number;
  /** Storage write calls by method (dispatcher rows). */
  writeCounts: Record<string, number> | null;
  /** SQL statements sent (D-pg: both dispatcher processes). */
  sqlStatements: number | null;
  /** The second dispatcher process's CPU (µs) and its share of the deliveries (D-pg). */
  peer: { cpuUs: number; claimed: number } | null;
  /** Background errors the dispatcher reported. */
  errors: string[];
  /** Facts about the databases used (versions, settings), for the report. */
  notes: string[];
}

/** Child → parent. */
export type RowReply =
  | { id: number; ok: true; result?: RowRunResult }
  | { id: number; ok: false; error: string; unavailable: boolean; timedOut: boolean };

/** The failure of a step in the row's process. */
export class RowProcessError extends Error {
  constructor(
    message: string,
    /** The row cannot run on this machine (adapter missing, database down). */
    readonly unavailable: boolean,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

/** One row's process. */
export class RowProcess {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (reply: RowReply) => void; reject: (error: Error) => void }>();
  private exited: Error | null = null;

  /** Starts the row's process (same Node options, so tsx and profiling flags carry over, plus `--no-memory-reducer`). */
  constructor(row: string, ports: readonly number[]) {
    const script = fileURLToPath(new URL('./row-worker.ts', import.meta.url));
    // --no-memory-reducer: between its runs a row's process idles while the other rows run, and
    // V8 shrinks an idle heap with full collections that drop the optimised code's maps (see
    // bench/README.md, "Steady state"). The rows measure sustained load, which has no such pauses.
    this.child = fork(script, [row, ports.join(',')], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [...process.execArgv, '--no-memory-reducer'],
    });
    this.child.on('message', (reply: RowReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      waiter.resolve(reply);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(`the ${row} process exited (code ${code}, signal ${signal})`);
      for (const waiter of this.pending.values()) waiter.reject(this.exited);
      this.pending.clear();
    });
  }

  /** Builds the row's client, dispatcher and storage for `n` deliveries (untimed). */
  async prepare(n: number): Promise<void> {
    await this.call({ cmd: 'prepare', n });
  }

  /** The timed part. */
  async run(): Promise<RowRunResult> {
    return (await this.call({ cmd: 'run' })).result!;
  }

  /** Releases what prepare built, then collects garbage. */
  async teardown(): Promise<void> {
    await this.call({ cmd: 'teardown' });
  }

  /** Ends the process (it also exits when this one disconnects). */
  async close(): Promise<void> {
    if (!this.exited) await closeChild(this.child, 5_000);
  }

  /** Synchronous last resort (process 'exit' handler). */
  killNow(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private async call(command: { cmd: 'prepare'; n: number } | { cmd: 'run' } | { cmd: 'teardown' }): Promise<Extract<RowReply, { ok: true }>> {
    if (this.exited) throw this.exited;
    const id = this.nextId++;
    const reply = await new Promise<RowReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ ...command, id } as RowCommand);
    });
    if (!reply.ok) throw new RowProcessError(reply.error, reply.unavailable, reply.timedOut);
    return reply;
  }
}
