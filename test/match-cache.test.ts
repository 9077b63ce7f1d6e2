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

  it('hands back an answer that has arrived as the array itself, without a promise', async () => {
    const cache = new MatchCache(1_000, () => 0);
    const webhook = makeWebhook();
    const { calls, load } = counter(() => [webhook]);
    const first = cache.get(orderCreate, load);
    expect(first).toBeInstanceOf(Promise);
    // Asked again before the load resolved: the same pending answer, no second load.
    expect(cache.get(orderCreate, load)).toBe(first);
    const webhooks = await first;
    expect(cache.get(orderCreate, load)).toBe(webhooks);
    expect(calls.n).toBe(1);
  });

  it('starts over beyond 10,000 distinct matches and still answers each correctly', async () => {
    const cache = new MatchCache(1_000, () => 0);
    const { calls, load } = counter(() => []);
    for (let i = 0; i < 10_001; i++) await cache.get({ entity: 'order', event: 'Create', tenantId: `shop-${i}` }, load);
    expect(calls.n).toBe(10_001);
    // The last one is cached after the reset; the first was dropped with the rest.
    await cache.get({ entity: 'order', event: 'Create', tenantId: 'shop-10000' }, load);
    expect(calls.n).toBe(10_001);
    await cache.get({ entity: 'order', event: 'Create', tenantId: 'shop-0' }, load);
    expect(calls.n).toBe(10_002);
  });

  it('a lookup that fails after clear() leaves the new answers alone', async () => {
    const cache = new MatchCache(1_000, () => 0);
    let rejectFirst: (error: Error) => void = () => {};
    const pending = new Promise<WebhookRecord[]>((_, reject) => (rejectFirst = reject));
    const failed = cache.get(orderCreate, () => pending);
    cache.clear();
    const { calls, load } = counter(() => []);
    await cache.get(orderCreate, load);
    rejectFirst(new Error('database down'));
    await expect(failed).rejects.toThrow('database down');
    await Promise.resolve();
    await cache.get(orderCreate, load);
    expect(calls.n).toBe(1);
  });

  it('with a time to live of 0 always loads', async () => {
    const cache = new MatchCache(0, () => 0);
    const { calls, load } = counter(() => []);
    await cache.get(orderCreate, load);
    await cache.get(orderCreate, load);
    expect(calls.n).toBe(2);
  });
});
