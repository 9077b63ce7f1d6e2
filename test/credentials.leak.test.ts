/**
 * Issue 19's acceptance, as an attacker with access to a host's logs would check it: webhooks with
 * a signing secret, basic auth, a credential header and an `Authorization: Bearer …` header deliver
 * through a receiver that echoes every request (headers in its body and in a response header),
 * failing before succeeding. Then every output is scanned for the credential values and their
 * base64 forms: dispatcher events, diagnostics_channel messages, console, alerts, errors, every read
 * method and every REST answer. The only answers allowed to carry the secret are the create,
 * rotate and reveal answers. Runs on memory, SQLite and Postgres storage.
 *
 * (Basic auth and a custom `Authorization` header are refused together on one webhook, so the
 * bearer token is on a second webhook.)
 */
import { randomBytes } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryStorage, WebhookDispatcher, type WebhookStorage } from 'webhook-dispatcher';
import { createManagementHandler } from 'webhook-dispatcher/management';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { CHANNELS } from '../src/observability/channels.js';
import { pgConfig, requirePostgres } from './helpers/postgres.js';
import { Receiver } from './helpers/receiver.js';

const postgresAvailable = await requirePostgres('credentials.leak');
const run = `${process.pid}_${randomBytes(3).toString('hex')}`;
const pool = postgresAvailable ? new pg.Pool({ ...pgConfig, max: 4 }) : null;
const schemas: string[] = [];

