// Graceful shutdown under load: 1,000 calls in flight to the test server (its own process),
// each scripted to take 200 ms (x-delay-ms), then pool.close({ graceMs: 10_000 }).
//
// Measured in a child process, which prints timestamps when it calls close() and when close()
// resolves, then does nothing more: the parent records when the child exits on its own.
//   drain time: close() called -> close() resolved (and its { drained, cancelled });
//   exit time:  close() resolved -> the child process exited (nothing of the pool left alive).
//
// Run alone: node --expose-gc --import tsx bench/drain.ts
import { fileURLToPath } from 'node:url';
import type { CloseResult } from '../src/index.js';
import { TestServiceClient } from '../test/helpers/protos.js';
import type { EchoRequest } from '../test/helpers/protos.js';
import { startTestServerProcess } from '../test/helpers/test-server-process.js';
import { ARMED, epochMs, fmt, markedJson, median, progress, report, runNodeChild, type Target, loadPackage } from './lib.js';

const { ChannelPool } = await loadPackage();

const IN_FLIGHT = 1_000;
const SERVER_DELAY_MS = 200;
const GRACE_MS = 10_000;
/** Time between issuing the calls and close(): they are on the wire, mid-way through the server's delay. */
const CLOSE_AFTER_MS = 50;
const RUNS = 3;
const CHILD_TIMEOUT_MS = 30_000;
const MARKER = '@@drain@@ ';
const REQUEST: EchoRequest = { message: 'hello', delayMs: 0, payload: Buffer.alloc(0) };

interface ChildReport {
  issuedAt: number;
  closeCalledAt: number;
  closeResolvedAt: number;
  /** When the last call settled. */
  lastSettledAt: number;
  inFlightAtClose: number;
  result: CloseResult;
  succeeded: number;
  failed: number;
  failureCodes: Record<string, number>;
}

async function child(target: string): Promise<void> {
  const pool = new ChannelPool(ARMED);
  const client = pool.client(TestServiceClient, target);
  // Connect and warm up first: the measurement is about the drain, not the first connection.
  for (let i = 0; i < 200; i++) await client.Echo(REQUEST);

  let succeeded = 0;
  let failed = 0;
  let lastSettledAt = 0;
  const failureCodes: Record<string, number> = {};
  const issuedAt = epochMs();
  const calls = Array.from({ length: IN_FLIGHT }, () =>
    (client.Echo(REQUEST, { metadata: { 'x-delay-ms': String(SERVER_DELAY_MS) } }) as Promise<unknown>).then(
      () => {
        succeeded++;
        lastSettledAt = epochMs();
      },
      (error: unknown) => {
        failed++;
        lastSettledAt = epochMs();
        const code = String((error as { code?: unknown }).code);
        failureCodes[code] = (failureCodes[code] ?? 0) + 1;
      },
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, CLOSE_AFTER_MS));
  const inFlightAtClose = pool.stats().inFlight;
  const closeCalledAt = epochMs();
  const result = await pool.close({ graceMs: GRACE_MS });
  const closeResolvedAt = epochMs();
  await Promise.all(calls);
  const out: ChildReport = { issuedAt, closeCalledAt, closeResolvedAt, lastSettledAt, inFlightAtClose, result, succeeded, failed, failureCodes };
  process.stdout.write(`${MARKER}${JSON.stringify(out)}\n`);
  // Nothing else: the process must now exit by itself.
}

interface RunFigures extends ChildReport {
  exitedAt: number;
  exitCode: number | null;
  exitedOnItsOwn: boolean;
  drainMs: number;
  exitAfterCloseMs: number;
}

