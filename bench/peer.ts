/**
 * A second dispatcher process on the D-pg row's database. The target for Postgres is for
 * two dispatcher processes on one database: the row's process emits and delivers, and this one
 * (`bench/peer-worker.ts`, forked by the row's process) runs a dispatcher with the same options on
 * the same schema without emitting, so it claims and sends its share. It is started once and kept
 * for every round; each round opens a dispatcher on that round's schema and closes it before the
 * schema is dropped.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { closeChild } from './common.js';

/** What the peer did between {@link PeerProcess.mark} and {@link PeerProcess.read}. */
export interface PeerStats {
  /** The peer process's CPU (user + system, all threads), µs. */
  cpuUs: number;
  /** Deliveries its dispatcher claimed (and so sent). */
  claimed: number;
  /** Deliveries it recorded as succeeded. */
  succeeded: number;
  /** SQL statements it sent. */
  sqlStatements: number;
  /** Its storage write calls by method. */
  writeCounts: Record<string, number>;
  /** Background errors its dispatcher reported. */
  errors: string[];
}

type PeerRequest = { cmd: 'open'; schema: string } | { cmd: 'mark' } | { cmd: 'read' } | { cmd: 'close' };

/** Parent (the row's process) → peer. */
export type PeerCommand = PeerRequest & { id: number };

/** Peer → parent. */
export type PeerReply = { id: number; ok: true; stats?: PeerStats } | { id: number; ok: false; error: string };

export class PeerProcess {
  private static instance: PeerProcess | null = null;
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (reply: PeerReply) => void; reject: (error: Error) => void }>();
  private exited: Error | null = null;

  /** The row process's peer, forked at first use (same Node options, so tsx and profiling flags carry over). */
  static shared(): PeerProcess {
    if (!PeerProcess.instance || PeerProcess.instance.exited) PeerProcess.instance = new PeerProcess();
    return PeerProcess.instance;
  }

  private constructor() {
    const script = fileURLToPath(new URL('./peer-worker.ts', import.meta.url));
    this.child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (reply: PeerReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      waiter.resolve(reply);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(`the second dispatcher process exited (code ${code}, signal ${signal})`);
      for (const waiter of this.pending.values()) waiter.reject(this.exited);
      this.pending.clear();
    });
    process.on('exit', () => {
      if (!this.exited) this.child.kill('SIGKILL');
    });
  }

  /** Starts a dispatcher (README's defaults) on `schema`; resolves once it runs. */
  async open(schema: string): Promise<void> {
    await this.call({ cmd: 'open', schema });
  }

  /** Starts counting CPU, claims and statements from now. */
  async mark(): Promise<void> {
    await this.call({ cmd: 'mark' });
  }

  /** What the peer did since {@link mark}. */
  async read(): Promise<PeerStats> {
    return (await this.call({ cmd: 'read' })).stats!;
  }

  /** Closes the dispatcher and its pool (the process stays for the next round). */
  async closeDispatcher(): Promise<void> {
    if (!this.exited) await this.call({ cmd: 'close' });
  }

  /** Ends the process. */
  async end(): Promise<void> {
    if (!this.exited) await closeChild(this.child, 5_000);
  }

  private async call(command: PeerRequest): Promise<Extract<PeerReply, { ok: true }>> {
    if (this.exited) throw this.exited;
    const id = this.nextId++;
    const reply = await new Promise<PeerReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ ...command, id } satisfies PeerCommand);
    });
    if (!reply.ok) throw new Error(`second dispatcher process: ${reply.error}`);
    return reply;
  }
}
