import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'storage/sqlite': 'src/storage/sqlite.ts',
    // Started as a worker thread by storage/sqlite (found next to the bundle, so it stays in storage/).
    'storage/sqlite-worker': 'src/storage/sqlite/worker.ts',
    'storage/postgres': 'src/storage/postgres.ts',
    'management/index': 'src/management/index.ts',
    'admin/index': 'src/admin/index.ts',
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
