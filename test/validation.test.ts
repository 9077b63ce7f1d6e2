/**
 * Invalid input is rejected up front with a WebhookValidationError (code `invalid_input`) whose
 * message and `issues` name the offending field, and nothing is stored or queued.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  WebhookDispatcher,
  WebhookError,
  WebhookValidationError,
  type CreateWebhookInput,
  type EmitInput,
  type UpdateWebhookInput,
  type WebhookDispatcherOptions,
} from 'webhook-dispatcher';

const URL_OK = 'https://merchant.example/hooks/orders';
const TRIGGERS = [{ entity: 'order', event: 'Create' }];
const SECRET = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;

/** Runs `fn` and returns the WebhookValidationError it throws or rejects with. */
async function validationError(fn: () => unknown): Promise<WebhookValidationError> {
  let error: unknown = null;
  try {
    await fn();
  } catch (caught) {
    error = caught;
  }
  expect(error, 'expected a WebhookValidationError').toBeInstanceOf(WebhookValidationError);
  const validation = error as WebhookValidationError;
  expect(validation).toBeInstanceOf(WebhookError);
  expect(validation.name).toBe('WebhookValidationError');
  expect(validation.code).toBe('invalid_input');
  expect(validation.issues.length).toBeGreaterThan(0);
  return validation;
}

/** Expects `fn` to fail on `field`: as the first issue, as `field`, and named in the message. */
async function expectInvalid(fn: () => unknown, field: string, message?: RegExp): Promise<WebhookValidationError> {
  const error = await validationError(fn);
  expect(error.issues.map((i) => i.path)).toContain(field);
  expect(error.field).toBe(field);
  expect(error.message).toContain(`${field}: `);
  if (message) expect(error.message).toMatch(message);
  return error;
}

let dispatcher: WebhookDispatcher;
beforeEach(() => {
  dispatcher = new WebhookDispatcher({ autoStart: false });
});
afterEach(async () => {
  await dispatcher.close();
});

