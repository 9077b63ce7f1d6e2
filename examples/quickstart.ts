/**
 * Quick start: a local receiver, one webhook, an order Create and an Edit, signature checks,
 * and the execution log. Run with `npm run demo`.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookDispatcher, verifySignature } from 'webhook-dispatcher';

// 1. A stand-in for the merchant's endpoint: records what arrives and answers 200.
const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    received.push({ headers: req.headers, body });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const { port } = receiver.address() as AddressInfo;

// 2. The dispatcher, on the default in-memory storage. The receiver is on 127.0.0.1, which the
//    SSRF guard blocks by default (merchant URLs must not reach your internal network): opt out.
const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true });

// 3. A merchant's webhook on order Create and Edit, with a custom header.
const webhook = await dispatcher.createWebhook({
  url: `http://127.0.0.1:${port}/hooks/orders`,
  triggers: [
    { entity: 'order', event: 'Create' },
    { entity: 'order', event: 'Edit' },
  ],
  headers: { Authorization: 'Bearer 238ujdfnd8gudjfdnfg' },
  tenantId: 'shop-1',
});
console.log(`webhook ${webhook.id} → ${webhook.url} (secret ${webhook.secret.slice(0, 10)}…)\n`);

// 4. The host's order changes.
await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: 'shop-1', data: { OrderId: 1, OrderCode: 'SO-1', Total: 99.5 } });
await dispatcher.emit({ entity: 'order', event: 'Edit', tenantId: 'shop-1', data: { OrderId: 1, OrderCode: 'SO-1', Total: 120 } });
await dispatcher.drain();

// 5. What the receiver got, verified as a merchant's server would.
for (const [i, request] of received.entries()) {
  console.log(`request ${i + 1}:`);
  for (const [name, value] of Object.entries(request.headers)) console.log(`  ${name}: ${String(value)}`);
  console.log(`  body: ${request.body}`);
  try {
    const { id } = verifySignature({ secret: webhook.secret, body: request.body, headers: request.headers });
    console.log(`  signature: verified (webhook-id ${id})\n`);
  } catch (error) {
    console.log(`  signature: NOT verified (${(error as Error).message})\n`);
  }
}

// 6. The execution log, as a History tab would show it.
const { items } = await dispatcher.listExecutions({ webhookId: webhook.id });
console.log('execution log (newest first):');
for (const e of items) {
  console.log(
    `  ${new Date(e.startedAt).toISOString()}  ${e.event.padEnd(6)} result ${e.status}  ${e.success ? 'success' : 'failed'}  ${e.durationMs} ms  ${e.deliveryId}`,
  );
}

await dispatcher.close();
receiver.close();
