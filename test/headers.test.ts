/**
 * The header set of one attempt, exactly: names, values and order, for any prefix, with the test
 * marker, basic auth and custom headers (custom ones first, built-in ones win).
 */
import { describe, expect, it } from 'vitest';
import { brandHeaderNames, buildDeliveryHeaders, type HeaderInput } from '../src/headers.js';

interface Overrides {
  prefix?: string;
  isTest?: boolean;
  basicAuth?: HeaderInput['webhook']['basicAuth'];
  headers?: Record<string, string>;
  timestamp?: number;
}

const input = (overrides: Overrides = {}): HeaderInput => ({
  webhook: { id: 'wh_1', headers: overrides.headers ?? {}, basicAuth: overrides.basicAuth ?? null },
  delivery: { id: 'msg_1', entity: 'order', event: 'Create', contentType: 'application/json', isTest: overrides.isTest ?? false },
  headerPrefix: overrides.prefix ?? 'X-Pakk',
  userAgent: 'ua/1',
  timestamp: overrides.timestamp ?? 1_764_769_000,
  signature: 'v1,abc',
});

describe('buildDeliveryHeaders', () => {
  it('sets the nine built-in headers in order, for each prefix', () => {
    for (const prefix of ['X-Pakk', 'X-Acme', 'X-Pakk']) {
      const headers = buildDeliveryHeaders(input({ prefix }));
      expect(Object.entries(headers)).toEqual([
        ['Content-Type', 'application/json'],
        ['User-Agent', 'ua/1'],
        [`${prefix}-WebhookID`, 'wh_1'],
        [`${prefix}-Webhook-TriggerEvent`, 'Create'],
        [`${prefix}-Webhook-TriggerEntity`, 'order'],
        [`${prefix}-Webhook-Signature`, 'v1,abc'],
        ['webhook-id', 'msg_1'],
        ['webhook-timestamp', '1764769000'],
        ['webhook-signature', 'v1,abc'],
      ]);
      expect(brandHeaderNames(prefix).webhookId).toBe(`${prefix}-WebhookID`);
    }
  });

  it('gives every attempt its own object and its own timestamp', () => {
    const first = buildDeliveryHeaders(input({ timestamp: 100 }));
    const second = buildDeliveryHeaders(input({ timestamp: 101 }));
    expect(second).not.toBe(first);
    first['webhook-id'] = 'changed';
    expect(buildDeliveryHeaders(input())['webhook-id']).toBe('msg_1');
    expect([first['webhook-timestamp'], second['webhook-timestamp']]).toEqual(['100', '101']);
    expect(buildDeliveryHeaders(input({ timestamp: 100 }))['webhook-timestamp']).toBe('100');
  });

  it('appends the test marker and basic auth, and puts custom headers first without overriding built-in ones', () => {
    const headers = buildDeliveryHeaders(
      input({
        isTest: true,
        basicAuth: { username: 'u', password: 'p' },
        headers: { 'X-Custom': 'yes', 'webhook-id': 'forged', authorization: 'forged' },
      }),
    );
    const names = Object.keys(headers);
    expect(names[0]).toBe('X-Custom');
    expect(names.slice(-2)).toEqual(['X-Pakk-Webhook-Test', 'Authorization']);
    expect(headers).toMatchObject({ 'X-Custom': 'yes', 'webhook-id': 'msg_1', 'X-Pakk-Webhook-Test': 'true', Authorization: 'Basic dTpw' });
    expect(names).not.toContain('authorization');
  });
});
