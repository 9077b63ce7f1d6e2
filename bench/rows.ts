/**
 * The throughput rows: raw HTTP ceilings (R0–R3) and the dispatcher end to end on each storage
 * adapter (D-mem, D-sqlite, D-pg). Every row sends the same ~1 KiB JSON body to one webhook's worth
 * of in-flight requests (the default per-webhook cap) on the same receiver process.
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { WebhookDispatcher } from '../src/dispatcher.js';
import { DEFAULTS } from '../src/input/defaults.js';
import { generateSecret, sign } from '../src/signature.js';
import { MemoryStorage } from '../src/storage/memory.js';
import { UndiciTransport } from '../src/transport/undici.js';
import type { WebhookStorage } from '../src/storage/types.js';
import { countSuccesses, envelopeBody, eventData, WriteCounter, type Cleanup } from './common.js';
import { PeerProcess, type PeerStats } from './peer.js';

/**
 * Requests in flight in the raw rows: what the dispatcher may have in flight to the D rows' one
 * webhook with README's defaults, so R0–R3 are ceilings for the same work, not for more of it.
 */
export const IN_FLIGHT: number = DEFAULTS.perWebhookConcurrency;
/** Concurrent `emit()` calls per batch in the dispatcher rows (a host's request handlers emitting at once). */
export const EMIT_BATCH = 64;

/** Facts about the databases the rows used (versions, durability settings), for the report. */
export const environmentNotes = new Set<string>();

/** A row cannot run here (adapter not written yet, database not reachable). Printed, not fatal. */
export class RowUnavailable extends Error {}

/** Where the receiver listens (its ports are shared by every row's process). */
export interface ReceiverAddress {
  origin(index?: number): string;
  url(index?: number, path?: string): string;
}

export interface RowContext {
  /** Deliveries to make. */
  n: number;
  receiver: ReceiverAddress;
  cleanup: Cleanup;
}

/** A row set up for one measured run. */
export interface PreparedRow {
  /** The measured part. */
  run(): Promise<void>;
  /** Releases everything `prepare` created. Also registered with the run's cleanup. */
  teardown(): Promise<void>;
  /** Storage write calls, for the dispatcher rows. */
  writes?: WriteCounter;
  /** Background errors the dispatcher reported during the run. */
  errors?: string[];
  /** SQL statements sent to the database during the run (D-pg). */
  sqlStatements?: () => number;
  /** What the second dispatcher process did during the run (D-pg); read after the timed part. */
  peerStats?: () => Promise<PeerStats>;
  /** Checks the run's outcome after the timed part (throws when it is wrong). */
  check?: () => Promise<void>;
}

export interface RowDef {
  name: string;
  /** One line for the report. */
  what: string;
  /** Minimum ratio to R0 (median of the per-round ratios). */
  target?: number;
  /**
   * Measure R0 again right before this row in every round: the round's R0 runs, spread through it,
   * give the median every ratio of the round is taken against.
   */
  pairWithR0?: boolean;
  /** At most this many deliveries per round: a slow row without a target need not fill the time budget. */
  maxDeliveries?: number;
  prepare(ctx: RowContext): Promise<PreparedRow>;
}

// ---------------------------------------------------------------- raw HTTP rows

/** Runs `send` `n` times with `IN_FLIGHT` workers. */
async function closedLoop(n: number, send: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await send(next++);
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, n) }, worker));
}

/** R1's headers: content type and the Standard Webhooks id, timestamp and signature of request `i`. */
function signedHeaders(secret: string, i: number, body: string): Record<string, string> {
  const id = `msg_${String(i).padStart(26, '0')}`;
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': sign(secret, { id, timestamp, body }),
  };
}

function undiciRow(signing: boolean): RowDef['prepare'] {
  return async ({ n, receiver, cleanup }) => {
    cleanup.check();
    const pool = new Pool(receiver.origin(0), { connections: IN_FLIGHT });
    const secret = generateSecret();
    const teardown = cleanup.add(() => pool.close());
    let failures = 0;
    return {
      teardown,
      run: async () => {
        await closedLoop(n, async (i) => {
          const body = envelopeBody();
          const headers = signing ? signedHeaders(secret, i, body) : { 'content-type': 'application/json' };
          const response = await pool.request({ path: '/hook', method: 'POST', headers, body });
          await response.body.text();
          if (response.statusCode !== 200) failures++;
        });
        if (failures > 0) throw new Error(`${failures} requests failed`);
      },
    };
  };
}

