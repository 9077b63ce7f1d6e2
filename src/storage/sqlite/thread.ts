/**
 * The main-thread side of `SqliteStorage({ path })`'s database thread: starts the worker, sends
 * it one message per storage call and settles the call's promise with the reply.
 *
 * better-sqlite3 is synchronous: on the caller's thread every commit, index update and
 * checkpoint (with its fsync) stops the host's event loop, its HTTP server included. On a
 * worker thread the SQL runs beside it, on another core; the event loop pays only for copying
 * the records across (structured clone).
 *
 * @module
 */
import { Worker } from 'node:worker_threads';
import { SchemaMismatchError, StorageError, WebhookError, WebhookValidationError, type ValidationIssue } from '../../errors.js';
import type { ClaimRequest } from '../types.js';

/**
 * Where an in-thread adapter keeps the entry points of the calls its host thread encodes itself
 * (claims answered as row arrays, completions sent as `encodeCompletions` values): a registered
 * symbol, so the worker's copy of this module finds it and no public name shows it.
 */
export const THREAD_CALLS = Symbol.for('webhook-dispatcher.sqlite.thread-calls');

export interface ThreadCalls {
  /** Claims for a validated request with a positive limit, as `packClaimedRows` (rows.ts) packs them. */
  claim(request: ClaimRequest): unknown[];
  complete(encoded: unknown[]): boolean[];
}

/** The `method` of a {@link SqliteThreadCall} that runs a {@link ThreadCalls} entry: its name, prefixed. */
export const THREAD_CALL_PREFIX = 'thread:';
export const THREAD_CALLS_CLAIM = `${THREAD_CALL_PREFIX}claim`;
export const THREAD_CALLS_COMPLETE = `${THREAD_CALL_PREFIX}complete`;

/** What the worker is started with. */
export interface SqliteThreadInit {
  /** URL of the module that exports `SqliteStorage` (the caller's own build); the worker module sits next to it. */
  moduleUrl: string;
  path: string;
  tablePrefix: string | undefined;
  checkpoints: 'background' | 'auto' | undefined;
}

/** A call, main → worker. */
export interface SqliteThreadCall {
  id: number;
  method: string;
  args: unknown[];
}

/** A reply, worker → main: the value, or the error the call failed with. */
export type SqliteThreadReply = { id: number; value: unknown } | { id: number; error: SerializedError };

/** An error as it crosses the thread boundary: structured clone keeps neither class nor `code` nor `cause`. */
export interface SerializedError {
  name: string;
  message: string;
  code?: unknown;
  cause?: SerializedError;
  /** A validation error's issues. */
  issues?: ValidationIssue[];
  /** A schema mismatch's versions. */
  versions?: { database: number; expected: number };
}

/** Flattens an error (and its causes, a few deep) into plain data. */
export function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const serialized: SerializedError = { name: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) serialized.code = code;
  if (error.cause !== undefined && depth < 4) serialized.cause = serializeError(error.cause, depth + 1);
  if (error instanceof WebhookValidationError) serialized.issues = error.issues.map((i) => ({ path: i.path, message: i.message }));
  if (error instanceof SchemaMismatchError) serialized.versions = { database: error.databaseVersion, expected: error.expectedVersion };
  return serialized;
}

/**
 * Rebuilds an error on this side: the library's StorageError, SchemaMismatchError,
 * WebhookValidationError and TypeError keep their class (callers branch on them).
 */
export function rebuildError(serialized: SerializedError): Error {
  const cause = serialized.cause ? rebuildError(serialized.cause) : undefined;
  const options = cause ? { cause } : undefined;
  if (serialized.name === 'StorageError') return new StorageError(serialized.message, options);
  if (serialized.name === 'SchemaMismatchError' && serialized.versions) {
    return new SchemaMismatchError(serialized.message, serialized.versions.database, serialized.versions.expected);
  }
  if (serialized.name === 'WebhookValidationError' && serialized.issues) {
    const error = new WebhookValidationError(serialized.issues, options);
    // The message carries the context the issues alone do not (`SqliteStorage: …`).
    error.message = serialized.message;
    return error;
  }
  if (serialized.name === 'TypeError') return new TypeError(serialized.message, options);
  const error = new Error(serialized.message, options);
  error.name = serialized.name;
  if (serialized.code !== undefined) (error as { code?: unknown }).code = serialized.code;
  return error;
}

