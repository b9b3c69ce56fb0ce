// The adapters' subpaths as users load them (dist/): the main entry works where neither
// prom-client nor @opentelemetry/* is installed, and the OpenTelemetry adapter beside
// @opentelemetry/instrumentation-grpc gives one tree, caller → call → attempt → grpc-js call →
// server, with no orphaned span.
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { CHILD_TEST_TIMEOUT_MS, FIXTURES, ROOT, runNode } from './run-node.js';

let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer();
  // A project with the built package and its runtime dependencies only (no optional peers).
  dir = mkdtempSync(join(tmpdir(), 'resilient-grpc-no-peers-'));
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, '@grpc'), { recursive: true });
  const pkg = join(modules, 'resilient-grpc');
  mkdirSync(pkg);
  cpSync(join(ROOT, 'dist'), join(pkg, 'dist'), { recursive: true });
  writeFileSync(join(pkg, 'package.json'), readFileSync(join(ROOT, 'package.json')));
  for (const name of ['@grpc/grpc-js', '@grpc/proto-loader', 'opossum'])
    symlinkSync(join(ROOT, 'node_modules', name), join(modules, name), 'dir');
  cpSync(join(FIXTURES, 'without-peers.mjs'), join(dir, 'without-peers.mjs'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
});

afterAll(async () => {
  await server.kill();
  rmSync(dir, { recursive: true, force: true });
});

// Each test runs a child process with runNode's limit; the timeout leaves room for it.
describe('optional peer dependencies', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('the main entry loads and works (ESM and CJS) with neither prom-client nor @opentelemetry/api resolvable', async () => {
    const result = await runNode(process.execPath, [
      join(dir, 'without-peers.mjs'),
      server.address,
      join(ROOT, 'protos/test_service.proto'),
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      resolvable: { 'prom-client': false, '@opentelemetry/api': false },
      calls: ['esm:esm:1', 'cjs:cjs:1'],
      // The subpaths need their peer: importing one without it fails, and only then.
      subpaths: { 'resilient-grpc/prometheus': 'ERR_MODULE_NOT_FOUND', 'resilient-grpc/opentelemetry': 'ERR_MODULE_NOT_FOUND' },
    });
  });
});

interface SpanRecord {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentId: string | null;
}

const CLIENT = 2;
const SERVER = 1;

async function traced(mode: 'attempt-spans' | 'no-attempt-spans'): Promise<{ spans: SpanRecord[]; received: string[] }> {
  const result = await runNode(process.execPath, [join(FIXTURES, 'otel-beside-instrumentation.cjs'), ROOT, mode]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as { spans: SpanRecord[]; received: string[] };
}

/** Each span as `name(kind) > parent name(kind) > ...` up to the root; throws on an orphan. */
function paths(spans: SpanRecord[]): string[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  return spans.map((span) => {
    const names: string[] = [];
    for (let s: SpanRecord | undefined = span; s !== undefined; s = s.parentId === null ? undefined : byId.get(s.parentId)) {
      if (s.parentId !== null && !byId.has(s.parentId)) throw new Error(`orphan: ${s.name}`);
      names.push(`${s.name}(${s.kind})`);
    }
    return names.reverse().join(' > ');
  });
}

describe('beside @opentelemetry/instrumentation-grpc', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  const CALL = 'resilient.test.v1.TestService/Echo(2)';
  const ATTEMPT = 'Attempt.resilient.test.v1.TestService.Echo(2)';
  const GRPC_CLIENT = `grpc.resilient.test.v1.TestService/Echo(${CLIENT})`;
  const GRPC_SERVER = `grpc.resilient.test.v1.TestService/Echo(${SERVER})`;

  it('with attempt spans: caller > call > attempt > grpc-js client span > server span, for each of the two attempts', async () => {
    const { spans, received } = await traced('attempt-spans');
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    expect(paths(spans).sort()).toEqual(
      [
        'caller(0)',
        `caller(0) > ${CALL}`,
        `caller(0) > ${CALL} > ${ATTEMPT}`,
        `caller(0) > ${CALL} > ${ATTEMPT}`,
        `caller(0) > ${CALL} > ${ATTEMPT} > ${GRPC_CLIENT}`,
        `caller(0) > ${CALL} > ${ATTEMPT} > ${GRPC_CLIENT}`,
        `caller(0) > ${CALL} > ${ATTEMPT} > ${GRPC_CLIENT} > ${GRPC_SERVER}`,
        `caller(0) > ${CALL} > ${ATTEMPT} > ${GRPC_CLIENT} > ${GRPC_SERVER}`,
      ].sort(),
    );
    // The server joined the instrumentation's span of each attempt.
    const grpcClients = spans.filter((s) => s.name.startsWith('grpc.') && s.kind === CLIENT);
    expect(received.sort()).toEqual(grpcClients.map((s) => `00-${s.traceId}-${s.spanId}-01`).sort());
  });

  it("with attemptSpans: false, the instrumentation's span is the attempt span: no two spans for one attempt", async () => {
    const { spans } = await traced('no-attempt-spans');
    expect(paths(spans).sort()).toEqual(
      [
        'caller(0)',
        `caller(0) > ${CALL}`,
        `caller(0) > ${CALL} > ${GRPC_CLIENT}`,
        `caller(0) > ${CALL} > ${GRPC_CLIENT}`,
        `caller(0) > ${CALL} > ${GRPC_CLIENT} > ${GRPC_SERVER}`,
        `caller(0) > ${CALL} > ${GRPC_CLIENT} > ${GRPC_SERVER}`,
      ].sort(),
    );
  });
});
