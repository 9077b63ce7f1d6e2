/**
 * Names that no other test file, process or CI leg uses: each carries this process's id and a
 * random part. Files run in separate worker processes, CI legs one after another, and developers
 * run suites side by side on one machine and one Postgres database; a name taken twice would let
 * one run read or drop another's data.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** `<pid>-<8 hex digits>`: the pid tells processes apart, the random part names within one. */
export function uniqueTag(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** A path in the OS temp dir, `<prefix>-<pid>-<random><extension>`. Creates nothing. */
export function tempFilePath(prefix: string, extension = ''): string {
  return join(tmpdir(), `${prefix}-${uniqueTag()}${extension}`);
}

/** Creates a fresh directory in the OS temp dir, `<prefix>-<pid>-XXXXXX`. */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-${process.pid}-`));
}
