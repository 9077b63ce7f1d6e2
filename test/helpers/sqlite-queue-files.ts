/**
 * SqliteStorage on temporary files for a describe block: every file and storage it opens is
 * closed and removed after each test. Used by the queue tests that share a file between
 * connections or processes.
 */
import { afterEach } from 'vitest';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { makeWebhook } from 'webhook-dispatcher/testing';
import type { WebhookRecord } from '../../src/storage/types.js';
import { removeDb, tempDbPath } from './sqlite-files.js';

/** Call inside a `describe`: registers the cleanup and returns the openers. */
export function useSqliteFiles() {
  const disposers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const dispose of disposers.reverse()) await dispose();
    disposers.length = 0;
  });
  return {
    disposers,
    /** A fresh database file path, removed after the test. */
    fileDb(): string {
      const path = tempDbPath();
      disposers.push(() => removeDb(path));
      return path;
    },
    /** A migrated storage, closed after the test. */
    async open(options: ConstructorParameters<typeof SqliteStorage>[0]): Promise<SqliteStorage> {
      const storage = new SqliteStorage(options);
      disposers.push(() => storage.close());
      await storage.migrate();
      return storage;
    },
    /** A webhook inserted into the storage. */
    async seed(storage: SqliteStorage, overrides: Partial<WebhookRecord> = {}): Promise<WebhookRecord> {
      const webhook = makeWebhook(overrides);
      await storage.insertWebhook(webhook);
      return webhook;
    },
  };
}
