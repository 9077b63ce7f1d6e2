/**
 * The default request body, used when a webhook has no template: a small JSON envelope around
 * the emitted data. The data is serialised once per emit and spliced into each delivery's
 * envelope, so N matching webhooks cost one `JSON.stringify` of the data.
 *
 * @module
 */

/** What the default envelope needs besides the data. */
export interface EnvelopeFields {
  /** The event id (`evt_…`), shared by every delivery of one emit. Receivers dedupe on `webhook-id`. */
  id: string;
  entity: string;
  event: string;
  /** ISO-8601 time of the emit. */
  timestamp: string;
  tenantId: string | null;
}

/** Renders `{ id, entity, event, timestamp, tenantId, data }` with `dataJson` already serialised. */
export function renderEnvelope(fields: EnvelopeFields, dataJson: string): string {
  return (
    `{"id":${JSON.stringify(fields.id)},"entity":${JSON.stringify(fields.entity)},` +
    `"event":${JSON.stringify(fields.event)},"timestamp":${JSON.stringify(fields.timestamp)},` +
    `"tenantId":${JSON.stringify(fields.tenantId)},"data":${dataJson}}`
  );
}
