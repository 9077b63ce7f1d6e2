/**
 * Scrubbing of known credentials from what a receiver sends back. A receiver that echoes its
 * request (debugging endpoints do) would otherwise put the webhook's basic-auth token, bearer
 * token or secret into the execution log, the `delivery.*` events and REST answers. Every exact
 * occurrence of a webhook's credential values, and of the base64 `user:password` that basic auth
 * sends, is replaced by {@link REDACTED} in response bodies, response header values and error
 * messages before anything is stored or emitted.
 *
 * @module
 */
import { REDACTED } from '../redact.js';
import type { WebhookRecord } from '../storage/types.js';
import { isCredentialHeader } from './mask.js';

/**
 * Values shorter than this are not scrubbed: they cannot be told from ordinary text, and
 * replacing every `abc` in a body would hide what the receiver said without protecting anything.
 */
export const MIN_SCRUBBED_LENGTH = 6;

/** The webhook's credential values, longest first (so a value inside another is not cut first). */
const valuesByWebhook = new WeakMap<WebhookRecord, readonly string[]>();

/** The strings that must never come back out of a webhook's responses. Cached per record object. */
export function credentialValues(webhook: WebhookRecord): readonly string[] {
  let values = valuesByWebhook.get(webhook);
  if (values !== undefined) return values;
  const found = new Set<string>();
  const add = (value: string | null | undefined): void => {
    if (value && value.length >= MIN_SCRUBBED_LENGTH) found.add(value);
  };
  add(webhook.secret);
  for (const previous of webhook.previousSecrets) add(previous.secret);
  // The key bytes of a whsec_ secret, as a receiver might print them.
  for (const secret of [webhook.secret, ...webhook.previousSecrets.map((p) => p.secret)]) {
    if (secret.startsWith('whsec_')) add(secret.slice('whsec_'.length));
  }
  if (webhook.basicAuth) {
    add(webhook.basicAuth.password);
    add(Buffer.from(`${webhook.basicAuth.username}:${webhook.basicAuth.password}`, 'utf8').toString('base64'));
  }
  add(webhook.tls?.clientKey);
  for (const [name, value] of Object.entries(webhook.headers)) {
    if (!isCredentialHeader(name)) continue;
    add(value);
    // `Bearer <token>`: the token alone, as an echo of a parsed header shows it.
    const credentials = /^\s*[A-Za-z][A-Za-z0-9-]*\s+(\S.*)$/s.exec(value)?.[1];
    add(credentials);
    // A Basic header given by hand: the decoded `user:password` too.
    if (credentials && /^\s*basic\s/i.test(value)) add(Buffer.from(credentials, 'base64').toString('utf8'));
  }
  values = [...found].sort((a, b) => b.length - a.length);
  valuesByWebhook.set(webhook, values);
  return values;
}

/** `text` with every occurrence of the values replaced by {@link REDACTED}. */
export function scrubText(text: string, values: readonly string[]): string {
  let result = text;
  for (const value of values) if (result.includes(value)) result = result.split(value).join(REDACTED);
  return result;
}

/** Header values scrubbed (a copy when anything changed, else the object itself). */
export function scrubHeaders(headers: Record<string, string>, values: readonly string[]): Record<string, string> {
  let result: Record<string, string> | null = null;
  // for…in rather than Object.entries: this runs on every attempt's response headers.
  for (const name in headers) {
    const value = headers[name]!;
    const scrubbed = scrubText(value, values);
    if (scrubbed !== value) (result ??= { ...headers })[name] = scrubbed;
  }
  return result ?? headers;
}
