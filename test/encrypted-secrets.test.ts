import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  MemoryStorage,
  WebhookDispatcher,
  WebhookValidationError,
  reencryptSecrets,
  verifySignature,
  withEncryptedSecrets,
} from 'webhook-dispatcher';
import { describeStorageConformance, makeWebhook } from 'webhook-dispatcher/testing';
import { Receiver } from './helpers/receiver.js';

const oldKey = { id: 'k2025', key: randomBytes(32) };
const newKey = { id: 'k2026', key: randomBytes(32).toString('base64') };

describeStorageConformance('MemoryStorage with encrypted secrets', () =>
  withEncryptedSecrets(new MemoryStorage(), { keys: [newKey, oldKey] }),
);

const secretFields = (w: ReturnType<typeof makeWebhook>) => [w.secret, w.basicAuth?.password, w.tls?.clientKey, ...w.previousSecrets.map((p) => p.secret)];

describe('withEncryptedSecrets', () => {
  const webhook = () =>
    makeWebhook({
      basicAuth: { username: 'u', password: 'basic-password' },
      previousSecrets: [{ secret: 'whsec_b2xkLXNlY3JldC1rZXktb2YtMjQtYnl0ZXM=', expiresAt: Date.now() + 1000 }],
      tls: { clientCertificate: 'CERT', clientKey: '-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----', ca: null, rejectUnauthorized: true },
    });

  it('stores only ciphertext in the wrapped adapter and reads plaintext back', async () => {
    const inner = new MemoryStorage();
    const storage = withEncryptedSecrets(inner, { keys: [newKey] });
    const w = webhook();
    await storage.insertWebhook(w);
    const raw = (await inner.getWebhook(w.id))!;
    for (const value of secretFields(raw)) expect(value).toMatch(/^enc:v1:k2026:/);
    const rawJson = JSON.stringify(raw);
    for (const plain of secretFields(w)) expect(rawJson).not.toContain(plain);
    expect(await storage.getWebhook(w.id)).toEqual(w);
    expect((await storage.listWebhooks({ limit: 10 })).items).toEqual([w]);
    expect(await storage.findWebhooksForEvent({ entity: 'order', event: 'Create', tenantId: null })).toEqual([w]);
  });

  it('rotates keys: old ciphertext still reads, reencryptSecrets moves everything to the new key', async () => {
    const inner = new MemoryStorage();
    const before = withEncryptedSecrets(inner, { keys: [oldKey] });
    const w = webhook();
    await before.insertWebhook(w);
    expect((await inner.getWebhook(w.id))!.secret).toMatch(/^enc:v1:k2025:/);

    const rotated = withEncryptedSecrets(inner, { keys: [newKey, oldKey] });
    expect(await rotated.getWebhook(w.id)).toEqual(w);
    expect(await reencryptSecrets(rotated)).toBe(1);
    for (const value of secretFields((await inner.getWebhook(w.id))!)) expect(value).toMatch(/^enc:v1:k2026:/);

    const newOnly = withEncryptedSecrets(inner, { keys: [newKey] });
    expect(await newOnly.getWebhook(w.id)).toEqual(w);
    const oldOnly = withEncryptedSecrets(inner, { keys: [oldKey] });
    await expect(oldOnly.getWebhook(w.id)).rejects.toMatchObject({ code: 'storage_error', message: expect.stringContaining('k2026') });
  });

  it('encrypts plaintext written before encryption was enabled, and detects tampering', async () => {
    const inner = new MemoryStorage();
    const w = webhook();
    await inner.insertWebhook(w);
    const storage = withEncryptedSecrets(inner, { keys: [newKey] });
    expect(await storage.getWebhook(w.id)).toEqual(w);
    await reencryptSecrets(storage);
    const raw = (await inner.getWebhook(w.id))!;
    expect(raw.secret).toMatch(/^enc:v1:/);

    const tampered = { ...raw, secret: raw.secret.slice(0, -4) + (raw.secret.endsWith('AAAA') ? 'BBBB' : 'AAAA') };
    await inner.updateWebhook(tampered);
    await expect(storage.getWebhook(w.id)).rejects.toMatchObject({ code: 'storage_error', message: expect.stringMatching(/authentication/) });
  });

  it('validates the keyring, naming the field', () => {
    expect(() => withEncryptedSecrets(new MemoryStorage(), { keys: [] })).toThrow(WebhookValidationError);
    expect(() => withEncryptedSecrets(new MemoryStorage(), { keys: [{ id: 'k', key: randomBytes(16) }] })).toThrow(/keys\.0\.key: must be 32 bytes/);
    expect(() => withEncryptedSecrets(new MemoryStorage(), { keys: [{ id: 'bad id', key: randomBytes(32) }] })).toThrow(/keys\.0\.id/);
  });

  it('the dispatcher signs with the decrypted secret end to end', async () => {
    const receiver = await Receiver.start();
    const inner = new MemoryStorage();
    // Security opt-out: the receiver is on 127.0.0.1.
    const dispatcher = new WebhookDispatcher({ storage: withEncryptedSecrets(inner, { keys: [newKey] }), allowPrivateNetworks: true });
    try {
      const hook = await dispatcher.createWebhook({ url: receiver.url('/h'), triggers: [{ entity: 'order', event: 'Create' }] });
      expect((await inner.getWebhook(hook.id))!.secret).not.toBe(hook.secret);
      await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
      await dispatcher.drain();
      const [request] = receiver.requests;
      expect(verifySignature({ secret: hook.secret, body: request!.body, headers: request!.headers }).id).toMatch(/^msg_/);
    } finally {
      await receiver.close();
      await dispatcher.close();
    }
  });
});
