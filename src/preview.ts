/**
 * What a merchant sees before anything is sent: the exact signed request a webhook would get for
 * an event, and the merge fields a template can use (ShopCtrl's "Available Mergefields").
 *
 * @module
 */
import type { Clock } from './clock.js';
import { applyTransform, buildSignedRequest, type PayloadTransform } from './delivery/attempt.js';
import { serialiseData } from './emitter.js';
import type { EntityFieldRegistry } from './entity-fields.js';
import { newId } from './ids.js';
import { listMergeFieldsOf, type MergeFieldInfo } from './mergefields/fields.js';
import { DEFAULTS } from './input/defaults.js';
import { listMergeFieldsSchema, type ListMergeFieldsInput } from './input/queries.js';
import { parseInput } from './input/parse.js';
import { payloadTemplateSchema } from './input/fields.js';
import { previewEventSchema } from './input/emit.js';
import { previewWebhookSchema } from './input/webhook.js';
import { renderPayload, renderTemplate, templateContext, type PayloadEvent, type PayloadTemplate } from './payload.js';
import type { WebhookRecord } from './storage/types.js';
import { maskHeaders } from './credentials/mask.js';
import { restoreMaskedCredentials } from './credentials/webhook-view.js';

/** What {@link Previewer.preview} returns. */
export interface PayloadPreview {
  body: string;
  contentType: string;
  headers: Record<string, string>;
  method?: string;
  url?: string;
}

export class Previewer {
  constructor(
    private readonly o: {
      clock: Clock;
      entityFields: EntityFieldRegistry;
      headerPrefix: string;
      userAgent: string;
      transform: PayloadTransform | undefined;
      /** The stored webhook with this id (throws when there is none). */
      getWebhook: (id: string) => Promise<WebhookRecord>;
    },
  ) {}

  /**
   * The exact body and headers a delivery of this event would carry, without sending it. For a
   * webhook (id or object) the headers are complete and signed with its secret, and the host's
   * `transform` is applied, so the preview verifies like a real delivery; for a bare template,
   * only the rendered body and content type.
   */
  async preview(webhookOrTemplate: string | WebhookRecord | PayloadTemplate, input: { entity: string; event: string; data: unknown }): Promise<PayloadPreview> {
    const { o } = this;
    const parsed = parseInput(previewEventSchema, input, 'previewPayload');
    // Data emit() would refuse (BigInt, cycles) is refused here the same way, before any rendering.
    const dataJson = serialiseData(parsed.data, 'previewPayload');
    const now = o.clock.now();
    const isTemplate =
      typeof webhookOrTemplate === 'object' && webhookOrTemplate !== null && 'template' in webhookOrTemplate && !('id' in webhookOrTemplate);
    let webhook: WebhookRecord | null = null;
    if (typeof webhookOrTemplate === 'string') webhook = await o.getWebhook(webhookOrTemplate);
    else if (!isTemplate) webhook = previewedWebhook(await this.unmasked(webhookOrTemplate));
    const event: PayloadEvent = {
      id: newId('evt', now),
      entity: parsed.entity,
      event: parsed.event,
      timestamp: new Date(now).toISOString(),
      tenantId: webhook?.tenantId ?? null,
      data: parsed.data,
    };
    if (!webhook) {
      const template = parseInput(payloadTemplateSchema, webhookOrTemplate, 'previewPayload');
      const { body, contentType } = renderTemplate(template, event, null);
      return { body, contentType, headers: { 'Content-Type': contentType } };
    }
    const rendered = renderPayload(webhook, event, o.entityFields, dataJson);
    let delivery = {
      id: newId('msg', now),
      tenantId: webhook.tenantId,
      entity: parsed.entity,
      event: parsed.event,
      contentType: rendered.contentType,
      isTest: false,
      body: rendered.body,
    };
    let target: WebhookRecord = webhook;
    if (o.transform) {
      // The preview shows what would really be sent, so the host's transform applies here too.
      const transformed = await applyTransform(o.transform, o.headerPrefix, webhook, delivery);
      delivery = { ...delivery, body: transformed.body };
      target = { ...webhook, headers: { ...webhook.headers, ...transformed.headers } };
    }
    const request = buildSignedRequest(target, delivery, o, now);
    // A preview is a read: credential headers show masked, the signature (no credential) in full.
    return { ...request, headers: maskHeaders(request.headers, this.signatureHeaders), contentType: rendered.contentType };
  }

  /** The built-in signature headers (lower-cased), shown in full in a preview. */
  private get signatureHeaders(): ReadonlySet<string> {
    return new Set(['webhook-signature', `${this.o.headerPrefix}-webhook-signature`.toLowerCase()]);
  }

  /**
   * A webhook being edited, as a form holds it after a read: its masked credentials replaced by
   * the stored ones (matched by id), so the preview signs and authenticates as a delivery would.
   */
  private async unmasked(given: unknown): Promise<unknown> {
    if (typeof given !== 'object' || given === null) return given;
    const id = (given as { id?: unknown }).id;
    let stored: WebhookRecord | null = null;
    if (typeof id === 'string') {
      try {
        stored = await this.o.getWebhook(id);
      } catch {
        stored = null; // not saved yet: a mask is then refused, as on create
      }
    }
    return restoreMaskedCredentials(given, stored, 'previewPayload');
  }

  /**
   * Merge fields a template can use: for an entity type in general (from its registered fields),
   * or, with `data`, for one record (the dynamic list for a specific order).
   */
  mergeFields(input: ListMergeFieldsInput): MergeFieldInfo[] {
    const parsed = parseInput(listMergeFieldsSchema, input, 'listMergeFields');
    const data = parsed.data !== undefined ? parsed.data : this.o.entityFields.sample(parsed.entity, parsed.event);
    const event: PayloadEvent = {
      id: 'evt_example',
      entity: parsed.entity,
      event: parsed.event,
      timestamp: new Date(0).toISOString(),
      tenantId: null,
      data,
    };
    return listMergeFieldsOf(templateContext(event, 'wh_example'));
  }
}

/** A webhook object given to a preview (saved, or being edited): checked, defaults filled in. */
function previewedWebhook(given: unknown): WebhookRecord {
  const parsed = parseInput(previewWebhookSchema, given, 'previewPayload');
  return {
    ...(parsed as unknown as WebhookRecord),
    method: parsed.method ?? DEFAULTS.method,
    headers: parsed.headers ?? {},
    basicAuth: parsed.basicAuth ?? null,
    tenantId: parsed.tenantId ?? null,
    previousSecrets: parsed.previousSecrets ?? [],
    payload: parsed.payload ?? null,
    payloadMode: parsed.payloadMode ?? 'full',
  };
}