interface PendingCall {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * How to start the worker module next to the adapter module. Built, the adapter is bundled into
 * `storage/sqlite.js` and the worker is `storage/sqlite-worker.js` beside it (tsup.config.ts). From
 * source (this repository's tests and benchmarks) the adapter is `sqlite/storage.ts` and the worker
 * `sqlite/worker.ts`, started through a bootstrap that registers tsx's loader on the new thread
 * first (tsx is a dev dependency; the published build never does this). Located from the adapter's
 * URL, not this module's, which a bundler may move to a chunk.
 */
function workerEntry(moduleUrl: string): { script: string | URL; eval: boolean } {
  if (!moduleUrl.endsWith('.ts')) return { script: new URL('./sqlite-worker.js', moduleUrl), eval: false };
  const entry = new URL('./worker.ts', moduleUrl).href;
  // A failed import rejects unhandled, which ends the thread with an 'error' event.
  const script = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  return { script, eval: true };
}

/**
 * The host's Node options for the new thread, minus those that name the main script's input
 * (`--input-type`, `-e`, `-p`): a worker given them refuses to load its file.
 */
function workerExecArgv(): string[] {
  const args: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i]!;
    if (arg.startsWith('--input-type')) continue;
    if (arg === '-e' || arg === '--eval' || arg === '-p' || arg === '--print') {
      i++; // and its code
      continue;
    }
    if (arg.startsWith('--eval=') || arg.startsWith('--print=')) continue;
    args.push(arg);
  }
  return args;
}

/**
 * Starts the thread with those of the host's Node options a worker accepts. Node refuses a worker
 * given V8 or process-wide options (`node --max-old-space-size=4096 server.js`, `--expose-gc`,
 * `--stack-size`) and names them in its error: they are dropped and the start retried, since they
 * act on the whole process anyway.
 */
function startWorker(entry: { script: string | URL; eval: boolean }, init: SqliteThreadInit): Worker {
  let execArgv = workerExecArgv();
  for (;;) {
    try {
      return new Worker(entry.script, { eval: entry.eval, workerData: init, execArgv });
    } catch (error) {
      const refused = refusedExecArgv(error);
      const kept = execArgv.filter((arg) => !refused.has(arg));
      if (kept.length === execArgv.length) throw error;
      execArgv = kept;
    }
  }
}

/** The options named by Node's ERR_WORKER_INVALID_EXEC_ARGV ("… invalid execArgv flags: a, b"). */
function refusedExecArgv(error: unknown): ReadonlySet<string> {
  if ((error as { code?: unknown } | null)?.code !== 'ERR_WORKER_INVALID_EXEC_ARGV') return new Set();
  const list = /flags: (.*)$/s.exec((error as Error).message)?.[1];
  return new Set(list ? list.split(', ') : []);
}

/** One worker thread owning one SQLite connection; calls run there one at a time, in order. */
export class SqliteThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, PendingCall>();
  private nextId = 1;
  /** Set once the worker has stopped (closed, crashed, or terminated): every later call fails with it. */
  private stopped: StorageError | null = null;

  constructor(init: SqliteThreadInit) {
    const entry = workerEntry(init.moduleUrl);
    this.worker = startWorker(entry, init);
    // An idle database thread must not keep the host process alive; a call in flight does.
    this.worker.unref();
    this.worker.on('message', (reply: SqliteThreadReply) => this.settle(reply));
    this.worker.on('error', (error: Error) => this.stop(new StorageError(`SqliteStorage: the database thread failed: ${error.message}`, { cause: error })));
    this.worker.on('exit', (code) => this.stop(new StorageError(`SqliteStorage: the database thread exited (code ${code})`)));
  }

  /** Runs `method(...args)` on the worker's SqliteStorage. */
  call<T>(method: string, args: unknown[]): Promise<T> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      try {
        this.worker.postMessage({ id, method, args } satisfies SqliteThreadCall);
      } catch (error) {
        // Arguments that cannot be cloned (functions, class instances with private state, …).
        this.pending.delete(id);
        if (this.pending.size === 0) this.worker.unref();
        reject(new StorageError(`SqliteStorage: ${method} arguments cannot be sent to the database thread: ${(error as Error).message}`, { cause: error }));
      }
    });
  }

  /** Closes the worker's connection, then ends the thread. Idempotent. */
  async close(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.call('close', []);
    } finally {
      this.stop(new StorageError('SqliteStorage is closed'));
      await this.worker.terminate();
    }
  }

  private settle(reply: SqliteThreadReply): void {
    const call = this.pending.get(reply.id);
    if (!call) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if ('error' in reply) {
      const error = rebuildError(reply.error);
      call.reject(error instanceof WebhookError || error instanceof TypeError ? error : new StorageError(`SqliteStorage: ${error.message}`, { cause: error }));
    } else {
      call.resolve(reply.value);
    }
  }

  private stop(reason: StorageError): void {
    if (this.stopped) return;
    this.stopped = reason;
    for (const call of this.pending.values()) call.reject(reason);
    this.pending.clear();
  }
}
