/**
 * SQLite files shared by several processes, each with its own SqliteStorage (and so its own
 * connection and database thread): claims never hand one delivery to two processes, and a
 * webhook's cap and per-key ordering hold across them. Serial project: the processes' contention
 * is the point, and it is measured under their own load.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { makeDelivery, makeWebhook } from 'webhook-dispatcher/testing';
import { useSqliteFiles } from './helpers/sqlite-queue-files.js';
import { tempFilePath } from './helpers/unique.js';

const T0 = Date.UTC(2030, 0, 1);

describe('SqliteStorage: several processes on one file', () => {
  const { disposers, fileDb, open, seed } = useSqliteFiles();

  it('two processes claiming concurrently never get the same delivery', async () => {
    const path = fileDb();
    const storage = await open({ path });
    const w = makeWebhook();
    await storage.insertWebhook(w);
    await storage.enqueueDeliveries(Array.from({ length: 2000 }, () => makeDelivery(w.id)));

    const moduleUrl = pathToFileURL(fileURLToPath(new URL('../src/storage/sqlite.ts', import.meta.url))).href;
    const script = tempFilePath('webhook-dispatcher-claimer', '.mts');
    disposers.push(() => rmSync(script, { force: true }));
    // Each claimer opens its own connection, says "ready", waits for "go" on stdin (so that the
    // claim loops really overlap), claims until nothing is left and prints the ids it got.
    writeFileSync(
      script,
      `import { SqliteStorage } from ${JSON.stringify(moduleUrl)};
const storage = new SqliteStorage({ path: process.argv[2] });
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const ids = [];
for (;;) {
const batch = await storage.claimDueDeliveries({ now: ${T0}, limit: 5, leaseMs: 600000, defaultConcurrency: 10000 });
if (batch.length === 0) break;
ids.push(...batch.map((d) => d.id));
// Stand-in for sending: yields so the other processes' claims land in between.
await new Promise((resolve) => setTimeout(resolve, 1));
}
await storage.close();
process.stdout.write(JSON.stringify(ids) + '\\n', () => process.exit(0));
`,
    );
    const claimers = Array.from({ length: 3 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, path], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      disposers.push(() => child.kill());
      let out = '';
      let err = '';
      let onReady: () => void = () => {};
      const ready = new Promise<void>((resolve) => (onReady = resolve));
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.startsWith('ready\n')) onReady();
      });
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const done = new Promise<string[]>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => {
          if (code === 0) resolve(JSON.parse(out.slice('ready\n'.length)) as string[]);
          else reject(new Error(`claimer exited with ${code}: ${err}`));
        });
      });
      // Surface a crash before "ready" instead of waiting forever.
      return { child, ready: Promise.race([ready, done.then(() => undefined)]), done };
    });
    await Promise.all(claimers.map((c) => c.ready));
    for (const c of claimers) c.child.stdin.end('go\n');
    const results = await Promise.all(claimers.map((c) => c.done));
    const all = results.flat();
    console.log(`claims per process: ${results.map((ids) => ids.length).join(', ')}`);
    // Contention really happened: at least two processes got work.
    expect(results.filter((ids) => ids.length > 0).length).toBeGreaterThanOrEqual(2);
    expect(all).toHaveLength(2000);
    expect(new Set(all).size).toBe(2000);
  }, 60_000);

  it('three processes keep the cap and one delivery per key in flight at a time', async () => {
    const path = fileDb();
    const storage = await open({ path });
    const cap = 4;
    const w = await seed(storage, { ordering: 'entity', concurrency: cap });
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    // Emitted in rounds, so that each key's deliveries are spread through the backlog.
    for (let round = 0; round < 8; round++) {
      await storage.enqueueDeliveries(keys.map((key) => makeDelivery(w.id, { orderingKey: `order:${key}`, body: `{"key":"${key}","round":${round}}` })));
    }
    const moduleUrl = pathToFileURL(fileURLToPath(new URL('../src/storage/sqlite.ts', import.meta.url))).href;
    const fixtures = pathToFileURL(fileURLToPath(new URL('../src/testing/fixtures.ts', import.meta.url))).href;
    const script = tempFilePath('webhook-dispatcher-queue-worker', '.mts');
    disposers.push(() => rmSync(script, { force: true }));
    // Each process claims, "sends" (a short wait), and completes with the real clock as the
    // execution's start and end: intervals inside the time its lease was held.
    writeFileSync(
      script,
      `import { SqliteStorage } from ${JSON.stringify(moduleUrl)};
import { makeExecution } from ${JSON.stringify(fixtures)};
const storage = new SqliteStorage({ path: process.argv[2] });
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
let idle = 0;
while (idle < 20) {
  const batch = await storage.claimDueDeliveries({ now: ${T0}, limit: 3, leaseMs: 600000, defaultConcurrency: 100 });
  if (batch.length === 0) { idle++; await new Promise((r) => setTimeout(r, 5)); continue; }
  idle = 0;
  const startedAt = Date.now();
  await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
  const endedAt = Date.now();
  const results = await storage.completeAttempts(batch.map((c) => ({
    deliveryId: c.id, leaseToken: c.leaseToken,
    outcome: { status: 'succeeded', lastStatus: 200, lastError: null },
    execution: makeExecution(c, { startedAt, endedAt, url: 'pid:' + process.pid }),
  })));
  if (results.some((ok) => !ok)) throw new Error('a lease was lost');
}
await storage.close();
process.exit(0);
`,
    );
    const children = Array.from({ length: 3 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, path], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      disposers.push(() => child.kill());
      let err = '';
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const done = new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}: ${err}`))));
      });
      return { child, ready: Promise.race([ready, done]), done };
    });
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.child.stdin.end('go\n');
    await Promise.all(children.map((c) => c.done));

    const executions = (await storage.listExecutions({ webhookId: w.id, limit: 1_000 })).items;
    // Every delivery sent exactly once, by more than one process.
    expect(executions).toHaveLength(keys.length * 8);
    expect(new Set(executions.map((e) => e.deliveryId)).size).toBe(executions.length);
    expect(new Set(executions.map((e) => e.url)).size).toBeGreaterThan(1);
    // Never more than the cap at once (3 processes × 3 per claim could hold 9): count overlapping
    // attempt intervals.
    const edges = executions.flatMap((e) => [
      { at: e.startedAt, d: 1 },
      { at: e.endedAt, d: -1 },
    ]);
    edges.sort((x, y) => x.at - y.at || x.d - y.d);
    let flying = 0;
    let most = 0;
    for (const edge of edges) most = Math.max(most, (flying += edge.d));
    expect(most).toBeLessThanOrEqual(cap);
    // Per key: in sequence order, one after the other.
    for (const key of keys) {
      const mine = [];
      for (const e of executions) {
        const d = await storage.getDelivery(e.deliveryId);
        if (d?.orderingKey === `order:${key}`) mine.push({ ...e, sequence: d.sequence! });
      }
      mine.sort((x, y) => x.startedAt - y.startedAt || x.sequence - y.sequence);
      expect(mine.map((e) => e.sequence)).toEqual(Array.from({ length: 8 }, (_, i) => i + 1));
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.startedAt).toBeGreaterThanOrEqual(mine[i - 1]!.endedAt);
    }
    expect(await storage.getQueueStats(w.id, T0)).toMatchObject({ depth: 0, inFlight: 0, held: 0 });
  }, 60_000);
});
