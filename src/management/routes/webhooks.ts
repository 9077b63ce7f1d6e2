/**
 * The webhook routes: list, create, read, change, delete, reveal and rotate the secret.
 *
 * @module
 */
import { HttpError, jsonResponse as json } from '../http-errors.js';
import { optionalMethod, ownedWebhook, parse, queryOf, triggersOf, type ApiContext } from '../api-context.js';
import { PATHS, type Route, type RouteContext } from '../router.js';
import { listWebhooksQuerySchema, rotateSecretBodySchema } from '../schemas.js';
import { serializeSavedWebhook, serializeWebhook } from '../serialize.js';
import { createWebhookInput, setHeaderMasksAside, setSecretMaskAside, updateWebhookInput } from '../webhook-input.js';

const SECRET_HINT = 'cannot be changed with PATCH; use POST …/rotate-secret';

/** The webhook routes of one handler. */
export function webhookRoutes(api: ApiContext): Route[] {
  const { dispatcher, codes, schemas } = api;

  async function listWebhooks({ url, organizationId }: RouteContext): Promise<Response> {
    const q = parse(listWebhooksQuerySchema, queryOf(url));
    const page = await dispatcher.listWebhooks({ tenantId: organizationId, limit: q.limit, cursor: q.cursor ?? null });
    return json(200, {
      // The tenant filter is the storage's job; checking again costs nothing and survives a buggy adapter.
      data: page.items.filter((w) => w.tenantId === organizationId).map((w) => serializeWebhook(w, codes)),
      next_cursor: page.nextCursor,
    });
  }

  async function createWebhook({ request, organizationId }: RouteContext): Promise<Response> {
    // A masked header value is no valid header value: set aside, it reaches the dispatcher, which
    // refuses it with its own message (there is no stored value to keep on create).
    const { rest, maskedHeaders } = setHeaderMasksAside(codes.canonicalBody(await api.readBody(request, true)));
    const body = parse(schemas.createWebhookBody, rest);
    if (body.headers !== undefined) Object.assign(body.headers, maskedHeaders);
    const webhook = await dispatcher.createWebhook(createWebhookInput(body, triggersOf(codes, body) ?? [], organizationId));
    const location = `${api.basePath}/v1/organizations/${encodeURIComponent(organizationId)}/webhooks/${encodeURIComponent(webhook.id)}`;
    return json(201, serializeSavedWebhook(webhook, codes), { location });
  }

  async function getWebhook({ params, organizationId }: RouteContext): Promise<Response> {
    return json(200, serializeWebhook(await ownedWebhook(api, organizationId, params.webhookId ?? ''), codes));
  }

  async function updateWebhook({ request, params, organizationId }: RouteContext): Promise<Response> {
    // Masks a GET showed are set aside before the schema (a mask is no valid header value) and
    // handed to the dispatcher, which keeps the stored value for its own mask and refuses others.
    // Masked `basic_auth.password` and `tls.client_key` pass the schema as they are, for the same end.
    const { rest: withoutSecret, maskedSecret } = setSecretMaskAside(codes.canonicalBody(await api.readBody(request, true)));
    const { rest, maskedHeaders } = setHeaderMasksAside(withoutSecret);
    const body = parse(schemas.updateWebhookBody, rest, { secret: SECRET_HINT });
    if (body.headers !== undefined) Object.assign(body.headers, maskedHeaders);
    const current = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    // The masked secret of a GET sent back unchanged keeps it; a changed one is no way to set it.
    if (maskedSecret !== undefined && maskedSecret !== current.secret) {
      throw new HttpError(422, 'invalid_input', `secret: ${SECRET_HINT}`, 'secret', {}, [{ field: 'secret', message: SECRET_HINT }]);
    }
    const updated = await dispatcher.updateWebhook(current.id, updateWebhookInput(body, triggersOf(codes, body)));
    return json(200, serializeSavedWebhook(updated, codes));
  }

  async function deleteWebhook({ params, organizationId }: RouteContext): Promise<Response> {
    const current = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    await dispatcher.deleteWebhook(current.id);
    return new Response(null, { status: 204, headers: { 'cache-control': 'no-store' } });
  }

  async function revealSecret({ params, organizationId }: RouteContext): Promise<Response> {
    const current = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    const getWebhookSecret = optionalMethod(dispatcher, 'getWebhookSecret', 'reveal secrets');
    return json(200, { secret: await getWebhookSecret(current.id) });
  }

  async function rotateSecret({ request, params, organizationId }: RouteContext): Promise<Response> {
    const body = parse(rotateSecretBodySchema, (await api.readBody(request, false)) ?? {});
    const current = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    const rotated = await dispatcher.rotateSecret(
      current.id,
      body.grace_period_ms !== undefined ? { gracePeriodMs: body.grace_period_ms } : undefined,
    );
    return json(200, serializeWebhook(rotated, codes));
  }

  return [
    {
      method: 'GET',
      path: PATHS.webhooks,
      operationId: 'listWebhooks',
      summary: 'List webhooks',
      description: 'Newest first, credentials masked.',
      auth: true,
      query: listWebhooksQuerySchema,
      success: { status: 200, description: 'A page of webhooks.', schema: 'WebhookList' },
      errors: [422],
      run: listWebhooks,
    },
    {
      method: 'POST',
      path: PATHS.webhooks,
      operationId: 'createWebhook',
      summary: 'Create webhook',
      description:
        'Every setting of the library\'s `createWebhook` in snake_case. The answer shows the secret in clear, as rotation does; every read ' +
        'masks it (see `GET …/secret`) and every other credential (`basic_auth.password`, `tls.client_key`, credential headers).',
      auth: true,
      body: { schema: 'CreateWebhookRequest', required: true },
      success: { status: 201, description: 'Created (with the secret).', schema: 'Webhook' },
      errors: [400, 413, 415, 422],
      run: createWebhook,
    },
    {
      method: 'GET',
      path: PATHS.webhook,
      operationId: 'getWebhook',
      summary: 'Get a webhook',
      auth: true,
      success: { status: 200, description: 'The webhook, credentials masked.', schema: 'Webhook' },
      errors: [],
      run: getWebhook,
    },
    {
      method: 'PATCH',
      path: PATHS.webhook,
      operationId: 'updateWebhook',
      summary: 'Update a webhook',
      description: 'A field left out keeps its value; `null` removes it; a mask a read showed keeps the stored credential.',
      auth: true,
      body: { schema: 'UpdateWebhookRequest', required: true },
      success: { status: 200, description: 'The updated webhook, credentials masked.', schema: 'Webhook' },
      errors: [400, 413, 415, 422],
      run: updateWebhook,
    },
    {
      method: 'DELETE',
      path: PATHS.webhook,
      operationId: 'deleteWebhook',
      summary: 'Delete a webhook',
      description: 'Its waiting deliveries are cancelled.',
      auth: true,
      success: { status: 204, description: 'Deleted.' },
      errors: [],
      run: deleteWebhook,
    },
    {
      method: 'GET',
      path: `${PATHS.webhook}/secret`,
      operationId: 'getWebhookSecret',
      summary: 'Reveal the signing secret',
      description: 'The one read that answers the secret in clear (as Svix\'s "reveal"). Every other read masks it.',
      auth: true,
      success: { status: 200, description: 'The current signing secret.', schema: 'WebhookSecret' },
      errors: [501],
      run: revealSecret,
    },
    {
      method: 'POST',
      path: `${PATHS.webhook}/rotate-secret`,
      operationId: 'rotateSecret',
      summary: 'Rotate the signing secret',
      description: 'The old secret keeps signing alongside the new one for the grace period.',
      auth: true,
      body: { schema: 'RotateSecretRequest', required: false },
      success: { status: 200, description: 'The webhook with its new secret.', schema: 'Webhook' },
      errors: [400, 413, 415, 422],
      run: rotateSecret,
    },
  ];
}
