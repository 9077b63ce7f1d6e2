/**
 * The benchmark's ratio reference: every row of a round is compared with the median of the
 * round's R0 runs, not with the single R0 run measured next to it.
 */
import { describe, expect, it } from 'vitest';
import { setRoundBaseline } from '../common.js';

describe('setRoundBaseline', () => {
  it("gives every row of the round the median of the round's R0 runs, whatever R0 ran next to it", () => {
    // R0 at the start, then one before each D row; the run before D-mem (12,000) was unlucky.
    const r0Rates = [16_000, 12_000, 17_000, 16_500, 15_000];
    const rows = [{ baselineRate: null }, { baselineRate: null }] as Array<{ baselineRate: number | null }>;
    expect(setRoundBaseline(r0Rates, rows)).toBe(16_000);
    expect(rows.map((r) => r.baselineRate)).toEqual([16_000, 16_000]);
    // An even count takes the mean of the middle two.
    expect(setRoundBaseline([10_000, 14_000, 12_000, 20_000], rows)).toBe(13_000);
  });

  it('leaves the rows without a baseline when no R0 ran (--only without R0)', () => {
    const rows = [{ baselineRate: null }] as Array<{ baselineRate: number | null }>;
    expect(setRoundBaseline([], rows)).toBeNull();
    expect(rows[0]!.baselineRate).toBeNull();
  });
});
