/**
 * The package as published: `npm run check` (tsup build, publint --strict, attw esm-only) passes,
 * and the packed tarball installed into an empty ESM project outside this repository imports on
 * every subpath, without the optional peers (better-sqlite3, pg), and delivers a real, verified
 * webhook to a local node:http receiver.
 *
 * Builds dist/ itself, so it passes on a clean clone. Needs the npm cache that `npm ci` fills:
 * the tarball's dependencies are installed with --prefer-offline.
 *
 * Serial: it rewrites dist/ and runs npm and node processes. Everything runs on the Node that runs
 * the tests (process.execPath, and the npm on PATH), so each CI leg (.ci/run) checks the package
 * on its own Node: the Node 24 leg installs and runs the tarball on Node 24.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from './helpers/unique.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface RunResult {
  code: number;
  output: string;
}

/**
 * Runs a command and resolves with its exit code and combined output (never rejects on a
 * non-zero exit). The npm variables of an enclosing `npm test` are dropped, so they cannot point
 * a nested npm at this repository.
 */
function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^npm_(package|lifecycle)_/i.test(name) || /^npm_config_local_prefix$/i.test(name) || name === 'INIT_CWD') continue;
    env[name] = value;
  }
  env.NO_COLOR = '1';
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd, env, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, shell: process.platform === 'win32' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}${error && code === 1 && !stdout && !stderr ? error.message : ''}` });
      },
    );
  });
}

/** Asserts exit 0, showing the command's output when it failed. */
function expectSuccess(result: RunResult, what: string): void {
  if (result.code !== 0) throw new Error(`${what} failed with exit ${result.code}:\n${result.output.slice(-6000)}`);
}

/** The ESM script run in the consumer project: every subpath, then one real delivery. */
const SMOKE_SCRIPT = String.raw`
import { createServer } from 'node:http';
import { WebhookDispatcher, WebhookVerificationError, generateSecret } from 'webhook-dispatcher';
import { expressVerifier, createWebhookVerifier, WebhookVerificationError as ReceiverVerificationError } from 'webhook-dispatcher/receiver';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { createManagementHandler, toExpressMiddleware } from 'webhook-dispatcher/management';
import { AutoTransport } from 'webhook-dispatcher/transport';
import { CHANNELS } from 'webhook-dispatcher/observability';
import { createAdminHandler } from 'webhook-dispatcher/admin';

const report = {};
// /testing imports vitest, which this project does not have: only check that it resolves.
report.testing = import.meta.resolve('webhook-dispatcher/testing').endsWith('/dist/testing/index.js');
report.exports = [typeof WebhookDispatcher, typeof SqliteStorage, typeof PostgresStorage, typeof createManagementHandler, typeof toExpressMiddleware, typeof createWebhookVerifier, typeof AutoTransport, typeof CHANNELS.attemptEnd, typeof createAdminHandler].join(',');
// Entry points share one copy of each class (split chunks): an error from one is instanceof the other's.
report.sharedErrorClass = WebhookVerificationError === ReceiverVerificationError;

// The optional peers are absent, and the adapters say what to install when used.
report.peersAbsent = ['better-sqlite3', 'pg'].filter((peer) => {
  try { import.meta.resolve(peer); return false; } catch { return true; }
}).join(',');
try {
  const storage = new SqliteStorage({ path: ':memory:' });
  await storage.migrate();
  report.sqliteWithoutPeer = 'opened?!';
} catch (error) {
  report.sqliteWithoutPeer = error.code + ': ' + /npm install better-sqlite3/.test(error.message);
}

// A real delivery to a local receiver verifying with the packed expressVerifier.
const secret = generateSecret();
const verify = expressVerifier({ secret });
const received = [];
const server = createServer((req, res) => verify(req, res, () => {
  received.push(req.webhook);
  res.writeHead(204).end();
}));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
// Explicit security opt-out: the receiver is on 127.0.0.1, which the SSRF guard refuses by default.
const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true });
await dispatcher.createWebhook({ url: 'http://127.0.0.1:' + server.address().port + '/hooks', secret, triggers: [{ entity: 'order', event: 'Create' }] });
const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1, OrderCode: 'SO-1' } });
await dispatcher.drain();
const [execution] = (await dispatcher.listExecutions({ deliveryId: deliveries[0].id })).items;
await dispatcher.close();
server.closeAllConnections();
await new Promise((resolve) => server.close(resolve));