async function parent(): Promise<void> {
  const startedAt = performance.now();
  const server = await startTestServerProcess();
  const runs: RunFigures[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const run = await runNodeChild(fileURLToPath(import.meta.url), ['--child', `--target=${server.address}`], { timeoutMs: CHILD_TIMEOUT_MS });
      const r = markedJson<ChildReport>(run.lines, MARKER);
      if (r === undefined) throw new Error(`drain child exited (code ${run.code}, signal ${run.signal}) without a result`);
      const figures: RunFigures = {
        ...r,
        exitedAt: run.exitedAt,
        exitCode: run.code,
        exitedOnItsOwn: !run.timedOut && run.code === 0,
        drainMs: r.closeResolvedAt - r.closeCalledAt,
        exitAfterCloseMs: run.exitedAt - r.closeResolvedAt,
      };
      runs.push(figures);
      progress(
        `run ${i + 1}: in flight ${r.inFlightAtClose}, drain ${fmt.fixed(figures.drainMs)} ms (drained ${r.result.drained}, cancelled ${r.result.cancelled}), ` +
          `exit ${run.timedOut ? 'NONE (killed)' : `${fmt.fixed(figures.exitAfterCloseMs)} ms`} after close() resolved`,
      );
    }
  } finally {
    await server.kill();
  }

  const rows = runs.map((r, i) => [
    String(i + 1),
    fmt.int(r.inFlightAtClose),
    fmt.fixed(r.closeCalledAt - r.issuedAt),
    fmt.fixed(r.drainMs),
    `${r.result.drained}/${r.result.cancelled}`,
    `${r.succeeded}/${r.failed}`,
    fmt.fixed(r.lastSettledAt - r.issuedAt),
    r.exitedOnItsOwn ? fmt.fixed(r.exitAfterCloseMs) : 'did not exit',
  ]);
  const drainMedian = median(runs.map((r) => r.drainMs));
  const exitMedian = median(runs.map((r) => r.exitAfterCloseMs));
  rows.push(['median', '', '', fmt.fixed(drainMedian), '', '', '', fmt.fixed(exitMedian)]);
  const allDrained = runs.every((r) => r.result.drained === IN_FLIGHT && r.result.cancelled === 0 && r.succeeded === IN_FLIGHT);
  const allExited = runs.every((r) => r.exitedOnItsOwn);
  const targets: Target[] = [
    {
      what: `(check) every run drained all ${fmt.int(IN_FLIGHT)} calls within graceMs`,
      figure: runs.map((r) => `${r.result.drained}/${r.result.cancelled}`).join(', '),
      target: `${IN_FLIGHT}/0`,
      met: allDrained,
    },
    {
      what: '(check) the process exits on its own after close()',
      figure: allExited ? `median ${fmt.fixed(exitMedian)} ms` : 'no',
      target: 'exits',
      met: allExited,
    },
  ];
  report({
    name: 'drain',
    title: `Drain: close({ graceMs: ${GRACE_MS} }) with ${fmt.int(IN_FLIGHT)} calls in flight (server delay ${SERVER_DELAY_MS} ms)`,
    durationSec: (performance.now() - startedAt) / 1000,
    tables: [
      {
        title: `drain (close() ${CLOSE_AFTER_MS} ms after issuing ${fmt.int(IN_FLIGHT)} calls that each take ${SERVER_DELAY_MS} ms on the server)`,
        header: ['run', 'in flight', 'close() at ms', 'drain ms', 'drained/cancelled', 'calls ok/failed', 'last settled at ms', 'exit after close ms'],
        rows,
      },
    ],
    targets,
    notes: [
      `close() at / last settled at: ms after the first of the ${fmt.int(IN_FLIGHT)} calls was issued (issuing them takes time itself; close() comes ${CLOSE_AFTER_MS} ms after the last). drain ms: close() called -> close() resolved, in the child. exit after close ms: close() resolved (child clock) -> child exit (parent's 'exit' event), both epoch-based performance clocks.`,
      'exit time includes Node tearing the process down (and the parent noticing), not only the pool.',
      `the ${fmt.int(IN_FLIGHT)} calls are answered by one server process on a shared 2-core machine: their answers arrive spread over time, so the drain lasts longer than what is left of the ${SERVER_DELAY_MS} ms scripted delay.`,
    ],
    data: runs,
  });
}

const targetArg = process.argv.find((a) => a.startsWith('--target='))?.slice('--target='.length);
if (process.argv.includes('--child')) {
  if (targetArg === undefined) throw new Error('--target= is required');
  await child(targetArg);
} else {
  await parent();
}
