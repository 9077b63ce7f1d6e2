import { afterEach, expect, it } from 'vitest';
import { REDACTED, WebhookDispatcher } from 'webhook-dispatcher';
import { Receiver } from './helpers/receiver.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

it('redacts credential headers by default and extra names given in redactHeaders', async () => {
  const receiver = await Receiver.start();
  cleanups.push(() => receiver.close());
  // Security opt-out: the receiver is on 127.0.0.1.
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, redactHeaders: ['X-Shop-Signature-Key'] });
  cleanups.push(() => dispatcher.close());
  const hook = await dispatcher.createWebhook({
    url: receiver.url('/h'),
    triggers: [{ entity: 'order', event: 'Create' }],
    headers: { Authorization: 'Bearer tok-123', 'X-Shop-Signature-Key': 'shop-key-456', 'X-Plain': 'visible' },
  });
  await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
  await dispatcher.drain();

  expect(receiver.requests[0]!.headers['x-shop-signature-key']).toBe('shop-key-456');
  const [execution] = (await dispatcher.listExecutions({ webhookId: hook.id })).items;
  expect(execution!.requestHeaders).toMatchObject({
    Authorization: `Bearer ${REDACTED}`,
    'X-Shop-Signature-Key': REDACTED,
    'X-Plain': 'visible',
  });
  expect(JSON.stringify(execution)).not.toMatch(/tok-123|shop-key-456/);
});

it('redactHeaders copies only when something is redacted, and never changes its input', async () => {
  const { redactHeaders } = await import('../src/redact.js');
  const plain = { 'Content-Type': 'application/json', 'X-Shop': 'a' };
  expect(redactHeaders(plain)).toBe(plain);
  const extra = ['X-Shop'];
  // The same extra list twice: its lower-cased set is cached per list, not per call.
  for (let i = 0; i < 2; i++) {
    const withSecret = { Authorization: 'Bearer abc', 'x-shop': 'a', 'X-Api-Key': 'k', Other: 'o' };
    const redacted = redactHeaders(withSecret, extra);
    expect(redacted).toEqual({ Authorization: `Bearer ${REDACTED}`, 'x-shop': REDACTED, 'X-Api-Key': REDACTED, Other: 'o' });
    expect(withSecret).toEqual({ Authorization: 'Bearer abc', 'x-shop': 'a', 'X-Api-Key': 'k', Other: 'o' });
  }
  expect(redactHeaders({ authorization: 'opaque' })).toEqual({ authorization: REDACTED });
});
