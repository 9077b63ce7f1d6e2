/**
 * The payload tools: what a merchant uses to build and try a webhook's payload before relying on
 * it: the merge fields a template can use, a preview of the exact request, and a real test send.
 *
 * @module
 */
import type { TestEventInput } from '../../input/queries.js';
import type { DeliveryRecord, ExecutionRecord, Trigger, WebhookRecord } from '../../storage/types.js';
import { optionalMethod, ownedWebhook, parse, queryOf, triggerOf, type ApiContext } from '../api-context.js';
import { jsonResponse as json } from '../http-errors.js';
import { PATHS, type Route, type RouteContext } from '../router.js';
import { serializeExecution, serializeMergeFields, serializePreview, serializeQueuedDelivery } from '../serialize.js';

/** The payload routes of one handler. */
export function payloadRoutes(api: ApiContext): Route[] {
  const { dispatcher, codes, schemas } = api;

  /** The trigger of `event_code`, else the webhook's first. */
  function eventOf(webhook: WebhookRecord, eventCode: string | undefined): Trigger {
    if (eventCode !== undefined) return triggerOf(codes, eventCode);
    return webhook.triggers[0] ?? { entity: 'order', event: 'Create' };
  }

  async function sendTest({ request, params, organizationId }: RouteContext): Promise<Response> {
    const webhook = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    const sendTestEvent = optionalMethod(dispatcher, 'sendTestEvent', 'send test events');
    const body = parse(schemas.testEventBody, codes.canonicalBody((await api.readBody(request, false)) ?? {}));
    const trigger = body.event_code !== undefined ? triggerOf(codes, body.event_code) : null;
    const input: NonNullable<TestEventInput> = {
      ...(trigger ? { entity: trigger.entity, event: trigger.event } : {}),
      ...(body.data !== undefined ? { data: body.data } : {}),
    };
    const result = await sendTestEvent(webhook.id, Object.keys(input).length > 0 ? input : undefined);
    const execution = executionOf(result);
    if (execution) return json(200, serializeExecution(execution, codes));
    const delivery = deliveryOf(result);
    // The dispatcher queued the test without waiting for it: its History will show the attempt.
    if (delivery) return json(202, serializeQueuedDelivery(delivery));
    throw new Error('sendTestEvent returned neither an execution nor a delivery');
  }

  async function preview({ request, params, organizationId }: RouteContext): Promise<Response> {
    const body = parse(schemas.previewBody, codes.canonicalBody(await api.readBody(request, true)));
    const webhook = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    const previewPayload = optionalMethod(dispatcher, 'previewPayload', 'preview payloads');
    const { entity, event } = eventOf(webhook, body.event_code);
    // The dispatcher masks credential headers (a preview is a read) and shows the signature in full.
    return json(200, serializePreview(await previewPayload(webhook.id, { entity, event, data: body.data })));
  }

  async function mergeFields(eventCode: string, data: unknown): Promise<Response> {
    const listMergeFields = optionalMethod(dispatcher, 'listMergeFields', 'list merge fields');
    const { entity, event } = triggerOf(codes, eventCode);
    const fields = await listMergeFields({ entity, event, ...(data !== undefined ? { data } : {}) });
    return json(200, serializeMergeFields(eventCode, fields));
  }

  async function knownMergeFields({ url }: RouteContext): Promise<Response> {
    const q = parse(schemas.mergeFieldsQuery, codes.canonicalBody(queryOf(url)));
    return mergeFields(q.event_code, undefined);
  }

  async function recordMergeFields({ request }: RouteContext): Promise<Response> {
    const body = parse(schemas.mergeFieldsBody, codes.canonicalBody(await api.readBody(request, true)));
    return mergeFields(body.event_code, body.data);
  }

  return [
    {
      method: 'POST',
      path: `${PATHS.webhook}/test`,
      operationId: 'sendTestEvent',
      summary: 'Send a test event',
      description: 'The receiver sees the test marker header (`X-Pakk-Webhook-Test: true` with the default prefix).',
      auth: true,
      tag: 'payloads',
      body: { schema: 'TestEventRequest', required: false },
      success: { status: 200, description: 'The execution of the test send (202 with the delivery when only queued).', schema: 'Execution' },
      errors: [400, 413, 415, 422, 501],
      run: sendTest,
    },
    {
      method: 'POST',
      path: `${PATHS.webhook}/preview`,
      operationId: 'previewPayload',
      summary: 'Preview a delivery',
      description:
        'The exact body and headers a delivery of this event would carry, signed with the current secret, without sending anything. ' +
        'Credential headers are masked; a template that cannot render this data answers 422 on `payload.template`.',
      auth: true,
      tag: 'payloads',
      body: { schema: 'PreviewRequest', required: true },
      success: { status: 200, description: 'The request, not sent.', schema: 'Preview' },
      errors: [400, 413, 415, 422, 501],
      run: preview,
    },
    {
      method: 'GET',
      path: `${PATHS.organization}/merge-fields`,
      operationId: 'listMergeFields',
      summary: 'Merge fields of an event',
      description: 'The fields a template for this event can use, from the entity\'s known fields. POST a sample record for its own fields.',
      auth: true,
      tag: 'payloads',
      query: schemas.mergeFieldsQuery,
      success: { status: 200, description: 'The merge fields.', schema: 'MergeFieldList' },
      errors: [422, 501],
      run: knownMergeFields,
    },
    {
      method: 'POST',
      path: `${PATHS.organization}/merge-fields`,
      operationId: 'listRecordMergeFields',
      summary: 'Merge fields of a sample record',
      description: 'The fields of one record (the dynamic list for a specific order), sent as JSON: no size limit of a query string.',
      auth: true,
      tag: 'payloads',
      body: { schema: 'MergeFieldsRequest', required: true },
      success: { status: 200, description: 'The merge fields.', schema: 'MergeFieldList' },
      errors: [400, 413, 415, 422, 501],
      run: recordMergeFields,
    },
  ];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The execution record in whatever `sendTestEvent` returned (the record itself or `{ execution }`). */
function executionOf(result: unknown): ExecutionRecord | null {
  const looksLikeExecution = (v: unknown): v is ExecutionRecord =>
    isRecord(v) && typeof v.deliveryId === 'string' && typeof v.startedAt === 'number' && typeof v.status === 'number';
  if (looksLikeExecution(result)) return result;
  if (isRecord(result) && looksLikeExecution(result.execution)) return result.execution;
  return null;
}

/** The delivery in whatever `sendTestEvent` returned (the record itself or `{ delivery }`). */
function deliveryOf(result: unknown): DeliveryRecord | null {
  const looksLikeDelivery = (v: unknown): v is DeliveryRecord =>
    isRecord(v) && typeof v.id === 'string' && typeof v.webhookId === 'string' && typeof v.status === 'string';
  if (looksLikeDelivery(result)) return result;
  if (isRecord(result) && looksLikeDelivery(result.delivery)) return result.delivery;
  return null;
}
