/**
 * The Postgres server the tests use, and the rule for when it is missing: locally the suite is
 * skipped with a message saying how to run it; in CI (where a skipped database suite proves
 * nothing) a test fails.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { uniqueTag } from './unique.js';

/** Connection settings: 127.0.0.1:5432, user postgres, database test, or the PG* variables. */
export const pgConfig = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};

/**
 * A schema name of this test's own on the shared server: `<prefix>_<pid>_<random>`. Every file,
 * CI leg and developer's run uses the same database, so names carry the process id and a random
 * part (see unique.ts). Postgres cuts identifiers at 63 bytes; a longer name throws here rather
 * than collide there.
 */
export function uniqueSchema(prefix: string): string {
  const name = `${prefix}_${uniqueTag().replace('-', '_')}`;
  if (Buffer.byteLength(name) > 63) throw new Error(`schema name over 63 bytes: ${name}`);
  return name;
}

export const pgWhere = `${pgConfig.user}@${pgConfig.host}:${pgConfig.port}/${pgConfig.database}`;

/** Null when the server answers, else why not. */
async function probe(): Promise<string | null> {
  const client = new pg.Client({ ...pgConfig, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
  } catch (error) {
    return (error as Error).message;
  }
  try {
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end();
  }
}

/**
 * Probes the server once and registers the always-running check that fails in CI when it is
 * absent. Returns whether the file's Postgres tests can run (use with `describe.runIf`).
 */
export async function requirePostgres(suite: string): Promise<boolean> {
  const unavailable = await probe();
  if (unavailable !== null && !process.env.CI) {
    console.warn(
      `[${suite}] skipped: PostgreSQL at ${pgWhere} did not answer (${unavailable}). ` +
        'To run these tests, start PostgreSQL on 127.0.0.1:5432 with trust auth, user postgres, database test ' +
        '(or set PGHOST/PGPORT/PGUSER/PGDATABASE); see DEVELOPERS.md.',
    );
  }
  describe(`${suite}: server`, () => {
    // Always runs, so CI output never shows a skipped Postgres check: in CI an absent server fails.
    it('answers, or we are not in CI', () => {
      const why = `PostgreSQL at ${pgWhere} did not answer (${unavailable}); CI must start it (see .ci/run)`;
      expect(unavailable === null || !process.env.CI, why).toBe(true);
    });
  });
  return unavailable === null;
}
