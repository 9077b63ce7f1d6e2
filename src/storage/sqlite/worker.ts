/**
 * Entry of the database thread behind `SqliteStorage({ path })` (see thread.ts): opens
 * the database on this thread with an ordinary in-thread SqliteStorage and runs each call it is
 * sent, in arrival order, replying with the value or the error.
 *
 * The adapter module is imported by the URL the caller passed, not statically, so this thread
 * runs exactly the caller's build of it (source or dist).
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  serializeError,
  THREAD_CALL_PREFIX,
  THREAD_CALLS,
  type SqliteThreadCall,
  type SqliteThreadInit,
  type SqliteThreadReply,
  type ThreadCalls,
} from './thread.js';
import type { SqliteStorage } from './storage.js';

const init = workerData as SqliteThreadInit;
const port = parentPort!;

const module = (await import(init.moduleUrl)) as { SqliteStorage: typeof SqliteStorage };
let storage: SqliteStorage | null = null;
let openError: unknown = null;
try {
  storage = new module.SqliteStorage({
    path: init.path,
    ...(init.tablePrefix !== undefined ? { tablePrefix: init.tablePrefix } : {}),
    ...(init.checkpoints !== undefined ? { checkpoints: init.checkpoints } : {}),
    worker: false,
  });
} catch (error) {
  // Reported on every call (the first is usually migrate()), as the in-thread adapter would throw.
  openError = error;
}

/** Runs one call on the adapter. Never throws: a failure is the returned promise's rejection. */
function run(call: SqliteThreadCall): Promise<unknown> {
  try {
    if (!storage) {
      // Nothing was opened, so closing has nothing to do; anything else fails as the open did.
      if (call.method === 'close') return Promise.resolve();
      throw openError;
    }
    if (call.method.startsWith(THREAD_CALL_PREFIX)) {
      // A claim or completion its host encoded: run synchronously, answered the same way.
      const calls = (storage as unknown as { [THREAD_CALLS]: ThreadCalls })[THREAD_CALLS];
      const entry = calls[call.method.slice(THREAD_CALL_PREFIX.length) as keyof ThreadCalls] as (...args: unknown[]) => unknown;
      return Promise.resolve(entry.apply(calls, call.args));
    }
    const method = (storage as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[call.method];
    if (typeof method !== 'function') throw new TypeError(`SqliteStorage has no method ${call.method}`);
    return method.apply(storage, call.args);
  } catch (error) {
    return Promise.reject(error);
  }
}

port.on('message', (call: SqliteThreadCall) => {
  // better-sqlite3 is synchronous: the call's SQL has already run, so replies keep call order.
  run(call).then(
    (value) => port.postMessage({ id: call.id, value } satisfies SqliteThreadReply),
    (error: unknown) => port.postMessage({ id: call.id, error: serializeError(error) } satisfies SqliteThreadReply),
  );
});
