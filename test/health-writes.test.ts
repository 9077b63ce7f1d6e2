import { afterEach, expect, it } from 'vitest';
import { MemoryStorage, WebhookDispatcher } from 'webhook-dispatcher';
import { Receiver } from './helpers/receiver.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

it('writes a success to webhook health once per few seconds, but every failure, and resets after a failure', async () => {
  let fail = false;
  const receiver = await Receiver.start({ respond: () => ({ status: fail ? 500 : 200 }) });
  cleanups.push(() => receiver.close());
  const storage = new MemoryStorage();
  const writes: boolean[] = [];
  const record = storage.recordWebhookResult.bind(storage);
  storage.recordWebhookResult = (id, success, at) => {
    writes.push(success);
    return record(id, success, at);
  };
  // Security opt-out: the receiver is on 127.0.0.1.
  const dispatcher = new WebhookDispatcher({ storage, allowPrivateNetworks: true, retry: { maxAttempts: 1 }, circuitBreaker: false });
  cleanups.push(() => dispatcher.close());
  const hook = await dispatcher.createWebhook({ url: receiver.url('/h'), triggers: [{ entity: 'order', event: 'Create' }] });
  const send = async (n: number) => {
    for (let i = 0; i < n; i++) await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: i } });
    await dispatcher.drain();
  };

  await send(5);
  expect(writes).toEqual([true]); // the first success is written; the next four are not
  fail = true;
  await send(2);
  expect(writes).toEqual([true, false, false]);
  expect((await dispatcher.getWebhookHealth(hook.id)).consecutiveFailures).toBe(2);
  fail = false;
  await send(3);
  expect(writes).toEqual([true, false, false, true]); // the success after failures resets the count
  expect((await dispatcher.getWebhookHealth(hook.id)).consecutiveFailures).toBe(0);
});

it('successes that finish together write health once', async () => {
  let hold = true;
  const receiver = await Receiver.start({ respond: () => ({ status: 200, hold }) });
  cleanups.push(() => receiver.close());
  const storage = new MemoryStorage();
  let writes = 0;
  const record = storage.recordWebhookResult.bind(storage);
  storage.recordWebhookResult = async (id, success, at) => {
    writes++;
    await new Promise((resolve) => setTimeout(resolve, 20)); // a slow database
    return record(id, success, at);
  };
  // Security opt-out: the receiver is on 127.0.0.1.
  const dispatcher = new WebhookDispatcher({ storage, allowPrivateNetworks: true, circuitBreaker: false, perWebhookConcurrency: 20 });
  cleanups.push(() => dispatcher.close());
  await dispatcher.createWebhook({ url: receiver.url('/h'), triggers: [{ entity: 'order', event: 'Create' }] });
  for (let i = 0; i < 20; i++) await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: i } });
  await receiver.waitForHeld(20);
  hold = false;
  receiver.releaseAll();
  await dispatcher.drain();
  expect(receiver.requests).toHaveLength(20);
  expect(writes).toBe(1);
});
