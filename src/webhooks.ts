/**
 * Webhook records: create, read, list, change, delete, duplicate, rotate the secret, with the
 * checks a save makes (headers, URL against the address guard, the template test-rendered and its
 * merge fields checked). The dispatcher's public methods delegate here.
 *
 * @module
 */
import type { Clock } from './clock.js';
import type { EntityFieldRegistry } from './entity-fields.js';
import { TemplateRenderError, TemplateSyntaxError, WebhookNotFoundError, WebhookValidationError } from './errors.js';
import type { EventBus } from './event-bus.js';
import { newId } from './ids.js';
import { unknownMergeFields, type SaveWarning } from './mergefields/unknown-fields.js';
import { compileTemplate } from './mergefields/compile.js';
import { validateTemplate } from './mergefields/validate.js';
import { DEFAULTS } from './input/defaults.js';
import { createWebhookInputSchema, rotateSecretSchema, updateWebhookSchema, type CreateWebhookInput, type RotateSecretInput, type UpdateWebhookInput } from './input/webhook.js';
import { listWebhooksSchema, type ListWebhooksInput } from './input/queries.js';
import { parseInput } from './input/parse.js';
import { templateContext, type PayloadEvent, type PayloadTemplate } from './payload.js';
import { generateSecret } from './signature.js';
import type { Page, WebhookRecord, WebhookStorage } from './storage/types.js';
import { checkUrlHost, type AddressGuardOptions } from './transport/address-guard.js';
import { maskWebhook, restoreMaskedCredentials } from './credentials/webhook-view.js';

/**
 * A webhook as the dispatcher returns it. Credentials are write-only: the signing secret(s), the
 * basic-auth password, the TLS client key and credential header values (`Authorization`,
 * `Cookie`, names with token, secret, key, password, signature) come back masked (`••••••••`,
 * or `••••••••` and the last 4 characters of a value of 24 or more). Sending a mask back in
 * `updateWebhook` keeps the stored value. The secret itself is in clear only in the answers of
 * `createWebhook`, `duplicateWebhook` and `rotateSecret`, and from `getWebhookSecret`.
 */
export type Webhook = WebhookRecord;

/**
 * A webhook as `createWebhook` and `updateWebhook` return it: the saved webhook, and what the save
 * found worth telling the merchant without refusing it (unknown merge fields, see the dispatcher's
 * `strictMergeFields`). Empty when all is well.
 */
export type SavedWebhook = Webhook & { warnings: SaveWarning[] };

/** What {@link WebhookManager} works with. */
export interface WebhookManagerOptions {
  storage: WebhookStorage;
  clock: Clock;
  bus: EventBus;
  entityFields: EntityFieldRegistry;
  addressGuard: AddressGuardOptions;
  /** Lower-case header names the dispatcher sets itself. */
  reservedHeaders: ReadonlySet<string>;
  secretRotationGraceMs: number;
  strictMergeFields: boolean;
  /** This process changed the webhook: forget what was read of it. */
  forget: (webhookId: string) => void;
  /** Webhooks were created: event lookups must ask storage again. */
  forgetMatches: () => void;
  /** The webhook was re-enabled: its failure count starts afresh. */
  resetHealth: (webhookId: string) => Promise<void>;
}

export class WebhookManager {
  constructor(private readonly o: WebhookManagerOptions) {}

