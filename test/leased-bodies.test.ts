import { describe, expect, it } from 'vitest';
import { LeasedBodies } from '../src/storage/leased-bodies.js';

describe('LeasedBodies', () => {
  it('matches only the non-empty body leased under the token, once', () => {
    const bodies = new LeasedBodies();
    bodies.remember('t1', '{"a":1}');
    bodies.remember('t2', '');
    bodies.remember('t3', '{"b":2}');
    expect(bodies.takeIsLeasedBody('t1', '{"a":1}')).toBe(true);
    expect(bodies.takeIsLeasedBody('t1', '{"a":1}')).toBe(false); // taken
    expect(bodies.takeIsLeasedBody('t2', '')).toBe(false); // '' is never shared
    expect(bodies.takeIsLeasedBody('t3', '{"b":"transformed"}')).toBe(false);
    expect(bodies.takeIsLeasedBody('unknown', '{"a":1}')).toBe(false);
    expect(bodies.size).toBe(0);
  });

  it('forgets released leases and stays bounded, dropping the oldest half', () => {
    const bodies = new LeasedBodies(10);
    bodies.remember('gone', 'x');
    bodies.forget('gone');
    expect(bodies.takeIsLeasedBody('gone', 'x')).toBe(false);
    for (let i = 0; i < 25; i++) bodies.remember(`t${i}`, `body ${i}`);
    expect(bodies.size).toBeLessThanOrEqual(10);
    expect(bodies.takeIsLeasedBody('t24', 'body 24')).toBe(true); // newest kept
    expect(bodies.takeIsLeasedBody('t0', 'body 0')).toBe(false); // oldest dropped
  });
});
