/**
 * What the SQLite durability files share: database files in fresh temporary directories,
 * storages, receivers and dispatchers that are disposed of after each test, and reads of the
 * deliveries table. Call {@link sqliteDurability} once at the top of a test file: it registers the
 * file's afterEach hook.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach } from 'vitest';
import { WebhookDispatcher, type DispatcherErrorEvent, type WebhookDispatcherOptions } from 'webhook-dispatcher';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { Receiver } from './receiver.js';
import { makeTempDir } from './unique.js';

export function sqliteDurability() {
  // Everything a test opens is disposed of after it, in reverse order.
  const disposers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const dispose of disposers.reverse()) await dispose();
    disposers.length = 0;
  });

  /** A fresh temporary directory holding the test's database file. */
  function tempDbPath(): string {
    const dir = makeTempDir('wd-durability');
    disposers.push(() => rmSync(dir, { recursive: true, force: true }));
    return join(dir, 'webhooks.db');
  }

  async function startReceiver(...args: Parameters<typeof Receiver.start>): Promise<Receiver> {
    const receiver = await Receiver.start(...args);
    disposers.push(() => receiver.close());
    return receiver;
  }

  async function openStorage(path: string): Promise<SqliteStorage> {
    const storage = new SqliteStorage({ path });
    await storage.migrate();
    disposers.push(() => storage.close());
    return storage;
  }

  /** A dispatcher allowed to deliver to the loopback receiver; errors are collected, not thrown. */
  function newDispatcher(storage: SqliteStorage, options: WebhookDispatcherOptions = {}) {
    const dispatcher = new WebhookDispatcher({
      storage,
      // The receiver is on 127.0.0.1: this is the explicit opt-out of the SSRF guard, which blocks
      // loopback (and other private addresses) by default.
      allowPrivateNetworks: true,
      circuitBreaker: false,
      ...options,
    });
    const errors: DispatcherErrorEvent[] = [];
    dispatcher.on('error', (event) => errors.push(event));
    disposers.push(() => dispatcher.close());
    return { dispatcher, errors };
  }

  function statusCounts(path: string): Record<string, number> {
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare('SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status').all() as Array<{
        status: string;
        n: number;
      }>;
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    } finally {
      db.close();
    }
  }

  return { disposers, tempDbPath, startReceiver, openStorage, newDispatcher, statusCounts };
}
