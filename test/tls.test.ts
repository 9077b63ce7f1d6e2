import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDispatcher, WebhookValidationError } from 'webhook-dispatcher';
import { makeTempDir } from './helpers/unique.js';

/** A throwaway PKI: a CA, a server certificate for 127.0.0.1 and a client certificate, by openssl. */
function makePki(dir: string) {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Test CA');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=merchant-integration');
  run('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2');
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return { ca: read('ca.crt'), serverKey: read('server.key'), serverCert: read('server.crt'), clientKey: read('client.key'), clientCert: read('client.crt') };
}

let dir: string;
let pki: ReturnType<typeof makePki>;
let server: Server;
let url: string;
const seen: Array<{ authorized: boolean; subject: string | undefined }> = [];

beforeAll(async () => {
  dir = makeTempDir('wd-tls');
  pki = makePki(dir);
  // The merchant's endpoint requires a client certificate issued by its CA.
  server = createServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const cn = socket.getPeerCertificate().subject?.CN;
    seen.push({ authorized: socket.authorized, subject: Array.isArray(cn) ? cn.join(',') : cn });
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

async function deliverOnce(tls: Parameters<WebhookDispatcher['createWebhook']>[0]['tls'], proxy?: string) {
  // Security opt-out: the test endpoint is on 127.0.0.1.
  const dispatcher = new WebhookDispatcher({
    allowPrivateNetworks: true,
    retry: { maxAttempts: 1 },
    circuitBreaker: false,
    ...(proxy ? { proxy } : {}),
  });
  try {
    const hook = await dispatcher.createWebhook({ url, triggers: [{ entity: 'order', event: 'Create' }], tls });
    await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await dispatcher.drain();
    return (await dispatcher.listExecutions({ webhookId: hook.id })).items[0]!;
  } finally {
    await dispatcher.close();
  }
}

describe('client certificates (mTLS) and certificate verification', () => {
  it('presents the webhook’s client certificate and trusts its CA', async () => {
    const before = seen.length;
    const execution = await deliverOnce({ clientCertificate: pki.clientCert, clientKey: pki.clientKey, ca: pki.ca });
    expect(execution).toMatchObject({ status: 200, success: true });
    expect(seen.slice(before)).toEqual([{ authorized: true, subject: 'merchant-integration' }]);
    // The private key never reaches the execution log.
    expect(JSON.stringify(execution)).not.toContain('PRIVATE KEY');
  });

  it('fails without the client certificate: the endpoint refuses the handshake', async () => {
    const execution = await deliverOnce({ ca: pki.ca });
    expect(execution).toMatchObject({ status: 0, hardError: true, success: false, errorCode: 'transport_error' });
  });

  it('verifies the server certificate by default: an untrusted CA fails', async () => {
    const execution = await deliverOnce({ clientCertificate: pki.clientCert, clientKey: pki.clientKey });
    expect(execution).toMatchObject({ status: 0, hardError: true, success: false });
    expect(execution.errorMessage).toMatch(/certificate/i);
  });

  it('skips verification only when the webhook explicitly opts out', async () => {
    const execution = await deliverOnce({ clientCertificate: pki.clientCert, clientKey: pki.clientKey, rejectUnauthorized: false });
    expect(execution).toMatchObject({ status: 200, success: true });
  });

  it('verifies the endpoint and presents the client certificate through an HTTP CONNECT proxy too', async () => {
    const tunnels: string[] = [];
    const proxy = createHttpServer();
    proxy.on('connect', (req, client, head) => {
      tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const before = seen.length;
      const ok = await deliverOnce({ clientCertificate: pki.clientCert, clientKey: pki.clientKey, ca: pki.ca }, proxyUrl);
      expect(ok).toMatchObject({ status: 200, success: true });
      expect(seen.slice(before)).toEqual([{ authorized: true, subject: 'merchant-integration' }]);
      const untrusted = await deliverOnce({ clientCertificate: pki.clientCert, clientKey: pki.clientKey }, proxyUrl);
      expect(untrusted).toMatchObject({ status: 0, success: false });
      expect(tunnels.length).toBeGreaterThanOrEqual(2);
      expect(tunnels.every((t) => t.startsWith('127.0.0.1:'))).toBe(true);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('validates TLS settings at creation', async () => {
    const dispatcher = new WebhookDispatcher({ autoStart: false });
    try {
      const create = (tls: object) =>
        dispatcher.createWebhook({ url: 'https://merchant.example/', triggers: [{ entity: 'order', event: 'Create' }], tls: tls as never });
      await expect(create({ clientCertificate: pki.clientCert })).rejects.toMatchObject({ field: 'tls.clientKey' });
      await expect(create({ clientCertificate: 'not a pem', clientKey: pki.clientKey })).rejects.toBeInstanceOf(WebhookValidationError);
      await expect(create({ ca: pki.ca, verify: false })).rejects.toMatchObject({ field: 'tls.verify' });
    } finally {
      await dispatcher.close();
    }
  });
});