const disposers: Array<() => unknown> = [];
afterEach(async () => {
  for (const dispose of disposers.reverse()) await dispose();
  disposers.length = 0;
  vi.restoreAllMocks();
});
afterAll(async () => {
  if (!pool) return;
  for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

// Long enough that reads show their last 4 characters: the scan looks for the whole value.
const SECRET = 'merchant-signing-secret-0123456789';
const USERNAME = 'erp-user';
const PASSWORD = 'basic-password-9f8e7d6c5b4a';
const BEARER = 'bearer-token-a1b2c3d4e5f6g7h8';
const API_KEY = 'api-key-value-77ff66ee55dd';
const ORG = 'org_shop';

/** Every credential value and the forms a receiver or a log could show it in. */
const NEEDLES: Record<string, string> = {
  secret: SECRET,
  'secret (base64)': b64(SECRET),
  password: PASSWORD,
  'password (base64)': b64(PASSWORD),
  'basic token (base64 user:password)': b64(`${USERNAME}:${PASSWORD}`),
  bearer: BEARER,
  'bearer (base64)': b64(BEARER),
  'api key': API_KEY,
  'api key (base64)': b64(API_KEY),
};

function b64(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64');
}

/** Names of the needles found in a captured value. */
function leaks(value: unknown): string[] {
  const text = typeof value === 'string' ? value : JSON.stringify(value, (_k, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack, cause: v.cause } : v));
  return Object.entries(NEEDLES)
    .filter(([, needle]) => text.includes(needle))
    .map(([name]) => name);
}

type StorageKind = 'memory' | 'sqlite' | 'postgres';

async function openStorage(kind: StorageKind): Promise<WebhookStorage> {
  if (kind === 'memory') return new MemoryStorage();
  if (kind === 'sqlite') {
    const storage = new SqliteStorage({ path: ':memory:' });
    await storage.migrate();
    disposers.push(() => storage.close());
    return storage;
  }
  const schema = `wd_leak_${run}_${schemas.length}`;
  schemas.push(schema);
  const storage = new PostgresStorage({ pool: pool!, schema });
  await storage.migrate();
  disposers.push(() => storage.close());
  return storage;
}

/** Answers with everything it got: headers in the body and in a response header, then the body. */
async function startEchoingReceiver(failures: number): Promise<Receiver> {
  const receiver = await Receiver.start({
    respond: (request) => ({
      status: request.index < failures ? 500 : 200,
      headers: { 'content-type': 'application/json', 'x-echo-authorization': request.headers.authorization ?? '', 'x-echo-key': request.headers['x-api-key'] ?? '' },
      body: JSON.stringify({ youSent: request.headers, rawHeaders: request.rawHeaders, body: request.body }),
    }),
  });
  disposers.push(() => receiver.close());
  return receiver;
}

async function scenario(kind: StorageKind): Promise<void> {
  const captured: Array<{ where: string; value: unknown }> = [];
  const capture = (where: string) => (value: unknown) => captured.push({ where, value });

  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => captured.push({ where: `console.${level}`, value: args }));
  }
  const channelListeners = Object.entries(CHANNELS).map(([name, channel]) => {
    const listener = capture(`channel ${name}`);
    diagnosticsChannel.subscribe(channel, listener);
    return () => diagnosticsChannel.unsubscribe(channel, listener);
  });
  disposers.push(() => channelListeners.forEach((off) => off()));

  const storage = await openStorage(kind);
  const dispatcher = new WebhookDispatcher({
    storage,
    // The receivers are on 127.0.0.1: the explicit opt-out of the SSRF guard.
    allowPrivateNetworks: true,
    circuitBreaker: false,
    retry: { maxAttempts: 3, schedule: [0], jitter: 0 },
    onAlert: (alert) => void capture('onAlert')(alert),
  });
  disposers.push(() => dispatcher.close());
  for (const event of [
    'delivery.attempted',
    'delivery.succeeded',
    'delivery.scheduled',
    'delivery.failed',
    'webhook.disabled',
    'webhook.paused',
    'webhook.resumed',
    'alert',
    'webhook.created',
    'webhook.updated',
    'webhook.deleted',
    'error',
  ] as const) {
    dispatcher.on(event, capture(`event ${event}`));
  }
  const api = createManagementHandler({ dispatcher, authorize: () => true, onError: capture('management onError') });
  const rest = async (method: string, path: string, body?: unknown) => {
    const response = await api(
      new Request(`http://admin.local/v1/organizations/${ORG}${path}`, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
      }),
    );
    const text = await response.text();
    return { status: response.status, text, json: text ? (JSON.parse(text) as Record<string, unknown>) : null };
  };

  // Two fail twice and then succeed; the third exhausts its attempts (an alert).
  const flaky = await startEchoingReceiver(2);
  const flakyToo = await startEchoingReceiver(2);
  const down = await startEchoingReceiver(1_000);
  const allowed: Array<{ where: string; value: unknown }> = [];
  const basic = await dispatcher.createWebhook({
    url: flaky.url('/basic'),
    tenantId: ORG,
    triggers: [{ entity: 'order', event: 'Create' }],
    secret: SECRET,
    basicAuth: { username: USERNAME, password: PASSWORD },
    headers: { 'X-Api-Key': API_KEY, 'X-Shop': 'visible' },
  });
  allowed.push({ where: 'createWebhook answer', value: basic });
  const bearerCreate = await rest('POST', '/webhooks', {
    event_code: 'order.created',
    endpoint: flakyToo.url('/bearer'),
    secret: SECRET,
    headers: { Authorization: `Bearer ${BEARER}` },
  });
  expect(bearerCreate.status).toBe(201);
  allowed.push({ where: 'REST create answer', value: bearerCreate.text });
  const bearerId = bearerCreate.json!.id as string;
  const failing = await dispatcher.createWebhook({
    url: down.url('/down'),
    tenantId: ORG,
    triggers: [{ entity: 'order', event: 'Create' }],
    secret: SECRET,
    basicAuth: { username: USERNAME, password: PASSWORD },
    headers: { 'X-Api-Key': API_KEY },
  });
  allowed.push({ where: 'createWebhook answer (failing)', value: failing });

  await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: { OrderId: 7, OrderCode: 'SO-7' } });
  await dispatcher.drain();

  // The receivers really got the credentials: the scan below is not vacuous.
  const basicRequests = flaky.requests;
  expect(basicRequests.length).toBe(3);
  expect(basicRequests[0]!.headers.authorization).toBe(`Basic ${b64(`${USERNAME}:${PASSWORD}`)}`);
  expect(basicRequests[0]!.headers['x-api-key']).toBe(API_KEY);
  expect(flakyToo.requests.length).toBe(3);
  expect(flakyToo.requests[0]!.headers.authorization).toBe(`Bearer ${BEARER}`);
  expect(down.requests.length).toBe(3);

  // Every read method.
  const executions = await dispatcher.listExecutions({ limit: 100 });
  expect(executions.items.length).toBe(9);
  expect(executions.items.some((e) => e.responseBody.includes('[REDACTED]'))).toBe(true);
  const deliveries = await dispatcher.listDeliveries({ limit: 100 });
  captured.push(
    { where: 'getWebhook', value: await dispatcher.getWebhook(basic.id) },
    { where: 'getWebhook (bearer)', value: await dispatcher.getWebhook(bearerId) },
    { where: 'listWebhooks', value: await dispatcher.listWebhooks() },
    { where: 'listExecutions', value: executions },
    { where: 'listDeliveries', value: deliveries },
    { where: 'getDelivery', value: await Promise.all(deliveries.items.map((d) => dispatcher.getDelivery(d.id))) },
    { where: 'previewPayload', value: await dispatcher.previewPayload(basic.id, { entity: 'order', event: 'Create', data: { OrderId: 1 } }) },
    { where: 'previewPayload (bearer)', value: await dispatcher.previewPayload(bearerId, { entity: 'order', event: 'Create', data: { OrderId: 1 } }) },
    { where: 'listMergeFields', value: dispatcher.listMergeFields({ entity: 'order', event: 'Create' }) },
    { where: 'getQueueStats', value: await dispatcher.getQueueStats(basic.id) },
    { where: 'getWebhookHealth', value: await dispatcher.getWebhookHealth(failing.id) },
    { where: 'getMetrics', value: await dispatcher.getMetrics() },
  );
  // A UI's load-edit-save round trip: the answer is masked, the stored credentials are kept.
  const read = await dispatcher.getWebhook(basic.id);
  const saved = await dispatcher.updateWebhook(basic.id, { headers: read.headers, basicAuth: read.basicAuth, description: 'edited' });
  captured.push({ where: 'updateWebhook answer', value: saved });
  // A preview of the webhook as the form holds it (masked) signs and authenticates as stored.
  captured.push({ where: 'previewPayload (masked object)', value: await dispatcher.previewPayload(read, { entity: 'order', event: 'Create', data: { OrderId: 1 } }) });
  const copy = await dispatcher.duplicateWebhook(basic.id, { enabled: false });
  captured.push({ where: 'duplicateWebhook answer', value: { ...copy, secret: 'its own new secret' } });
  expect(copy.secret).not.toBe(SECRET);

  // Every REST read.
  for (const path of ['/webhooks', `/webhooks/${basic.id}`, `/webhooks/${bearerId}`, `/webhooks/${basic.id}/executions`, `/webhooks/${bearerId}/executions`, `/webhooks/${failing.id}/executions`]) {
    const answer = await rest('GET', path);
    expect(answer.status, path).toBe(200);
    captured.push({ where: `REST GET ${path}`, value: answer.text });
  }
  const patch = await rest('PATCH', `/webhooks/${bearerId}`, { headers: (await rest('GET', `/webhooks/${bearerId}`)).json!.headers, description: 'edited' });
  expect(patch.status).toBe(200);
  captured.push({ where: 'REST PATCH answer', value: patch.text });

  // The reveal call and rotation are the answers that may carry a secret.
  const revealed = await rest('GET', `/webhooks/${basic.id}/secret`);
  expect(revealed.json).toEqual({ secret: SECRET });
  expect(await dispatcher.getWebhookSecret(bearerId)).toBe(SECRET);

  // The kept credentials still go out: a second round after the edits authenticates as before.
  await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: { OrderId: 8 } });
  await dispatcher.drain();
  expect(flaky.requests.length).toBe(4);
  expect(flaky.requests[3]!.headers.authorization).toBe(`Basic ${b64(`${USERNAME}:${PASSWORD}`)}`);
  expect(flaky.requests[3]!.headers['x-api-key']).toBe(API_KEY);
  expect(flakyToo.requests.length).toBe(4);
  expect(flakyToo.requests[3]!.headers.authorization).toBe(`Bearer ${BEARER}`);
  captured.push({ where: 'listExecutions (after edits)', value: await dispatcher.listExecutions({ limit: 100 }) });

  // Rotation answers the new secret once; the old one (still signing) only masked.
  const rotated = await dispatcher.rotateSecret(basic.id, { gracePeriodMs: 60_000 });
  expect(leaks(rotated)).toEqual([]);
  const afterRotation = JSON.stringify([await dispatcher.getWebhook(basic.id), await dispatcher.listWebhooks(), (await rest('GET', `/webhooks/${basic.id}`)).text]);
  expect(afterRotation).not.toContain(rotated.secret);
  expect(leaks(afterRotation)).toEqual([]);

  // Nothing above was empty, and nothing carried a credential.
  expect(captured.filter((c) => c.where.startsWith('event delivery.')).length).toBeGreaterThan(10);
  expect(captured.filter((c) => c.where.startsWith('channel attemptEnd')).length).toBe(14);
  expect(captured.filter((c) => c.where === 'onAlert').length).toBe(2);
  const found = captured.map((c) => ({ where: c.where, leaks: leaks(c.value) })).filter((c) => c.leaks.length > 0);
  expect(found).toEqual([]);
  // The create answers do carry the secret (and only the secret).
  for (const answer of allowed) expect(leaks(answer.value), answer.where).toEqual(['secret']);
}

describe('credentials never come back out (issue 19)', () => {
  it('memory storage', () => scenario('memory'));
  it('SQLite storage', () => scenario('sqlite'));
  it.runIf(postgresAvailable)('Postgres storage', () => scenario('postgres'));
});
