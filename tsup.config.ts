import { defineConfig } from 'tsup';

/**
 * One entry per subpath of package.json `exports` (`.` is `index`), built to `dist/<name>.js` with
 * its `.d.ts`. Adding a subpath: a line here, its `exports` entry, a `paths` entry in
 * tsconfig.json, an alias in vitest.config.ts (tests import the package by name), an entry point
 * in typedoc.json, and its pinned export list in test/public-api.test.ts, which checks that all
 * of these agree.
 */
export const PUBLIC_ENTRIES: Record<string, string> = {
  index: 'src/index.ts',
  'receiver/index': 'src/receiver/index.ts',
  'storage/sqlite': 'src/storage/sqlite.ts',
  'storage/postgres': 'src/storage/postgres.ts',
  'management/index': 'src/management/index.ts',
  'admin/index': 'src/admin/index.ts',
  'transport/index': 'src/transport/index.ts',
  'observability/index': 'src/observability/index.ts',
  'testing/index': 'src/testing/index.ts',
};

export default defineConfig({
  entry: {
    ...PUBLIC_ENTRIES,
    // Started as a worker thread by storage/sqlite (found next to the bundle, so it stays in storage/).
    'storage/sqlite-worker': 'src/storage/sqlite/worker.ts',
  },
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  removeNodeProtocol: false,
  // Optional peers and the test runner stay external: the user brings them.
  external: ['vitest', 'pg', 'better-sqlite3'],
});
