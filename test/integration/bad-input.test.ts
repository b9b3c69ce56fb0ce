// Bad input, table by table. For every bad option or argument a user may pass:
//   - the error is a TypeError or RangeError (PoolClosedError for a closed pool) with `code`
//     INVALID_ARGUMENT and an `option` naming the option; its message names the option and shows
//     the bad value (metadata values stay hidden: they carry tokens);
//   - constructor and pool.client() inputs throw synchronously; call inputs reject (never throw);
//   - nothing reaches the network: the server sees no call, a channel stays idle, and a bad
//     pool.client() creates no channel;
//   - the pool keeps working: a good call afterwards succeeds.
// Where the library does not do so yet, the case is an `it.fails` titled "KNOWN BUG:", written
// as it should behave, with what happens today in `knownBug`.
import util from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool, PoolClosedError, StatusError, type RetryEvent } from '../../src/index.js';
import { TEST_PROTO_PATH, TestServiceClient } from '../helpers/protos.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';
import type { TestServer } from '../helpers/test-server.js';

const TOKEN = 'sk_live_SECRET123';
const BEARER = `Bearer ${TOKEN}`;

let server: TestServer;
let pool: ChannelPool;

beforeEach(async () => {
  const fixture = await startServerAndPools();
  server = fixture.server;
  pool = fixture.newPool({ deadlineMs: 5_000 });
});

// ---------------------------------------------------------------------------------------------
// What every bad input must produce

interface Expected {
  /** The error class: TypeError for a wrong type, RangeError for a value out of range. */
  kind: 'TypeError' | 'RangeError' | 'TypeError or RangeError';
  /** The `option` field, also named in the message. */
  option: string;
  /** How the message shows the bad value: it reads `..., got <got>`. Unset: `mentions` shows it. */
  got?: string;
  /** Something else the message must say (a hint). */
  mentions?: RegExp;
}

interface Case {
  /** The bad input, as the test title. */
  input: string;
  expected: Expected;
  /** Set when the library gets this case wrong today: what happens instead. */
  knownBug?: string;
}

function title(c: Case): string {
  return c.knownBug === undefined ? c.input : `KNOWN BUG: ${c.input} (today: ${c.knownBug})`;
}

function itCase(c: Case, body: () => Promise<void> | void): void {
  (c.knownBug === undefined ? it : it.fails)(title(c), body);
}

function expectOptionError(error: unknown, expected: Expected): void {
  const kinds = expected.kind === 'TypeError or RangeError' ? ['TypeError', 'RangeError'] : [expected.kind];
  expect(error).toBeInstanceOf(Error);
  const e = error as Error & { code?: unknown; option?: unknown };
  expect(kinds, `${e.name}: ${e.message}`).toContain(e.constructor.name);
  expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(e.option).toBe(expected.option);
  expect(e.message).toContain(expected.option);
  if (expected.got !== undefined) expect(e.message).toContain(`got ${expected.got}`);
  if (expected.mentions !== undefined) expect(e.message).toMatch(expected.mentions);
}

/** What `fn` threw synchronously; fails if it returned (a promise included). */
function thrownBy(fn: () => unknown): unknown {
  let result: unknown;
  try {
    result = fn();
  } catch (error) {
    return error;
  }
  return expect.fail(`expected a synchronous throw, got ${util.inspect(result, { depth: 0 })}`);
}

/** What the promise returned by `fn` rejected with; fails on a synchronous throw or a resolution. */
async function rejectionOf(fn: () => unknown): Promise<unknown> {
  let result: unknown;
  try {
    result = fn();
  } catch (error) {
    return expect.fail(`expected a rejected promise, but it threw synchronously: ${String(error)}`);
  }
  expect(result).toBeInstanceOf(Promise);
  return (result as Promise<unknown>).then(
    (value) => expect.fail(`expected a rejection, got ${util.inspect(value, { depth: 1 })}`),
    (error: unknown) => error,
  );
}

/** A good call on a fresh client of the shared pool: the pool still works. */
async function expectPoolWorks(p: ChannelPool = pool): Promise<void> {
  const before = server.calls.length;
  await expect(p.client(TestServiceClient, server.address).Echo({ message: 'still fine' })).resolves.toMatchObject({
    message: 'still fine',
  });
  expect(server.calls.length).toBe(before + 1);
}

// ---------------------------------------------------------------------------------------------
// new ChannelPool(options)

interface PoolCase extends Case {
  options: unknown;
}

const RANGE_DEADLINE = 'TypeError or RangeError' as const;

