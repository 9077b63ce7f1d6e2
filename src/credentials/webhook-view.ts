/**
 * A webhook as its readers see it (credentials masked, see mask.ts), and the way back: a change
 * that sends a masked value gets the stored one put in its place, or is refused when the mask is
 * not the stored value's (a client must never store a mask as a credential).
 *
 * @module
 */
import { WebhookValidationError, type ValidationIssue } from '../errors.js';
import type { WebhookRecord } from '../storage/types.js';
import { isCredentialHeader, looksMasked, maskCredential, maskHeaderValue, maskHeaders } from './mask.js';

/**
 * The webhook with every credential masked: the signing secret and those still signing after a
 * rotation, the basic-auth password, the TLS client key, and credential header values. Set but
 * masked values are never empty (the mask shows that a value is set); unset ones stay null.
 * `keepSecret`: the current signing secret in clear (the answers of create and rotate, once).
 */
export function maskWebhook(webhook: WebhookRecord, keepSecret = false): WebhookRecord {
  return {
    ...webhook,
    triggers: webhook.triggers.map((t) => ({ ...t })),
    headers: maskHeaders(webhook.headers),
    basicAuth: webhook.basicAuth ? { username: webhook.basicAuth.username, password: maskCredential(webhook.basicAuth.password) } : null,
    secret: keepSecret ? webhook.secret : maskCredential(webhook.secret),
    previousSecrets: webhook.previousSecrets.map((p) => ({ secret: maskCredential(p.secret), expiresAt: p.expiresAt })),
    tls: webhook.tls ? { ...webhook.tls, clientKey: webhook.tls.clientKey === null ? null : maskCredential(webhook.tls.clientKey) } : null,
    metadata: structuredClone(webhook.metadata),
    retryPolicy: webhook.retryPolicy ? structuredClone(webhook.retryPolicy) : null,
    uniqueQueueItems: webhook.uniqueQueueItems ? { ...webhook.uniqueQueueItems } : null,
    payload: webhook.payload ? { ...webhook.payload } : null,
    rateLimit: webhook.rateLimit ? { ...webhook.rateLimit } : null,
  };
}

const MASK_MISMATCH = 'looks masked but is not the stored value masked; send the real value, or leave the field out to keep it';

/**
 * Puts stored credentials back where a change (raw user input, before validation: a mask is not a
 * valid header value) carries their masks: a header whose value is the stored value's mask, a
 * basic-auth password or TLS client key that is the stored one's mask. A mask that is not the
 * stored value's is refused, naming the field. Anything else passes unchanged, for the schema to
 * check. `current` is null for a new webhook: every mask is refused. `names`: how the caller names
 * the fields (the library's `basicAuth`, or REST's `basic_auth`).
 */
export function restoreMaskedCredentials(
  patch: unknown,
  current: WebhookRecord | null,
  context: string,
  names: CredentialFieldNames = DEFAULT_NAMES,
): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const input = patch as Record<string, unknown>;
  const issues: ValidationIssue[] = [];
  const out: Record<string, unknown> = { ...input };

  const headers = input[names.headers];
  if (isPlainObject(headers)) {
    const stored = new Map(Object.entries(current?.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
    const restored: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!looksMasked(value)) {
        restored[name] = value;
        continue;
      }
      const original = stored.get(name.toLowerCase());
      if (original !== undefined && isCredentialHeader(name) && maskHeaderValue(name, original) === value) restored[name] = original;
      else issues.push({ path: `${names.headers}.${name}`, message: MASK_MISMATCH });
    }
    out[names.headers] = restored;
  }

  const basicAuth = input[names.basicAuth];
  if (isPlainObject(basicAuth) && looksMasked(basicAuth[names.password])) {
    const stored = current?.basicAuth?.password;
    if (stored !== undefined && maskCredential(stored) === basicAuth[names.password]) out[names.basicAuth] = { ...basicAuth, [names.password]: stored };
    else issues.push({ path: `${names.basicAuth}.${names.password}`, message: MASK_MISMATCH });
  }

  // The signing secrets: a preview of a webhook being edited carries what a read showed.
  if (looksMasked(input.secret)) {
    if (current !== null && maskCredential(current.secret) === input.secret) out.secret = current.secret;
    else issues.push({ path: 'secret', message: MASK_MISMATCH });
  }
  const previous = input[names.previousSecrets];
  if (Array.isArray(previous) && previous.some((p) => isPlainObject(p) && looksMasked(p.secret))) {
    out[names.previousSecrets] = previous.map((p, index) => {
      if (!isPlainObject(p) || !looksMasked(p.secret)) return p;
      const stored = current?.previousSecrets.find((s) => maskCredential(s.secret) === p.secret);
      if (stored) return { ...p, secret: stored.secret };
      issues.push({ path: `${names.previousSecrets}.${index}.secret`, message: MASK_MISMATCH });
      return p;
    });
  }

  const tls = input[names.tls];
  if (isPlainObject(tls) && looksMasked(tls[names.clientKey])) {
    const stored = current?.tls?.clientKey ?? null;
    if (stored !== null && maskCredential(stored) === tls[names.clientKey]) out[names.tls] = { ...tls, [names.clientKey]: stored };
    else issues.push({ path: `${names.tls}.${names.clientKey}`, message: MASK_MISMATCH });
  }

  if (issues.length > 0) throw new WebhookValidationError(issues, { context });
  return out;
}

/** How an input names the fields that carry credentials (the library's camelCase, REST's snake_case). */
export interface CredentialFieldNames {
  headers: string;
  basicAuth: string;
  password: string;
  tls: string;
  clientKey: string;
  previousSecrets: string;
}

const DEFAULT_NAMES: CredentialFieldNames = {
  headers: 'headers',
  basicAuth: 'basicAuth',
  password: 'password',
  tls: 'tls',
  clientKey: 'clientKey',
  previousSecrets: 'previousSecrets',
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
