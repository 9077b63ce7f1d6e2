/** Temporary SQLite database files for tests. */
import { rmSync } from 'node:fs';
import { tempFilePath } from './unique.js';

/**
 * A fresh database file path in the OS temp dir (process id and a random part in its name, see
 * unique.ts), removed (with its WAL files) by {@link removeDb}.
 */
export function tempDbPath(): string {
  return tempFilePath('webhook-dispatcher', '.db');
}

export function removeDb(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
}