describe('createWebhook', () => {
  const cases: Array<[string, Partial<CreateWebhookInput>, string, RegExp]> = [
    ['a non-http(s) URL', { url: 'ftp://x' }, 'url', /must use http or https, not ftp/],
    ['a string that is not a URL', { url: 'not a url' }, 'url', /absolute http\(s\) URL/],
    ['a relative URL', { url: '/hooks/orders' }, 'url', /absolute http\(s\) URL/],
    ['a URL with credentials', { url: 'https://user:pa55@merchant.example/hooks' }, 'url', /credentials/],
    ['empty triggers', { triggers: [] }, 'triggers', /at least one trigger/],
    ['a trigger with an empty entity', { triggers: [{ entity: '', event: 'Create' }] }, 'triggers.0.entity', /must not be empty/],
    ['a trigger with a blank event', { triggers: [{ entity: 'order', event: 'Create' }, { entity: 'order', event: '  ' }] }, 'triggers.1.event', /must not be empty/],
    ['a header value with CRLF', { headers: { 'X-Foo': 'a\r\nX-Injected: 1' } }, 'headers.X-Foo', /CR, LF/],
    ['a header value with a bare LF', { headers: { 'X-Foo': 'a\nb' } }, 'headers.X-Foo', /CR, LF/],
    ['a header name with a space', { headers: { 'X Foo': 'a' } }, 'headers.X Foo', /not a valid header name/],
    ['a header name with a colon', { headers: { 'X-Foo:': 'a' } }, 'headers.X-Foo:', /not a valid header name/],
    ['the Host header', { headers: { Host: 'evil.example' } }, 'headers.Host', /cannot be overridden/],
    ['the Content-Length header', { headers: { 'Content-Length': '0' } }, 'headers.Content-Length', /cannot be overridden/],
    ['the Transfer-Encoding header', { headers: { 'Transfer-Encoding': 'chunked' } }, 'headers.Transfer-Encoding', /cannot be overridden/],
    ['the webhook-signature header', { headers: { 'webhook-signature': 'v1,forged' } }, 'headers.webhook-signature', /cannot be overridden/],
    ['the webhook-id header', { headers: { 'Webhook-Id': 'msg_x' } }, 'headers.Webhook-Id', /cannot be overridden/],
    ['the X-Pakk-Webhook-Signature header', { headers: { 'X-Pakk-Webhook-Signature': 'v1,forged' } }, 'headers.X-Pakk-Webhook-Signature', /cannot be overridden/],
    ['the X-Pakk-WebhookID header in another casing', { headers: { 'x-pakk-webhookid': 'wh_x' } }, 'headers.x-pakk-webhookid', /cannot be overridden/],
    ['the Content-Type header', { headers: { 'Content-Type': 'text/plain' } }, 'headers.Content-Type', /cannot be overridden/],
    [
      'an Authorization header together with basicAuth',
      { headers: { Authorization: 'Bearer t' }, basicAuth: { username: 'u', password: 'p' } },
      'headers.Authorization',
      /basicAuth/,
    ],
    ['a basicAuth username with a colon', { basicAuth: { username: 'a:b', password: 'p' } }, 'basicAuth.username', /":"/],
    ['a fractional priority', { priority: 1.5 }, 'priority', /integer/],
    // A secret without the whsec_ prefix signs as its UTF-8 bytes (test/secret-forms.test.ts); these are the ones that cannot sign.
    ['a raw secret shorter than 8 bytes', { secret: 'q9Nhjk' }, 'secret', /at least 8 bytes/],
    ['a secret declared base64 that is not', { secret: 'not base64!', secretEncoding: 'base64' as const }, 'secret', /base64/],
    ['an unknown secretEncoding', { secret: 'q9NhjkjV9o', secretEncoding: 'hex' as 'base64' }, 'secretEncoding', /'base64'/],
    ['a secret that is too short', { secret: `whsec_${Buffer.alloc(8).toString('base64')}` }, 'secret', /24-64 bytes/],
    ['a secret that is not base64', { secret: 'whsec_not base64!' }, 'secret', /base64/],
    ['an unsupported method', { method: 'GET' as 'POST' }, 'method', /./],
    ['an empty tenantId', { tenantId: '' }, 'tenantId', /must not be empty/],
  ];

  it.each(cases)('rejects %s', async (_name, patch, field, message) => {
    const error = await expectInvalid(() => dispatcher.createWebhook({ url: URL_OK, triggers: TRIGGERS, ...patch }), field, message);
    expect(error.message.startsWith('createWebhook: ')).toBe(true);
    expect((await dispatcher.listWebhooks()).items).toEqual([]);
  });

  it('reports every invalid field at once', async () => {
    const error = await validationError(() =>
      dispatcher.createWebhook({ url: 'ftp://x', triggers: [{ entity: '', event: 'Create' }], priority: 1.5 }),
    );
    expect(error.issues.map((i) => i.path)).toEqual(['url', 'triggers.0.entity', 'priority']);
    for (const path of ['url: ', 'triggers.0.entity: ', 'priority: ']) expect(error.message).toContain(path);
    expect((await dispatcher.listWebhooks()).items).toEqual([]);
  });

  it('rejects an unknown option and names it', async () => {
    const input = { url: URL_OK, triggers: TRIGGERS, urll: 'https://typo.example' } as CreateWebhookInput;
    const error = await validationError(() => dispatcher.createWebhook(input));
    expect(error.message).toContain('urll');
    expect(error.message).toMatch(/not a known option|unknown option/);
    expect((await dispatcher.listWebhooks()).items).toEqual([]);
  });

  it('reports an unknown option by its own path in issues and `field`', async () => {
    const input = { url: URL_OK, triggers: TRIGGERS, urll: 'https://typo.example' } as CreateWebhookInput;
    const error = await validationError(() => dispatcher.createWebhook(input));
    // A host API that relays `error.field` to its client must be able to say which field is wrong.
    expect(error.field).toBe('urll');
    const nested = await validationError(() =>
      dispatcher.createWebhook({ url: URL_OK, triggers: [{ entity: 'order', event: 'Create', evnt: 'x' } as never] }),
    );
    expect(nested.field).toBe('triggers.0.evnt');
  });

  it('follows a custom headerPrefix for the reserved brand headers', async () => {
    const acme = new WebhookDispatcher({ autoStart: false, headerPrefix: 'X-Acme' });
    try {
      await expectInvalid(
        () => acme.createWebhook({ url: URL_OK, triggers: TRIGGERS, headers: { 'X-Acme-Webhook-Signature': 'v1,x' } }),
        'headers.X-Acme-Webhook-Signature',
      );
      expect((await acme.listWebhooks()).items).toEqual([]);
    } finally {
      await acme.close();
    }
  });

  it('accepts a valid webhook (the cases above differ from it in one field only)', async () => {
    const webhook = await dispatcher.createWebhook({
      url: URL_OK,
      triggers: TRIGGERS,
      headers: { 'X-Foo': 'a b\tc', Authorization: 'Bearer t' },
      priority: 2,
      secret: SECRET,
      method: 'PUT',
      tenantId: 'shop-1',
    });
    expect(webhook).toMatchObject({ url: URL_OK, priority: 2, secret: SECRET, method: 'PUT', tenantId: 'shop-1' });
    expect((await dispatcher.listWebhooks()).items.map((w) => w.id)).toEqual([webhook.id]);
  });
});

