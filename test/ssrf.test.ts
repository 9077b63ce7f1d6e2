import { afterEach, describe, expect, it } from 'vitest';
import type { LookupFunction } from 'node:net';
import { WebhookDispatcher, WebhookValidationError } from 'webhook-dispatcher';
import { NodeHttpTransport } from 'webhook-dispatcher/transport';
import { Receiver } from './helpers/receiver.js';

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function receiver(): Promise<Receiver> {
  const r = await Receiver.start();
  cleanups.push(() => r.close());
  return r;
}

function dispatcher(options: ConstructorParameters<typeof WebhookDispatcher>[0] = {}): WebhookDispatcher {
  const d = new WebhookDispatcher(options);
  cleanups.push(() => d.close());
  return d;
}

describe('outbound address guard (on by default)', () => {
  it('rejects a webhook URL on a blocked IP literal at creation, naming the field and the opt-out', async () => {
    const d = dispatcher();
    for (const url of ['http://127.0.0.1:8080/x', 'http://[::1]/', 'http://169.254.169.254/latest/meta-data', 'http://2130706433/', 'http://localhost/']) {
      const error = await d.createWebhook({ url, triggers: ORDER_CREATE }).catch((e: unknown) => e);
      expect(error, url).toBeInstanceOf(WebhookValidationError);
      expect((error as WebhookValidationError).field).toBe('url');
      expect((error as Error).message).toMatch(/blocked.*allowPrivateNetworks/);
    }
    const ok = await d.createWebhook({ url: 'https://merchant.example/hooks', triggers: ORDER_CREATE });
    await expect(d.updateWebhook(ok.id, { url: 'http://10.0.0.5/' })).rejects.toMatchObject({ code: 'invalid_input', field: 'url' });
  });

  it('blocks at connect time a name whose DNS answer is loopback (rebinding), records address_blocked, no retry', async () => {
    const r = await receiver();
    const port = new URL(r.url('/')).port;
    // A DNS server under an attacker's control answers 127.0.0.1 for a public-looking name.
    const rebindingDns: LookupFunction = (hostname, options, callback) => {
      if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
      else (callback as unknown as (e: null, a: string, f: number) => void)(null, '127.0.0.1', 4);
    };
    const d = dispatcher({ transport: new NodeHttpTransport({ lookup: rebindingDns }) });
    const hook = await d.createWebhook({ url: `http://merchant-rebind.example:${port}/hooks`, triggers: ORDER_CREATE });
    await d.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await d.drain();

    expect(r.requests).toHaveLength(0);
    const [execution] = (await d.listExecutions({ webhookId: hook.id })).items;
    expect(execution).toMatchObject({ status: 0, hardError: true, success: false, errorCode: 'address_blocked', nextAttemptAt: null });
    expect(execution!.errorMessage).toMatch(/merchant-rebind\.example.*127\.0\.0\.1.*loopback/);
    const [delivery] = (await d.listDeliveries({ webhookId: hook.id })).items;
    expect(delivery!.status).toBe('failed');
  });

  it('the same name is delivered when its range is explicitly allowed', async () => {
    const r = await receiver();
    const port = new URL(r.url('/')).port;
    const dns: LookupFunction = (hostname, options, callback) => {
      if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
      else (callback as unknown as (e: null, a: string, f: number) => void)(null, '127.0.0.1', 4);
    };
    const d = dispatcher({ transport: new NodeHttpTransport({ lookup: dns, addressGuard: { allowedCidrs: ['127.0.0.1/32'] } }) });
    await d.createWebhook({ url: `http://merchant-internal.example:${port}/hooks`, triggers: ORDER_CREATE });
    await d.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await d.drain();
    expect(r.requests).toHaveLength(1);
  });

  it('delivers to 127.0.0.1 only with the explicit opt-out', async () => {
    const r = await receiver();
    const d = dispatcher({ allowPrivateNetworks: true });
    await d.createWebhook({ url: r.url('/hooks'), triggers: ORDER_CREATE });
    await d.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await d.drain();
    expect(r.requests).toHaveLength(1);
  });

  it('rejects a malformed CIDR in the options with a validation error', () => {
    expect(() => new WebhookDispatcher({ autoStart: false, allowedCidrs: ['10.0.0.0/99'] })).toThrow(WebhookValidationError);
  });
});
