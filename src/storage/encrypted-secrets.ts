/**
 * Encryption of webhook secrets at rest, for any storage adapter: wrap the adapter and the
 * signing secrets, rotated-out secrets, basic-auth passwords and TLS client keys are stored as
 * AES-256-GCM ciphertext under a host-provided key. A database dump or backup then does not
 * reveal them.
 *
 * Key rotation: list the new key first. New writes use the first key; reads decrypt with
 * whichever listed key the ciphertext names; {@link reencryptSecrets} rewrites every webhook under
 * the first key, after which old keys can be dropped. Plaintext values written before encryption
 * was turned on still read, and are encrypted on their next write (or by `reencryptSecrets`).
 *
 * @module
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { StorageError, WebhookValidationError } from '../errors.js';
import type { Page, WebhookRecord, WebhookStorage } from './types.js';

/** One encryption key: an id stored with each ciphertext, and 32 bytes (a Buffer or base64). */
export interface SecretKey {
  id: string;
  key: Buffer | string;
}

/** Options of {@link withEncryptedSecrets}. */
export interface SecretEncryptionOptions {
  /** The first key encrypts; all of them decrypt. */
  keys: readonly SecretKey[];
}

const PREFIX = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface Keyring {
  current: { id: string; key: Buffer };
  byId: Map<string, Buffer>;
}

function keyring(options: SecretEncryptionOptions): Keyring {
  const issues: Array<{ path: string; message: string }> = [];
  const byId = new Map<string, Buffer>();
  options.keys.forEach((k, i) => {
    const key = typeof k.key === 'string' ? Buffer.from(k.key, 'base64') : k.key;
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(k.id ?? '')) issues.push({ path: `keys.${i}.id`, message: 'must be 1-40 letters, digits, _ or -' });
    else if (byId.has(k.id)) issues.push({ path: `keys.${i}.id`, message: `duplicates key id ${k.id}` });
    if (key.length !== 32) issues.push({ path: `keys.${i}.key`, message: `must be 32 bytes (AES-256), got ${key.length}` });
    byId.set(k.id, key);
  });
  if (options.keys.length === 0) issues.push({ path: 'keys', message: 'at least one key is required' });
  if (issues.length > 0) throw new WebhookValidationError(issues, { context: 'withEncryptedSecrets' });
  const first = options.keys[0]!;
  return { current: { id: first.id, key: byId.get(first.id)! }, byId };
}

/** Encrypts one value under the current key. The key id is bound as additional data. */
function encrypt(ring: Keyring, plaintext: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', ring.current.key, iv);
  cipher.setAAD(Buffer.from(ring.current.id));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${PREFIX}${ring.current.id}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
}

function decrypt(ring: Keyring, value: string): string {
  if (!value.startsWith(PREFIX)) return value; // written before encryption was enabled
  const rest = value.slice(PREFIX.length);
  const colon = rest.indexOf(':');
  const id = rest.slice(0, colon);
  const key = ring.byId.get(id);
  if (colon < 0 || !key) {
    throw new StorageError(`a secret is encrypted with key "${id}", which is not in the keyring`);
  }
  const raw = Buffer.from(rest.slice(colon + 1), 'base64');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(id));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw new StorageError(`a secret encrypted with key "${id}" failed authentication (wrong key or tampered data)`, { cause });
  }
}

function mapSecrets(webhook: WebhookRecord, fn: (value: string) => string): WebhookRecord {
  return {
    ...webhook,
    secret: fn(webhook.secret),
    previousSecrets: webhook.previousSecrets.map((p) => ({ ...p, secret: fn(p.secret) })),
    basicAuth: webhook.basicAuth ? { ...webhook.basicAuth, password: fn(webhook.basicAuth.password) } : null,
    tls: webhook.tls ? { ...webhook.tls, clientKey: webhook.tls.clientKey === null ? null : fn(webhook.tls.clientKey) } : null,
  };
}

/**
 * Wraps `storage` so webhook secrets are encrypted before they reach it and decrypted when read.
 * Everything else passes through unchanged.
 */
export function withEncryptedSecrets<S extends WebhookStorage>(storage: S, options: SecretEncryptionOptions): WebhookStorage {
  const ring = keyring(options);
  const seal = (w: WebhookRecord) => mapSecrets(w, (v) => encrypt(ring, decrypt(ring, v)));
  const open = (w: WebhookRecord) => mapSecrets(w, (v) => decrypt(ring, v));
  const openPage = (page: Page<WebhookRecord>): Page<WebhookRecord> => ({ items: page.items.map(open), nextCursor: page.nextCursor });

  const overrides: Partial<WebhookStorage> = {
    insertWebhook: (w) => storage.insertWebhook(seal(w)),
    updateWebhook: (w) => storage.updateWebhook(seal(w)),
    getWebhook: async (id) => {
      const w = await storage.getWebhook(id);
      return w ? open(w) : null;
    },
    listWebhooks: async (q) => openPage(await storage.listWebhooks(q)),
    findWebhooksForEvent: async (m) => (await storage.findWebhooksForEvent(m)).map(open),
  };
  // Delegate every other method (including optional ones) to the wrapped adapter.
  return new Proxy(storage, {
    get(target, property, receiver) {
      if (typeof property === 'string' && property in overrides) return overrides[property as keyof WebhookStorage];
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Rewrites every webhook through an encrypting storage, so all secrets end up under its first
 * key (after a key rotation, or to encrypt values stored before encryption was enabled).
 * Returns how many webhooks were rewritten.
 */
export async function reencryptSecrets(encrypted: WebhookStorage): Promise<number> {
  let count = 0;
  let cursor: string | null = null;
  do {
    const page: Page<WebhookRecord> = await encrypted.listWebhooks({ limit: 200, cursor });
    for (const webhook of page.items) {
      if (await encrypted.updateWebhook(webhook)) count++;
    }
    cursor = page.nextCursor;
  } while (cursor);
  return count;
}
