/**
 * The credential rules on their own: masks show nothing of a short value and at most the last 4
 * characters of a long one, a mask sent back restores exactly the stored value (and nothing
 * else), and scrubbing leaves no credential in a response.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MASK, isCredentialHeader, looksMasked, maskCredential, maskHeaderValue, maskHeaders } from '../src/credentials/mask.js';
import { MIN_SCRUBBED_LENGTH, credentialValues, scrubHeaders, scrubText } from '../src/credentials/scrub.js';
import { maskWebhook, restoreMaskedCredentials } from '../src/credentials/webhook-view.js';
import { WebhookValidationError } from '../src/errors.js';
import { REDACTED } from '../src/redact.js';
import { makeWebhook } from '../src/testing/fixtures.js';

const secretText = fc.string({ minLength: 1, maxLength: 80, unit: 'grapheme-ascii' }).filter((s) => !s.includes('•'));

describe('masks', () => {
  it('show none of a value under 24 characters and only the last 4 of a longer one', () => {
    fc.assert(
      fc.property(secretText, (value) => {
        const masked = maskCredential(value);
        expect(masked.startsWith(MASK)).toBe(true);
        const shown = masked.slice(MASK.length);
        expect(shown).toBe(value.length < 24 ? '' : value.slice(-4));
        expect(looksMasked(masked)).toBe(true);
      }),
    );
  });

  it('keep the scheme of Authorization values and mask the rest', () => {
    expect(maskHeaderValue('Authorization', 'Bearer s3cr3t')).toBe(`Bearer ${MASK}`);
    expect(maskHeaderValue('authorization', 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig')).toBe(`Bearer ${MASK}.sig`);
    expect(maskHeaderValue('X-Api-Key', 'Bearer s3cr3t')).toBe(MASK);
    expect(maskHeaderValue('Authorization', 'opaque')).toBe(MASK);
  });

  it('name credential headers by the documented rule, in any case', () => {
    for (const name of ['Authorization', 'PROXY-AUTHORIZATION', 'Cookie', 'X-Api-Key', 'X-Auth-Token', 'x-secret', 'X-Password', 'X-Signature', 'Session-Id']) {
      expect(isCredentialHeader(name), name).toBe(true);
    }
    for (const name of ['X-Shop', 'Content-Language', 'X-Request-Id', 'Accept']) expect(isCredentialHeader(name), name).toBe(false);
    expect(maskHeaders({ 'X-Shop': 'one', 'X-Token': 'abcdef' })).toEqual({ 'X-Shop': 'one', 'X-Token': MASK });
  });
});

describe('maskWebhook', () => {
  it('masks every credential of the record and leaves the stored record alone', () => {
    const webhook = makeWebhook({
      secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      previousSecrets: [{ secret: 'old-secret-value', expiresAt: 1 }],
      basicAuth: { username: 'erp', password: 'hunter2hunter2' },
      headers: { Authorization: 'Bearer tok_live_123456', 'X-Shop': 'one' },
      tls: { clientCertificate: 'CERT', clientKey: '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----', ca: null, rejectUnauthorized: true },
    });
    const before = structuredClone(webhook);
    const view = maskWebhook(webhook);
    expect(webhook).toEqual(before);
    const text = JSON.stringify(view);
    for (const value of ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'old-secret-value', 'hunter2hunter2', 'tok_live_123456', 'BEGIN PRIVATE KEY']) {
      expect(text).not.toContain(value);
    }
    expect(view.secret).toBe(`${MASK}LaSw`);
    expect(view.basicAuth).toEqual({ username: 'erp', password: MASK });
    expect(view.headers).toEqual({ Authorization: `Bearer ${MASK}`, 'X-Shop': 'one' });
    expect(maskWebhook(webhook, true).secret).toBe(webhook.secret);
  });
});

describe('restoreMaskedCredentials', () => {
  const current = makeWebhook({
    basicAuth: { username: 'erp', password: 'hunter2hunter2' },
    headers: { Authorization: 'Bearer tok_live_123456', 'X-Shop': 'one' },
  });

  it('puts the stored values back where their masks come back, in any header case', () => {
    const view = maskWebhook(current);
    const patch = { headers: { authorization: view.headers.Authorization, 'X-Shop': 'two' }, basicAuth: view.basicAuth };
    expect(restoreMaskedCredentials(patch, current, 'updateWebhook')).toEqual({
      headers: { authorization: 'Bearer tok_live_123456', 'X-Shop': 'two' },
      basicAuth: { username: 'erp', password: 'hunter2hunter2' },
    });
  });

  it('refuses a mask that is not the stored value masked, naming each field', () => {
    const patch = { headers: { 'X-Shop': MASK, Authorization: `Basic ${MASK}` }, basicAuth: { username: 'erp', password: `${MASK}zzzz` } };
    let error: unknown;
    try {
      restoreMaskedCredentials(patch, current, 'updateWebhook');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WebhookValidationError);
    expect((error as WebhookValidationError).issues.map((i) => i.path)).toEqual(['headers.X-Shop', 'headers.Authorization', 'basicAuth.password']);
  });

  it('refuses every mask on a new webhook, and passes malformed input on to the schema', () => {
    expect(() => restoreMaskedCredentials({ headers: { 'X-Token': MASK } }, null, 'createWebhook')).toThrow(/headers\.X-Token: looks masked/);
    expect(restoreMaskedCredentials({ headers: 'nope' }, null, 'createWebhook')).toEqual({ headers: 'nope' });
    expect(restoreMaskedCredentials(undefined, null, 'createWebhook')).toBeUndefined();
  });

  it('round-trips any header set: what a reader saw saves back to the stored values', () => {
    const name = fc.constantFrom('Authorization', 'X-Api-Key', 'X-Token', 'X-Shop', 'Cookie');
    fc.assert(
      fc.property(fc.dictionary(name, fc.string({ minLength: 1, maxLength: 60, unit: 'grapheme-ascii' })), (headers) => {
        const stored = makeWebhook({ headers });
        const seen = maskWebhook(stored);
        expect(restoreMaskedCredentials({ headers: seen.headers }, stored, 'updateWebhook')).toEqual({ headers });
      }),
    );
  });
});

describe('scrubbing', () => {
  const webhook = makeWebhook({
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    basicAuth: { username: 'erp', password: 'hunter2hunter2' },
    headers: { Authorization: 'Bearer tok_live_123456', 'X-Shop': 'one' },
  });

  it('removes the credentials, the basic token and the bearer token from an echoed request', () => {
    const basic = Buffer.from('erp:hunter2hunter2').toString('base64');
    const echo = JSON.stringify({ headers: { authorization: `Basic ${basic}`, 'x-forwarded': 'Bearer tok_live_123456' }, token: 'tok_live_123456' });
    const scrubbed = scrubText(echo, credentialValues(webhook));
    expect(scrubbed).not.toContain(basic);
    expect(scrubbed).not.toContain('tok_live_123456');
    expect(scrubbed).toContain(`Basic ${REDACTED}`);
    expect(scrubHeaders({ 'x-echo': `Basic ${basic}`, server: 'node' }, credentialValues(webhook))).toEqual({ 'x-echo': `Basic ${REDACTED}`, server: 'node' });
  });

  it('leaves no credential of at least the minimum length anywhere in any text', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: MIN_SCRUBBED_LENGTH, maxLength: 40, unit: 'grapheme-ascii' }),
        fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }),
        (password, parts) => {
          const hook = makeWebhook({ basicAuth: { username: 'u', password } });
          const text = parts.join(password);
          expect(scrubText(text, credentialValues(hook)).includes(password)).toBe(false);
        },
      ),
    );
  });
});
