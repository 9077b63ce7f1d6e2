import { describe, expect, it } from 'vitest';
import { MatchCache } from '../src/match-cache.js';
import type { EventMatch, WebhookRecord } from '../src/storage/types.js';
import { makeWebhook } from 'webhook-dispatcher/testing';

const orderCreate: EventMatch = { entity: 'order', event: 'Create', tenantId: null };

function counter(answer: () => WebhookRecord[]) {
  const calls = { n: 0 };
  const load = () => {
    calls.n++;
    return Promise.resolve(answer());
  };
  return { calls, load };
}

describe('MatchCache', () => {
  it('answers a repeated match from the cache until the time to live passes', async () => {
    let now = 0;
    const cache = new MatchCache(1_000, () => now);
    const webhook = makeWebhook();
    const { calls, load } = counter(() => [webhook]);
    expect(await cache.get(orderCreate, load)).toEqual([webhook]);
    now = 999;
    expect(await cache.get(orderCreate, load)).toEqual([webhook]);
    expect(calls.n).toBe(1);
    now = 1_000;
    await cache.get(orderCreate, load);
    expect(calls.n).toBe(2);
  });

  it('keeps entities, events and tenants apart; no tenant is not the empty tenant', async () => {
    const cache = new MatchCache(1_000, () => 0);
    const { calls, load } = counter(() => []);
    const matches: EventMatch[] = [
      orderCreate,
      { entity: 'order', event: 'Edit', tenantId: null },
      { entity: 'product', event: 'Create', tenantId: null },
      { entity: 'order', event: 'Create', tenantId: 'shop-a' },
      { entity: 'order', event: 'Create', tenantId: '' },
    ];
    for (const match of matches) await cache.get(match, load);
    for (const match of matches) await cache.get(match, load);
    expect(calls.n).toBe(matches.length);
  });

  it('loads again after clear()', async () => {
    const cache = new MatchCache(1_000, () => 0);
    let webhooks: WebhookRecord[] = [];
    const { calls, load } = counter(() => webhooks);
    expect(await cache.get(orderCreate, load)).toEqual([]);
    webhooks = [makeWebhook()];
    cache.clear();
    expect(await cache.get(orderCreate, load)).toEqual(webhooks);
    expect(calls.n).toBe(2);
  });

  it('does not remember a failed lookup', async () => {
    const cache = new MatchCache(1_000, () => 0);
    let fail = true;
    const load = () => (fail ? Promise.reject(new Error('database down')) : Promise.resolve([]));
    await expect(cache.get(orderCreate, load)).rejects.toThrow('database down');
    fail = false;
    await Promise.resolve(); // let the cache drop the failed entry
    expect(await cache.get(orderCreate, load)).toEqual([]);
  });

  it('with a time to live of 0 always loads', async () => {
    const cache = new MatchCache(0, () => 0);
    const { calls, load } = counter(() => []);
    await cache.get(orderCreate, load);
    await cache.get(orderCreate, load);
    expect(calls.n).toBe(2);
  });
});
