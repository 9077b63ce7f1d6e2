/**
 * The process a scenario runs in when it must not inherit the runner's engine (see
 * scenario-process.ts): `scenario-worker.ts <name> <ports> <quick>`. It runs the scenario once,
 * sends its log lines and then its result to the parent over IPC, and exits.
 *
 * @module
 */
import process from 'node:process';
import { Cleanup } from './common.js';
import type { ScenarioMessage } from './scenario-process.js';
import { emitScenario, overheadScenario, type IsolatedScenarioContext, type ScenarioResult } from './scenarios.js';

/** The scenarios that run in a process of their own. */
const ISOLATED: Record<string, (ctx: IsolatedScenarioContext) => Promise<ScenarioResult>> = {
  emit: emitScenario,
  overhead: overheadScenario,
};

const [name = '', portList = '', quick = 'false'] = process.argv.slice(2);
const scenario = ISOLATED[name];
const ports = portList.split(',').map(Number);
const send = (message: ScenarioMessage) => process.send!(message);
const cleanup = new Cleanup();

process.on('disconnect', () => {
  void cleanup.interrupt().finally(() => process.exit(0));
});

try {
  if (!scenario || ports.some((port) => !Number.isInteger(port) || port <= 0)) {
    throw new Error(`usage: scenario-worker.ts <${Object.keys(ISOLATED).join('|')}> <ports> <quick>; got ${name} ${portList}`);
  }
  const ctx: IsolatedScenarioContext = {
    receiver: {
      origin: (index = 0) => `http://127.0.0.1:${ports[index]!}`,
      url: (index = 0, path = '/hook') => `http://127.0.0.1:${ports[index]!}${path}`,
    },
    cleanup,
    quick: quick === 'true',
    log: (line) => send({ type: 'log', line }),
  };
  const result = await scenario(ctx);
  send({ type: 'result', result });
} catch (error) {
  send({ type: 'error', error: String((error as Error)?.message ?? error).split('\n')[0]!.slice(0, 200) });
} finally {
  await cleanup.runAll();
  process.disconnect();
}
