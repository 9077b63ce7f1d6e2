import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

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
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
