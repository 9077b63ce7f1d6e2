/**
 * The admin page's handler without a browser: `handler(new Request(…))` against a real
 * dispatcher (memory storage) delivering to a real receiver on 127.0.0.1. What must hold on every
 * answer: escaping, the CSP and security headers, authorize on every page and action, tenant
 * scoping, the Origin check and CSRF token on every POST, credentials never in a page, forms
 * validated at the boundary. The browser scenarios are in admin-*.serial.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebhookDispatcher, WebhookValidationError } from 'webhook-dispatcher';
import { CONTENT_SECURITY_POLICY, createAdminHandler, toNodeHandler, type AdminHandler, type AdminHandlerOptions } from '../src/admin/index.js';
import { escapeHtml, html } from '../src/admin/html.js';
import { sampleFromMergeFields } from '../src/admin/sample-data.js';
import { Receiver } from './helpers/receiver.js';

const ORIGIN = 'http://admin.test';
const BASE = '/admin';
const ORG = 'org-a';
const OTHER_ORG = 'org-b';
const XSS = '<script>alert("x")</script>';
const API_KEY = 'key-0123456789abcdefghijklmnopqrstuvwxyz';
const PASSWORD = 'basic-password-4242';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

/** The test host's authentication: `x-orgs: a,b` may manage a and b. */
const authorizeByHeader = (request: Request, organizationId: string) =>
  (request.headers.get('x-orgs') ?? '').split(',').includes(organizationId);

let receiver: Receiver;
let dispatcher: WebhookDispatcher;
let admin: AdminHandler;
let webhookId: string;
let otherWebhookId: string;
let untenantedId: string;
let deliveryId: string;
let executionId: string;
let otherDeliveryId: string;

beforeAll(async () => {
  receiver = await Receiver.start({
    respond: (request) =>
      request.path === '/fail' ? { status: 500, body: `failed ${XSS}` } : { status: 200, body: `{"received":"${XSS}"}` },
  });
  dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, retry: { maxAttempts: 1 } });
  const webhook = await dispatcher.createWebhook({
    url: receiver.url('/hooks'),
    triggers: [{ entity: 'order', event: 'Create' }],
    tenantId: ORG,
    description: `Orders ${XSS}`,
    headers: { 'X-Api-Key': API_KEY, 'X-Shop': `"><img src=x onerror=alert(1)>` },
    basicAuth: { username: 'shop', password: PASSWORD },
    secret: SECRET,
    payload: { mimeType: 'application/json', template: `{"code": "{{order.OrderCode}}", "note": "${'<script>'}"}` },
  });
  webhookId = webhook.id;
  const other = await dispatcher.createWebhook({ url: receiver.url('/fail'), triggers: [{ entity: 'order', event: 'Create' }], tenantId: OTHER_ORG });
  otherWebhookId = other.id;
  const untenanted = await dispatcher.createWebhook({ url: receiver.url('/none'), triggers: [{ entity: 'product', event: 'Create' }] });
  untenantedId = untenanted.id;
  await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: { OrderId: 1, OrderCode: `A-1 ${XSS}` } });
  await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: OTHER_ORG, data: { OrderId: 2, OrderCode: 'B-2' } });
  await dispatcher.drain();
  const [execution] = (await dispatcher.listExecutions({ webhookId })).items;
  deliveryId = execution!.deliveryId;
  executionId = execution!.id;
  otherDeliveryId = (await dispatcher.listExecutions({ webhookId: otherWebhookId })).items[0]!.deliveryId;
  admin = createAdminHandler({ dispatcher, authorize: authorizeByHeader, basePath: BASE });
});

afterAll(async () => {
  await receiver?.close();
  await dispatcher?.close({ timeoutMs: 1_000 });
});

// ------------------------------------------------------------------ helpers

const pageUrl = (path: string) => `${ORIGIN}${BASE}/organizations/${path}`;
const webhookPath = (id = webhookId, org = ORG) => `${org}/webhooks/${id}`;

