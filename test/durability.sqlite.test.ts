/**
 * Durability of the SQLite adapter through the dispatcher, with real processes and a real HTTP
 * receiver:
 *
 * - crash recovery: a child process dispatching a backlog is SIGKILLed mid-run; a new dispatcher
 *   on the same file finishes the work once the dead process's leases expire. Every delivery
 *   reaches the receiver; duplicates are bounded by what the child had in flight.
 * - the transactional outbox: `emit({ transaction })` on a host connection inside BEGIN delivers
 *   only if the host commits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookDispatcher, type DispatcherErrorEvent, type WebhookDispatcherOptions } from 'webhook-dispatcher';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { runCrashRecovery, sleep } from './helpers/durability.js';
import { Receiver } from './helpers/receiver.js';

// Everything a test opens is disposed of after it, in reverse order.
const disposers: Array<() => unknown> = [];
afterEach(async () => {
  for (const dispose of disposers.reverse()) await dispose();
  disposers.length = 0;
});

/** A fresh temporary directory holding the test's database file. */
function tempDbPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wd-durability-'));
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

describe('SQLite durability: transactional outbox through the dispatcher', () => {
  const ORDERS = 'CREATE TABLE orders (id INTEGER PRIMARY KEY, code TEXT NOT NULL)';

  /** Dispatcher on a file, a host connection on the same file with its own table, a receiver, a webhook. */
  async function setup(options: WebhookDispatcherOptions) {
    const path = tempDbPath();
    const storage = await openStorage(path);
    const host = new Database(path);
    disposers.push(() => host.close());
    host.exec(ORDERS);
    const receiver = await startReceiver();
    const { dispatcher, errors } = newDispatcher(storage, options);
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hooks/orders'), triggers: [{ entity: 'order', event: 'Create' }] });
    return { storage, host, receiver, dispatcher, errors, webhook };
  }

  /** The host's unit of work: BEGIN, its own write, emit in the same transaction. No await leaves the transaction open across a macrotask. */
  async function placeOrder(host: Database.Database, dispatcher: WebhookDispatcher, id: number) {
    host.exec('BEGIN IMMEDIATE');
    host.prepare('INSERT INTO orders (id, code) VALUES (?, ?)').run(id, `SO-${id}`);
    const { deliveries } = await dispatcher.emit({
      entity: 'order',
      event: 'Create',
      data: { OrderId: id, OrderCode: `SO-${id}` },
      transaction: host,
    });
    expect(deliveries).toHaveLength(1);
    return deliveries[0]!.id;
  }

  it('ROLLBACK: the order and its delivery vanish together; nothing is ever delivered', async () => {
    const { host, receiver, dispatcher, storage, errors } = await setup({ pollIntervalMs: 20 });
    const id = await placeOrder(host, dispatcher, 1);
    host.exec('ROLLBACK');
    dispatcher.wake();
    await sleep(100); // five poll intervals
    await dispatcher.drain();

    expect(receiver.requests).toHaveLength(0);
    expect(await storage.getDelivery(id)).toBeNull();
    expect((await dispatcher.listDeliveries()).items).toEqual([]);
    expect(host.prepare('SELECT count(*) AS n FROM orders').get()).toEqual({ n: 0 });
    expect(errors).toEqual([]);
  });

  it('COMMIT + wake(): delivered exactly once, without waiting for a poll', async () => {
    // A poll interval far beyond the test's length: only wake() can start the delivery.
    const { host, receiver, dispatcher, errors } = await setup({ pollIntervalMs: 60_000 });
    await dispatcher.drain(); // the pump is idle, its next poll a minute away
    const id = await placeOrder(host, dispatcher, 2);
    host.exec('COMMIT');
    dispatcher.wake();
    await receiver.waitForRequests(1, 3_000);
    await dispatcher.drain();
    await sleep(50);

    expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([id]);
    expect(await dispatcher.getDelivery(id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect((await dispatcher.listExecutions({ deliveryId: id })).items).toHaveLength(1);
    expect(host.prepare('SELECT code FROM orders WHERE id = 2').get()).toEqual({ code: 'SO-2' });
    expect(errors).toEqual([]);
  });

  it('COMMIT without wake(): the poll finds it, delivered exactly once', async () => {
    const { host, receiver, dispatcher, errors } = await setup({ pollIntervalMs: 50 });
    await dispatcher.drain();
    const id = await placeOrder(host, dispatcher, 3);
    host.exec('COMMIT');
    await receiver.waitForRequests(1, 3_000);
    await sleep(150); // three more polls: no second delivery
    await dispatcher.drain();

    expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([id]);
    expect(await dispatcher.getDelivery(id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(errors).toEqual([]);
  });
});