describe('updateWebhook', () => {
  const cases: Array<[string, UpdateWebhookInput, string, RegExp]> = [
    ['a non-http(s) URL', { url: 'ftp://x' }, 'url', /http or https/],
    ['empty triggers', { triggers: [] }, 'triggers', /at least one trigger/],
    ['a trigger with an empty entity', { triggers: [{ entity: '', event: 'Edit' }] }, 'triggers.0.entity', /must not be empty/],
    ['a header with CRLF', { headers: { 'X-Foo': 'a\r\nb' } }, 'headers.X-Foo', /CR, LF/],
    ['a reserved header', { headers: { 'X-Pakk-Webhook-Signature': 'v1,x' } }, 'headers.X-Pakk-Webhook-Signature', /cannot be overridden/],
    ['basicAuth when an Authorization header is set', { basicAuth: { username: 'u', password: 'p' } }, 'headers.Authorization', /basicAuth/],
    ['a fractional priority', { priority: 1.5 }, 'priority', /integer/],
    ['a non-boolean enabled', { enabled: 'yes' as unknown as boolean }, 'enabled', /./],
  ];

  it.each(cases)('rejects %s and leaves the webhook unchanged', async (_name, patch, field, message) => {
    const { warnings, ...webhook } = await dispatcher.createWebhook({ url: URL_OK, triggers: TRIGGERS, headers: { Authorization: 'Bearer t' } });
    expect(warnings).toEqual([]);
    const before = await dispatcher.getWebhook(webhook.id);
    const error = await expectInvalid(() => dispatcher.updateWebhook(webhook.id, patch), field, message);
    expect(error.message.startsWith('updateWebhook: ')).toBe(true);
    expect(await dispatcher.getWebhook(webhook.id)).toEqual(before);
    expect(await dispatcher.getWebhookSecret(webhook.id)).toBe(webhook.secret);
  });

  it('rejects fields that cannot be changed (tenantId, secret) as unknown options', async () => {
    const { warnings: _warnings, ...created } = await dispatcher.createWebhook({ url: URL_OK, triggers: TRIGGERS });
    const webhook = await dispatcher.getWebhook(created.id);
    for (const patch of [{ tenantId: 'shop-2' }, { secret: SECRET }]) {
      const error = await validationError(() => dispatcher.updateWebhook(webhook.id, patch as UpdateWebhookInput));
      expect(error.message).toContain(Object.keys(patch)[0]);
    }
    expect(await dispatcher.getWebhook(webhook.id)).toEqual(webhook);
  });
});

