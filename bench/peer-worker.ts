/**
 * The second dispatcher process of the D-pg row (see peer.ts): `peer-worker.ts`, forked by the
 * row's process. Answers open / mark / read / close over IPC and exits when its parent disconnects.
 *
 * @module
 */
import process from 'node:process';
import type { Pool } from 'pg';
import { WebhookDispatcher } from '../src/dispatcher.js';
import { countSuccesses, WriteCounter } from './common.js';
import type { PeerCommand, PeerReply, PeerStats } from './peer.js';
import { countQueries, firstLine, importAdapter, pgPoolOptions, type AdapterInstance } from './rows.js';

interface Open {
  pool: Pool;
  storage: AdapterInstance;
  dispatcher: WebhookDispatcher;
  statements: { n: number };
  claimed: { n: number };
  succeeded: { n: number };
  writes: WriteCounter;
  errors: string[];
}

let current: Open | null = null;
let mark = { cpu: process.cpuUsage(), claimed: 0, succeeded: 0, statements: 0 };

async function open(schema: string): Promise<void> {
  if (current) throw new Error('a dispatcher is already open');
  const PostgresStorage = await importAdapter<new (options: { pool: unknown; schema: string }) => AdapterInstance>(
    '../src/storage/postgres.js',
    'PostgresStorage',
  );
  const pg = (await import('pg')).default;
  const pool = new pg.Pool(pgPoolOptions());
  pool.on('error', () => undefined); // idle client errors (server restart) must not crash the run
  const statements = { n: 0 };
  const claimed = { n: 0 };
  const errors: string[] = [];
  try {
    const storage = new PostgresStorage({ pool: countQueries(pool, statements), schema });
    // What a host process does at start; the row's process has already migrated the schema.
    await storage.migrate?.();
    const writes = new WriteCounter();
    writes.wrap(storage);
    const succeeded = countSuccesses(storage);
    // Its share of the deliveries, from the claims it got (an own property, as WriteCounter does).
    const claim = storage.claimDueDeliveries;
    Object.defineProperty(storage, 'claimDueDeliveries', {
      value: async (...args: Parameters<typeof claim>) => {
        const batch = await claim.apply(storage, args);
        claimed.n += batch.length;
        return batch;
      },
      writable: true,
      configurable: true,
    });
    await Promise.all(Array.from({ length: pgPoolOptions().max }, () => pool.query('SELECT 1')));
    // The row's options: README's defaults, with the loopback opt-out.
    const dispatcher = new WebhookDispatcher({ storage, allowPrivateNetworks: true });
    dispatcher.on('error', ({ error, context }) => {
      if (errors.length < 20) errors.push(`${context}: ${firstLine(error)}`);
    });
    current = { pool, storage, dispatcher, statements, claimed, succeeded, writes, errors };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
}

async function close(): Promise<void> {
  const open = current;
  current = null;
  if (!open) return;
  try {
    await open.dispatcher.close({ timeoutMs: 2_000 });
    await open.storage.close?.();
  } finally {
    await open.pool.end();
  }
}

function read(): PeerStats {
  const cpu = process.cpuUsage(mark.cpu);
  return {
    cpuUs: cpu.user + cpu.system,
    claimed: (current?.claimed.n ?? 0) - mark.claimed,
    succeeded: (current?.succeeded.n ?? 0) - mark.succeeded,
    sqlStatements: (current?.statements.n ?? 0) - mark.statements,
    writeCounts: current?.writes.snapshot() ?? {},
    errors: current?.errors.slice(0, 5) ?? [],
  };
}

async function handle(command: PeerCommand): Promise<PeerStats | undefined> {
  switch (command.cmd) {
    case 'open':
      await open(command.schema);
      return undefined;
    case 'mark':
      mark = { cpu: process.cpuUsage(), claimed: current?.claimed.n ?? 0, succeeded: current?.succeeded.n ?? 0, statements: current?.statements.n ?? 0 };
      if (current) {
        current.errors.length = 0;
        current.writes.reset();
      }
      return undefined;
    case 'read':
      return read();
    case 'close':
      await close();
      return undefined;
  }
}

process.on('message', (command: PeerCommand) => {
  handle(command).then(
    (stats) => process.send!({ id: command.id, ok: true, ...(stats ? { stats } : {}) } satisfies PeerReply),
    (error: unknown) => process.send!({ id: command.id, ok: false, error: firstLine(error) } satisfies PeerReply),
  );
});

process.on('disconnect', () => {
  void close()
    .catch(() => undefined)
    .finally(() => process.exit(0));
});