const poolCases: PoolCase[] = [
  { input: 'options 5000 (not an object)', options: 5000, expected: { kind: 'TypeError', option: 'ChannelPoolOptions', got: '5000' } },
  {
    input: 'unknown key deadlinMs',
    options: { deadlinMs: 1000 },
    expected: { kind: 'TypeError', option: 'ChannelPoolOptions.deadlinMs', got: 'an unknown option', mentions: /deadlineMs/ },
  },
  {
    input: 'client option credentials on the pool',
    options: { credentials: grpc.credentials.createInsecure() },
    expected: { kind: 'TypeError', option: 'ChannelPoolOptions.credentials', got: 'an unknown option' },
  },
  { input: 'deadlineMs -1', options: { deadlineMs: -1 }, expected: { kind: 'RangeError', option: 'deadlineMs', got: '-1' } },
  { input: 'deadlineMs 0', options: { deadlineMs: 0 }, expected: { kind: 'RangeError', option: 'deadlineMs', got: '0' } },
  { input: 'deadlineMs NaN', options: { deadlineMs: Number.NaN }, expected: { kind: RANGE_DEADLINE, option: 'deadlineMs', got: 'NaN' } },
  {
    input: 'deadlineMs Infinity',
    options: { deadlineMs: Number.POSITIVE_INFINITY },
    expected: { kind: 'RangeError', option: 'deadlineMs', got: 'Infinity' },
  },
  { input: "deadlineMs '1000'", options: { deadlineMs: '1000' }, expected: { kind: 'TypeError', option: 'deadlineMs', got: '"1000"' } },
  {
    input: 'deadlineMs 2**31',
    options: { deadlineMs: 2 ** 31 },
    expected: { kind: 'RangeError', option: 'deadlineMs', got: '2147483648' },
  },
  { input: "idempotent 'yes'", options: { idempotent: 'yes' }, expected: { kind: 'TypeError', option: 'idempotent', got: '"yes"' } },
  { input: "retry 'always'", options: { retry: 'always' }, expected: { kind: 'TypeError', option: 'retry', got: '"always"' } },
  { input: 'retry true', options: { retry: true }, expected: { kind: 'TypeError', option: 'retry', got: 'true' } },
  {
    input: 'retry.maxAttempts 0',
    options: { retry: { maxAttempts: 0 } },
    expected: { kind: 'RangeError', option: 'retry.maxAttempts', got: '0' },
  },
  {
    input: 'retry.maxAttempts 1.5',
    options: { retry: { maxAttempts: 1.5 } },
    expected: { kind: 'RangeError', option: 'retry.maxAttempts', got: '1.5' },
  },
  {
    input: 'retry.maxAttempts 11',
    options: { retry: { maxAttempts: 11 } },
    expected: { kind: 'RangeError', option: 'retry.maxAttempts', got: '11' },
  },
  {
    input: "retry.maxAttempts '3'",
    options: { retry: { maxAttempts: '3' } },
    expected: { kind: 'TypeError', option: 'retry.maxAttempts', got: '"3"' },
  },
  {
    input: 'retry.initialDelayMs -5',
    options: { retry: { initialDelayMs: -5 } },
    expected: { kind: 'RangeError', option: 'retry.initialDelayMs', got: '-5' },
  },
  {
    input: "retry.maxDelayMs 'x'",
    options: { retry: { maxDelayMs: 'x' } },
    expected: { kind: 'TypeError', option: 'retry.maxDelayMs', got: '"x"' },
  },
  {
    input: 'retry.perAttemptTimeoutMs 0',
    options: { retry: { perAttemptTimeoutMs: 0 } },
    expected: { kind: 'RangeError', option: 'retry.perAttemptTimeoutMs', got: '0' },
  },
  {
    input: 'retry.retryableCodes [INVALID_ARGUMENT]',
    options: { retry: { retryableCodes: [grpc.status.INVALID_ARGUMENT] } },
    expected: { kind: 'RangeError', option: 'retry.retryableCodes', got: 'INVALID_ARGUMENT (3)' },
  },
  {
    input: "retry.retryableCodes ['UNAVAILABLE'] (names, not codes)",
    options: { retry: { retryableCodes: ['UNAVAILABLE'] } },
    expected: { kind: 'TypeError or RangeError', option: 'retry.retryableCodes', got: '"UNAVAILABLE"' },
  },
  {
    input: 'retry.retryableCodes 14 (not an array)',
    options: { retry: { retryableCodes: 14 } },
    expected: { kind: 'TypeError', option: 'retry.retryableCodes', got: '14' },
  },
  {
    input: 'retry unknown key backoff',
    options: { retry: { backoff: 100 } },
    expected: { kind: 'TypeError', option: 'retry.backoff', got: 'an unknown option' },
  },
  {
    input: 'retryThrottling true',
    options: { retryThrottling: true },
    expected: { kind: 'TypeError', option: 'retryThrottling', got: 'true' },
  },
  {
    input: "retryThrottling 'on'",
    options: { retryThrottling: 'on' },
    expected: { kind: 'TypeError', option: 'retryThrottling', got: '"on"' },
  },
  {
    input: 'retryThrottling.maxTokens 0',
    options: { retryThrottling: { maxTokens: 0 } },
    expected: { kind: 'RangeError', option: 'retryThrottling.maxTokens', got: '0' },
  },
  {
    input: 'retryThrottling.maxTokens 1001',
    options: { retryThrottling: { maxTokens: 1001 } },
    expected: { kind: 'RangeError', option: 'retryThrottling.maxTokens', got: '1001' },
  },
  {
    input: 'retryThrottling.tokenRatio 2',
    options: { retryThrottling: { tokenRatio: 2 } },
    expected: { kind: 'RangeError', option: 'retryThrottling.tokenRatio', got: '2' },
  },
  {
    input: 'retryBudget true',
    options: { retryBudget: true },
    expected: { kind: 'TypeError', option: 'retryBudget', got: 'true' },
  },
  {
    input: 'retryBudget.ttlMs 500',
    options: { retryBudget: { ttlMs: 500 } },
    expected: { kind: 'RangeError', option: 'retryBudget.ttlMs', got: '500' },
  },
  {
    input: 'retryBudget.retryPercent 150',
    options: { retryBudget: { retryPercent: 150 } },
    expected: { kind: 'RangeError', option: 'retryBudget.retryPercent', got: '150' },
  },
  {
    input: "retryBudget.minRetriesPerSec '10'",
    options: { retryBudget: { minRetriesPerSec: '10' } },
    expected: { kind: 'TypeError', option: 'retryBudget.minRetriesPerSec', got: '"10"' },
  },
  {
    input: "retryThrottling.tokenRatio '0.1'",
    options: { retryThrottling: { tokenRatio: '0.1' } },
    expected: { kind: 'TypeError', option: 'retryThrottling.tokenRatio', got: '"0.1"' },
  },
  {
    input: 'retryThrottling unknown key tokens',
    options: { retryThrottling: { tokens: 5 } },
    expected: { kind: 'TypeError', option: 'retryThrottling.tokens', got: 'an unknown option' },
  },
  {
    input: 'channelOptions a string',
    options: { channelOptions: 'grpc.keepalive_time_ms=1' },
    expected: { kind: 'TypeError', option: 'channelOptions', got: '"grpc.keepalive_time_ms=1"' },
  },
  {
    input: 'channelOptions an array',
    options: { channelOptions: [['grpc.keepalive_time_ms', 1]] },
    expected: { kind: 'TypeError', option: 'channelOptions', got: 'an array' },
  },
  {
    input: 'channelOptions null',
    options: { channelOptions: null },
    expected: { kind: 'TypeError', option: 'channelOptions', got: 'null' },
  },
  {
    input: 'channelOptions grpc.keepalive_time_ms an object',
    options: { channelOptions: { 'grpc.keepalive_time_ms': { ms: 30_000 } } },
    expected: { kind: 'TypeError', option: 'channelOptions["grpc.keepalive_time_ms"]', got: 'an object' },
  },
  {
    input: 'channelOptions grpc.max_receive_message_length Infinity',
    options: { channelOptions: { 'grpc.max_receive_message_length': Number.POSITIVE_INFINITY } },
    expected: { kind: 'RangeError', option: 'channelOptions["grpc.max_receive_message_length"]', got: 'Infinity' },
  },
  {
    input: 'channelOptions grpc.keepalive_time_ms NaN',
    options: { channelOptions: { 'grpc.keepalive_time_ms': Number.NaN } },
    expected: { kind: 'RangeError', option: 'channelOptions["grpc.keepalive_time_ms"]', got: 'NaN' },
  },
  {
    input: 'channelOptions grpc.service_config that is not JSON',
    options: { channelOptions: { 'grpc.service_config': '{not json' } },
    expected: { kind: 'TypeError', option: 'channelOptions["grpc.service_config"]', got: '"{not json"' },
  },
  {
    // grpc-js reads only the number 0 as off: `false` would leave its retries on under ours.
    input: 'channelOptions grpc.enable_retries false',
    options: { channelOptions: { 'grpc.enable_retries': false } },
    expected: { kind: 'RangeError', option: 'channelOptions["grpc.enable_retries"]', got: 'false' },
  },
  {
    input: 'channelOptions.interceptors on the pool (a channel would ignore them)',
    options: { channelOptions: { interceptors: [] } },
    expected: {
      kind: 'RangeError',
      option: 'channelOptions.interceptors',
      mentions: /pool\.client\(service, target, \{ interceptors \}\)/,
    },
  },
];