describe('emit', () => {
  const circular: Record<string, unknown> = { OrderId: 1 };
  circular.self = circular;
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['a missing entity', { event: 'Create', data: {} }, 'entity', /./],
    ['an empty entity', { entity: '', event: 'Create', data: {} }, 'entity', /must not be empty/],
    ['a missing event', { entity: 'order', data: {} }, 'event', /./],
    ['data undefined', { entity: 'order', event: 'Create', data: undefined }, 'data', /required/],
    ['data missing', { entity: 'order', event: 'Create' }, 'data', /required/],
    ['circular data', { entity: 'order', event: 'Create', data: circular }, 'data', /JSON/],
    ['data with a BigInt', { entity: 'order', event: 'Create', data: { total: 10n } }, 'data', /JSON.*BigInt/],
    ['data that is a function', { entity: 'order', event: 'Create', data: () => 1 }, 'data', /JSON/],
    ['an empty tenantId', { entity: 'order', event: 'Create', data: {}, tenantId: '' }, 'tenantId', /must not be empty/],
  ];

  it.each(cases)('rejects %s and queues nothing', async (_name, input, field, message) => {
    await dispatcher.createWebhook({ url: URL_OK, triggers: TRIGGERS });
    const error = await expectInvalid(() => dispatcher.emit(input as EmitInput), field, message);
    expect(error.message.startsWith('emit: ')).toBe(true);
    expect((await dispatcher.listDeliveries()).items).toEqual([]);
  });

  it('rejects an unknown option', async () => {
    await dispatcher.createWebhook({ url: URL_OK, triggers: TRIGGERS });
    const error = await validationError(() => dispatcher.emit({ entity: 'order', event: 'Create', data: {}, tenant: 'shop-1' } as EmitInput));
    expect(error.field).toBe('tenant');
    expect(error.message).toContain('tenant');
    expect((await dispatcher.listDeliveries()).items).toEqual([]);
  });

  it('queues valid emits (the cases above differ from one in one field only)', async () => {
    await dispatcher.createWebhook({ url: URL_OK, triggers: TRIGGERS });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: null });
    expect(deliveries).toHaveLength(1);
    expect((await dispatcher.listDeliveries()).items.map((d) => d.id)).toEqual([deliveries[0]?.id]);
  });
});

describe('WebhookDispatcher options', () => {
  const cases: Array<[string, WebhookDispatcherOptions, string, RegExp]> = [
    ['concurrency 0', { concurrency: 0 }, 'concurrency', /./],
    ['fractional concurrency', { concurrency: 1.5 }, 'concurrency', /./],
    ['perWebhookConcurrency 0', { perWebhookConcurrency: 0 }, 'perWebhookConcurrency', /./],
    ['leaseMs equal to requestTimeoutMs', { leaseMs: 5_000, requestTimeoutMs: 5_000 }, 'leaseMs', /requestTimeoutMs/],
    ['leaseMs shorter than the default requestTimeoutMs', { leaseMs: 10_000 }, 'leaseMs', /requestTimeoutMs/],
    ['requestTimeoutMs not shorter than the default leaseMs', { requestTimeoutMs: 60_000 }, 'leaseMs', /requestTimeoutMs/],
    ['a headerPrefix with a space', { headerPrefix: 'X Acme' }, 'headerPrefix', /letters, digits and dashes/],
    ['a headerPrefix with CRLF', { headerPrefix: 'X-Acme\r\nX-Evil' }, 'headerPrefix', /letters, digits and dashes/],
    ['a userAgent with CRLF', { userAgent: 'ua\r\nX-Evil: 1' }, 'userAgent', /CR, LF/],
    ['a storage that is not a storage', { storage: {} as never }, 'storage', /WebhookStorage/],
  ];

  it.each(cases)('rejects %s', async (_name, options, field, message) => {
    await expectInvalid(() => new WebhookDispatcher({ autoStart: false, ...options }), field, message);
  });

  it('rejects an unknown option and names it', async () => {
    const error = await validationError(() => new WebhookDispatcher({ concurency: 4 } as WebhookDispatcherOptions));
    expect(error.field).toBe('concurency');
    expect(error.message).toContain('concurency');
    expect(error.message).toMatch(/^WebhookDispatcher options: /);
  });
});
