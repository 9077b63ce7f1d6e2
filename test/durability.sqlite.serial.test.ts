/**
 * Durability of the SQLite adapter through the dispatcher, with a real child process and a real
 * HTTP receiver, under its own load (serial project): a child process dispatching a backlog is
 * SIGKILLed mid-run; a new dispatcher on the same file finishes the work once the dead process's
 * leases expire. Every delivery reaches the receiver; duplicates are bounded by what the child had
 * in flight.
 */
import Database from 'better-sqlite3';
import { describe, it } from 'vitest';
import { runCrashRecovery } from './helpers/durability.js';
import { sqliteDurability } from './helpers/durability-sqlite.js';

const { disposers, tempDbPath, startReceiver, openStorage, newDispatcher, statusCounts } = sqliteDurability();

describe('SQLite durability: crash recovery', () => {
  it('finishes a SIGKILLed process\'s backlog from the same file: every delivery arrives, duplicates bounded by its window', async () => {
    const path = tempDbPath();
    await runCrashRecovery({
      label: 'durability.sqlite',
      adapter: 'sqlite',
      target: path,
      // A short answer delay keeps a few requests in flight at the moment of the kill.
      receiver: await startReceiver({ respond: { delayMs: 5 } }),
      disposers,
      statusCounts: () => statusCounts(path),
      startSurvivor: async (options) => newDispatcher(await openStorage(path), options),
      storageTotals: async () => {
        const db = new Database(path, { readonly: true });
        try {
          const one = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
          return {
            successfulExecutions: one('SELECT count(*) AS n FROM webhook_executions WHERE success = 1'),
            notAttemptedOnce: one('SELECT count(*) AS n FROM webhook_deliveries WHERE attempts <> 1'),
          };
        } finally {
          db.close();
        }
      },
    });
  }, 60_000); // 5-11 s measured on a loaded 2-vCPU machine; headroom for slower CI runners
});
