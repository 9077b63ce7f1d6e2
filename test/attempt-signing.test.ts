/**
 * The signature header of an attempt: the current secret alone outside a rotation (signed without
 * the list of active secrets), the current one then every unexpired previous one during it.
 */
import { describe, expect, it } from 'vitest';
import { buildSignedRequest } from '../src/delivery/attempt.js';
import { sign, verifySignature } from '../src/signature.js';
import type { WebhookRecord } from '../src/storage/types.js';

const NOW = 1_800_000_000_000;
const CURRENT = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const OLD = 'an old raw secret';
const OLDER = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const delivery = { id: 'msg_1', entity: 'order', event: 'Create', contentType: 'application/json', isTest: false, body: '{"a":1}' };
const settings = { headerPrefix: 'X-Pakk', userAgent: 'test' };

function webhook(previousSecrets: WebhookRecord['previousSecrets']): WebhookRecord {
  return {
    id: 'wh_1',
    url: 'https://merchant.example/hooks',
    method: 'POST',
    headers: {},
    basicAuth: null,
    secret: CURRENT,
    previousSecrets,
  } as unknown as WebhookRecord;
}

describe('buildSignedRequest signatures', () => {
  const input = { id: 'msg_1', timestamp: NOW / 1000, body: delivery.body };

  it('signs with the current secret alone outside a rotation', () => {
    const { headers } = buildSignedRequest(webhook([]), delivery, settings, NOW);
    expect(headers['webhook-signature']).toBe(sign(CURRENT, input));
    expect(headers['X-Pakk-Webhook-Signature']).toBe(sign(CURRENT, input));
  });

  it('adds every unexpired previous secret, in order, and drops expired ones', () => {
    const { headers } = buildSignedRequest(
      webhook([
        { secret: OLD, expiresAt: NOW + 1 },
        { secret: OLDER, expiresAt: NOW },
      ]),
      delivery,
      settings,
      NOW,
    );
    expect(headers['webhook-signature']).toBe(`${sign(CURRENT, input)} ${sign(OLD, input)}`);
    for (const secret of [CURRENT, OLD]) {
      expect(verifySignature({ secret, body: delivery.body, headers, now: NOW })).toEqual({ id: 'msg_1', timestamp: NOW / 1000 });
    }
    expect(() => verifySignature({ secret: OLDER, body: delivery.body, headers, now: NOW })).toThrow(/no matching signature/);
  });

  it('signs with a rotated secret at once', () => {
    const before = buildSignedRequest(webhook([]), delivery, settings, NOW).headers['webhook-signature'];
    const rotated = { ...webhook([{ secret: CURRENT, expiresAt: NOW + 60_000 }]), secret: OLDER };
    const after = buildSignedRequest(rotated, delivery, settings, NOW).headers['webhook-signature'];
    expect(after).toBe(`${sign(OLDER, input)} ${before}`);
  });
});
