/**
 * Runs a scenario in a Node process of its own (bench/scenario-worker.ts), for the scenarios that
 * measure a per-call cost (`emit`, `overhead`). In the runner's process they came after the
 * backlog scenarios, in an engine whose dispatcher code had been compiled for SQLite's and
 * Postgres's records as well as MemoryStorage's, and whose heap still held the remains of 100,000
 * deliveries: `emit()` with 10 webhooks measured 4.0–4.65× JSON.stringify there, 3.3–3.9× alone
 * (2026-12-07). A host runs one adapter per process; so does each throughput row (row-process.ts).
 *
 * @module
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { closeChild } from './common.js';
import type { ScenarioResult } from './scenarios.js';

/** Child → parent. */
export type ScenarioMessage = { type: 'log'; line: string } | { type: 'result'; result: ScenarioResult } | { type: 'error'; error: string };

/**
 * Forks the scenario's process (same Node options, so tsx and profiling flags carry over) and
 * resolves with its result; its log lines go to `log` as they come.
 */
export async function runIsolatedScenario(name: string, ports: readonly number[], quick: boolean, log: (line: string) => void): Promise<ScenarioResult> {
  const script = fileURLToPath(new URL('./scenario-worker.ts', import.meta.url));
  const child = fork(script, [name, ports.join(','), String(quick)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    return await new Promise<ScenarioResult>((resolve, reject) => {
      child.on('message', (message: ScenarioMessage) => {
        if (message.type === 'log') log(message.line);
        else if (message.type === 'result') resolve(message.result);
        else reject(new Error(message.error));
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`the ${name} scenario's process exited (code ${code}, signal ${signal})`)));
    });
  } finally {
    await closeChild(child, 5_000);
  }
}
