#!/usr/bin/env node
/**
 * Package quality gate (`npm run check`): builds dist/ with tsup, then lints the package as it
 * would be published.
 *
 * 1. `tsup`: the build (dist/ is what `npm pack` ships).
 * 2. `publint --strict`: package.json `exports`/`files`/`types` against the packed files;
 *    warnings count as errors.
 * 3. `attw --pack . --profile esm-only`: "Are the Types Wrong?" on every subpath. The package is
 *    ESM only, so the esm-only profile ignores the CommonJS (`node10`, `node16` from CJS)
 *    resolutions, which are expected to fail; every ESM and bundler resolution must be clean.
 *
 * Each step runs the locally installed binary (no download) and the script stops at the first
 * failing step with its exit code. Needs no network.
 */
/* global console */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

/** @type {{ name: string, bin: string, args: string[] }[]} */
const steps = [
  { name: 'build', bin: 'tsup', args: [] },
  { name: 'publint', bin: 'publint', args: ['--strict'] },
  { name: 'attw', bin: 'attw', args: ['--pack', '.', '--profile', 'esm-only', '--no-emoji', '--no-color'] },
];

for (const step of steps) {
  const bin = join(root, 'node_modules', '.bin', process.platform === 'win32' ? `${step.bin}.cmd` : step.bin);
  if (!existsSync(bin)) {
    console.error(`check-package: ${step.bin} is not installed (run npm install)`);
    process.exit(1);
  }
  console.log(`\n== check-package: ${step.name} (${[step.bin, ...step.args].join(' ')})`);
  const started = Date.now();
  const result = spawnSync(bin, step.args, {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
    env: { ...process.env, NO_COLOR: '1' },
  });
  if (result.error) {
    console.error(`check-package: ${step.name} could not start: ${result.error.message}`);
    process.exit(1);
  }
  if (result.status !== 0) {
    console.error(`check-package: ${step.name} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status || 1);
  }
  console.log(`== check-package: ${step.name} ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
console.log('\ncheck-package: all checks passed');
