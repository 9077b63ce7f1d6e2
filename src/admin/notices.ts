/**
 * What the page says after an action. An action redirects to the page with `?notice=<code>`;
 * only these codes exist, so the query string can never put text of its own on the page.
 *
 * @module
 */

export const NOTICES = {
  saved: 'Changes saved.',
  enabled: 'Webhook enabled.',
  disabled: 'Webhook disabled: it receives no new events.',
  duplicated:
    'This is a copy of the webhook, with a new id and a new signing secret (not shown). Rotate the secret on the Authentication tab to set one your receiver knows.',
  'basic-auth-saved': 'Basic authentication saved.',
  'basic-auth-removed': 'Basic authentication removed.',
  'secret-rotated': 'Secret rotated. The previous secret keeps signing for the grace period.',
  'payload-saved': 'Payload template saved.',
  'default-payload': 'The template was removed: deliveries carry the default JSON payload.',
  redelivered: 'The delivery is queued and will be sent again now.',
  'test-succeeded': 'Test event sent: the endpoint answered with success. See History.',
  'test-failed': 'Test event sent: the endpoint did not answer with success. See History.',
  'test-queued': 'Test event queued: its result will appear in History.',
} as const;

/** A notice code. */
export type NoticeCode = keyof typeof NOTICES;

/** The message of a code from the query string, or null for anything else. */
export function noticeText(code: string | null): string | null {
  return code !== null && Object.hasOwn(NOTICES, code) ? NOTICES[code as NoticeCode] : null;
}