  async create(input: CreateWebhookInput): Promise<SavedWebhook> {
    // A mask is no credential: refused with its own message before the schema sees it.
    const parsed = parseInput(createWebhookInputSchema, restoreMaskedCredentials(input, null, 'createWebhook'), 'createWebhook');
    const headers = parsed.headers ?? {};
    this.checkHeaders(headers, parsed.basicAuth ?? null, 'createWebhook');
    this.checkUrl(parsed.url, 'createWebhook');
    const warnings = parsed.payload ? this.checkTemplate(parsed.payload, parsed.triggers, parsed.payloadSample, 'createWebhook') : [];
    const now = this.o.clock.now();
    const webhook: WebhookRecord = {
      id: newId('wh', now),
      url: parsed.url,
      method: parsed.method ?? DEFAULTS.method,
      triggers: parsed.triggers,
      headers,
      basicAuth: parsed.basicAuth ?? null,
      priority: parsed.priority ?? DEFAULTS.priority,
      enabled: parsed.enabled ?? true,
      disabledReason: null,
      tenantId: parsed.tenantId ?? null,
      secret: parsed.secret ?? generateSecret(),
      previousSecrets: [],
      description: parsed.description ?? null,
      metadata: parsed.metadata ?? {},
      retryPolicy: parsed.retry ?? null,
      uniqueQueueItems: uniqueQueueItemsOf(parsed.uniqueQueueItems),
      payload: parsed.payload ?? null,
      payloadMode: parsed.payloadMode ?? 'full',
      tls: tlsOf(parsed.tls),
      concurrency: parsed.concurrency ?? null,
      rateLimit: parsed.rateLimit ?? null,
      ordering: parsed.ordering ?? 'none',
      createdAt: now,
      updatedAt: now,
    };
    await this.o.storage.insertWebhook(webhook);
    this.o.forgetMatches();
    this.o.bus.notify('webhook.created', { webhookId: webhook.id, tenantId: webhook.tenantId });
    // The new secret is shown once, here; every other credential stays masked.
    return { ...maskWebhook(webhook, true), warnings };
  }

  /** The webhook with this id, credentials masked. @throws {WebhookNotFoundError} */
  async get(id: string): Promise<Webhook> {
    return maskWebhook(await this.record(id));
  }

  /** The stored webhook, credentials in clear: for sending, never for answers. @throws {WebhookNotFoundError} */
  async record(id: string): Promise<WebhookRecord> {
    const webhook = await this.o.storage.getWebhook(this.requireId(id, 'id'));
    if (!webhook) throw new WebhookNotFoundError(id);
    return webhook;
  }

  /** The webhook's current signing secret, in clear. @throws {WebhookNotFoundError} */
  async secret(id: string): Promise<string> {
    return (await this.record(id)).secret;
  }

  /** Webhooks, newest first, optionally of one tenant. */
  async list(query?: ListWebhooksInput): Promise<Page<Webhook>> {
    const parsed = parseInput(listWebhooksSchema, query, 'listWebhooks') ?? {};
    const page = await this.o.storage.listWebhooks({
      ...(parsed.tenantId !== undefined ? { tenantId: parsed.tenantId } : {}),
      ...(parsed.enabled !== undefined ? { enabled: parsed.enabled } : {}),
      limit: parsed.limit ?? DEFAULTS.listLimit,
      cursor: parsed.cursor ?? null,
    });
    return { items: page.items.map((w) => maskWebhook(w)), nextCursor: page.nextCursor };
  }

  /**
   * Changes a webhook. Fields left out keep their value; `enabled: true` also clears a
   * `disabledReason`. @throws {WebhookNotFoundError} {@link WebhookValidationError}
   */
  async update(id: string, patch: UpdateWebhookInput): Promise<SavedWebhook> {
    const current = await this.record(id);
    // Masks a reader saw come back as the stored values (before the schema: a mask is no valid header value).
    const parsed = parseInput(updateWebhookSchema, restoreMaskedCredentials(patch, current, 'updateWebhook'), 'updateWebhook');
    const next: WebhookRecord = { ...structuredClone(current), updatedAt: this.o.clock.now() };
    if (parsed.url !== undefined) {
      this.checkUrl(parsed.url, 'updateWebhook');
      next.url = parsed.url;
    }
    if (parsed.method !== undefined) next.method = parsed.method;
    if (parsed.triggers !== undefined) next.triggers = parsed.triggers;
    if (parsed.headers !== undefined) next.headers = parsed.headers;
    if (parsed.basicAuth !== undefined) next.basicAuth = parsed.basicAuth;
    if (parsed.priority !== undefined) next.priority = parsed.priority;
    if (parsed.description !== undefined) next.description = parsed.description;
    if (parsed.metadata !== undefined) next.metadata = parsed.metadata;
    if (parsed.retry !== undefined) next.retryPolicy = parsed.retry;
    if (parsed.uniqueQueueItems !== undefined) next.uniqueQueueItems = uniqueQueueItemsOf(parsed.uniqueQueueItems);
    if (parsed.payloadMode !== undefined) next.payloadMode = parsed.payloadMode;
    if (parsed.tls !== undefined) next.tls = tlsOf(parsed.tls);
    if (parsed.payload !== undefined) next.payload = parsed.payload;
    if (parsed.concurrency !== undefined) next.concurrency = parsed.concurrency;
    if (parsed.rateLimit !== undefined) next.rateLimit = parsed.rateLimit;
    if (parsed.ordering !== undefined) next.ordering = parsed.ordering;
    const warnings =
      next.payload && (parsed.payload !== undefined || parsed.triggers !== undefined || parsed.payloadSample !== undefined)
        ? this.checkTemplate(next.payload, next.triggers, parsed.payloadSample, 'updateWebhook')
        : [];
    const reenabled = parsed.enabled === true && !current.enabled;
    if (parsed.enabled !== undefined) {
      next.enabled = parsed.enabled;
      if (parsed.enabled) next.disabledReason = null;
    }
    this.checkHeaders(next.headers, next.basicAuth, 'updateWebhook');
    this.o.forget(id);
    if (!(await this.o.storage.updateWebhook(next))) throw new WebhookNotFoundError(id);
    this.o.forget(id);
    // Re-enabling starts the failure count afresh, or auto-disable would strike again at once.
    if (reenabled) {
      await this.o.resetHealth(id);
    }
    this.o.bus.notify('webhook.updated', { webhookId: id, tenantId: next.tenantId });
    return { ...maskWebhook(next), warnings };
  }