function get(path: string, orgs = ORG, handler = admin): Promise<Response> {
  return handler(new Request(pageUrl(path), { headers: { 'x-orgs': orgs } }));
}

interface PostOptions {
  orgs?: string;
  origin?: string | null;
  site?: string | null;
  token?: string | null;
  contentType?: string;
  handler?: AdminHandler;
}

/** The organization's CSRF token, from a webhook page (the list has no forms). */
async function tokenOf(org = ORG, handler = admin): Promise<string> {
  const id = org === ORG ? webhookId : otherWebhookId;
  const page = await (await get(webhookPath(id, org), org, handler)).text();
  const token = /name="csrf_token" value="([^"]+)"/.exec(page)?.[1];
  if (!token) throw new Error('no CSRF token on the page');
  return token;
}

async function post(path: string, fields: Record<string, string | string[]>, options: PostOptions = {}): Promise<Response> {
  const form = new URLSearchParams();
  const token = options.token === undefined ? await tokenOf(options.orgs?.split(',')[0] ?? ORG, options.handler) : options.token;
  if (token !== null) form.set('csrf_token', token);
  for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) form.append(name, v);
  const headers: Record<string, string> = { 'x-orgs': options.orgs ?? ORG, 'content-type': options.contentType ?? 'application/x-www-form-urlencoded' };
  const origin = options.origin === undefined ? ORIGIN : options.origin;
  if (origin !== null) headers.origin = origin;
  if (options.site) headers['sec-fetch-site'] = options.site;
  return (options.handler ?? admin)(new Request(pageUrl(path), { method: 'POST', headers, body: form.toString() }));
}

/** Every page an organization member can open, for checks that must hold on all of them. */
async function everyPage(): Promise<Array<{ name: string; body: string }>> {
  const names = [
    `${ORG}/webhooks`,
    ...['general', 'authentication', 'payload', 'history', 'queue'].map((tab) => `${webhookPath()}?tab=${tab}`),
    `${webhookPath()}/deliveries/${deliveryId}/executions/${executionId}`,
  ];
  return Promise.all(
    names.map(async (name) => {
      const response = await get(name);
      expect(response.status, name).toBe(200);
      return { name, body: await response.text() };
    }),
  );
}

// ------------------------------------------------------------------ tests

describe('options', () => {
  it('requires a dispatcher and authorize, and checks the rest, naming the option', () => {
    expect(() => createAdminHandler({ dispatcher } as unknown as AdminHandlerOptions)).toThrow(/authorize: is required/);
    expect(() => createAdminHandler({ authorize: () => true } as unknown as AdminHandlerOptions)).toThrow(/dispatcher: is required/);
    expect(() => createAdminHandler({ dispatcher, authorize: () => true, csrfSecret: 'short' })).toThrow(WebhookValidationError);
    expect(() => createAdminHandler({ dispatcher, authorize: () => true, trustedOrigins: ['https://a.example/path'] })).toThrow(/trustedOrigins/);
    expect(() => createAdminHandler({ dispatcher, authorize: () => true, basePath: 'no-slash' })).toThrow(/basePath/);
    expect(createAdminHandler({ dispatcher, authorize: () => true, basePath: '/x/' }).basePath).toBe('/x');
  });
});

