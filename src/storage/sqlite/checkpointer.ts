/**
 * Background WAL checkpoints for a database file the SQLite adapter opened. A checkpoint copies
 * the WAL back into the database file and fsyncs both; with SQLite's automatic checkpoints that
 * runs inside whichever commit crosses 1000 WAL pages, stalling the thread that committed (and,
 * on the database thread, every call queued behind it) for the copy and the disk flushes. Here a
 * thread of its own, with its own connection, runs a PASSIVE checkpoint every
 * {@link CHECKPOINT_INTERVAL_MS}: it never takes a lock the writers need and never waits for one.
 *
 * The adapter's connection keeps a high automatic threshold ({@link FALLBACK_AUTOCHECKPOINT_PAGES})
 * as a safety valve, so the WAL stays bounded even if this thread is behind or gone.
 *
 * @module
 */
import { Worker } from 'node:worker_threads';

/** How often the checkpoint thread checkpoints (a PASSIVE checkpoint with nothing to copy costs microseconds). */
export const CHECKPOINT_INTERVAL_MS = 100;

/** `wal_autocheckpoint` of the adapter's connection while background checkpoints run (~40 MB of WAL). */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 10_000;

// Plain CommonJS run with `eval`: nothing to bundle, and no TypeScript loader needed from source.
const CHECKPOINT_LOOP = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or briefly unavailable: the next round (or the fallback threshold) catches up.
  }
}, workerData.intervalMs);
`;

/** The checkpoint thread of one database file. */
export class SqliteCheckpointer {
  private readonly worker: Worker;
  private stopped = false;

  /** `driver`: the resolved path of better-sqlite3, so the thread loads the caller's copy. */
  constructor(path: string, driver: string) {
    this.worker = new Worker(CHECKPOINT_LOOP, {
      eval: true,
      workerData: { path, driver, intervalMs: CHECKPOINT_INTERVAL_MS },
      // The host's Node options are not needed here (and some, like --input-type, would break eval).
      execArgv: [],
    });
    // Never keeps the host process alive.
    this.worker.unref();
    // A thread that cannot open the file (removed meanwhile) ends; the fallback threshold remains.
    this.worker.on('error', () => undefined);
  }

  /** Ends the thread. Idempotent. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.worker.terminate();
  }
}
