// The consumer projects of test/consumers/, one per code generator, each a typical ad hoc client
// (`new UserServiceClient(address, credentials)` and callbacks) next to the same code on the pool.
// Each must type-check as an application would check it (strict; NodeNext and bundler resolution,
// or plain CommonJS JavaScript) against the built package, and run: before and after the
// migration return the same replies from a real server, over one pooled channel, and the
// process exits by itself once the pool is closed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedServer, startUserServer } from '../../examples/embedded-server.js';
import { CHILD_LIMIT_MS, CHILD_TEST_TIMEOUT_MS, ROOT, runNode } from './run-node.js';

const TSC = `${ROOT}node_modules/typescript/bin/tsc`;
const CONSUMERS = `${ROOT}test/consumers/`;

// A tsc run took 35-38 s here with six other children beside it on a busy 2-core machine: twice
// runNode's default limit, so that a loaded runner is not mistaken for a failure.
const TSC_LIMIT_MS = 2 * CHILD_LIMIT_MS;

/** Runs tsc on a project of test/consumers and expects no diagnostic. */
async function typeCheck(project: string, flags: string[] = []): Promise<void> {
  const result = await runNode(process.execPath, [TSC, '-p', `${CONSUMERS}${project}`, '--pretty', 'false', ...flags], TSC_LIMIT_MS);
  expect(`${result.stdout}${result.stderr}`).toBe('');
  expect(result.code).toBe(0);
}

let server: EmbeddedServer;
beforeAll(async () => {
  server = await startUserServer();
});
afterAll(() => server?.kill());

describe.concurrent('consumer projects (test/consumers)', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  // The three TypeScript projects are one program in test/consumers/tsconfig.json: one tsc run
  // per resolution mode.
  it('the TypeScript consumers (grpc-tools, ts-proto, proto-loader-gen-types) type-check under NodeNext', {
    timeout: TSC_LIMIT_MS + 30_000,
  }, async () => {
    await typeCheck('tsconfig.json');
  });

  it('... and under bundler resolution', { timeout: TSC_LIMIT_MS + 30_000 }, async () => {
    await typeCheck('tsconfig.json', ['--module', 'preserve', '--moduleResolution', 'bundler']);
  });

  it('the plain CommonJS JavaScript consumer (loadPackageDefinition) type-checks with checkJs', {
    timeout: TSC_LIMIT_MS + 30_000,
  }, async () => {
    await typeCheck('load-package-definition/tsconfig.json');
  });

  const runs: Array<[string, string[]]> = [
    ['grpc-tools', ['--import', 'tsx', 'grpc-tools/main.ts']],
    ['ts-proto', ['--import', 'tsx', 'ts-proto/main.ts']],
    ['proto-loader-gen-types', ['--import', 'tsx', 'proto-loader/main.ts']],
    ['loadPackageDefinition, CommonJS', ['load-package-definition/main.cjs']],
  ];
  for (const [name, args] of runs) {
    it(`${name}: before and after the migration give the same replies, over one channel, and the process exits`, async () => {
      const script = args.pop()!;
      const run = await runNode(process.execPath, [...args, `${CONSUMERS}${script}`, server.address]);
      expect(run.stderr).toBe('');
      expect(run.signal, 'the process must exit by itself once the pool is closed').toBeNull();
      expect(run.code).toBe(0);
      const output = JSON.parse(run.stdout) as { before: string[]; after: string[]; channels: number; closed: number };
      expect(output.before).toEqual(['user-1', 'user-2', 'user-3']);
      expect(output.after).toEqual(output.before);
      expect(output.channels).toBe(1);
      // Every call had settled before close(): nothing to drain or cancel.
      expect(output.closed).toBe(0);
    });
  }
});
