/**
 * The process one throughput row runs in (see row-process.ts): `row-worker.ts <row> <ports>`.
 * It answers the parent's prepare / run / teardown commands over IPC and exits when the parent
 * disconnects.
 *
 * @module
 */
import process from 'node:process';
import { Cleanup, TimeoutError, withTimeout } from './common.js';
import type { RowCommand, RowReply, RowRunResult } from './row-process.js';
import { environmentNotes, ROWS, RowUnavailable, type PreparedRow, type ReceiverAddress } from './rows.js';

const [rowName, portList] = process.argv.slice(2);
const def = ROWS.find((r) => r.name === rowName);
if (!def || !portList) throw new Error(`usage: row-worker.ts <row> <ports>; unknown row ${String(rowName)}`);
const ports = portList.split(',').map(Number);

const receiver: ReceiverAddress = {
  origin: (index = 0) => `http://127.0.0.1:${ports[index]!}`,
  url: (index = 0, path = '/hook') => `http://127.0.0.1:${ports[index]!}${path}`,
};
const cleanup = new Cleanup();
let prepared: PreparedRow | null = null;
let deliveries = 0;

const send = (reply: RowReply) => process.send!(reply);
const firstLine = (error: unknown) => String((error as Error)?.message ?? error).split('\n')[0]!.slice(0, 200);

/** Write calls of both dispatcher processes (D-pg), by method. */
function mergeCounts(own: Record<string, number>, peer: Record<string, number> | undefined): Record<string, number> {
  const merged = { ...own };
  for (const [method, n] of Object.entries(peer ?? {})) merged[method] = (merged[method] ?? 0) + n;
  return merged;
}

async function handle(command: RowCommand): Promise<RowRunResult | undefined> {
  if (command.cmd === 'prepare') {
    // No forced GC here or after teardown (see bench/README.md, "Steady state"): a full collection
    // of an idle process let the maps of every hot path's objects die, and the next timed run spent
    // a fifth of its CPU re-optimising them.
    deliveries = command.n;
    prepared = await withTimeout(def!.prepare({ n: command.n, receiver, cleanup }), 60_000, `${def!.name} setup`);
    return undefined;
  }
  const row = prepared;
  if (!row) throw new Error(`${command.cmd} before prepare`);
  if (command.cmd === 'teardown') {
    prepared = null;
    await row.teardown();
    return undefined;
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // A stuck row (e.g. an unfinished adapter) must not hang the suite.
  await withTimeout(row.run(), Math.max(60_000, deliveries * 10), def!.name);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const peer = row.peerStats ? await row.peerStats() : null;
  await row.check?.();
  const sql = row.sqlStatements ? row.sqlStatements() + (peer?.sqlStatements ?? 0) : null;
  return {
    seconds,
    cpuUs: cpu.user + cpu.system,
    writeCounts: row.writes ? mergeCounts(row.writes.snapshot(), peer?.writeCounts) : null,
    sqlStatements: sql,
    peer: peer ? { cpuUs: peer.cpuUs, claimed: peer.claimed } : null,
    errors: [...(row.errors ?? []), ...(peer?.errors.map((e) => `second process: ${e}`) ?? [])].slice(0, 5),
    notes: [...environmentNotes],
  };
}

process.on('message', (command: RowCommand) => {
  handle(command).then(
    (result) => send({ id: command.id, ok: true, ...(result ? { result } : {}) }),
    (error: unknown) =>
      send({
        id: command.id,
        ok: false,
        error: error instanceof RowUnavailable ? error.message : firstLine(error),
        unavailable: error instanceof RowUnavailable,
        timedOut: error instanceof TimeoutError,
      }),
  );
});

process.on('disconnect', () => {
  void cleanup.interrupt().finally(() => process.exit(0));
});
