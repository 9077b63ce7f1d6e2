/**
 * The public API, pinned: every entry point of package.json `exports` and the exact, sorted list
 * of the values it exports. Adding, removing or moving an export fails here until this file is
 * updated with it, so every change of the API is deliberate (and belongs in CHANGELOG.md).
 *
 * Also checks that the places naming the entry points agree: package.json `exports`, the tsup
 * entries (tsup.config.ts), the `paths` of tsconfig.json and typedoc.json's entry points.
 * (vitest.config.ts aliases are checked by the imports below: a missing one fails to resolve.)
 *
 * Types are not values and are not listed; `tsc` checks the types tests and examples use.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PUBLIC_ENTRIES } from '../tsup.config.js';

/** The root stays small: what a host needs on its first day. */
const ROOT_BUDGET = 30;

const PINNED: Record<string, { load: () => Promise<object>; values: string[] }> = {
  '.': {
    load: () => import('webhook-dispatcher'),
    values: [
      'AddressBlockedError',
      'DeliveryNotFoundError',
      'DispatcherClosedError',
      'MemoryStorage',
      'PayloadTooLargeError',
      'REDACTED',
      'SHOPCTRL_EVENTS',
      'SVIX_SCHEDULE',
      'SchemaMismatchError',
      'StorageError',
      'TemplateRenderError',
      'TemplateSyntaxError',
      'TransportError',
      'WebhookDispatcher',
      'WebhookError',
      'WebhookNotFoundError',
      'WebhookValidationError',
      'WebhookVerificationError',
      'generateSecret',
      'reencryptSecrets',
      'shopCtrlEvent',
      'sign',
      'verifySignature',
      'withEncryptedSecrets',
    ],
  },
  './receiver': {
    load: () => import('webhook-dispatcher/receiver'),
    values: [
      'DEFAULT_RECEIVER_MAX_BODY_BYTES',
      'DEFAULT_TOLERANCE_SECONDS',
      'WebhookVerificationError',
      'createWebhookVerifier',
      'expressVerifier',
      'honoVerifier',
      'receiverErrorResponse',
      'verifySignature',
    ],
  },
  './storage/sqlite': {
    load: () => import('webhook-dispatcher/storage/sqlite'),
    values: ['SQLITE_SCHEMA_VERSION', 'SqliteStorage'],
  },
  './storage/postgres': {
    load: () => import('webhook-dispatcher/storage/postgres'),
    values: ['POSTGRES_SCHEMA_VERSION', 'PostgresStorage'],
  },
  './management': {
    load: () => import('webhook-dispatcher/management'),
    values: [
      'DEFAULT_EVENT_CODES',
      'DEFAULT_EVENT_CODE_ALIASES',
      'DEFAULT_MAX_BODY_BYTES',
      'GENERIC_EVENT_CODE',
      'createManagementHandler',
      'toExpressMiddleware',
    ],
  },
  './admin': {
    load: () => import('webhook-dispatcher/admin'),
    values: ['CONTENT_SECURITY_POLICY', 'DEFAULT_ADMIN_MAX_BODY_BYTES', 'createAdminHandler', 'toNodeHandler'],
  },
  './transport': {
    load: () => import('webhook-dispatcher/transport'),
    values: ['AutoTransport', 'NodeHttpTransport', 'UndiciTransport', 'checkUrlHost', 'createGuardedLookup'],
  },
  './observability': {
    load: () => import('webhook-dispatcher/observability'),
    values: ['CHANNELS'],
  },
  './testing': {
    load: () => import('webhook-dispatcher/testing'),
    values: ['T0', 'describeStorageConformance', 'leaseSweepDelayMs', 'makeDelivery', 'makeExecution', 'makeWebhook'],
  },
};

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, string | { types: string; import: string }>;
};
const tsconfig = JSON.parse(readFileSync(new URL('../tsconfig.json', import.meta.url), 'utf8')) as {
  compilerOptions: { paths: Record<string, string[]> };
};
const typedoc = JSON.parse(readFileSync(new URL('../typedoc.json', import.meta.url), 'utf8')) as { entryPoints: string[] };
const subpaths = Object.keys(pkg.exports).filter((key) => key !== './package.json');

describe('public API', () => {
  it('pins every entry point of package.json exports, and nothing else', () => {
    expect(Object.keys(PINNED).sort()).toEqual([...subpaths].sort());
  });

  it.each(Object.entries(PINNED))('%s exports exactly its pinned values', async (_subpath, { load, values }) => {
    const exported = Object.keys(await load()).sort();
    expect(exported).toEqual([...values].sort());
  });

  it(`keeps the root at most ${ROOT_BUDGET} values`, () => {
    expect(PINNED['.']!.values.length).toBeLessThanOrEqual(ROOT_BUDGET);
  });

  it('shares one copy of a class between entry points (instanceof holds across them)', async () => {
    const root = (await import('webhook-dispatcher')) as Record<string, unknown>;
    const receiver = (await import('webhook-dispatcher/receiver')) as Record<string, unknown>;
    for (const name of PINNED['./receiver']!.values.filter((n) => n in root)) expect(receiver[name], name).toBe(root[name]);
  });

  it.each(subpaths)('%s is built by a tsup entry, mapped in tsconfig paths and documented by typedoc', (subpath) => {
    const target = pkg.exports[subpath] as { types: string; import: string };
    const name = target.import.replace(/^\.\/dist\//, '').replace(/\.js$/, '');
    expect(target.types).toBe(`./dist/${name}.d.ts`);
    const source = PUBLIC_ENTRIES[name];
    expect(source, `tsup entry ${name}`).toBeDefined();
    const specifier = `webhook-dispatcher${subpath.slice(1)}`;
    expect(tsconfig.compilerOptions.paths[specifier]).toEqual([`./${source}`]);
    expect(typedoc.entryPoints).toContain(source);
  });

  it('builds no public entry that package.json does not export', () => {
    const exported = subpaths.map((subpath) => (pkg.exports[subpath] as { import: string }).import);
    expect(Object.keys(PUBLIC_ENTRIES).map((name) => `./dist/${name}.js`).sort()).toEqual(exported.sort());
  });
});
