// No work lost at shutdown: several pools with closeOnSignals() all drain before the signal is
// raised again, closeOnSignals() validates graceMs, and the graceful-shutdown example waits on
// the pool state rather than racing a fixed timer.
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool } from '../../src/index.js';
import { CHILD_TEST_TIMEOUT_MS, ROOT, runNode } from '../process/run-node.js';

const TSX = ['--import', 'tsx'];
const TWO_POOLS = fileURLToPath(new URL('./fixtures/two-pools-sigterm.ts', import.meta.url));

// The child-process tests run with runNode's limit (120 s); their timeout leaves room for it.
describe('SIGTERM with several pools: every pool drains before the signal is raised again', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('an idle pool closing first does not end the process while another pool still drains', async () => {
    const result = await runNode(process.execPath, [...TSX, TWO_POOLS]);
    expect(result.stdout).toContain('in flight at SIGTERM: 20');
    // Every call of the busy pool settled, and succeeded, before the process ended...
    expect(result.stdout).toContain('settled 20/20, fulfilled 20');
    // ...and the process still ended as SIGTERM ends it.
    expect(result.signal, result.stdout + result.stderr).toBe('SIGTERM');
  });
});

describe('closeOnSignals() validates graceMs when it is called', () => {
  let pool: ChannelPool;
  beforeEach(() => {
    pool = new ChannelPool();
  });
  afterEach(async () => {
    await pool.close({ graceMs: 0 });
  });

  it.each([
    ['-1', -1, 'RangeError'],
    ["'soon'", 'soon', 'TypeError'],
    // NaN is a TypeError, as for every other millisecond option of the package.
    ['NaN', Number.NaN, 'TypeError'],
  ])('graceMs %s throws at the call, with code INVALID_ARGUMENT, and installs nothing', (_label, graceMs, kind) => {
    const before = process.listenerCount('SIGTERM');
    let thrown: unknown;
    try {
      pool.closeOnSignals(['SIGTERM'], { graceMs: graceMs as number });
    } catch (error) {
      thrown = error;
    }
    // Whatever happens, leave no handler behind that could close the test runner's pool.
    for (const listener of process.listeners('SIGTERM').slice(before)) process.removeListener('SIGTERM', listener);
    expect(thrown, 'closeOnSignals must throw for this graceMs').toBeDefined();
    expect((thrown as Error).name).toBe(kind);
    expect(thrown).toMatchObject({ code: 3, option: 'graceMs' });
    expect(process.listenerCount('SIGTERM')).toBe(before);
    expect(pool.state).toBe('open');
  });
});

describe('examples/graceful-shutdown.ts waits on the pool state, not on a fixed timer', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('the example reports "closing" even when its event loop is held up around the signal', async () => {
    // The preload holds the event loop for 200 ms once the example has armed its timers, so
    // every timer that is due runs in the same turn: a fixed delay then beats the signal.
    const preload = fileURLToPath(new URL('./fixtures/hold-event-loop.mjs', import.meta.url));
    const result = await runNode(process.execPath, [...TSX, '--import', preload, `${ROOT}examples/graceful-shutdown.ts`]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/the pool is closing/);
    expect(result.stdout).toContain('call after SIGTERM: PoolClosedError');
    expect(result.stdout).toContain('calls in flight at SIGTERM: fulfilled, fulfilled, fulfilled, fulfilled, fulfilled');
    expect(result.signal).toBe('SIGTERM');
  });
});