console.log('REPORT ' + JSON.stringify(report));
console.log('DELIVERED ' + JSON.stringify({
  status: execution?.status,
  sameId: received[0]?.id === deliveries[0].id,
  orderCode: received[0]?.payload?.data?.OrderCode,
}));
`;

describe(`the published package, on Node ${process.versions.node}`, () => {
  let work = '';
  let check: RunResult = { code: -1, output: '' };

  beforeAll(async () => {
    work = makeTempDir('webhook-dispatcher-package');
    // Builds dist/ (tsup, declarations included), then publint and attw on the packed package.
    check = await run(process.execPath, [join(root, 'scripts', 'check-package.mjs')], root, 170_000);
  }, 180_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('passes npm run check: tsup builds, publint --strict is clean, attw (esm-only) finds no problem', () => {
    expectSuccess(check, 'scripts/check-package.mjs');
    expect(check.output).toContain('check-package: all checks passed');
    // publint
    expect(check.output).toContain('All good!');
    // attw: every subpath resolves under node16 (from ESM) and bundler; only CJS resolutions are ignored.
    expect(check.output).toContain("(ignoring resolutions: 'node10', 'node16-cjs')");
    const subpaths = Object.keys(pkg.exports)
      .filter((key) => key !== './package.json')
      .map((key) => key.slice(1));
    expect(subpaths).toContain('/receiver');
    for (const subpath of subpaths) expect(check.output).toContain(`"webhook-dispatcher${subpath}"`);
    const esmLines = check.output.split('\n').filter((line) => /^(node16 \(from ESM\)|bundler):/.test(line));
    expect(esmLines.length).toBeGreaterThanOrEqual(subpaths.length * 2);
    for (const line of esmLines) expect(line).toMatch(/: OK\b/);
  });

  it('runs the built SQLite adapter on its database thread (dist/storage/sqlite-worker.js)', async () => {
    expectSuccess(check, 'the build');
    // From the repository root, where better-sqlite3 is installed; the tarball test has no peers.
    const dir = makeTempDir('webhook-dispatcher-dist-sqlite');
    const script = `
      import { WebhookDispatcher } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      import { SqliteStorage } from ${JSON.stringify(new URL('../dist/storage/sqlite.js', import.meta.url).href)};
      const storage = new SqliteStorage({ path: ${JSON.stringify(join(dir, 'webhooks.db'))} });
      await storage.migrate();
      // Explicit security opt-out: nothing is sent (autoStart: false), but the URL is loopback.
      const dispatcher = new WebhookDispatcher({ storage, autoStart: false, allowPrivateNetworks: true });
      const webhook = await dispatcher.createWebhook({ url: 'http://127.0.0.1:9/hooks', triggers: [{ entity: 'order', event: 'Create' }] });
      await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
      const claimed = await storage.claimDueDeliveries({ now: Date.now() + 60_000, limit: 5, leaseMs: 1000, defaultConcurrency: 16 });
      const duplicate = await storage.insertWebhook(await storage.getWebhook(webhook.id)).catch((error) => error.name);
      await dispatcher.close();
      await storage.close();
      console.log('SQLITE ' + JSON.stringify({ claimed: claimed.length, duplicate }));
    `;
    try {
      const result = await run(process.execPath, ['--input-type=module', '-e', script], root, 30_000);
      expectSuccess(result, 'the dist SQLite script');
      expect(result.output).toContain('SQLITE {"claimed":1,"duplicate":"StorageError"}');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('installs from the packed tarball and works in a fresh ESM project without the optional peers', async () => {
    expectSuccess(check, 'the build');
    const packDir = join(work, 'pack');
    const project = join(work, 'consumer');
    await mkdir(packDir);
    await mkdir(project);

    const pack = await run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], root, 60_000);
    expectSuccess(pack, 'npm pack');
    const [packed] = JSON.parse(pack.output.slice(pack.output.indexOf('['), pack.output.lastIndexOf(']') + 1)) as {
      filename: string;
      files: { path: string }[];
    }[];
    const tarball = join(packDir, packed!.filename);
    expect(existsSync(tarball)).toBe(true);
    const files = packed!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/testing/index.js']));
    expect(files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f))).toEqual([]);

    await writeFile(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
    );
    const install = await run(
      npm,
      ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock'],
      project,
      120_000,
    );
    expectSuccess(install, 'npm install <tarball>');
    expect(existsSync(join(project, 'node_modules', 'webhook-dispatcher', 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(project, 'node_modules', 'better-sqlite3'))).toBe(false);
    expect(existsSync(join(project, 'node_modules', 'pg'))).toBe(false);

    await writeFile(join(project, 'smoke.mjs'), SMOKE_SCRIPT);
    const smoke = await run(process.execPath, ['smoke.mjs'], project, 30_000);
    expectSuccess(smoke, 'node smoke.mjs');
    const line = (prefix: string) => {
      const found = smoke.output.split('\n').find((l) => l.startsWith(`${prefix} `));
      if (!found) throw new Error(`no ${prefix} line in:\n${smoke.output}`);
      return JSON.parse(found.slice(prefix.length + 1)) as unknown;
    };
    expect(line('REPORT')).toEqual({
      testing: true,
      exports: 'function,function,function,function,function,function,function,string,function',
      sharedErrorClass: true,
      peersAbsent: 'better-sqlite3,pg',
      sqliteWithoutPeer: 'storage_error: true',
    });
    expect(line('DELIVERED')).toEqual({ status: 204, sameId: true, orderCode: 'SO-1' });
  }, 180_000);
});
