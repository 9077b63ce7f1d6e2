/**
 * Summarizes a `.cpuprofile` written by `node --cpu-prof`: self time by area (this library's
 * files, each dependency, Node internals, GC) and the top functions by self and total time.
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile> [--top 25]
 *
 * @module
 */
import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Where a frame's code lives: `src/attempt.ts`, `p-queue`, `node:http`, `(garbage collector)`, … */
function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native/builtin)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const src = url.indexOf('/src/');
  if (src >= 0) return url.slice(src + 1);
  const bench = url.indexOf('/bench/');
  if (bench >= 0) return url.slice(bench + 1);
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return parts[0] === 'internal' ? `node:internal/${parts[1] ?? ''}`.replace(/\.js$/, '') : `node:${parts[0]}`;
  }
  return url;
}

function frameKey(frame: CallFrame): string {
  const where = area(frame);
  return `${frame.functionName || '(anonymous)'}  ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  const topIndex = args.indexOf('--top');
  const top = topIndex >= 0 ? Number(args[topIndex + 1]) || 25 : 25;
  if (!file) {
    console.error('usage: tsx bench/profile-summary.ts <file.cpuprofile> [--top N]');
    process.exit(2);
  }
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));

  // Self time per node: the time deltas of its samples (µs); falls back to hit counts.
  const selfUs = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    for (let i = 0; i < profile.samples.length; i++) {
      // timeDeltas[i] is the time since the previous sample: attribute it to the sample i-1 frame.
      const id = profile.samples[Math.max(0, i - 1)]!;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i]!));
    }
  } else {
    const interval = (profile.endTime - profile.startTime) / Math.max(1, profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0));
    for (const n of profile.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * interval);
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idleUs = profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((s, n) => s + (selfUs.get(n.id) ?? 0), 0);
  const busyUs = totalUs - idleUs;

  const selfByArea = new Map<string, number>();
  const selfByFrame = new Map<string, number>();
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (node.callFrame.functionName === '(idle)') continue;
    const a = area(node.callFrame);
    selfByArea.set(a, (selfByArea.get(a) ?? 0) + us);
    const k = frameKey(node.callFrame);
    selfByFrame.set(k, (selfByFrame.get(k) ?? 0) + us);
  }

  // Total (inclusive) time per function, counting recursive frames once.
  const totalByFrame = new Map<string, number>();
  const root = profile.nodes[0]!;
  const subtree = new Map<number, number>();
  const computeSubtree = (id: number): number => {
    const cached = subtree.get(id);
    if (cached !== undefined) return cached;
    // Iterative post-order to avoid deep recursion.
    const stack: Array<{ id: number; done: boolean }> = [{ id, done: false }];
    while (stack.length) {
      const top = stack.pop()!;
      const node = byId.get(top.id)!;
      if (top.done) {
        let sum = selfUs.get(top.id) ?? 0;
        for (const c of node.children ?? []) sum += subtree.get(c) ?? 0;
        subtree.set(top.id, sum);
      } else {
        stack.push({ id: top.id, done: true });
        for (const c of node.children ?? []) stack.push({ id: c, done: false });
      }
    }
    return subtree.get(id)!;
  };
  computeSubtree(root.id);
  const walk: Array<{ id: number; active: Set<string> }> = [{ id: root.id, active: new Set() }];
  while (walk.length) {
    const { id, active } = walk.pop()!;
    const node = byId.get(id)!;
    const k = frameKey(node.callFrame);
    let nextActive = active;
    if (!active.has(k)) {
      totalByFrame.set(k, (totalByFrame.get(k) ?? 0) + (subtree.get(id) ?? 0));
      nextActive = new Set(active).add(k);
    }
    for (const c of node.children ?? []) walk.push({ id: c, active: nextActive });
  }

  const pct = (us: number) => `${((100 * us) / busyUs).toFixed(1).padStart(5)} %`;
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  const print = (title: string, entries: Map<string, number>, n: number) => {
    console.log(`\n${title}`);
    for (const [k, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${ms(us)} ${pct(us)}  ${k}`);
  };
  console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled, ${(busyUs / 1e6).toFixed(2)} s busy (not idle); percentages of busy time`);
  print('Self time by area', selfByArea, top);
  print('Self time by function', selfByFrame, top);
  const skip = /^\((root|program|idle)\)/;
  print('Total time by function', new Map([...totalByFrame].filter(([k]) => !skip.test(k))), top);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
