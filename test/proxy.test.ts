import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type LookupFunction } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookDispatcher } from 'webhook-dispatcher';
import { UndiciTransport } from 'webhook-dispatcher/transport';
import { Receiver } from './helpers/receiver.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A minimal forward proxy: answers CONNECT by piping to the requested host:port, and records it. */
async function connectProxy(): Promise<{ url: string; tunnels: string[] }> {
  const tunnels: string[] = [];
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client, head) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').replace(/^\[|\](?=:)/g, '').split(/:(?=\d+$)/);
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tunnels };
}

const toLoopback: LookupFunction = (_hostname, options, callback) => {
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else (callback as unknown as (e: null, a: string, f: number) => void)(null, '127.0.0.1', 4);
};

const request = (url: string) => ({ url, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', timeoutMs: 5_000, maxResponseBodyBytes: 1_000 });

describe('outbound HTTP proxy', () => {
  it('tunnels to the address the guard approved, never to a name, keeping the Host header', async () => {
    const receiver = await Receiver.start();
    cleanups.push(() => receiver.close());
    const proxy = await connectProxy();
    const port = new URL(receiver.url('/')).port;
    const transport = new UndiciTransport({ proxy: proxy.url, lookup: toLoopback, addressGuard: { allowedCidrs: ['127.0.0.1/32'] } });
    cleanups.push(() => transport.close());

    const response = await transport.send(request(`http://merchant.test:${port}/hooks`));
    expect(response.status).toBe(200);
    expect(proxy.tunnels).toEqual([`127.0.0.1:${port}`]);
    expect(receiver.requests[0]!.headers.host).toBe(`merchant.test:${port}`);
  });

  it('still blocks a target whose name resolves to a blocked address: the proxy sees nothing', async () => {
    const proxy = await connectProxy();
    const transport = new UndiciTransport({ proxy: proxy.url, lookup: toLoopback });
    cleanups.push(() => transport.close());
    await expect(transport.send(request('http://rebind.example:8080/x'))).rejects.toMatchObject({ code: 'address_blocked' });
    await expect(transport.send(request('http://169.254.169.254/latest/meta-data'))).rejects.toMatchObject({ code: 'address_blocked' });
    expect(proxy.tunnels).toEqual([]);
  });

  it('is a dispatcher option, validated', async () => {
    const receiver = await Receiver.start();
    cleanups.push(() => receiver.close());
    const proxy = await connectProxy();
    // Security opt-out: the receiver is on 127.0.0.1.
    const dispatcher = new WebhookDispatcher({ proxy: proxy.url, allowPrivateNetworks: true });
    cleanups.push(() => dispatcher.close());
    await dispatcher.createWebhook({ url: receiver.url('/h'), triggers: [{ entity: 'order', event: 'Create' }] });
    await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
    expect(proxy.tunnels).toHaveLength(1);
    expect(() => new WebhookDispatcher({ autoStart: false, proxy: 'socks5://x:1080' })).toThrow(/proxy/);
  });
});
