/**
 * Durability of the SQLite adapter through the dispatcher, with a real HTTP receiver: the
 * transactional outbox. `emit({ transaction })` on a host connection inside BEGIN delivers only if
 * the host commits. (Crash recovery with a real child process: durability.sqlite.serial.test.ts.)
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { WebhookDispatcher, WebhookDispatcherOptions } from 'webhook-dispatcher';
import { sleep } from './helpers/durability.js';
import { sqliteDurability } from './helpers/durability-sqlite.js';

const { disposers, tempDbPath, startReceiver, openStorage, newDispatcher } = sqliteDurability();

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
