/**
 * A throwaway PostgreSQL cluster of a test's own (initdb into a temp dir, its own port), for tests
 * that stop and start the server. Never the shared server other tests use.
 *
 * initdb and pg_ctl refuse to run as root: as root, they run as the `postgres` user (runuser).
 * The binaries come from PATH, else /usr/lib/postgresql/<version>/bin.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir } from './unique.js';

const run = promisify(execFile);

/** A running throwaway cluster. */
export interface ThrowawayCluster {
  host: string;
  port: number;
  /** Stops the server (fast shutdown: clients are disconnected). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it (when running) and deletes its files. */
  destroy(): Promise<void>;
}

function findBinary(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, name))) return join(dir, name);
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const version of readdirSync(root).sort().reverse()) {
      const candidate = join(root, version, 'bin', name);
      if (existsSync(candidate)) return candidate;
    }
  }
  return null;
}

/** Why a throwaway cluster cannot be made here, or null when it can. */
export function clusterUnavailable(): string | null {
  if (!findBinary('initdb') || !findBinary('pg_ctl')) return 'initdb/pg_ctl not found (PATH, /usr/lib/postgresql/*/bin)';
  if (process.getuid?.() === 0 && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) return 'running as root without runuser';
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Initialises and starts a cluster with trust auth for `postgres` on 127.0.0.1 and a free port. */
export async function startThrowawayCluster(): Promise<ThrowawayCluster> {
  const initdb = findBinary('initdb')!;
  const pgCtl = findBinary('pg_ctl')!;
  const asRoot = process.getuid?.() === 0;
  const dir = makeTempDir('wd-pg-cluster');
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const exec = (file: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args));
  const data = join(dir, 'data');
  const port = await freePort();
  await exec(initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40`;
  let running = false;
  const start = async () => {
    await exec(pgCtl, ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
    running = true;
  };
  const stop = async () => {
    await exec(pgCtl, ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
    running = false;
  };
  await start();
  return {
    host: '127.0.0.1',
    port,
    start,
    stop,
    destroy: async () => {
      try {
        if (running) await stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