describe('new ChannelPool(options): throws synchronously', () => {
  for (const c of poolCases) {
    itCase(c, async () => {
      const error = thrownBy(() => new ChannelPool(c.options as never));
      expectOptionError(error, c.expected);
      expect(server.calls).toHaveLength(0);
      await expectPoolWorks();
    });
  }
});

// ---------------------------------------------------------------------------------------------
// pool.client(service, target, options)

interface ClientCase extends Case {
  client: (p: ChannelPool, target: string) => unknown;
}

/** A grpc-js interceptor that only hands the call on. */
const passThrough: grpc.Interceptor = (options, nextCall) => new grpc.InterceptingCall(nextCall(options));

const packageNamespace = grpc.loadPackageDefinition(protoLoader.loadSync(TEST_PROTO_PATH));
const TestService = TestServiceClient;

const clientCases: ClientCase[] = [
  { input: 'service null', client: (p, t) => p.client(null as never, t), expected: { kind: 'TypeError', option: 'service', got: 'null' } },
  { input: 'service {}', client: (p, t) => p.client({} as never, t), expected: { kind: 'TypeError', option: 'service', got: 'an object' } },
  {
    input: 'service a package namespace from loadPackageDefinition',
    client: (p, t) => p.client(packageNamespace as never, t),
    expected: { kind: 'TypeError', option: 'service', got: 'an object', mentions: /package namespace/ },
  },
  {
    input: "service 'TestService' (a string)",
    client: (p, t) => p.client('TestService' as never, t),
    expected: { kind: 'TypeError', option: 'service', got: '"TestService"' },
  },
  { input: "target ''", client: (p) => p.client(TestService, ''), expected: { kind: 'TypeError', option: 'target', got: '""' } },
  {
    input: "target ' host:1'",
    client: (p) => p.client(TestService, ' host:1'),
    expected: { kind: 'TypeError', option: 'target', got: '" host:1"' },
  },
  { input: 'target 42', client: (p) => p.client(TestService, 42 as never), expected: { kind: 'TypeError', option: 'target', got: '42' } },
  {
    input: 'target undefined',
    client: (p) => p.client(TestService, undefined as never),
    expected: { kind: 'TypeError', option: 'target', got: 'undefined' },
  },
  {
    input: "target 'https://h/path'",
    client: (p) => p.client(TestService, 'https://h/path'),
    expected: { kind: 'TypeError', option: 'target', got: '"https://h/path"' },
  },
  {
    input: 'options 5000 (not an object)',
    client: (p, t) => p.client(TestService, t, 5000 as never),
    expected: { kind: 'TypeError', option: 'ClientOptions', got: '5000' },
  },
  {
    input: 'unknown client option deadline',
    client: (p, t) => p.client(TestService, t, { deadline: 500 } as never),
    expected: { kind: 'TypeError', option: 'ClientOptions.deadline', got: 'an unknown option' },
  },
  {
    input: 'deadlineMs -1',
    client: (p, t) => p.client(TestService, t, { deadlineMs: -1 }),
    expected: { kind: 'RangeError', option: 'deadlineMs', got: '-1' },
  },
  {
    input: "credentials 'insecure' (a string)",
    client: (p, t) => p.client(TestService, t, { credentials: 'insecure' as never }),
    expected: { kind: 'TypeError', option: 'credentials', got: '"insecure"' },
  },
  {
    input: 'credentials null',
    client: (p, t) => p.client(TestService, t, { credentials: null as never }),
    expected: { kind: 'TypeError', option: 'credentials', got: 'null' },
  },
  {
    input: 'credentials the grpc.credentials namespace',
    client: (p, t) => p.client(TestService, t, { credentials: grpc.credentials as never }),
    expected: { kind: 'TypeError', option: 'credentials', got: 'an object' },
  },
  {
    input: 'credentials grpc.ServerCredentials.createInsecure() (server credentials)',
    client: (p, t) => p.client(TestService, t, { credentials: grpc.ServerCredentials.createInsecure() as never }),
    expected: {
      kind: 'TypeError',
      option: 'credentials',
      got: 'an instance of InsecureServerCredentials',
      mentions: /server or call credentials/,
    },
  },
  {
    input: 'credentials call credentials (createFromMetadataGenerator)',
    client: (p, t) =>
      p.client(TestService, t, {
        credentials: grpc.credentials.createFromMetadataGenerator((_o, cb) => cb(null, new grpc.Metadata())) as never,
      }),
    expected: {
      kind: 'TypeError',
      option: 'credentials',
      got: 'an instance of SingleCallCredentials',
      mentions: /server or call credentials/,
    },
  },
  {
    input: 'channelOptions grpc.keepalive_time_ms an object',
    client: (p, t) => p.client(TestService, t, { channelOptions: { 'grpc.keepalive_time_ms': { ms: 1 } as never } }),
    expected: { kind: 'TypeError', option: 'channelOptions["grpc.keepalive_time_ms"]', got: 'an object' },
  },
  {
    input: 'channelOptions grpc.service_config that is not JSON',
    client: (p, t) => p.client(TestService, t, { channelOptions: { 'grpc.service_config': '{not json' } }),
    expected: { kind: 'TypeError', option: 'channelOptions["grpc.service_config"]', got: '"{not json"' },
  },
  {
    input: "methods ['Echo'] (an array)",
    client: (p, t) => p.client(TestService, t, { methods: ['Echo'] as never }),
    expected: { kind: 'TypeError', option: 'methods', got: 'an array' },
  },
  {
    input: 'unknown key in methods.Echo (deadlinMs)',
    client: (p, t) => p.client(TestService, t, { methods: { Echo: { deadlinMs: 5 } as never } }),
    expected: { kind: 'TypeError', option: 'methods.Echo.deadlinMs', got: 'an unknown option' },
  },
  {
    input: 'unknown method name in methods (Ecoh)',
    client: (p, t) => p.client(TestService, t, { methods: { Ecoh: { deadlineMs: 5 } } }),
    expected: { kind: 'TypeError', option: 'methods.Ecoh', got: 'an unknown method; did you mean Echo?' },
  },
  {
    input: 'unknown method name in methods, a letter case off (ECHO)',
    client: (p, t) => p.client(TestService, t, { methods: { ECHO: { deadlineMs: 5 } } }),
    expected: { kind: 'TypeError', option: 'methods.ECHO', got: 'an unknown method; did you mean Echo?' },
  },
  {
    input: 'channelOptions.interceptors (grpc-js takes them beside channel options; a channel ignores them)',
    client: (p, t) => p.client(TestService, t, { channelOptions: { interceptors: [] } as never }),
    expected: {
      kind: 'RangeError',
      option: 'channelOptions.interceptors',
      mentions: /pool\.client\(service, target, \{ interceptors \}\) or per call/,
    },
  },
  {
    input: 'channelOptions.interceptor_providers',
    client: (p, t) => p.client(TestService, t, { channelOptions: { interceptor_providers: [] } as never }),
    expected: { kind: 'RangeError', option: 'channelOptions.interceptor_providers', mentions: /\{ interceptor_providers \}/ },
  },
  {
    input: 'channelOptions.channelOverride',
    client: (p, t) => p.client(TestService, t, { channelOptions: { channelOverride: {} } as never }),
    expected: { kind: 'RangeError', option: 'channelOptions.channelOverride', mentions: /the pool makes and owns the channel/ },
  },
  {
    input: 'interceptors a function (not an array)',
    client: (p, t) => p.client(TestService, t, { interceptors: passThrough as never }),
    expected: { kind: 'TypeError', option: 'interceptors', got: 'a function' },
  },
  {
    input: "interceptors [fn, 'auth']",
    client: (p, t) => p.client(TestService, t, { interceptors: [passThrough, 'auth' as never] }),
    expected: { kind: 'TypeError', option: 'interceptors[1]', got: '"auth"' },
  },
  {
    input: 'interceptors and interceptor_providers together',
    client: (p, t) => p.client(TestService, t, { interceptors: [passThrough], interceptor_providers: [() => passThrough] }),
    expected: { kind: 'TypeError', option: 'interceptor_providers', mentions: /one of the two per level/ },
  },
  {
    input: 'an interceptor provider that returns a string',
    client: (p, t) => p.client(TestService, t, { interceptor_providers: [() => 'auth' as never] }),
    expected: { kind: 'TypeError', option: 'interceptor_providers[0]', got: '"auth"' },
  },
  {
    input: 'waitForReady on the client (a call option)',
    client: (p, t) => p.client(TestService, t, { waitForReady: true } as never),
    expected: { kind: 'TypeError', option: 'ClientOptions.waitForReady', mentions: /given per call/ },
  },
  {
    input: 'credentials: call credentials where channel credentials go',
    client: (p, t) =>
      p.client(TestService, t, {
        credentials: grpc.credentials.createFromMetadataGenerator((_p, cb) => cb(null, new grpc.Metadata())) as never,
      }),
    expected: { kind: 'TypeError', option: 'credentials', mentions: /combineChannelCredentials/ },
  },
  {
    input: 'methods.Echo 500 (not an object)',
    client: (p, t) => p.client(TestService, t, { methods: { Echo: 500 as never } }),
    expected: { kind: 'TypeError', option: 'methods.Echo', got: '500' },
  },
  {
    input: 'methods.Echo.deadlineMs -1',
    client: (p, t) => p.client(TestService, t, { methods: { Echo: { deadlineMs: -1 } } }),
    expected: { kind: 'RangeError', option: 'methods.Echo.deadlineMs', got: '-1' },
  },
  {
    input: "methods.echo.deadlineMs '500' (lowerCamel alias)",
    client: (p, t) => p.client(TestService, t, { methods: { echo: { deadlineMs: '500' as never } } }),
    expected: { kind: 'TypeError', option: 'methods.echo.deadlineMs', got: '"500"' },
  },
  {
    input: 'methods.Echo.retry.maxAttempts 0',
    client: (p, t) => p.client(TestService, t, { methods: { Echo: { retry: { maxAttempts: 0 } } } }),
    expected: { kind: 'RangeError', option: 'methods.Echo.retry.maxAttempts', got: '0' },
  },
];

