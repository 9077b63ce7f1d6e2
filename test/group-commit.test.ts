import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../src/group-commit.js';

/** A write that records its batches; items equal to 'bad' make the whole call fail. */
function recorder(options: { delayMs?: number } = {}) {
  const batches: string[][] = [];
  const write = async (items: string[]): Promise<string[]> => {
    batches.push([...items]);
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
    if (items.includes('bad')) throw new Error('bad item');
    return items.map((i) => i.toUpperCase());
  };
  return { batches, write };
}

describe('GroupCommit', () => {
  it('writes the items submitted in one turn with one call, answering each in order', async () => {
    const { batches, write } = recorder();
    const group = new GroupCommit(write, { maxBatch: 100, maxInFlight: 1, gather: 'turn' });
    const results = await Promise.all(['a', 'b', 'c'].map((i) => group.submit(i)));
    expect(results).toEqual(['A', 'B', 'C']);
    expect(batches).toEqual([['a', 'b', 'c']]);
  });

  it('gathers what arrives while a write is in flight into the next write', async () => {
    const { batches, write } = recorder({ delayMs: 20 });
    const group = new GroupCommit(write, { maxBatch: 100, maxInFlight: 1, gather: 'turn' });
    const first = group.submit('a');
    await new Promise((r) => setTimeout(r, 5)); // 'a' is being written now
    const later = ['b', 'c', 'd'].map((i) => group.submit(i));
    expect(await Promise.all([first, ...later])).toEqual(['A', 'B', 'C', 'D']);
    expect(batches).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('splits at maxBatch and keeps at most maxInFlight writes going', async () => {
    let inFlight = 0;
    let peak = 0;
    const sizes: number[] = [];
    const group = new GroupCommit(
      async (items: number[]) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        sizes.push(items.length);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return items.map((i) => i * 2);
      },
      { maxBatch: 4, maxInFlight: 2, gather: 'turn' },
    );
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => group.submit(i)));
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => i * 2));
    expect(sizes).toEqual([4, 4, 2]);
    expect(peak).toBe(2);
  });

  it('a failing batch is retried item by item: only the bad item fails', async () => {
    const { batches, write } = recorder();
    const group = new GroupCommit(write, { maxBatch: 100, maxInFlight: 1, gather: 'turn' });
    const settled = await Promise.allSettled(['a', 'bad', 'c'].map((i) => group.submit(i)));
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message))).toEqual(['A', 'bad item', 'C']);
    expect(batches).toEqual([['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
  });

  it('never writes again when results cannot be matched to the items', async () => {
    let calls = 0;
    const group = new GroupCommit(
      async (items: string[]) => {
        calls++;
        return items.slice(1);
      },
      { maxBatch: 100, maxInFlight: 1, gather: 'turn' },
    );
    const settled = await Promise.allSettled(['a', 'b'].map((i) => group.submit(i)));
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(calls).toBe(1);
  });

  it('gathers requests made in separate callbacks of one turn with gather: turn, not with microtask', async () => {
    for (const gather of ['turn', 'microtask'] as const) {
      const { batches, write } = recorder();
      const group = new GroupCommit(write, { maxBatch: 100, maxInFlight: 1, gather });
      // Two I/O-like callbacks of one turn: each runs its own microtasks before the next.
      const results = await new Promise<string[]>((resolve) => {
        const out: Array<Promise<string>> = [];
        setImmediate(() => out.push(group.submit('a')));
        setImmediate(() => {
          out.push(group.submit('b'));
          void Promise.all(out).then(resolve);
        });
      });
      expect(results).toEqual(['A', 'B']);
      expect(batches).toEqual(gather === 'turn' ? [['a', 'b']] : [['a'], ['b']]);
    }
  });

  it('submitOrWrite writes alone at once when idle, and joins the next batch while a write is in flight', async () => {
    const { batches, write } = recorder({ delayMs: 20 });
    const group = new GroupCommit(write, { maxBatch: 100, maxInFlight: 1, gather: 'microtask' });
    const singles: string[] = [];
    const single = (item: string) => async () => {
      singles.push(item);
      await new Promise((r) => setTimeout(r, 20));
      return `single:${item}`;
    };
    const first = group.submitOrWrite('a', single('a'), (r) => `batch:${r}`);
    const second = group.submitOrWrite('b', single('b'), (r) => `batch:${r}`);
    const third = group.submitOrWrite('c', single('c'), (r) => `batch:${r}`);
    expect(await Promise.all([first, second, third])).toEqual(['single:a', 'batch:B', 'batch:C']);
    expect(singles).toEqual(['a']);
    expect(batches).toEqual([['b', 'c']]);
    // Idle again: the next one is written alone, at once.
    expect(await group.submitOrWrite('d', single('d'), (r) => `batch:${r}`)).toBe('single:d');
  });

  it("gather: auto writes at once while writes cost nothing, and per turn once they take a while", async () => {
    const run = async (delayMs: number) => {
      const { batches, write } = recorder({ delayMs });
      const group = new GroupCommit(write, { maxBatch: 100, maxInFlight: 1, gather: 'auto' });
      // Teach it how long a write takes, then submit from two callbacks of one turn.
      for (let i = 0; i < 20; i++) await group.submit(`warm${i}`);
      batches.length = 0;
      await new Promise<void>((resolve) => {
        const out: Array<Promise<string>> = [];
        setImmediate(() => out.push(group.submit('a')));
        setImmediate(() => {
          out.push(group.submit('b'));
          void Promise.all(out).then(() => resolve());
        });
      });
      return batches;
    };
    expect(await run(0)).toEqual([['a'], ['b']]);
    expect(await run(2)).toEqual([['a', 'b']]);
  });
});