/** R0's loop through the library's transport (guard, deadline, cap), with R1's signed headers. */
const transportRow: RowDef['prepare'] = async ({ n, receiver, cleanup }) => {
  cleanup.check();
  // Security opt-out: the benchmark receiver is on 127.0.0.1.
  const transport = new UndiciTransport({ addressGuard: { allowPrivateNetworks: true }, connectionsPerOrigin: IN_FLIGHT });
  const teardown = cleanup.add(() => transport.close());
  const secret = generateSecret();
  const url = receiver.url(0);
  let failures = 0;
  return {
    teardown,
    run: async () => {
      await closedLoop(n, async (i) => {
        const body = envelopeBody();
        const headers = signedHeaders(secret, i, body);
        const response = await transport.send({ url, method: 'POST', headers, body, timeoutMs: 30_000, maxResponseBodyBytes: 65_536 });
        if (response.status !== 200) failures++;
      });
      if (failures > 0) throw new Error(`${failures} requests failed`);
    },
  };
};

const fetchRow: RowDef['prepare'] = async ({ n, receiver, cleanup }) => {
  const url = receiver.url(0);
  const teardown = cleanup.add(() => undefined);
  let failures = 0;
  return {
    teardown,
    run: async () => {
      await closedLoop(n, async () => {
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: envelopeBody() });
        await response.text();
        if (response.status !== 200) failures++;
      });
      if (failures > 0) throw new Error(`${failures} requests failed`);
    },
  };
};

// ---------------------------------------------------------------- dispatcher rows

/** What the D rows need from an adapter besides the contract. */
export type AdapterInstance = WebhookStorage & { migrate?(): Promise<void>; close?(): Promise<void> };

/** A storage adapter opened on fresh state for one measurement. */
export interface OpenedStorage {
  storage: AdapterInstance;
  /** Closes the adapter and removes what was created for it. */
  dispose(): Promise<void>;
  /** Statements sent to the database so far, when the row can count them. */
  sqlStatements?: () => number;
  /** The Postgres schema, for a second dispatcher process on the same database. */
  schema?: string;
}

/** Opens an adapter on fresh state: a new MemoryStorage, SQLite file or Postgres schema. */
export type OpenStorage = (cleanup: Cleanup) => Promise<OpenedStorage>;

/**
 * Counts `query()` calls on a pg Pool and on the clients its `connect()` hands out (transactions),
 * i.e. the statements sent, each one round trip.
 */
export function countQueries<T extends object>(pool: T, counter: { n: number }): T {
  const wrapQuery = (target: object, prop: string | symbol, value: (...args: unknown[]) => unknown) =>
    prop === 'query'
      ? (...args: unknown[]) => {
          counter.n++;
          return value.apply(target, args);
        }
      : value.bind(target);
  const proxyOf = <O extends object>(object: O, extra?: (prop: string | symbol, value: (...a: unknown[]) => unknown) => unknown): O =>
    new Proxy(object, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const fn = value as (...args: unknown[]) => unknown;
        return extra?.(prop, fn) ?? wrapQuery(target, prop, fn);
      },
    });
  return proxyOf(pool, (prop, connect) =>
    prop === 'connect'
      ? async (...args: unknown[]) => proxyOf((await connect.apply(pool, args)) as object)
      : undefined,
  );
}

/**
 * Imports an adapter module being written by colleagues. The specifier is not a literal, so the
 * type check does not depend on the module existing (or on its exact exports) yet.
 */
export async function importAdapter<T>(specifier: string, exportName: string): Promise<T> {
  let module: Record<string, unknown>;
  try {
    module = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    throw new RowUnavailable(`n/a (adapter missing: ${firstLine(error)})`);
  }
  const value = module[exportName];
  if (typeof value !== 'function') throw new RowUnavailable(`n/a (adapter missing: no export ${exportName})`);
  return value as T;
}

export function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!.slice(0, 160);
}

/** The pg.Pool of every Postgres process of the bench (`PGHOST`, … or the defaults). */
export function pgPoolOptions() {
  return {
    host: process.env.PGHOST ?? '127.0.0.1',
    port: Number(process.env.PGPORT ?? 5432),
    user: process.env.PGUSER ?? 'postgres',
    database: process.env.PGDATABASE ?? 'test',
    max: 16,
  };
}

export async function openMemory(_cleanup: Cleanup): Promise<OpenedStorage> {
  return { storage: new MemoryStorage(), dispose: async () => {} };
}

