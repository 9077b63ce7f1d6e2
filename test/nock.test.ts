/**
 * A host application's unit test with nock, as its authors would write it: no special
 * configuration of the dispatcher. The default transport sends through undici, switches to
 * node:http (which nock intercepts) while nock is active, whether nock was imported before or
 * after the dispatcher was built, and goes back to undici once nock is restored.
 *
 * nock activates itself on import, so this file imports it only inside the tests, in order.
 */
import type NockModule from 'nock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebhookDispatcher, verifySignature } from 'webhook-dispatcher';
import { watchHttpClients, type HttpClientLog } from './helpers/http-clients.js';
import { Receiver } from './helpers/receiver.js';

type Nock = typeof NockModule;

const HOOK_ORIGIN = 'https://merchant.example';

let nock: Nock | undefined;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
afterAll(() => {
  nock?.cleanAll();
  nock?.restore();
});

function watch(): HttpClientLog {
  const clients = watchHttpClients();
  cleanups.push(() => clients.stop());
  return clients;
}

function dispatcher(): WebhookDispatcher {
  // The local receiver is on 127.0.0.1, which the address guard refuses by default.
  const d = new WebhookDispatcher({ allowPrivateNetworks: true });
  cleanups.push(() => d.close());
  return d;
}

/** Creates a webhook to `url` on an event of its own, emits it once, drains, and returns the attempt's execution. */
async function deliverOnce(d: WebhookDispatcher, url: string) {
  const trigger = { entity: 'order', event: `Create${new URL(url).pathname.replaceAll('/', '_')}` };
  const webhook = await d.createWebhook({ url, triggers: [trigger] });
  await d.emit({ ...trigger, data: { OrderId: 1 } });
  await d.drain();
  const { items } = await d.listExecutions({ webhookId: webhook.id });
  expect(items).toHaveLength(1);
  return { webhook, execution: items[0]! };
}

describe('nock intercepts deliveries with no setup', () => {
  it('imported after the dispatcher was built: undici before, nock while active, undici again after restore()', async () => {
    const receiver = await Receiver.start();
    cleanups.push(() => receiver.close());
    const clients = watch();
    const d = dispatcher();

    // 1. No interceptor: the fast path.
    await deliverOnce(d, receiver.url('/before'));
    expect(clients).toMatchObject({ undici: ['/before'], nodeHttp: [] });

    // 2. nock arrives (it activates on import) and answers for the merchant.
    nock = (await import('nock')).default;
    const seen: { headers: Record<string, string | string[]>; body: string }[] = [];
    const scope = nock(HOOK_ORIGIN)
      .post('/hooks/nock')
      .reply(function (_uri, body) {
        seen.push({ headers: this.req.headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
        return [202, { ok: true }];
      });
    const { webhook, execution } = await deliverOnce(d, `${HOOK_ORIGIN}/hooks/nock`);
    expect(scope.isDone()).toBe(true);
    expect(execution).toMatchObject({ status: 202, success: true });
    expect(() =>
      verifySignature({ secret: webhook.secret, body: seen[0]!.body, headers: seen[0]!.headers as Record<string, string> }),
    ).not.toThrow();
    expect(clients.undici).toEqual(['/before']);
    expect(clients.nodeHttp).toEqual(['/hooks/nock']);

    // 3. nock restored: the same dispatcher is back on undici.
    nock.restore();
    await deliverOnce(d, receiver.url('/after'));
    expect(clients.undici).toEqual(['/before', '/after']);
    expect(receiver.requests.map((r) => r.path)).toEqual(['/before', '/after']);
  });

  it('active before the dispatcher was built', async () => {
    expect(nock).toBeDefined();
    if (!nock!.isActive()) nock!.activate();
    const scope = nock!(HOOK_ORIGIN).post('/hooks/early').reply(200, 'ok');
    const clients = watch();
    const { execution } = await deliverOnce(dispatcher(), `${HOOK_ORIGIN}/hooks/early`);
    expect(scope.isDone()).toBe(true);
    expect(execution).toMatchObject({ status: 200, success: true, responseBody: 'ok' });
    expect(clients.undici).toEqual([]);
    nock!.restore();
  });
});
