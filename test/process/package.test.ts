// The built package (dist/) as users load it: import and require, on every Node we have,
// both builds in one process, types under NodeNext for ESM and CJS consumers, and a process
// that ends on its own once the pool is closed.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/net.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { CHILD_LIMIT_MS, CHILD_TEST_TIMEOUT_MS, FIXTURES, nodeBinaries, ROOT, runNode } from './run-node.js';

let server: TestServer;
let deadTarget: string;

beforeAll(async () => {
  server = await startTestServer();
  deadTarget = `127.0.0.1:${await closedPort()}`;
});

afterAll(async () => {
  await server.kill();
});

// Each test runs a child process with runNode's limit; the timeout leaves room for it.
describe.each(nodeBinaries())('on $name', { timeout: CHILD_TEST_TIMEOUT_MS }, ({ path: node }) => {
  it.each(['esm', 'cjs'])('loads with %s and exits by itself after close(), without process.exit', async (flavour) => {
    const result = await runNode(node, [`${FIXTURES}exit-after-close.mjs`, server.address, deadTarget, flavour]);
    expect(result.stderr).toBe('');
    // Killed by runNode's 120 s limit means something of ours kept the event loop alive.
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      outcomes: string[];
      retries: number;
      result: object;
      drained: object;
      closedAt: number;
      resources: string[];
    };
    expect(report.outcomes).toEqual([
      'ok:ok',
      `dead:${grpc.status.UNAVAILABLE}`,
      'abort:AbortError',
      `slow:${grpc.status.CANCELLED}`,
      'quick:ok',
    ]);
    expect(report.retries).toBeGreaterThanOrEqual(1);
    expect(report.result).toMatchObject({ drained: 0, cancelled: 1 });
    expect(report.drained).toMatchObject({ drained: 1, cancelled: 0 });
    // No timer is left once close() has resolved (sockets may still be finishing their FIN)...
    expect(report.resources.filter((r) => r === 'Timeout')).toEqual([]);
    // ...and the process ends on its own right after: nothing keeps the event loop alive. A
    // process kept alive runs into runNode's kill (signal SIGKILL above); this bound, a third of
    // that limit, leaves a loaded machine time to end the process and tell us.
    expect(result.exitedAt - report.closedAt).toBeLessThan(CHILD_LIMIT_MS / 3);
  });

  it('keeps the class names of its errors in both builds: constructor.name, name, stack and util.inspect', async () => {
    const result = await runNode(node, [`${FIXTURES}error-names.mjs`]);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as Record<'esm' | 'cjs', Record<string, unknown>>;
    for (const build of ['esm', 'cjs'] as const) {
      for (const name of ['StatusError', 'PoolClosedError', 'CircuitOpenError']) {
        expect(report[build][name], `${build} ${name}`).toEqual({
          constructorName: name,
          name,
          stackHead: name,
          stackHasCaller: true,
          inspectHead: name,
        });
      }
      expect(report[build].ChannelPool).toBe('ChannelPool');
    }
  });

  it('keeps instanceof working with the ESM and CJS builds loaded together', async () => {
    const result = await runNode(node, [`${FIXTURES}dual-package.mjs`, deadTarget]);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({
      distinctClasses: true,
      cjsStatusIsEsmStatus: true,
      esmStatusIsCjsStatus: true,
      cjsClosedIsEsmClosed: true,
      esmClosedIsCjsClosed: true,
      statusIsNotClosed: false,
      codes: [grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE, grpc.status.CANCELLED],
      grpcCode: grpc.status.UNAVAILABLE,
    });
  });
});

// tsc takes 5 s here on an idle machine, and took up to 87 s on a loaded 2-core runner (two
// other `npm test` runs beside this one, load average 25).
it('resolves types for ESM and CJS consumers under module NodeNext', { timeout: 300_000 }, async () => {
  const tsc = `${ROOT}node_modules/typescript/bin/tsc`;
  const run = promisify(execFile);
  const { stdout, stderr } = await run(process.execPath, [tsc, '-p', `${FIXTURES}tsconfig.consumer.json`]).catch(
    (error: { stdout: string; stderr: string }) => error,
  );
  expect(`${stdout}${stderr}`).toBe('');
});