/** SqliteStorage on a temporary file; `onCallerThread` runs its SQL on the dispatcher's thread (`worker: false`). */
export async function openSqlite(cleanup: Cleanup, onCallerThread = false): Promise<OpenedStorage> {
  const SqliteStorage = await importAdapter<new (options: { path: string; worker?: boolean }) => AdapterInstance>(
    '../src/storage/sqlite.js',
    'SqliteStorage',
  );
  cleanup.check();
  const dir = await mkdtemp(join(tmpdir(), 'wd-bench-'));
  let storage: AdapterInstance | undefined;
  const dispose = async () => {
    try {
      await storage?.close?.();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  try {
    storage = new SqliteStorage({ path: join(dir, 'bench.db'), ...(onCallerThread ? { worker: false } : {}) });
    await storage.migrate?.();
  } catch (error) {
    await dispose().catch(() => undefined);
    throw new RowUnavailable(`n/a (adapter failed to open: ${firstLine(error)})`);
  }
  if (![...environmentNotes].some((n) => n.startsWith('SQLite'))) {
    try {
      const Database = (await import('better-sqlite3')).default;
      const db = new Database(':memory:');
      const version = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
      db.close();
      environmentNotes.add(`SQLite ${version} (better-sqlite3), a temporary file per round; the adapter opens it with WAL and synchronous=NORMAL`);
    } catch {
      // informational only
    }
  }
  return { storage, dispose };
}

let schemaSequence = 0;

export async function openPostgres(cleanup: Cleanup): Promise<OpenedStorage> {
  const PostgresStorage = await importAdapter<new (options: { pool: unknown; schema: string }) => AdapterInstance>(
    '../src/storage/postgres.js',
    'PostgresStorage',
  );
  const pg = (await import('pg')).default;
  cleanup.check();
  const pool = new pg.Pool(pgPoolOptions());
  pool.on('error', () => undefined); // idle client errors (server restart) must not crash the run
  const schema = `wd_bench_${process.pid}_${schemaSequence++}`;
  const statements = { n: 0 };
  let storage: AdapterInstance | undefined;
  let schemaCreated = false;
  const dispose = async () => {
    try {
      await storage?.close?.();
      if (schemaCreated) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await pool.end();
    }
  };
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new RowUnavailable(`n/a (PostgreSQL not reachable: ${firstLine(error)})`);
  }
  try {
    schemaCreated = true;
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    storage = new PostgresStorage({ pool: countQueries(pool, statements), schema });
    await storage.migrate?.();
    // Open the pool's connections now, so connection setup is not part of the measurement.
    await Promise.all(Array.from({ length: pgPoolOptions().max }, () => pool.query('SELECT 1')));
    const settings = await pool.query(
      `SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sync,
              current_setting('fsync') AS fsync, current_setting('shared_buffers') AS buffers`,
    );
    const row = settings.rows[0] as { version: string; sync: string; fsync: string; buffers: string };
    environmentNotes.add(
      `PostgreSQL ${row.version} at ${process.env.PGHOST ?? '127.0.0.1'}: synchronous_commit=${row.sync}, fsync=${row.fsync}, ` +
        `shared_buffers=${row.buffers}; a pg.Pool of 16 connections per dispatcher process (D-pg has two); a fresh schema per round, dropped afterwards`,
    );
  } catch (error) {
    await dispose().catch(() => undefined);
    throw new RowUnavailable(`n/a (adapter failed to open: ${firstLine(error)})`);
  }
  return { storage, dispose, sqlStatements: () => statements.n, schema };
}

/**
 * Until both processes together have recorded `n` successes. This process's `drain()` ends when
 * it finds nothing to claim, which happens while the peer holds the webhook's places; the peer's
 * count comes over IPC, so waiting loads neither process's database connections.
 */
async function allRecorded(local: { n: number }, peer: PeerProcess, n: number): Promise<void> {
  for (;;) {
    if (local.n + (await peer.read()).succeeded >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Every delivery of the run succeeded, by the count in storage (when the adapter can count). */
async function allSucceeded(storage: AdapterInstance, n: number): Promise<void> {
  const counts = await storage.countDeliveries?.();
  if (counts && counts.succeeded !== n) throw new Error(`${counts.succeeded ?? 0} of ${n} deliveries succeeded (${JSON.stringify(counts)})`);
}

/**
 * The dispatcher end to end: `n` emits (batches of concurrent calls) then `drain()`. With `peer`,
 * a second dispatcher process (bench/peer.ts) runs on the same Postgres schema without emitting;
 * this process's `drain()` covers only what it claimed, so the run ends when the two processes
 * together have recorded `n` successes.
 */
function dispatcherRow(open: OpenStorage, { peer = false } = {}): RowDef['prepare'] {
  return async ({ n, receiver, cleanup }) => {
    const opened = await open(cleanup);
    let dispatcher: WebhookDispatcher | undefined;
    let peerProcess: PeerProcess | undefined;
    // (After an interrupt, add() runs this at once and throws.)
    const teardown = cleanup.add(async () => {
      try {
        await dispatcher?.close({ timeoutMs: 2_000 });
        // Before the schema is dropped under it.
        await peerProcess?.closeDispatcher();
      } finally {
        await opened.dispose();
      }
    });
    const writes = new WriteCounter();
    const errors: string[] = [];
    const succeeded = countSuccesses(opened.storage);
    try {
      // README's defaults; the one opt-out is the security guard, since the receiver is on 127.0.0.1.
      // The circuit breaker stays on: users run with it, and a receiver that always answers 200
      // never trips it.
      dispatcher = new WebhookDispatcher({ storage: writes.wrap(opened.storage), allowPrivateNetworks: true });
      dispatcher.on('error', ({ error, context }) => {
        if (errors.length < 20) errors.push(`${context}: ${firstLine(error)}`);
      });
      await dispatcher.createWebhook({ url: receiver.url(0), triggers: [{ entity: 'order', event: 'Create' }] });
      if (peer) {
        if (!opened.schema) throw new Error('a second dispatcher process needs a Postgres schema');
        peerProcess = PeerProcess.shared();
        await peerProcess.open(opened.schema);
        await peerProcess.mark();
      }
    } catch (error) {
      await teardown();
      throw error;
    }
    writes.reset();
    const d = dispatcher;
    const storage = opened.storage;
    const p = peerProcess;
    const sqlAtStart = opened.sqlStatements?.() ?? 0;
    return {
      teardown,
      writes,
      errors,
      ...(opened.sqlStatements ? { sqlStatements: () => opened.sqlStatements!() - sqlAtStart } : {}),
      ...(p ? { peerStats: () => p.read(), check: () => allSucceeded(storage, n) } : {}),
      run: async () => {
        for (let sent = 0; sent < n; ) {
          const batch: Promise<unknown>[] = [];
          for (const end = Math.min(n, sent + EMIT_BATCH); sent < end; sent++) {
            batch.push(d.emit({ entity: 'order', event: 'Create', data: eventData() }));
          }
          await Promise.all(batch);
          // The next batch in a later turn, as request handlers' emits arrive in separate I/O
          // callbacks. With MemoryStorage an emit resolves without I/O, so a loop that never
          // yields would run all n emits in one turn, holding every response the receiver sent
          // back meanwhile: the row would measure that stall, not the dispatcher.
          await new Promise((resolve) => setImmediate(resolve));
        }
        await d.drain();
        if (p) await allRecorded(succeeded, p, n);
      },
    };
  };
}

export const ROWS: RowDef[] = [
  { name: 'R0', what: `raw undici Pool.request, ${IN_FLIGHT} connections and requests in flight (the ceiling)`, prepare: undiciRow(false) },
  { name: 'R1', what: 'R0 + Standard Webhooks HMAC signature per request', prepare: undiciRow(true) },
  // fetch runs at a quarter of R0's rate: 10,000 deliveries took 9 s a round on the slow VM, a fifth of the run.
  { name: 'R2', what: `global fetch, ${IN_FLIGHT} in flight (at most 3,000 deliveries a round)`, maxDeliveries: 3_000, prepare: fetchRow },
  { name: 'R3', what: "R1 through the library's UndiciTransport (guard, deadline, response cap)", prepare: transportRow },
  { name: 'D-mem', pairWithR0: true, what: 'dispatcher end to end, MemoryStorage', target: 0.7, prepare: dispatcherRow(openMemory) },
  { name: 'D-sqlite', pairWithR0: true, what: 'dispatcher end to end, SqliteStorage (temp file, WAL, SQL on its worker thread)', target: 0.45, prepare: dispatcherRow(openSqlite) },
  {
    name: 'D-sqlite-main',
    pairWithR0: true,
    what: 'D-sqlite with `worker: false`: SQL on the dispatcher’s thread',
    prepare: dispatcherRow((cleanup) => openSqlite(cleanup, true)),
  },
  {
    name: 'D-pg',
    pairWithR0: true,
    what: 'dispatcher end to end, PostgresStorage, two dispatcher processes on one fresh schema (this one emits; pool of 16 each)',
    target: 0.3,
    prepare: dispatcherRow(openPostgres, { peer: true }),
  },
];