describe('pool.client(): throws synchronously and creates no channel', () => {
  for (const c of clientCases) {
    itCase(c, async () => {
      pool.client(TestServiceClient, server.address); // one channel already there
      const before = pool.stats();
      const error = thrownBy(() => c.client(pool, server.address));
      expectOptionError(error, c.expected);
      const after = pool.stats();
      expect(after.channelsCreated).toBe(before.channelsCreated);
      expect(after.channels).toBe(before.channels);
      expect(server.calls).toHaveLength(0);
      await expectPoolWorks();
    });
  }

  it('throws PoolClosedError (code CANCELLED) once the pool is closed, creating nothing', async () => {
    pool.client(TestServiceClient, server.address);
    await pool.close({ graceMs: 0 });
    const error = thrownBy(() => pool.client(TestServiceClient, server.address));
    expect(error).toBeInstanceOf(PoolClosedError);
    expect(error).toMatchObject({ code: grpc.status.CANCELLED });
    expect(pool.stats()).toMatchObject({ state: 'closed', channels: 0, channelsCreated: 1 });
  });

  it('gives a client without unknown methods: client.Nope is undefined', () => {
    const client = pool.client(TestServiceClient, server.address);
    expect((client as unknown as Record<string, unknown>).Nope).toBeUndefined();
    expect('Nope' in client).toBe(false);
    expect(typeof client.Echo).toBe('function');
    expect(typeof client.echo).toBe('function');
  });

  it('says "did you mean" when a method name is a near miss, and stays a plain object otherwise', async () => {
    const client = pool.client(TestServiceClient, server.address) as unknown as Record<string, unknown>;
    const typo = thrownBy(() => (client.ECHO as () => unknown)());
    expect(typo).toBeInstanceOf(TypeError);
    expect(typo).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      message: 'resilient-grpc: resilient.test.v1.TestService has no method ECHO; did you mean Echo?',
    });
    expect(thrownBy(() => (client.serverStrem as () => unknown)())).toMatchObject({
      message: expect.stringMatching(/did you mean serverStream\?$/),
    });
    expect('ECHO' in client).toBe(false);
    // What awaiting, logging and serializing a client probe is not taken for a typo.
    expect(client.then).toBeUndefined();
    expect(await Promise.resolve(client)).toBe(client);
    expect(util.inspect(client)).toContain('Echo');
    expect(JSON.stringify(client)).toBe('{}');
    expect(String(client)).toBe('[object Object]');
    expect(Object.keys(client)).toContain('Echo');
    expect(server.calls).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------
// A call: client.Echo(request, options)

interface CallCase extends Case {
  request?: unknown;
  options?: unknown;
  /** Metadata cases: the value is hidden; the message must say so and not contain the token. */
  hidden?: boolean;
}

const GOOD = { message: 'hi' };
const PAST = new Date('2020-01-01T00:00:00.000Z');
const FAR = new Date('2100-01-01T00:00:00.000Z');

const callCases: CallCase[] = [
  { input: 'request null', request: null, expected: { kind: 'TypeError', option: 'request', got: 'null' } },
  { input: 'request undefined', request: undefined, expected: { kind: 'TypeError', option: 'request', got: 'undefined' } },
  { input: "request 'str'", request: 'str', expected: { kind: 'TypeError', option: 'request', got: '"str"' } },
  { input: 'request 42', request: 42, expected: { kind: 'TypeError', option: 'request', got: '42' } },
  {
    input: 'options 500 (a timeout where the options go)',
    options: 500,
    expected: { kind: 'TypeError', option: 'CallOptions', got: '500' },
  },
  { input: 'options null', options: null, expected: { kind: 'TypeError', option: 'CallOptions', got: 'null' } },
  {
    input: 'unknown call option timeout',
    options: { timeout: 500 },
    expected: { kind: 'TypeError', option: 'CallOptions.timeout', got: 'an unknown option' },
  },
  {
    input: 'unknown call option deadlineMS (case typo)',
    options: { deadlineMS: 500 },
    expected: { kind: 'TypeError', option: 'CallOptions.deadlineMS', got: 'an unknown option; did you mean deadlineMs?' },
  },
  {
    input: "grpc-js call option host 'other'",
    options: { host: 'other' },
    expected: { kind: 'TypeError', option: 'CallOptions.host', mentions: /not carried.*grpc\.default_authority/ },
  },
  {
    input: 'grpc-js call option propagate_flags',
    options: { propagate_flags: 0xffff },
    expected: { kind: 'TypeError', option: 'CallOptions.propagate_flags', mentions: /not carried/ },
  },
  { input: "waitForReady 'yes'", options: { waitForReady: 'yes' }, expected: { kind: 'TypeError', option: 'waitForReady', got: '"yes"' } },
  {
    input: 'credentials: channel credentials where call credentials go',
    options: { credentials: grpc.credentials.createInsecure() },
    expected: { kind: 'TypeError', option: 'credentials', mentions: /channel credentials: they go in pool\.client\(\) options/ },
  },
  {
    input: "interceptors ['auth']",
    options: { interceptors: ['auth'] },
    expected: { kind: 'TypeError', option: 'interceptors[0]', got: '"auth"' },
  },
  {
    input: 'interceptor_providers {} (not an array)',
    options: { interceptor_providers: {} },
    expected: { kind: 'TypeError', option: 'interceptor_providers', got: 'an object' },
  },
  { input: 'deadlineMs -1', options: { deadlineMs: -1 }, expected: { kind: 'RangeError', option: 'deadlineMs', got: '-1' } },
  { input: 'deadlineMs 0', options: { deadlineMs: 0 }, expected: { kind: 'RangeError', option: 'deadlineMs', got: '0' } },
  { input: 'deadlineMs NaN', options: { deadlineMs: Number.NaN }, expected: { kind: RANGE_DEADLINE, option: 'deadlineMs', got: 'NaN' } },
  {
    input: 'deadlineMs Infinity',
    options: { deadlineMs: Number.POSITIVE_INFINITY },
    expected: { kind: 'RangeError', option: 'deadlineMs', got: 'Infinity' },
  },
  { input: "deadlineMs '500'", options: { deadlineMs: '500' }, expected: { kind: 'TypeError', option: 'deadlineMs', got: '"500"' } },
  {
    input: 'deadlineMs 2**31',
    options: { deadlineMs: 2 ** 31 },
    expected: { kind: 'RangeError', option: 'deadlineMs', got: '2147483648' },
  },
  { input: "idempotent 'yes'", options: { idempotent: 'yes' }, expected: { kind: 'TypeError', option: 'idempotent', got: '"yes"' } },
  {
    input: 'retry.maxAttempts 0',
    options: { retry: { maxAttempts: 0 } },
    expected: { kind: 'RangeError', option: 'retry.maxAttempts', got: '0' },
  },
  {
    input: 'deadline 5000 (relative by mistake)',
    options: { deadline: 5000 },
    expected: { kind: 'RangeError', option: 'deadline', got: '5000', mentions: /deadlineMs/ },
  },
  {
    input: 'deadline in the past (a Date)',
    options: { deadline: PAST },
    expected: { kind: 'RangeError', option: 'deadline', got: `Date(${PAST.toISOString()})`, mentions: /past/ },
  },
  {
    input: 'deadline in the past (epoch ms)',
    options: { deadline: PAST.getTime() },
    expected: { kind: 'RangeError', option: 'deadline', got: String(PAST.getTime()), mentions: /past/ },
  },
  {
    input: 'deadline Infinity',
    options: { deadline: Number.POSITIVE_INFINITY },
    expected: { kind: 'RangeError', option: 'deadline', got: 'Infinity' },
  },
  {
    input: 'deadline an invalid Date',
    options: { deadline: new Date('not a date') },
    expected: { kind: 'TypeError', option: 'deadline', got: 'Date(Invalid Date)' },
  },
  {
    input: "deadline '2100-01-01' (a string)",
    options: { deadline: '2100-01-01' },
    expected: { kind: 'TypeError', option: 'deadline', got: '"2100-01-01"' },
  },
  {
    input: 'deadline in the year 2100 (beyond the timer limit)',
    options: { deadline: FAR },
    expected: { kind: 'RangeError', option: 'deadline', got: `Date(${FAR.toISOString()})` },
  },
  {
    input: 'deadline and deadlineMs together',
    options: { deadline: FAR, deadlineMs: 500 },
    expected: { kind: 'TypeError', option: 'deadline', got: `Date(${FAR.toISOString()})`, mentions: /deadlineMs/ },
  },
  {
    input: 'signal an AbortController (not its signal)',
    options: { signal: new AbortController() },
    expected: { kind: 'TypeError', option: 'signal', got: 'an instance of AbortController' },
  },
  { input: 'signal true', options: { signal: true }, expected: { kind: 'TypeError', option: 'signal', got: 'true' } },
  {
    input: 'parent a plain object (not a server call)',
    options: { parent: { request: {} } },
    expected: { kind: 'TypeError', option: 'parent', got: 'an object' },
  },
  {
    input: 'parent an AbortSignal',
    options: { parent: new AbortController().signal },
    expected: { kind: 'TypeError', option: 'parent', got: 'an instance of AbortSignal' },
  },
  { input: 'metadata 42', options: { metadata: 42 }, expected: { kind: 'TypeError', option: 'metadata', got: '42' } },
  {
    input: 'metadata a token string',
    options: { metadata: BEARER },
    hidden: true,
    expected: { kind: 'TypeError', option: 'metadata', got: 'a string (value hidden)' },
  },
  {
    input: 'metadata an array of pairs',
    options: { metadata: [['authorization', BEARER]] },
    hidden: true,
    expected: { kind: 'TypeError', option: 'metadata', got: 'an array' },
  },
  {
    input: "metadata key 'Bad Key'",
    options: { metadata: { 'Bad Key': BEARER } },
    hidden: true,
    expected: { kind: 'TypeError', option: 'metadata key', got: '"Bad Key"' },
  },
  {
    input: 'metadata value a number',
    options: { metadata: { 'x-retries': 3 } },
    hidden: true,
    expected: { kind: 'TypeError', option: 'metadata["x-retries"]', got: 'a number (value hidden)' },
  },
  {
    input: 'metadata value a Buffer under a non -bin key',
    options: { metadata: { authorization: Buffer.from(BEARER) } },
    hidden: true,
    expected: { kind: 'TypeError', option: 'metadata["authorization"]', got: 'a Buffer (value hidden)', mentions: /string/ },
  },
  {
    input: 'metadata value a string under a -bin key',
    options: { metadata: { 'x-token-bin': BEARER } },
    hidden: true,
    expected: { kind: 'TypeError', option: 'metadata["x-token-bin"]', got: 'a string (value hidden)', mentions: /Buffer/ },
  },
  {
    input: 'metadata value with a newline',
    options: { metadata: { authorization: `${BEARER}\n` } },
    hidden: true,
    expected: { kind: 'TypeError', option: 'metadata["authorization"]', got: 'a string (value hidden)' },
  },
];

describe('calls: reject (never throw), touch no network', () => {
  for (const c of callCases) {
    itCase(c, async () => {
      const echo = pool.client(TestServiceClient, server.address);
      const request = 'request' in c ? c.request : GOOD;
      const error = await rejectionOf(() => echo.Echo(request as never, c.options as never));
      expectOptionError(error, c.expected);
      if (c.hidden === true) {
        for (const text of [(error as Error).message, String(error), JSON.stringify(error), util.inspect(error, { depth: 5 })]) {
          expect(text).not.toContain(TOKEN);
        }
      }
      expect(server.calls).toHaveLength(0);
      expect(pool.stats().perChannel[0]).toMatchObject({ state: 'idle', started: 0, inFlight: 0 });
      await expectPoolWorks();
    });
  }

  it('rejects a call after close() with PoolClosedError (code CANCELLED), without network', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    await pool.close({ graceMs: 0 });
    const error = await rejectionOf(() => echo.Echo(GOOD));
    expect(error).toBeInstanceOf(PoolClosedError);
    expect(error).toMatchObject({ code: grpc.status.CANCELLED, method: '/resilient.test.v1.TestService/Echo' });
    expect(server.calls).toHaveLength(0);
    expect(pool.stats()).toMatchObject({ state: 'closed', channels: 0, channelsCreated: 1 });
  });

  it('rejects a call during close() with PoolClosedError, while the call in flight drains', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    // In flight for a second from when the server has it: still running when close() begins,
    // however late a loaded machine gets there.
    const inFlight = echo.Echo({ message: 'slow', delayMs: 1_000 });
    await expect.poll(() => server.calls.length, { timeout: 10_000 }).toBe(1);
    const closing = pool.close({ graceMs: 5_000 });
    const error = await rejectionOf(() => echo.Echo(GOOD));
    expect(error).toBeInstanceOf(PoolClosedError);
    await expect(inFlight).resolves.toMatchObject({ message: 'slow' });
    await expect(closing).resolves.toMatchObject({ drained: 1, cancelled: 0 });
    expect(server.calls).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Local failures that are not option errors: settled once, never retried

describe('requests grpc-js refuses locally', () => {
  it('settles an oversize request with RESOURCE_EXHAUSTED, sends nothing and retries nothing', async () => {
    const small = new ChannelPool({ deadlineMs: 5_000, channelOptions: { 'grpc.max_send_message_length': 16 } });
    const retries: RetryEvent[] = [];
    small.onRetry((event) => retries.push(event));
    try {
      // Retries on, for an idempotent method with 5 attempts: still one attempt.
      const echo = small.client(TestServiceClient, server.address, { idempotent: true, retry: { maxAttempts: 5 } });
      const error = await rejectionOf(() => echo.Echo({ message: 'x'.repeat(64) }));
      expect(error).toBeInstanceOf(StatusError);
      expect(error).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, attempts: 1 });
      expect(retries).toHaveLength(0);
      expect(server.calls).toHaveLength(0);
      // A request within the limit still goes through on the same channel.
      await expect(echo.Echo({ message: 'tiny' })).resolves.toMatchObject({ message: 'tiny' });
      expect(small.stats()).toMatchObject({ channels: 1, channelsCreated: 1 });
    } finally {
      await small.close({ graceMs: 0 });
    }
  });

  it('settles a request that cannot be serialized once, for a method that is not idempotent', async () => {
    const echo = pool.client(TestServiceClient, server.address);
    const error = await rejectionOf(() => echo.Echo({ message: 'x', payload: '%not base64%' } as never));
    expect(error).toBeInstanceOf(StatusError);
    expect(error).toMatchObject({ code: grpc.status.INTERNAL, attempts: 1 });
    expect(server.calls).toHaveLength(0);
    await expectPoolWorks();
  });

  it('settles a request that cannot be serialized once, even for an idempotent method', async () => {
    const retries: RetryEvent[] = [];
    pool.onRetry((event) => retries.push(event));
    const echo = pool.client(TestServiceClient, server.address, { idempotent: true });
    const error = await rejectionOf(() => echo.Echo({ message: 'x', payload: '%not base64%' } as never));
    expect(error).toBeInstanceOf(StatusError);
    expect([grpc.status.INTERNAL, grpc.status.INVALID_ARGUMENT]).toContain((error as StatusError).code);
    expect(server.calls).toHaveLength(0);
    // The same bytes fail the same way every time: retrying cannot help.
    expect((error as StatusError).attempts).toBe(1);
    expect(retries).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------
// close() and closeOnSignals()

describe('close(options): rejects a bad option and stays open', () => {
  const closeCases: Array<Case & { options: unknown }> = [
    { input: 'graceMs -1', options: { graceMs: -1 }, expected: { kind: 'RangeError', option: 'graceMs', got: '-1' } },
    { input: "graceMs 'soon'", options: { graceMs: 'soon' }, expected: { kind: 'TypeError', option: 'graceMs', got: '"soon"' } },
    {
      input: 'graceMs Infinity',
      options: { graceMs: Number.POSITIVE_INFINITY },
      expected: { kind: 'RangeError', option: 'graceMs', got: 'Infinity' },
    },
    {
      input: 'unknown key grace',
      options: { grace: 5 },
      expected: { kind: 'TypeError', option: 'CloseOptions.grace', got: 'an unknown option' },
    },
    { input: 'options 5000 (not an object)', options: 5000, expected: { kind: 'TypeError', option: 'CloseOptions', got: '5000' } },
  ];
  for (const c of closeCases) {
    itCase(c, async () => {
      const echo = pool.client(TestServiceClient, server.address);
      const error = await rejectionOf(() => pool.close(c.options as never));
      expectOptionError(error, c.expected);
      expect(pool.state).toBe('open');
      await expect(echo.Echo({ message: 'open' })).resolves.toMatchObject({ message: 'open' });
      // A later good close() really closes.
      await expect(pool.close({ graceMs: 0 })).resolves.toMatchObject({ cancelled: 0 });
      expect(pool.state).toBe('closed');
    });
  }
});

describe('closeOnSignals(signals): throws synchronously and installs nothing', () => {
  const signalCases: Array<Case & { signals: unknown }> = [
    {
      input: "['NOPE']",
      signals: ['NOPE'],
      expected: { kind: 'TypeError or RangeError', option: 'signals', mentions: /\bNOPE\b/ },
    },
    {
      input: "'SIGTERM' (a string, not an array)",
      signals: 'SIGTERM',
      expected: { kind: 'TypeError', option: 'signals', got: '"SIGTERM"' },
    },
    {
      input: "['SIGTERN'] (a typo of a signal name)",
      signals: ['SIGTERN'],
      expected: { kind: 'TypeError or RangeError', option: 'signals', mentions: /\bSIGTERN\b/ },
    },
    {
      input: "['SIGTERM', 'SIGKILL'] (a signal that cannot be caught)",
      signals: ['SIGTERM', 'SIGKILL'],
      expected: { kind: 'TypeError or RangeError', option: 'signals', mentions: /\bSIGKILL\b/ },
    },
  ];
  const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGKILL', 'SIGTERN', 'NOPE'] as const;

  for (const c of signalCases) {
    itCase(c, async () => {
      const before = new Map(SIGNALS.map((s) => [s, process.listeners(s as NodeJS.Signals)]));
      try {
        const error = thrownBy(() => pool.closeOnSignals(c.signals as never));
        expectOptionError(error, c.expected);
        for (const s of SIGNALS) expect(process.listenerCount(s as NodeJS.Signals), `listeners of ${s}`).toBe(before.get(s)!.length);
        await expectPoolWorks();
      } finally {
        // Take away whatever a failing case left installed, so no other test inherits it.
        for (const s of SIGNALS) {
          for (const listener of process.listeners(s as NodeJS.Signals)) {
            if (!before.get(s)!.includes(listener)) process.removeListener(s, listener);
          }
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Inputs grpc-js itself takes without a clear error: a bad service config (a plain Error, or a
// load-balancing choice dropped in silence), metadata given as a Map (dropped), malformed
// targets (accepted), a client-stream source yielding null (a string code). These tests collect
// every case before asserting, hence helpers that return what happened instead of failing.

/** What `fn` threw synchronously, or undefined when it returned. */
function thrownIfAny(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** What the promise rejected with, or undefined when it resolved. */
async function rejectionIfAny(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** The pool still works: a good call through a fresh client succeeds. */
async function stillWorks(): Promise<void> {
  await expect(pool.client(TestServiceClient, server.address).Echo({ message: 'ok' })).resolves.toMatchObject({ message: 'ok' });
}

describe('an invalid grpc.service_config is refused with a clear error, and leaves nothing behind', () => {
  it('invalid service configs throw a RangeError/TypeError naming channelOptions, with code INVALID_ARGUMENT', async () => {
    const configs = [
      { loadBalancingConfig: {} }, // grpc-js: plain Error "Invalid service config: invalid loadBalancingConfig"
      { loadBalancingConfig: [{ round_robin: {}, pick_first: {} }] }, // plain Error "unexpected multiple keys"
      { methodConfig: [{ timeout: 'soon' }] }, // plain Error "Invalid method config: invalid name array"
      // grpc-js falls back to pick_first silently (debug log only): the user's LB choice is lost.
      { loadBalancingConfig: [{ no_such_policy: {} }] },
    ];
    const unclear: string[] = [];
    for (const config of configs) {
      const json = JSON.stringify(config);
      const error = thrownIfAny(() => pool.client(TestServiceClient, server.address, { channelOptions: { 'grpc.service_config': json } }));
      const clear =
        error instanceof Error &&
        (error.name === 'TypeError' || error.name === 'RangeError') &&
        (error as { code?: unknown }).code === grpc.status.INVALID_ARGUMENT &&
        /channelOptions|grpc\.service_config/.test(String((error as { option?: unknown }).option));
      if (!clear)
        unclear.push(
          `${json} -> ${error === undefined ? 'accepted' : `${(error as Error).name} code=${String((error as { code?: unknown }).code)}: ${(error as Error).message}`}`,
        );
    }
    expect(unclear, 'service configs without a clear error').toEqual([]);
    // No channel was left for any refused key.
    expect(pool.stats()).toMatchObject({ channels: 0, channelsCreated: 0 });
    expect(pool.stats().perChannel).toHaveLength(0);
    await stillWorks();
  });
});

describe('metadata given as a Map is refused, not silently dropped', () => {
  it('a Map as metadata rejects with a TypeError naming metadata, and nothing is sent', async () => {
    const metadata = new Map([['x-tenant', 'acme']]);
    const error = await rejectionIfAny(
      pool.client(TestServiceClient, server.address).Echo({ message: 'x' }, { metadata: metadata as never }),
    );
    // Today the call succeeds and the server sees only user-agent.
    expect(error, `server saw: ${JSON.stringify(server.calls.map((c) => c.metadata.getMap()))}`).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: 'metadata' });
    expect(server.calls).toHaveLength(0);
    await stillWorks();
  });
});

describe('targets that are wrong before any channel exists are refused at pool.client()', () => {
  it('out-of-range ports and empty unix:, ipv4:, dns:/// targets throw with code INVALID_ARGUMENT; nothing is created', async () => {
    const malformed = ['https://x:99999', '127.0.0.1:99999', 'unix:', 'ipv4:', 'dns:///', 'localhost:-1', 'http://x:0x50'];
    const accepted: string[] = [];
    for (const target of malformed) {
      const error = thrownIfAny(() => pool.client(TestServiceClient, target));
      if (error === undefined) accepted.push(target);
      else expect(error, target).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: 'target' });
    }
    expect(accepted, 'malformed targets accepted by pool.client()').toEqual([]);
    expect(pool.stats().channelsCreated).toBe(0);
    // Valid grpc-js target forms still pass through untouched (a channel is made lazily).
    for (const target of [
      'dns:///localhost:50051',
      'unix:/tmp/resilient-grpc-not-there.sock',
      'ipv4:127.0.0.1:1,127.0.0.1:2',
      '[::1]:50051',
      'https://x',
    ]) {
      expect(() => pool.client(TestServiceClient, target), target).not.toThrow();
    }
    await stillWorks();
  });

  // Found by this test (fixed): `[::1` was accepted and each call failed UNAVAILABLE "Failed to
  // parse DNS address" after about 300 ms; an `xds:` target before @grpc/grpc-js-xds's
  // register() was accepted and each call made 3 attempts against `dns:xds:///listener1`.
  it('an unclosed "[" and an xds: target with no xDS resolver registered throw, saying what to do; nothing is created', async () => {
    const bracket = thrownIfAny(() => pool.client(TestServiceClient, '[::1'));
    expect(bracket).toBeInstanceOf(RangeError);
    expect(bracket).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: 'target' });
    expect((bracket as Error | undefined)?.message).toContain('an address whose "[" is closed');
    for (const target of ['xds:///listener1', 'xds:listener1']) {
      const error = thrownIfAny(() => pool.client(TestServiceClient, target));
      expect(error, target).toBeInstanceOf(RangeError);
      expect(error, target).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: 'target' });
      expect((error as Error | undefined)?.message, target).toContain('call register() from @grpc/grpc-js-xds before pool.client()');
    }
    expect(pool.stats().channelsCreated).toBe(0);
    await stillWorks();
  });

  it('a target with a password is refused with the password replaced, and no channel carries it', async () => {
    const target = `http://admin:S3CRET@${server.address}`;
    const error = thrownIfAny(() => pool.client(TestServiceClient, target));
    expect(error).toBeInstanceOf(RangeError);
    expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: 'target' });
    expect((error as Error | undefined)?.message).toContain(`"http://admin:***@${server.address}"`);
    expect((error as Error | undefined)?.message).not.toContain('S3CRET');
    expect(pool.stats().channelsCreated).toBe(0);
    await stillWorks();
  });
});

describe('a client-stream source that yields null rejects with a numeric gRPC code', () => {
  it('a null request from the source rejects with code INVALID_ARGUMENT (a number), not ERR_STREAM_NULL_VALUES', async () => {
    async function* source(): AsyncGenerator<unknown> {
      yield { message: 'a' };
      yield null;
    }
    const error = await rejectionIfAny(pool.client(TestServiceClient, server.address).ClientStream(source() as never));
    expect(error).toBeInstanceOf(Error);
    const code = (error as { code?: unknown }).code;
    expect(typeof code, `code was ${String(code)}`).toBe('number');
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    await stillWorks();
  });
});