  /** Deletes a webhook; its pending deliveries are cancelled. @throws {WebhookNotFoundError} */
  async delete(id: string): Promise<void> {
    const current = await this.record(id);
    this.o.forget(id);
    if (!(await this.o.storage.deleteWebhook(id))) throw new WebhookNotFoundError(id);
    this.o.forget(id);
    this.o.bus.notify('webhook.deleted', { webhookId: id, tenantId: current.tenantId });
  }

  /**
   * Copies a webhook under a new id with a new secret: the documented way to revoke a leaked
   * `X-Pakk-WebhookID` or secret (disable the old one, hand out the copy). The copy starts
   * enabled unless `enabled: false` is passed. Credentials are copied here, never through a reader.
   */
  async duplicate(id: string, overrides: { enabled?: boolean } = {}): Promise<SavedWebhook> {
    const source = await this.record(id);
    return this.create({
      url: source.url,
      method: source.method as 'POST',
      triggers: source.triggers,
      headers: source.headers,
      basicAuth: source.basicAuth,
      priority: source.priority,
      enabled: overrides.enabled ?? true,
      tenantId: source.tenantId,
      description: source.description,
      metadata: source.metadata,
      retry: source.retryPolicy,
      payload: source.payload,
      payloadMode: source.payloadMode,
      tls: source.tls,
      concurrency: source.concurrency,
      rateLimit: source.rateLimit,
      ordering: source.ordering,
      uniqueQueueItems: source.uniqueQueueItems
        ? source.uniqueQueueItems.keyPath === null
          ? true
          : { keyPath: source.uniqueQueueItems.keyPath }
        : false,
    });
  }

  /**
   * Replaces the signing secret. The old secret keeps signing alongside the new one for
   * `gracePeriodMs` (default 24 h) so receivers can switch without dropping deliveries.
   */
  async rotateSecret(id: string, input?: RotateSecretInput): Promise<Webhook> {
    // A mask read back is no new secret: refused, naming the field.
    const parsed = parseInput(rotateSecretSchema, restoreMaskedCredentials(input, null, 'rotateSecret'), 'rotateSecret') ?? {};
    const current = await this.record(id);
    const now = this.o.clock.now();
    const grace = parsed.gracePeriodMs ?? this.o.secretRotationGraceMs;
    const next: WebhookRecord = {
      ...current,
      secret: parsed.secret ?? generateSecret(),
      previousSecrets: [
        ...(grace > 0 ? [{ secret: current.secret, expiresAt: now + grace }] : []),
        ...current.previousSecrets.filter((p) => p.expiresAt > now),
      ],
      updatedAt: now,
    };
    if (!(await this.o.storage.updateWebhook(next))) throw new WebhookNotFoundError(id);
    this.o.forget(id);
    this.o.bus.notify('webhook.updated', { webhookId: id, tenantId: next.tenantId });
    // The new secret is shown once, here.
    return maskWebhook(next, true);
  }

