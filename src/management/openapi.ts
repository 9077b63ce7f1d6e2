/**
 * The OpenAPI 3.1 document of the management API, generated from the route table and the zod
 * schemas with `z.toJSONSchema()`: nothing here restates a schema by hand, so the document cannot
 * drift from what the handler validates.
 *
 * @module
 */
import { z } from 'zod';
import { VERSION } from '../version.js';
import {
  deliveryQueuedResponseSchema,
  errorResponseSchema,
  executionListResponseSchema,
  executionResponseSchema,
  openApiDocumentSchema,
  rotateSecretBodySchema,
  webhookListResponseSchema,
  webhookSecretResponseSchema,
  webhookResponseSchema,
  type ApiSchemas,
} from './schemas.js';
import {
  deliveryListResponseSchema,
  deliveryResponseSchema,
  mergeFieldListResponseSchema,
  previewResponseSchema,
  retryFailedBodySchema,
  retryFailedResponseSchema,
} from './delivery-schemas.js';
import { basicAuthBodySchema, rateLimitBodySchema, retryPolicyBodySchema, tlsBodySchema } from './settings-schemas.js';

/** Names of the schemas under `components.schemas`. */
export type SchemaId =
  | 'Error'
  | 'Webhook'
  | 'WebhookList'
  | 'Execution'
  | 'ExecutionList'
  | 'DeliveryQueued'
  | 'CreateWebhookRequest'
  | 'UpdateWebhookRequest'
  | 'RotateSecretRequest'
  | 'WebhookSecret'
  | 'TestEventRequest'
  | 'Delivery'
  | 'DeliveryList'
  | 'RetryFailedRequest'
  | 'RetryFailedResult'
  | 'PreviewRequest'
  | 'Preview'
  | 'MergeFieldsRequest'
  | 'MergeFieldList'
  | 'BasicAuth'
  | 'TlsSettings'
  | 'RetryPolicy'
  | 'RateLimit'
  | 'OpenApiDocument';

/** What the document needs to know about one route. */
export interface RouteDoc {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path template below the base path, e.g. `/v1/organizations/{organizationId}/webhooks`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  /** False only for the document itself. */
  auth: boolean;
  /** The group the route is listed under (default `webhooks`; `meta` without `auth`). */
  tag?: 'webhooks' | 'deliveries' | 'payloads';
  query?: z.ZodType;
  body?: { schema: SchemaId; required: boolean };
  success: { status: number; description: string; schema?: SchemaId };
  /** Error statuses this route can answer besides the common ones. */
  errors: number[];
}

const PATH_PARAMS: Record<string, string> = {
  organizationId: 'The organization (tenant) that owns the webhooks.',
  webhookId: 'ID of the webhook subscription.',
  deliveryId: 'ID of the delivery (the `webhook-id` header the receiver saw), from the History.',
};

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed JSON body (`malformed_json`), or a body that ended early because the client disconnected (`request_aborted`).',
  403: 'The host\'s authorize() refused the caller for this organization.',
  404: 'Unknown route, or no such webhook/delivery in this organization.',
  409: 'The delivery is not in a state this allows: redeliver needs an ended delivery, cancel a waiting one.',
  413: 'Request body over the size limit.',
  415: 'The body is not `application/json`.',
  422: 'Validation failed; `issues` lists every problem as `{ field, message }`; `field` names the first, `message` sums them all up.',
  500: 'Internal error (details are logged, never returned).',
  501:
    'The dispatcher lacks the optional method this route needs (`sendTestEvent`, `getWebhookSecret`, `listDeliveries`, ' +
    '`cancelDelivery`, `retryFailed`, `previewPayload`, `listMergeFields`).',
  503: 'The dispatcher is shutting down.',
};

