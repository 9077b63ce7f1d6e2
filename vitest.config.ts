import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

/** Test files, wherever they live: the library's (test/) and the bench tooling's (bench/test/). */
const TESTS = ['test/**/*.test.ts', 'bench/test/**/*.test.ts'];
/**
 * Files that restart services, run several processes or drive a browser. They run alone, one
 * file at a time, after every other file has finished: never next to another test's load.
 */
const SERIAL = ['test/**/*.serial.test.ts', 'bench/test/**/*.serial.test.ts'];

export default defineConfig({
  resolve: {
    // Tests and examples import the package by its public name, as users do.
    alias: [
      { find: /^webhook-dispatcher\/testing$/, replacement: src('testing/index.ts') },
      { find: /^webhook-dispatcher\/storage\/sqlite$/, replacement: src('storage/sqlite.ts') },
      { find: /^webhook-dispatcher\/storage\/postgres$/, replacement: src('storage/postgres.ts') },
      { find: /^webhook-dispatcher\/management$/, replacement: src('management/index.ts') },
      { find: /^webhook-dispatcher\/admin$/, replacement: src('admin/index.ts') },
      { find: /^webhook-dispatcher\/receiver$/, replacement: src('receiver/index.ts') },
      { find: /^webhook-dispatcher\/transport$/, replacement: src('transport/index.ts') },
      { find: /^webhook-dispatcher\/observability$/, replacement: src('observability/index.ts') },
      { find: /^webhook-dispatcher$/, replacement: src('index.ts') },
    ],
  },
  test: {
    testTimeout: 20_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: { name: 'parallel', include: TESTS, exclude: [...configDefaults.exclude, ...SERIAL] },
      },
      {
        extends: true,
        // groupOrder 1: starts once the parallel project (group 0) is done.
        test: { name: 'serial', include: SERIAL, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