describe('html', () => {
  it('escapes every interpolation unless it is markup made by html', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p>${inner}${['<', html`<br>`]}${null}${false}${0}</p>`.markup).toBe('<p><b>&lt;i&gt;</b>&lt;<br>0</p>');
  });
});

describe('security headers and escaping', () => {
  it('sends the CSP without inline script or style, and the hardening headers, on pages, errors and assets', async () => {
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    const answers = [await get(`${ORG}/webhooks`), await get(`${ORG}/nope`), await get(`${OTHER_ORG}/webhooks`)];
    for (const response of answers) {
      expect(response.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('referrer-policy')).toBe('same-origin');
      expect(response.headers.get('cache-control')).toBe('no-store');
    }
    const page = await answers[0]!.text();
    const assets = [...page.matchAll(/(?:href|src)="(\/admin\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(3);
    for (const asset of assets) {
      // Assets need no authorization: they hold no data.
      const response = await admin(new Request(`${ORIGIN}${asset}`));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(response.headers.get('cache-control')).toContain('immutable');
      expect(response.headers.get('content-type')).toMatch(/^(text\/css|text\/javascript|image\/svg\+xml)/);
    }
    expect((await admin(new Request(`${ORIGIN}${BASE}/assets/other.js`))).status).toBe(404);
  });

  it('renders no inline script, style or event handler, and no asset of another host, on any page', async () => {
    for (const { name, body } of await everyPage()) {
      // Attribute values are always quoted and escaped, so a tag's attributes are what is left
      // once its quoted values are blanked.
      const tags = [...body.matchAll(/<[a-zA-Z][^>]*>/g)].map((m) => m[0].replace(/"[^"]*"/g, '""'));
      expect(tags.length, name).toBeGreaterThan(20);
      for (const tag of tags) {
        expect(tag, name).not.toMatch(/\son[a-z]+=/i);
        expect(tag, name).not.toMatch(/\sstyle=/i);
      }
      expect(body, name).not.toMatch(/<script(?![^>]*\bsrc="\/admin\/assets\/)[^>]*>/i);
      expect(body, name).not.toMatch(/(?:src|href|action)="(?:[a-z]+:)?\/\//i);
    }
  });

  it('escapes descriptions, templates, header values, response bodies and merge-field examples', async () => {
    for (const { name, body } of await everyPage()) {
      expect(body, name).not.toContain('<script>alert');
      expect(body, name).not.toContain('<img src=x');
    }
    const general = await (await get(`${webhookPath()}?tab=general`)).text();
    expect(general).toContain('Orders &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(general).toContain('value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"');
    const detail = await (await get(`${webhookPath()}/deliveries/${deliveryId}/executions/${executionId}`)).text();
    expect(detail).toContain('&lt;script&gt;alert(\\&quot;x\\&quot;)&lt;/script&gt;');
  });

  it('shows only the notices it knows: the query string cannot put text on the page', async () => {
    const known = await (await get(`${webhookPath()}?notice=saved`)).text();
    expect(known).toContain('Changes saved.');
    const unknown = await (await get(`${webhookPath()}?notice=${encodeURIComponent('<b>hello</b>')}`)).text();
    expect(unknown).not.toContain('hello');
    expect(unknown).not.toContain('role="status">');
  });
});

describe('credentials are write-only', () => {
  it('no page contains the signing secret, the basic-auth password or a credential header value', async () => {
    const key = SECRET.slice('whsec_'.length);
    for (const { name, body } of await everyPage()) {
      for (const secret of [SECRET, key, PASSWORD, API_KEY, Buffer.from(`shop:${PASSWORD}`).toString('base64')]) {
        expect(body, `${name} shows a credential`).not.toContain(secret);
      }
    }
    const general = await (await get(`${webhookPath()}?tab=general`)).text();
    // The credential header's field is empty, with the mask as its placeholder.
    expect(general).toMatch(/<input type="password" name="header_value" value="" [^>]*placeholder="••••••••wxyz \(unchanged\)"/);
    const auth = await (await get(`${webhookPath()}?tab=authentication`)).text();
    expect(auth).toMatch(/<input type="password" id="basic_password" name="password" value=""/);
    expect(auth).toContain('value="shop"');
  });

  it('keeps a credential header and the password when their fields are left empty', async () => {
    const before = (await dispatcher.storage.getWebhook(webhookId))!;
    const response = await post(`${webhookPath()}/general`, {
      url: before.url,
      description: 'Orders (renamed)',
      method: 'POST',
      trigger: ['order.Create'],
      header_name: ['X-Api-Key', 'X-Shop', 'X-New', ''],
      header_value: ['', 'plain', 'added', ''],
      priority: '5',
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe(`${BASE}/organizations/${ORG}/webhooks/${webhookId}?tab=general&notice=saved`);
    const saved = (await dispatcher.storage.getWebhook(webhookId))!;
    expect(saved.headers).toEqual({ 'X-Api-Key': API_KEY, 'X-Shop': 'plain', 'X-New': 'added' });
    expect(saved.priority).toBe(5);
    expect(saved.description).toBe('Orders (renamed)');
    expect(saved.uniqueQueueItems).toBeNull();

    const auth = await post(`${webhookPath()}/basic-auth`, { username: 'shop-2', password: '' });
    expect(auth.status).toBe(303);
    expect((await dispatcher.storage.getWebhook(webhookId))!.basicAuth).toEqual({ username: 'shop-2', password: PASSWORD });
  });

  it('rotates the secret to the one typed, without showing it, keeping the old one for the grace period', async () => {
    const next = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    const response = await post(`${webhookPath()}/rotate-secret`, { new_secret: next, grace_hours: '2' });
    expect(response.status).toBe(303);
    expect(await response.text()).toBe('');
    const saved = (await dispatcher.storage.getWebhook(webhookId))!;
    expect(saved.secret).toBe(next);
    expect(saved.previousSecrets.map((p) => p.secret)).toEqual([SECRET]);
    expect(saved.previousSecrets[0]!.expiresAt - Date.now()).toBeGreaterThan(7_000_000);
    const page = await (await get(`${webhookPath()}?tab=authentication&notice=secret-rotated`)).text();
    expect(page).not.toContain(next);
    expect(page).not.toContain(SECRET);
    expect(page).toContain('Secret rotated.');
  });
});

describe('authorize and tenant scoping', () => {
  it('asks authorize for every page and action, with the request and the organization of the path', async () => {
    const authorize = vi.fn(authorizeByHeader);
    const handler = createAdminHandler({ dispatcher, authorize, basePath: BASE });
    expect((await get(`${ORG}/webhooks`, ORG, handler)).status).toBe(200);
    expect(authorize).toHaveBeenLastCalledWith(expect.any(Request), ORG);
    expect((await get(webhookPath(), OTHER_ORG, handler)).status).toBe(403);
    expect(authorize).toHaveBeenLastCalledWith(expect.any(Request), ORG);
    const token = await tokenOf(ORG, handler);
    authorize.mockClear();
    expect((await post(`${webhookPath()}/disable`, {}, { handler, token, orgs: OTHER_ORG })).status).toBe(403);
    expect(authorize).toHaveBeenCalledTimes(1);
    expect((await dispatcher.getWebhook(webhookId)).enabled).toBe(true);
  });

  it('grants access only on true: a truthy value is a 403, a throw a 500 reported to onError and never shown', async () => {
    const truthy = createAdminHandler({ dispatcher, authorize: (() => 'yes') as unknown as AdminHandlerOptions['authorize'], basePath: BASE });
    expect((await get(`${ORG}/webhooks`, ORG, truthy)).status).toBe(403);
    const onError = vi.fn();
    const throwing = createAdminHandler({
      dispatcher,
      basePath: BASE,
      onError,
      authorize: () => {
        throw new Error('session store down: password=hunter2');
      },
    });
    const response = await get(`${ORG}/webhooks`, ORG, throwing);
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain('hunter2');
    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ message: expect.stringContaining('session store down') }), expect.any(Request));
  });

  it("answers 404 for another organization's webhook, delivery and execution, and for untenanted webhooks", async () => {
    const token = await tokenOf();
    const lists = await (await get(`${ORG}/webhooks`)).text();
    expect(lists).not.toContain(otherWebhookId);
    expect(lists).not.toContain(untenantedId);
    for (const path of [
      webhookPath(otherWebhookId),
      webhookPath(untenantedId),
      `${webhookPath()}/deliveries/${otherDeliveryId}/executions/${executionId}`,
      `${webhookPath()}/deliveries/${deliveryId}/executions/exe_unknown`,
      `${webhookPath(otherWebhookId)}/deliveries/${otherDeliveryId}/executions/${executionId}`,
    ]) {
      const response = await get(path);
      expect(response.status, path).toBe(404);
      expect(await response.text()).not.toContain('B-2');
    }
    for (const path of [`${webhookPath(otherWebhookId)}/disable`, `${webhookPath()}/deliveries/${otherDeliveryId}/redeliver`]) {
      expect((await post(path, {}, { token })).status, path).toBe(404);
    }
    expect((await dispatcher.getWebhook(otherWebhookId)).enabled).toBe(true);
  });

  it('answers unknown paths with 404 and wrong methods with 405 and Allow', async () => {
    expect((await get(`${ORG}/webhooks/${webhookId}/nothing`)).status).toBe(404);
    expect((await admin(new Request(`${ORIGIN}/elsewhere`))).status).toBe(404);
    const getAction = await get(`${webhookPath()}/disable`);
    expect(getAction.status).toBe(405);
    expect(getAction.headers.get('allow')).toBe('POST');
    const postPage = await post(webhookPath(), {});
    expect(postPage.status).toBe(405);
  });
});

describe('cross-site requests', () => {
  it('refuses a POST with a foreign Origin, even with a valid token and session', async () => {
    const response = await post(`${webhookPath()}/disable`, {}, { origin: 'https://evil.example' });
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('Cross-site request refused');
    expect((await dispatcher.getWebhook(webhookId)).enabled).toBe(true);
  });

  it('refuses Sec-Fetch-Site other than same-origin, and a POST with neither header', async () => {
    expect((await post(`${webhookPath()}/disable`, {}, { site: 'cross-site' })).status).toBe(403);
    expect((await post(`${webhookPath()}/disable`, {}, { site: 'same-site' })).status).toBe(403);
    expect((await post(`${webhookPath()}/disable`, {}, { origin: null })).status).toBe(403);
    expect((await dispatcher.getWebhook(webhookId)).enabled).toBe(true);
  });

  it('refuses a missing, wrong or other organization token', async () => {
    const otherToken = await tokenOf(OTHER_ORG);
    for (const token of [null, '', 'x'.repeat(43), otherToken]) {
      const response = await post(`${webhookPath()}/disable`, {}, { token });
      expect(response.status).toBe(403);
      expect(await response.text()).toContain('CSRF token');
    }
    expect((await dispatcher.getWebhook(webhookId)).enabled).toBe(true);
  });

  it('accepts the same origin, a trusted origin, and Sec-Fetch-Site same-origin without Origin', async () => {
    expect((await post(`${webhookPath()}/disable`, {})).status).toBe(303);
    expect((await dispatcher.getWebhook(webhookId)).enabled).toBe(false);
    expect((await post(`${webhookPath()}/enable`, {}, { origin: null, site: 'same-origin' })).status).toBe(303);
    expect((await dispatcher.getWebhook(webhookId)).enabled).toBe(true);
    const trusted = createAdminHandler({ dispatcher, authorize: authorizeByHeader, basePath: BASE, trustedOrigins: ['https://admin.example'] });
    const token = await tokenOf(ORG, trusted);
    expect((await post(`${webhookPath()}/enable`, {}, { handler: trusted, token, origin: 'https://admin.example' })).status).toBe(303);
  });

  it('issues tokens that hold across handlers sharing csrfSecret, and only there', async () => {
    const csrfSecret = 's'.repeat(40);
    const one = createAdminHandler({ dispatcher, authorize: authorizeByHeader, basePath: BASE, csrfSecret });
    const two = createAdminHandler({ dispatcher, authorize: authorizeByHeader, basePath: BASE, csrfSecret });
    const token = await tokenOf(ORG, one);
    expect((await post(`${webhookPath()}/enable`, {}, { handler: two, token })).status).toBe(303);
    expect((await post(`${webhookPath()}/enable`, {}, { handler: admin, token })).status).toBe(403);
  });
});

describe('forms', () => {
  it('shows a refused save again with the problems and what was typed (422), credentials left empty', async () => {
    const response = await post(`${webhookPath()}/general`, {
      url: 'ftp://nowhere.example',
      description: 'kept <b>draft</b>',
      method: 'POST',
      trigger: ['order.Create', 'nodot'],
      header_name: ['X-Api-Key'],
      header_value: ['typed-new-credential-value'],
      priority: '1',
    });
    expect(response.status).toBe(422);
    const page = await response.text();
    expect(page).toContain('The changes were not saved');
    expect(page).toContain('&quot;nodot&quot; is not entity.event');
    expect(page).toContain('value="kept &lt;b&gt;draft&lt;/b&gt;"');
    expect(page).not.toContain('typed-new-credential-value');
    const invalidUrl = await post(`${webhookPath()}/general`, { url: 'ftp://nowhere.example', method: 'POST', trigger: 'order.Create', priority: '1' });
    expect(invalidUrl.status).toBe(422);
    expect(await invalidUrl.text()).toContain('must use http or https');
    expect((await dispatcher.getWebhook(webhookId)).url).toBe(receiver.url('/hooks'));
  });

  it('checks each form with its schema: priority, method, lengths, the rotation form', async () => {
    const bad = await post(`${webhookPath()}/general`, { url: receiver.url('/x'), method: 'GET', trigger: 'order.Create', priority: 'high' });
    expect(bad.status).toBe(422);
    const page = await bad.text();
    expect(page).toContain('must be POST, PUT or PATCH');
    expect(page).toContain('must be a whole number');
    const rotate = await post(`${webhookPath()}/rotate-secret`, { new_secret: 'short', grace_hours: '-1' });
    expect(rotate.status).toBe(422);
    expect(await rotate.text()).toContain('must be 0 or more');
    const weak = await post(`${webhookPath()}/rotate-secret`, { new_secret: 'short', grace_hours: '1' });
    expect(weak.status).toBe(422);
    expect(await weak.text()).toContain('at least 8 bytes');
  });

  it('refuses bodies that are not url-encoded forms (415) or too large (413)', async () => {
    expect((await post(`${webhookPath()}/disable`, {}, { contentType: 'application/json' })).status).toBe(415);
    const small = createAdminHandler({ dispatcher, authorize: authorizeByHeader, basePath: BASE, maxBodyBytes: 1024 });
    const token = await tokenOf(ORG, small);
    expect((await post(`${webhookPath()}/payload`, { template: 'x'.repeat(5000) }, { handler: small, token })).status).toBe(413);
  });

  it('saves a template, reports a syntax error with its position, and an empty one restores the default payload', async () => {
    const broken = await post(`${webhookPath()}/payload`, { mime_type: 'application/json', template: '{"a": {{#each order.Lines}}' });
    expect(broken.status).toBe(422);
    expect(await broken.text()).toContain('payload.template');
    const saved = await post(`${webhookPath()}/payload`, { mime_type: 'text/plain', template: 'Order {{order.OrderCode}} <script>' });
    expect(saved.status).toBe(303);
    expect((await dispatcher.getWebhook(webhookId)).payload).toEqual({ mimeType: 'text/plain', template: 'Order {{order.OrderCode}} <script>' });
    const page = await (await get(`${webhookPath()}?tab=payload`)).text();
    expect(page).toContain('>Order {{order.OrderCode}} &lt;script&gt;</textarea>');
    expect((await post(`${webhookPath()}/payload`, { mime_type: 'text/plain', template: '  ' })).status).toBe(303);
    expect((await dispatcher.getWebhook(webhookId)).payload).toBeNull();
  });

  it('previews a template as JSON for the page script, and explains one that cannot render', async () => {
    const preview = await post(`${webhookPath()}/preview`, { mime_type: 'application/xml', template: '<order code="{{order.OrderCode}}"/>' });
    expect(preview.status).toBe(200);
    expect(preview.headers.get('content-type')).toContain('application/json');
    expect(await preview.json()).toEqual({ ok: true, body: '<order code="OrderCode-1"/>', contentType: 'application/xml; charset=utf-8' });
    const broken = (await (await post(`${webhookPath()}/preview`, { mime_type: 'application/xml', template: '<a>{{' })).json()) as { ok: boolean; error: string };
    expect(broken.ok).toBe(false);
    expect(broken.error).toMatch(/line 1/);
    const refused = await post(`${webhookPath()}/preview`, { template: 'x' }, { token: 'wrong' });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ ok: false });
  });

  it('rebuilds sample records from merge fields, arrays and nesting included', () => {
    expect(
      sampleFromMergeFields([
        { path: 'meta.id', type: 'string', example: 'evt' },
        { path: 'data.OrderCode', type: 'string', example: 'A-1' },
        { path: 'data.Total', type: 'number' },
        { path: 'data.Customer', type: 'object' },
        { path: 'data.Customer.Name', type: 'string', example: 'Ann' },
        { path: 'data.Lines[]', type: 'array' },
        { path: 'data.Lines[].Sku', type: 'string', example: 'S-1' },
      ]),
    ).toEqual({ OrderCode: 'A-1', Total: 1, Customer: { Name: 'Ann' }, Lines: [{ Sku: 'S-1' }] });
  });
});

describe('actions', () => {
  it('redelivers a finished delivery of the webhook and sends a test event', async () => {
    const before = receiver.requests.length;
    const redeliver = await post(`${webhookPath()}/deliveries/${deliveryId}/redeliver`, {});
    expect(redeliver.status).toBe(303);
    expect(redeliver.headers.get('location')).toContain('tab=history&notice=redelivered');
    await dispatcher.drain();
    await receiver.waitForRequests(before + 1);
    expect(receiver.requests.at(-1)!.headers['webhook-id']).toBe(deliveryId);

    const test = await post(`${webhookPath()}/test`, {});
    expect(test.status).toBe(303);
    expect(test.headers.get('location')).toContain('notice=test-succeeded');
    expect(receiver.requests.at(-1)!.headers['x-pakk-webhook-test']).toBe('true');
  });

  it('explains on the page what the dispatcher cannot do: redeliver a waiting delivery, send a test when stopped', async () => {
    const stopped = new WebhookDispatcher({ allowPrivateNetworks: true, autoStart: false });
    try {
      const handler = createAdminHandler({ dispatcher: stopped, authorize: authorizeByHeader, basePath: BASE });
      const webhook = await stopped.createWebhook({ url: receiver.url('/stopped'), triggers: [{ entity: 'order', event: 'Create' }], tenantId: ORG });
      const [waiting] = (await stopped.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: { OrderId: 5 } })).deliveries;
      const page = await (await get(webhookPath(webhook.id), ORG, handler)).text();
      const token = /name="csrf_token" value="([^"]+)"/.exec(page)![1]!;
      const redeliver = await post(`${webhookPath(webhook.id)}/deliveries/${waiting!.id}/redeliver`, {}, { handler, token });
      expect(redeliver.status).toBe(409);
      expect(await redeliver.text()).toContain('This delivery is pending: only finished deliveries can be redelivered.');
      const test = await post(`${webhookPath(webhook.id)}/test`, {}, { handler, token });
      expect(test.status).toBe(409);
      expect(await test.text()).toContain('The test event could not be sent');
    } finally {
      await stopped.close();
    }
  });

  it('duplicates into a new webhook of the same organization and opens it', async () => {
    const response = await post(`${webhookPath()}/duplicate`, {});
    expect(response.status).toBe(303);
    const copyId = /webhooks\/([^/?]+)\?/.exec(response.headers.get('location') ?? '')?.[1];
    expect(copyId).toBeDefined();
    expect(copyId).not.toBe(webhookId);
    const copy = await dispatcher.getWebhook(copyId!);
    expect(copy.tenantId).toBe(ORG);
    expect(copy.url).toBe((await dispatcher.getWebhook(webhookId)).url);
  });
});

describe('toNodeHandler', () => {
  async function listen(server: Server): Promise<string> {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('serves the page in Express (after a body parser too) and leaves other paths to the app', async () => {
    const app = express();
    app.use(express.urlencoded({ extended: false }));
    app.use(toNodeHandler(admin));
    app.get('/other', (_req, res) => void res.send('the app'));
    const server = createServer(app);
    const origin = await listen(server);
    try {
      const page = await fetch(`${origin}${BASE}/organizations/${ORG}/webhooks/${webhookId}`, { headers: { 'x-orgs': ORG } });
      expect(page.status).toBe(200);
      const token = /name="csrf_token" value="([^"]+)"/.exec(await page.text())![1]!;
      expect(await (await fetch(`${origin}/other`)).text()).toBe('the app');
      const disable = await fetch(`${origin}${BASE}/organizations/${ORG}/webhooks/${webhookId}/disable`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'x-orgs': ORG, origin, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf_token: token }).toString(),
      });
      expect(disable.status).toBe(303);
      expect((await dispatcher.getWebhook(webhookId)).enabled).toBe(false);
      const foreign = await fetch(`${origin}${BASE}/organizations/${ORG}/webhooks/${webhookId}/enable`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'x-orgs': ORG, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf_token: token }).toString(),
      });
      expect(foreign.status).toBe(403);
      expect((await dispatcher.getWebhook(webhookId)).enabled).toBe(false);
      // The refused POST's unread body does not block the keep-alive connection it came on.
      const enable = await fetch(`${origin}${BASE}/organizations/${ORG}/webhooks/${webhookId}/enable`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'x-orgs': ORG, origin, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf_token: token, padding: 'x'.repeat(100_000) }).toString(),
      });
      expect(enable.status).toBe(303);
      expect((await dispatcher.getWebhook(webhookId)).enabled).toBe(true);
    } finally {
      await dispatcher.updateWebhook(webhookId, { enabled: true });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('serves node:http directly, with a 404 outside basePath', async () => {
    const small = createAdminHandler({ dispatcher, authorize: authorizeByHeader, basePath: BASE, maxBodyBytes: 4096 });
    const server = createServer(toNodeHandler(small));
    const origin = await listen(server);
    try {
      expect((await fetch(`${origin}/elsewhere`)).status).toBe(404);
      const page = await fetch(`${origin}${BASE}/organizations/${ORG}/webhooks/${webhookId}`, { headers: { 'x-orgs': ORG } });
      expect(page.status).toBe(200);
      const token = /name="csrf_token" value="([^"]+)"/.exec(await page.text())![1]!;
      const post = (body: string) =>
        fetch(`${origin}${BASE}/organizations/${ORG}/webhooks/${webhookId}/preview`, {
          method: 'POST',
          headers: { 'x-orgs': ORG, origin, 'content-type': 'application/x-www-form-urlencoded' },
          body,
        });
      // Too large: the handler stops reading, the rest is drained; the next request is answered.
      expect((await post(new URLSearchParams({ csrf_token: token, template: 'x'.repeat(200_000) }).toString())).status).toBe(413);
      const preview = await post(new URLSearchParams({ csrf_token: token, mime_type: 'text/plain', template: 'Hi {{order.OrderCode}}' }).toString());
      expect(await preview.json()).toMatchObject({ ok: true, body: 'Hi OrderCode-1' });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
