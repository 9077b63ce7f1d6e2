/** Temporary SQLite database files for tests. */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh database file path in the OS temp dir, removed (with its WAL files) by {@link removeDb}. */
export function tempDbPath(): string {
  return join(tmpdir(), `webhook-dispatcher-${process.pid}-${randomUUID()}.db`);
}

export function removeDb(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
}