  private checkHeaders(headers: Record<string, string>, basicAuth: WebhookRecord['basicAuth'], context: string): void {
    const issues = Object.keys(headers)
      .filter((name) => this.o.reservedHeaders.has(name.toLowerCase()))
      .map((name) => ({ path: `headers.${name}`, message: 'is set by the dispatcher and cannot be overridden' }));
    const authorization = Object.keys(headers).find((name) => name.toLowerCase() === 'authorization');
    if (basicAuth && authorization !== undefined) {
      issues.push({ path: `headers.${authorization}`, message: 'conflicts with basicAuth; use one or the other' });
    }
    if (issues.length > 0) throw new WebhookValidationError(issues, { context });
  }

  /**
   * Compiles a template and test-renders it with sample data (the merchant's, or generated from
   * each trigger's entity fields), so syntax errors (with line and column) and templates that
   * cannot produce valid output are reported when the webhook is saved. Returns the warnings about
   * merge fields the triggers' entities are not known to have (errors with `strictMergeFields`).
   */
  private checkTemplate(
    template: PayloadTemplate,
    triggers: Array<{ entity: string; event: string }>,
    sample: unknown,
    context: string,
  ): SaveWarning[] {
    const trigger = triggers[0] ?? { entity: 'order', event: 'Create' };
    const entity = trigger.entity === '*' ? 'order' : trigger.entity;
    const eventName = trigger.event === '*' ? 'Create' : trigger.event;
    const data = sample !== undefined ? sample : this.o.entityFields.sample(entity, eventName);
    const event: PayloadEvent = { id: 'evt_sample', entity, event: eventName, timestamp: new Date(0).toISOString(), tenantId: null, data };
    try {
      validateTemplate(template.template, template.mimeType, templateContext(event, 'wh_sample'));
    } catch (error) {
      if (error instanceof TemplateSyntaxError || error instanceof TemplateRenderError || error instanceof WebhookValidationError) {
        throw new WebhookValidationError([{ path: 'payload.template', message: error.message }], { context, cause: error });
      }
      throw error;
    }
    const { fields } = compileTemplate(template.template, template.mimeType);
    const warnings = unknownMergeFields(fields, triggers, this.o.entityFields, sample);
    if (this.o.strictMergeFields && warnings.length > 0) {
      throw new WebhookValidationError(
        warnings.map((w) => ({ path: w.field, message: w.message })),
        { context },
      );
    }
    return warnings;
  }

  /**
   * Rejects URLs that are blocked whatever they resolve to (IP literals in blocked ranges,
   * `localhost`) with a clear error now, instead of a failed delivery later. The check at
   * connect time, on the resolved address, remains the authority.
   */
  private checkUrl(url: string, context: string): void {
    const verdict = checkUrlHost(new URL(url), this.o.addressGuard);
    if (verdict && !verdict.allowed) {
      throw new WebhookValidationError(
        [
          {
            path: 'url',
            message: `points to a ${verdict.range} address (${verdict.address}); deliveries there are blocked. Allow it with allowPrivateNetworks or allowedCidrs`,
          },
        ],
        { context },
      );
    }
  }

  requireId(id: unknown, field: string): string {
    if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
      throw new WebhookValidationError([{ path: field, message: 'must be a non-empty string' }]);
    }
    return id;
  }
}

function tlsOf(
  input: { clientCertificate?: string | null; clientKey?: string | null; ca?: string | null; rejectUnauthorized?: boolean } | null | undefined,
): WebhookRecord['tls'] {
  if (!input) return null;
  return {
    clientCertificate: input.clientCertificate ?? null,
    clientKey: input.clientKey ?? null,
    ca: input.ca ?? null,
    rejectUnauthorized: input.rejectUnauthorized ?? true,
  };
}

function uniqueQueueItemsOf(input: boolean | { keyPath: string } | undefined): WebhookRecord['uniqueQueueItems'] {
  if (!input) return null;
  return { keyPath: input === true ? null : input.keyPath };
}