/** Builds the document for routes mounted under `basePath`. */
export function buildOpenApiDocument(routes: readonly RouteDoc[], schemas: ApiSchemas, basePath: string): Record<string, unknown> {
  const registry = z.registry<{ id: SchemaId }>();
  const register = (schema: z.ZodType, id: SchemaId) => registry.add(schema, { id });
  register(errorResponseSchema, 'Error');
  register(webhookResponseSchema, 'Webhook');
  register(webhookListResponseSchema, 'WebhookList');
  register(executionResponseSchema, 'Execution');
  register(executionListResponseSchema, 'ExecutionList');
  register(deliveryQueuedResponseSchema, 'DeliveryQueued');
  register(schemas.createWebhookBody, 'CreateWebhookRequest');
  register(schemas.updateWebhookBody, 'UpdateWebhookRequest');
  register(rotateSecretBodySchema, 'RotateSecretRequest');
  register(webhookSecretResponseSchema, 'WebhookSecret');
  register(schemas.testEventBody, 'TestEventRequest');
  register(deliveryResponseSchema, 'Delivery');
  register(deliveryListResponseSchema, 'DeliveryList');
  register(retryFailedBodySchema, 'RetryFailedRequest');
  register(retryFailedResponseSchema, 'RetryFailedResult');
  register(schemas.previewBody, 'PreviewRequest');
  register(previewResponseSchema, 'Preview');
  register(schemas.mergeFieldsBody, 'MergeFieldsRequest');
  register(mergeFieldListResponseSchema, 'MergeFieldList');
  register(basicAuthBodySchema, 'BasicAuth');
  register(tlsBodySchema, 'TlsSettings');
  register(retryPolicyBodySchema, 'RetryPolicy');
  register(rateLimitBodySchema, 'RateLimit');
  register(openApiDocumentSchema, 'OpenApiDocument');

  // `input`: request bodies and query strings are documented as clients send them (strings in
  // the query, before coercion). Response schemas have no transforms, so both views agree.
  const generated = z.toJSONSchema(registry, { io: 'input', uri: (id) => `#/components/schemas/${id}` });
  const components: Record<string, unknown> = {};
  for (const [id, schema] of Object.entries(generated.schemas)) {
    const { $schema: _s, $id: _i, ...rest } = schema as Record<string, unknown>;
    components[id] = rest;
  }
  const ref = (id: SchemaId) => ({ $ref: `#/components/schemas/${id}` });
  const errorResponse = (status: number) => ({
    description: ERROR_DESCRIPTIONS[status] ?? 'Error.',
    content: { 'application/json': { schema: ref('Error') } },
  });

  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const fullPath = `${basePath}${route.path}`;
    const parameters: unknown[] = [...route.path.matchAll(/\{([^}]+)\}/g)].map(([, name = '']) => ({
      name,
      in: 'path',
      required: true,
      description: PATH_PARAMS[name],
      schema: { type: 'string' },
    }));
    if (route.query) parameters.push(...queryParameters(route.query));

    const responses: Record<string, unknown> = {
      [route.success.status]: {
        description: route.success.description,
        ...(route.success.schema ? { content: { 'application/json': { schema: ref(route.success.schema) } } } : {}),
      },
    };
    const statuses = new Set([...(route.auth ? [403, 404] : []), ...route.errors, 500]);
    for (const status of [...statuses].sort((a, b) => a - b)) responses[status] = errorResponse(status);

    (paths[fullPath] ??= {})[route.method.toLowerCase()] = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.auth ? (route.tag ?? 'webhooks') : 'meta'],
      ...(route.auth ? {} : { security: [] }),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body
        ? { requestBody: { required: route.body.required, content: { 'application/json': { schema: ref(route.body.schema) } } } }
        : {}),
      responses,
    };
  }

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Webhook management API',
      version: VERSION,
      description:
        'Manage an organization\'s outgoing webhooks (Pack.cloud shape). Every route under ' +
        '`/v1/organizations/{organizationId}` is authorized by the host application (its authorize() ' +
        'callback decides per organization; how callers authenticate is the host\'s choice). ' +
        'A webhook or delivery of another organization answers 404, never 403. The signing secret is answered in clear only ' +
        'when a webhook is created, when its secret is rotated, and by `GET …/secret`; every other read masks credentials ' +
        '(the secret, `basic_auth.password`, `tls.client_key`, credential headers). This document itself needs no authorization. ' +
        'Every error answer is JSON `{ error: { code, message, field, issues? } }`; a method a path does ' +
        'not support (including TRACE) answers 405 `method_not_allowed` with an `Allow` header.',
    },
    paths,
    components: { schemas: components },
  };
}

/** Query-string parameters from an object schema: one OpenAPI parameter per property. */
function queryParameters(schema: z.ZodType): unknown[] {
  const json = z.toJSONSchema(schema, { io: 'input' }) as {
    properties?: Record<string, Record<string, unknown>>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: 'query',
      required: json.required?.includes(name) ?? false,
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}
