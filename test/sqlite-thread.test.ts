/**
 * SqliteStorage({ path }) runs its connection on a worker thread by default: the SQL must not
 * block the caller's event loop, errors must keep their class across the thread boundary, an
 * idle thread must not keep the process alive, and `worker: false` keeps the old in-thread mode
 * (the conformance suite runs on both modes in sqlite-storage.test).
 * A file it opens is checkpointed by a thread of its own unless `checkpoints: 'auto'`.
 */
import { spawn } from 'node:child_process';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StorageError } from '../src/errors.js';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { makeDelivery, makeWebhook } from 'webhook-dispatcher/testing';
import { removeDb, tempDbPath } from './helpers/sqlite-files.js';
import { tempFilePath } from './helpers/unique.js';

const T0 = Date.UTC(2030, 0, 1);

describe('SqliteStorage database thread', () => {
  const disposers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const dispose of disposers.reverse()) await dispose();
    disposers.length = 0;
  });

  async function open(options: Omit<ConstructorParameters<typeof SqliteStorage>[0], 'path'> = {}): Promise<{ storage: SqliteStorage; path: string }> {
    const path = tempDbPath();
    disposers.push(() => removeDb(path));
    const storage = new SqliteStorage({ path, ...options });
    disposers.push(() => storage.close());
    await storage.migrate();
    return { storage, path };
  }

  function connect(path: string): Database.Database {
    const db = new Database(path);
    disposers.push(() => db.close());
    return db;
  }

  it('keeps the event loop running while a call waits for the write lock', async () => {
    const { storage, path } = await open();
    const host = connect(path);
    host.exec('BEGIN IMMEDIATE');
    let settled = false;
    const webhook = makeWebhook();
    const insert = storage.insertWebhook(webhook).finally(() => (settled = true));
    // On the calling thread this call would have blocked right here, in the busy-wait, until
    // busy_timeout; on the database thread timers keep firing while it waits.
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(settled).toBe(false);
    host.exec('COMMIT');
    await insert;
    expect(await storage.getWebhook(webhook.id)).toEqual(webhook);
  });

  it('keeps StorageError and the driver error code across the thread boundary', async () => {
    const { storage } = await open();
    const webhook = makeWebhook();
    await storage.insertWebhook(webhook);
    const delivery = makeDelivery(webhook.id);
    await storage.enqueueDeliveries([delivery]);
    const error = (await storage.enqueueDeliveries([delivery]).catch((e: unknown) => e)) as StorageError;
    expect(error).toBeInstanceOf(StorageError);
    expect(error.code).toBe('storage_error');
    expect(error.message).toMatch(`delivery ${delivery.id} already exists`);
    expect((error.cause as { code?: unknown }).code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
  });

  it('reports a database that cannot be opened on the first call; close() still resolves', async () => {
    const storage = new SqliteStorage({ path: join(tempFilePath('missing'), 'webhooks.db') });
    const error = await storage.migrate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/cannot open SQLite database/);
    await expect(storage.getWebhook('wh_x')).rejects.toBeInstanceOf(StorageError);
    await storage.close();
    await expect(storage.getWebhook('wh_x')).rejects.toThrow(/closed/);
  });

  it('lets spies wrap the methods it forwards', async () => {
    const { storage } = await open();
    const spy = vi.spyOn(storage, 'claimDueDeliveries');
    expect(await storage.claimDueDeliveries({ now: T0, limit: 5, leaseMs: 1000, defaultConcurrency: 64 })).toEqual([]);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('runs every storage method on the database thread, the queue methods included', async () => {
    const { storage } = await open();
    // Run here on purpose: an outbox enqueue needs the host's connection, the rest touch no
    // database; the private helpers run on whichever thread calls them.
    const here = new Set(['constructor', 'enqueueDeliveries', 'checkTransaction', 'close', 'configure', 'insertTriggers', 'run', 'connection']);
    const methods = Object.getOwnPropertyNames(SqliteStorage.prototype).filter((name) => !here.has(name));
    expect(methods).toEqual(expect.arrayContaining(['pauseQueue', 'getQueueStats', 'completeAttempts', 'claimDueDeliveries']));
    expect(methods.filter((name) => !Object.prototype.hasOwnProperty.call(storage, name))).toEqual([]);
    const webhook = makeWebhook({ concurrency: 1 });
    await storage.insertWebhook(webhook);
    await storage.enqueueDeliveries([makeDelivery(webhook.id), makeDelivery(webhook.id)]);
    await storage.pauseQueue(webhook.id, T0 + 1_000);
    expect(await storage.claimDueDeliveries({ now: T0, limit: 5, leaseMs: 1000, defaultConcurrency: 4 })).toEqual([]);
    expect(await storage.getQueueStats(webhook.id, T0)).toMatchObject({ due: 2, pausedUntil: T0 + 1_000 });
  });

  it('sees what a host transaction on another connection committed, and nothing it rolled back', async () => {
    const { storage, path } = await open();
    const webhook = makeWebhook();
    await storage.insertWebhook(webhook);
    const host = connect(path);
    const dropped = makeDelivery(webhook.id);
    host.exec('BEGIN IMMEDIATE');
    await storage.enqueueDeliveries([dropped], { transaction: host });
    host.exec('ROLLBACK');
    const kept = makeDelivery(webhook.id);
    host.exec('BEGIN IMMEDIATE');
    await storage.enqueueDeliveries([kept], { transaction: host });
    host.exec('COMMIT');
    const claimed = await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000, defaultConcurrency: 64 });
    expect(claimed.map((d) => d.id)).toEqual([kept.id]);
  });

  it('validates the worker and checkpoints options', () => {
    expect(() => new SqliteStorage({ path: tempDbPath(), worker: 'yes' as never })).toThrow(/worker: must be a boolean/);
    expect(() => new SqliteStorage({ path: tempDbPath(), checkpoints: 'never' as never })).toThrow(/checkpoints: must be/);
    const db = new Database(':memory:');
    disposers.push(() => db.close());
    expect(() => new SqliteStorage({ database: db, worker: true })).toThrow(/worker: goes with \{ path \}/);
    expect(() => new SqliteStorage({ database: db, checkpoints: 'background' })).toThrow(
      expect.objectContaining({ name: 'WebhookValidationError', field: 'checkpoints' }),
    );
  });

  /** Bytes in the database file itself: what checkpoints have copied out of the WAL so far. */
  async function databaseFileAfterWrites(options: Omit<ConstructorParameters<typeof SqliteStorage>[0], 'path'>): Promise<{ before: number; after: number }> {
    const { storage, path } = await open(options);
    const webhook = makeWebhook();
    await storage.insertWebhook(webhook);
    // Settle first: the writes so far (schema, webhook) may or may not have been checkpointed yet.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const before = statSync(path).size;
    // ~1 MB of deliveries: far below the 1,000-page automatic threshold.
    await storage.enqueueDeliveries(Array.from({ length: 500 }, () => makeDelivery(webhook.id, { body: 'x'.repeat(2_000) })));
    await new Promise((resolve) => setTimeout(resolve, 400));
    return { before, after: statSync(path).size };
  }

  it('checkpoints the WAL in the background, well before the automatic threshold', async () => {
    const { before, after } = await databaseFileAfterWrites({});
    expect(after).toBeGreaterThan(before + 500_000);
  });

  it("leaves checkpoints to SQLite's automatic threshold with checkpoints: 'auto'", async () => {
    const { before, after } = await databaseFileAfterWrites({ checkpoints: 'auto' });
    expect(after).toBe(before);
  });

  /**
   * Runs `body` (an ES module, after `storage` is opened on a fresh file with migrate() done) in a
   * Node process of its own started with `nodeOptions`; resolves its exit code and output.
   */
  async function runHost(body: string, nodeOptions: string[] = []): Promise<{ code: number | null; output: string }> {
    const path = tempDbPath();
    disposers.push(() => removeDb(path));
    const moduleUrl = pathToFileURL(fileURLToPath(new URL('../src/storage/sqlite.ts', import.meta.url))).href;
    const script = tempFilePath('webhook-dispatcher-host', '.mts');
    disposers.push(() => rmSync(script, { force: true }));
    writeFileSync(
      script,
      `import { SqliteStorage } from ${JSON.stringify(moduleUrl)};
const storage = new SqliteStorage({ path: process.argv[2] });
await storage.migrate();
${body}
`,
    );
    const child = spawn(process.execPath, [...nodeOptions, '--import', 'tsx', script, path], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    disposers.push(() => child.kill('SIGKILL'));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, output };
  }

  it('does not keep the process alive once idle, even when never closed', async () => {
    const { code, output } = await runHost(`console.log('migrated', await storage.nextRunAt());`);
    expect(output).toContain('migrated null');
    expect(code).toBe(0);
  });

  it('opens in a host started with V8 and process-wide options, which Node refuses to pass to a worker', async () => {
    // How production hosts often start: a bigger heap, GC exposed, a larger stack, a process title
    // (its value a separate argument). Given to a worker these make Node throw
    // ERR_WORKER_INVALID_EXEC_ARGV, and the adapter's constructor threw it.
    const { code, output } = await runHost(`console.log('migrated', await storage.nextRunAt(), typeof gc);\nawait storage.close();`, [
      '--max-old-space-size=4096',
      '--expose-gc',
      '--stack-size=2000',
      '--enable-source-maps',
      '--title',
      'webhook-host',
    ]);
    expect(output).toContain('migrated null function');
    expect(output).not.toContain('ERR_WORKER_INVALID_EXEC_ARGV');
    expect(code).toBe(0);
  });
});
