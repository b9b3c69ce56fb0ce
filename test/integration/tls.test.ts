// TLS and mutual TLS through the pool, channels keyed by credentials, the https:// target form,
// the credentials-per-call warning, and request metadata (tokens) kept out of every error.
//
// Certificates are made for this run only, in a temporary directory: EC P-256 keys from
// node:crypto, X.509 certificates signed by the `openssl` command line (node:crypto cannot issue
// certificates). Nothing secret is committed.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import util from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChannelPool, StatusError } from '../../src/index.js';
import { channelzChannels } from '../helpers/net.js';
import { TestServiceClient } from '../helpers/protos.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const TOKEN = 'sk_live_SECRET123';
const BEARER = `Bearer ${TOKEN}`;

// ---------------------------------------------------------------------------------------------
// Certificates

interface KeyPair {
  key: Buffer;
  cert: Buffer;
}

interface Certs {
  ca: Buffer;
  /** A CA that signed nothing we serve: trusting it alone must fail. */
  otherCa: Buffer;
  server: KeyPair;
  clientA: KeyPair;
  clientB: KeyPair;
}

const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
`;

function makeCerts(dir: string): Certs {
  const config = join(dir, 'openssl.cnf');
  writeFileSync(config, OPENSSL_CONFIG);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const newKey = (name: string): string => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const path = join(dir, `${name}.key`);
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    return path;
  };
  const newCa = (name: string): { key: string; cert: string } => {
    const key = newKey(name);
    const cert = join(dir, `${name}.crt`);
    openssl(
      'req',
      '-config',
      config,
      '-x509',
      '-new',
      '-key',
      key,
      '-subj',
      `/CN=${name}`,
      '-days',
      '1',
      '-extensions',
      'ca_ext',
      '-out',
      cert,
    );
    return { key, cert };
  };
  let serial = 1000;
  const newLeaf = (name: string, issuer: { key: string; cert: string }, extensions: string): KeyPair => {
    const key = newKey(name);
    const csr = join(dir, `${name}.csr`);
    const cert = join(dir, `${name}.crt`);
    openssl('req', '-config', config, '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr);
    openssl(
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      issuer.cert,
      '-CAkey',
      issuer.key,
      '-set_serial',
      String(serial++),
      '-days',
      '1',
      '-extfile',
      config,
      '-extensions',
      extensions,
      '-out',
      cert,
    );
    return { key: readFileSync(key), cert: readFileSync(cert) };
  };
  const ca = newCa('resilient-grpc-test-ca');
  const otherCa = newCa('resilient-grpc-other-ca');
  return {
    ca: readFileSync(ca.cert),
    otherCa: readFileSync(otherCa.cert),
    server: newLeaf('server', ca, 'server_ext'),
    clientA: newLeaf('client-a', ca, 'client_ext'),
    clientB: newLeaf('client-b', ca, 'client_ext'),
  };
}

// ---------------------------------------------------------------------------------------------
// Fixtures

let dir: string;
let certs: Certs;
/** TLS, no client certificate asked. */
let tls: TestServer;
/** Mutual TLS: a client certificate signed by the CA is required. */
let mtls: TestServer;
let pool: ChannelPool;

beforeAll(async () => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('tls.test.ts needs the openssl command line to issue its test certificates (apt-get install openssl)');
  }
  dir = mkdtempSync(join(tmpdir(), 'resilient-grpc-tls-'));
  certs = makeCerts(dir);
  const identity = [{ cert_chain: certs.server.cert, private_key: certs.server.key }];
  tls = await startTestServer({ credentials: grpc.ServerCredentials.createSsl(certs.ca, identity, false) });
  mtls = await startTestServer({ credentials: grpc.ServerCredentials.createSsl(certs.ca, identity, true) });
});

afterAll(async () => {
  await tls?.kill();
  await mtls?.kill();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  pool = new ChannelPool({ deadlineMs: 5_000 });
});

afterEach(async () => {
  await pool.close({ graceMs: 0 });
});

function failure(promise: Promise<unknown>): Promise<StatusError> {
  return promise.then(
    (value) => expect.fail(`expected a failure, got ${JSON.stringify(value)}`),
    (error: unknown) => {
      expect(error).toBeInstanceOf(StatusError);
      return error as StatusError;
    },
  );
}

// ---------------------------------------------------------------------------------------------

describe('calls over TLS', () => {
  it('succeeds over TLS with the test CA as root, on a secure channel', async () => {
    const before = tls.calls.length;
    const echo = pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) });
    await expect(echo.Echo({ message: 'over tls' })).resolves.toMatchObject({ message: 'over tls' });
    expect(tls.calls.length).toBe(before + 1);
    expect(pool.stats().perChannel).toEqual([expect.objectContaining({ target: tls.address, secure: true, state: 'ready', succeeded: 1 })]);
  });

  it('succeeds over mutual TLS with a client certificate signed by the CA', async () => {
    const before = mtls.calls.length;
    const { key, cert } = certs.clientA;
    const echo = pool.client(TestServiceClient, mtls.address, { credentials: grpc.credentials.createSsl(certs.ca, key, cert) });
    await expect(echo.Echo({ message: 'mutual' })).resolves.toMatchObject({ message: 'mutual' });
    expect(mtls.calls.length).toBe(before + 1);
  });

  it('fails with UNAVAILABLE over mutual TLS without a client certificate, and the server handles nothing', async () => {
    const before = mtls.calls.length;
    const echo = pool.client(TestServiceClient, mtls.address, { credentials: grpc.credentials.createSsl(certs.ca) });
    const error = await failure(echo.Echo({ message: 'no cert' }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.target).toBe(mtls.address);
    expect(mtls.calls.length).toBe(before);
    expect(pool.stats()).toMatchObject({ channels: 1, channelsCreated: 1 });
  });

  it('fails with UNAVAILABLE when the client trusts another CA', async () => {
    const before = tls.calls.length;
    const echo = pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.otherCa) });
    const error = await failure(echo.Echo({ message: 'wrong ca' }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.details).toMatch(/certificate/i);
    expect(tls.calls.length).toBe(before);
  });
});

describe('channels are keyed by credentials', () => {
  it('opens two channels for a TLS and an insecure client of one target: TLS works, plaintext fails', async () => {
    const secure = pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) });
    const plain = pool.client(TestServiceClient, tls.address);
    await expect(secure.Echo({ message: 'tls' })).resolves.toMatchObject({ message: 'tls' });
    expect((await failure(plain.Echo({ message: 'plaintext' }, { retry: false }))).code).toBe(grpc.status.UNAVAILABLE);

    const stats = pool.stats();
    expect(stats.channels).toBe(2);
    expect(stats.perChannel.map((c) => c.secure).sort()).toEqual([false, true]);
    expect(stats.perChannel.every((c) => c.target === tls.address)).toBe(true);
    expect(await channelzChannels(tls.address)).toBe(2);
  });

  it('opens two channels for two different client certificates to one target, and both work', async () => {
    const a = pool.client(TestServiceClient, mtls.address, {
      credentials: grpc.credentials.createSsl(certs.ca, certs.clientA.key, certs.clientA.cert),
    });
    const b = pool.client(TestServiceClient, mtls.address, {
      credentials: grpc.credentials.createSsl(certs.ca, certs.clientB.key, certs.clientB.cert),
    });
    await expect(a.Echo({ message: 'a' })).resolves.toMatchObject({ message: 'a' });
    await expect(b.Echo({ message: 'b' })).resolves.toMatchObject({ message: 'b' });

    const stats = pool.stats();
    expect(stats.channels).toBe(2);
    expect(stats.perChannel.map((c) => [c.secure, c.succeeded])).toEqual([
      [true, 1],
      [true, 1],
    ]);
  });

  it('shares one channel between 5 clients reusing one credentials object', async () => {
    const credentials = grpc.credentials.createSsl(certs.ca, certs.clientA.key, certs.clientA.cert);
    const clients = Array.from({ length: 5 }, () => pool.client(TestServiceClient, mtls.address, { credentials }));
    const replies = await Promise.all(clients.map((c, i) => c.Echo({ message: `client ${i}` })));
    expect(replies.map((r) => r.message)).toEqual(['client 0', 'client 1', 'client 2', 'client 3', 'client 4']);

    const stats = pool.stats();
    expect(stats).toMatchObject({ channels: 1, channelsCreated: 1 });
    expect(stats.perChannel[0]).toMatchObject({ secure: true, started: 5, succeeded: 5 });
    expect(await channelzChannels(mtls.address)).toBe(1);
  });
});

describe('https:// targets', () => {
  it('use TLS with the system roots: a secure channel to host:port, which rejects our self-signed CA', async () => {
    const before = tls.calls.length;
    const target = `https://${tls.address}`;
    const first = pool.client(TestServiceClient, target);
    const second = pool.client(TestServiceClient, target);
    const error = await failure(first.Echo({ message: 'system roots' }, { retry: false }));

    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.details).toMatch(/certificate/i);
    expect(error.target).toBe(tls.address);
    expect(tls.calls.length).toBe(before);
    // Both clients got the pool's one default TLS credentials object, so they share a channel.
    expect((await failure(second.Echo({ message: 'again' }, { retry: false }))).code).toBe(grpc.status.UNAVAILABLE);
    expect(pool.stats().perChannel).toEqual([expect.objectContaining({ target: tls.address, secure: true, failed: 2 })]);
  });
});

describe('the credentials-per-call warning', () => {
  it('warns once, with RESILIENT_GRPC_CREDENTIALS_PER_CALL, when a 9th createSsl() object is used for one target', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      if ((warning as Error & { code?: string }).code === 'RESILIENT_GRPC_CREDENTIALS_PER_CALL') warnings.push(warning);
    };
    process.on('warning', onWarning);
    const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    try {
      const clients = [];
      for (let i = 0; i < 8; i++) {
        clients.push(pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) }));
      }
      await tick();
      expect(warnings).toHaveLength(0);

      clients.push(pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) }));
      await tick();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.name).toBe('ResilientGrpcWarning');
      expect(warnings[0]!.message).toContain(tls.address);
      expect(warnings[0]!.message).toMatch(/\b9 channels\b/);

      clients.push(pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) }));
      await tick();
      expect(warnings).toHaveLength(1);
      expect(pool.stats().channels).toBe(10);
      // The warning changes nothing about the calls: every channel still works.
      const replies = await Promise.all(clients.map((c, i) => c.Echo({ message: `${i}` })));
      expect(replies).toHaveLength(10);
    } finally {
      process.removeListener('warning', onWarning);
    }
  });

  it('does not warn for one credentials object reused by many clients', async () => {
    const warnings: unknown[] = [];
    const onWarning = (warning: Error): void => {
      if ((warning as Error & { code?: string }).code === 'RESILIENT_GRPC_CREDENTIALS_PER_CALL') warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const credentials = grpc.credentials.createSsl(certs.ca);
      for (let i = 0; i < 20; i++) pool.client(TestServiceClient, tls.address, { credentials });
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toHaveLength(0);
      expect(pool.stats().channels).toBe(1);
    } finally {
      process.removeListener('warning', onWarning);
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** Every way a user may render an error: none may reveal the token. */
function renderings(error: unknown): Record<string, string> {
  return {
    message: (error as Error).message,
    string: String(error),
    json: JSON.stringify(error),
    inspect: util.inspect(error, { depth: 5 }),
  };
}

function expectNoToken(error: unknown): void {
  const rendered = renderings(error);
  for (const [how, text] of Object.entries(rendered)) {
    expect(text, `${how} of the error`).not.toContain(TOKEN);
  }
  // The renderings really show the error (a blank rendering would hide the token trivially).
  expect(rendered.inspect).toContain((error as Error).message.slice(0, 20));
}

describe('metadata values never appear in errors', () => {
  const metadata = (extra: Record<string, string> = {}): Record<string, string | string[]> => ({
    authorization: BEARER,
    'x-api-keys': [`key-1-${TOKEN}`, `key-2-${TOKEN}`],
    ...extra,
  });

  interface FailingCall {
    name: string;
    code: grpc.status;
    /** Whether the server handled the call (then it must have received the token). */
    reachesServer: boolean;
    run: () => Promise<unknown>;
  }

  const failingCalls: FailingCall[] = [
    {
      name: 'TLS client trusting another CA',
      code: grpc.status.UNAVAILABLE,
      reachesServer: false,
      run: () =>
        pool
          .client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.otherCa) })
          .Echo({ message: 'x' }, { metadata: metadata() }),
    },
    {
      name: 'mutual TLS without a client certificate',
      code: grpc.status.UNAVAILABLE,
      reachesServer: false,
      run: () =>
        pool
          .client(TestServiceClient, mtls.address, { credentials: grpc.credentials.createSsl(certs.ca) })
          .Echo({ message: 'x' }, { metadata: metadata() }),
    },
    {
      name: 'plaintext client against a TLS server',
      code: grpc.status.UNAVAILABLE,
      reachesServer: false,
      run: () => pool.client(TestServiceClient, tls.address).Echo({ message: 'x' }, { metadata: metadata() }),
    },
    {
      name: 'deadline exceeded',
      code: grpc.status.DEADLINE_EXCEEDED,
      reachesServer: true,
      run: async () => {
        const echo = pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) });
        // Connected first (with the token too): the deadline is the call's to miss, at the server,
        // not a TLS handshake's on a loaded machine, which would keep the call from the server.
        await echo.Echo({ message: 'connect' }, { metadata: metadata() });
        return echo.Echo({ message: 'x', delayMs: 2_000 }, { deadlineMs: 1_000, metadata: metadata() });
      },
    },
    {
      name: 'server status PERMISSION_DENIED',
      code: grpc.status.PERMISSION_DENIED,
      reachesServer: true,
      run: () =>
        pool
          .client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) })
          .Echo({ message: 'x' }, { metadata: metadata({ 'x-fail-code': String(grpc.status.PERMISSION_DENIED) }) }),
    },
    {
      name: 'server status UNAVAILABLE, retried to the last attempt',
      code: grpc.status.UNAVAILABLE,
      reachesServer: true,
      run: () =>
        pool
          .client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) })
          .Echo({ message: 'x' }, { metadata: metadata({ 'x-fail-code': String(grpc.status.UNAVAILABLE), 'x-trailer-echo': 'visible' }) }),
    },
  ];

  for (const call of failingCalls) {
    it(`keeps the token out of the error: ${call.name}`, async () => {
      const server = call.name.includes('mutual') ? mtls : tls;
      const before = server.calls.length;
      const error = await failure(call.run());
      expect(error.code).toBe(call.code);
      expectNoToken(error);
      // error.metadata holds the server's trailers, never our request headers.
      expect(JSON.stringify(error.metadata.toJSON())).not.toContain(TOKEN);
      expect(error.metadata.get('authorization')).toEqual([]);
      for (const previous of error.previousAttempts) expectNoToken(previous);

      const received = server.calls.slice(before);
      if (call.reachesServer) {
        // The token did travel: its absence from the error is not for want of sending it.
        expect(received.length).toBeGreaterThan(0);
        for (const record of received) expect(record.metadata.get('authorization')).toEqual([BEARER]);
      } else {
        expect(received).toHaveLength(0);
      }
    });
  }

  it('keeps trailers the server did send in error.metadata', async () => {
    const echo = pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) });
    const error = await failure(
      echo.Echo({ message: 'x' }, { metadata: metadata({ 'x-fail-code': String(grpc.status.ABORTED), 'x-trailer-echo': 'from-server' }) }),
    );
    expect(error.metadata.get('x-trailer-echo')).toEqual(['from-server']);
    expectNoToken(error);
  });

  const badValues: Array<[string, Record<string, unknown>]> = [
    ['a token ending in a newline', { authorization: `${BEARER}\n` }],
    ['a token with CR LF inside', { authorization: `Bearer\r\nx-injected: ${TOKEN}` }],
    ['a token with a non-ASCII character', { authorization: `${BEARER}\u00e9` }],
    ['a token in an array next to a good value', { authorization: ['Bearer fine', `${BEARER}\n`] }],
    ['a token as a Buffer under a non -bin key', { authorization: Buffer.from(BEARER) }],
    ['a token as a string under a -bin key', { 'x-token-bin': BEARER }],
  ];

  for (const [name, value] of badValues) {
    it(`rejects a bad metadata value without echoing it: ${name}`, async () => {
      const before = tls.calls.length;
      const echo = pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) });
      const error: unknown = await echo.Echo({ message: 'x' }, { metadata: value as Record<string, string> }).then(
        () => expect.fail('the call succeeded'),
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TypeError);
      expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: `metadata["${Object.keys(value)[0]}"]` });
      expect((error as Error).message).toMatch(/value hidden/);
      expectNoToken(error);
      expect(tls.calls.length).toBe(before);
    });
  }

  it('rejects a token passed as the whole metadata option without echoing it', async () => {
    const echo = pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) });
    const error: unknown = await echo.Echo({ message: 'x' }, { metadata: BEARER as never }).then(
      () => expect.fail('the call succeeded'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, option: 'metadata' });
    expectNoToken(error);
  });
});

describe('per-call credentials (grpc-js CallCredentials)', () => {
  /** Call credentials that add a fresh token per attempt, and count how often they were asked. */
  function tokenPerAttempt(): { credentials: grpc.CallCredentials; asked: () => number } {
    let asked = 0;
    const credentials = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      asked++;
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer token-${asked}`);
      callback(null, metadata);
    });
    return { credentials, asked: () => asked };
  }

  it('adds their metadata to the call, on a TLS channel; each call may bring its own', async () => {
    const echo = pool.client(TestServiceClient, tls.address, { credentials: grpc.credentials.createSsl(certs.ca) });
    const first = tokenPerAttempt();
    const second = tokenPerAttempt();
    await echo.Echo({ message: 'a' }, { credentials: first.credentials, metadata: { 'x-call-id': 'cc-a' } });
    await echo.Echo({ message: 'b' }, { credentials: second.credentials, metadata: { 'x-call-id': 'cc-b' } });
    await echo.Echo({ message: 'c' }, { metadata: { 'x-call-id': 'cc-none' } });
    const authorization = (callId: string): unknown[] =>
      tls.calls.filter((c) => c.callId === callId).map((c) => c.metadata.get('authorization')[0]);
    expect(authorization('cc-a')).toEqual(['Bearer token-1']);
    expect(authorization('cc-b')).toEqual(['Bearer token-1']);
    expect(authorization('cc-none')).toEqual([undefined]);
    // One channel for all three: call credentials are not part of the channel's key.
    expect(pool.stats()).toMatchObject({ channels: 1, channelsCreated: 1 });
  });

  it('are asked again on a retry: each attempt carries a fresh token', async () => {
    const echo = pool.client(TestServiceClient, tls.address, {
      credentials: grpc.credentials.createSsl(certs.ca),
      retry: { maxAttempts: 3, initialDelayMs: 1 },
    });
    const perAttempt = tokenPerAttempt();
    await expect(
      echo.Echo(
        { message: 'retried' },
        { credentials: perAttempt.credentials, metadata: { 'x-call-id': 'cc-retry', 'x-fail-times': '1' } },
      ),
    ).resolves.toMatchObject({ message: 'retried' });
    expect(perAttempt.asked()).toBe(2);
    expect(tls.calls.filter((c) => c.callId === 'cc-retry').map((c) => c.metadata.get('authorization')[0])).toEqual([
      'Bearer token-1',
      'Bearer token-2',
    ]);
  });

  it("a generator that fails fails the call with a typed error carrying no token, and does not count against the backend's circuit", async () => {
    const echo = pool.client(TestServiceClient, tls.address, {
      credentials: grpc.credentials.createSsl(certs.ca),
      breaker: { volumeThreshold: 1, errorThresholdPercentage: 1 },
    });
    let asked = 0;
    const broken = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      asked++;
      callback(new Error('token service down'));
    });
    for (let i = 0; i < 3; i++) {
      const error = await failure(echo.Echo({ message: 'x' }, { credentials: broken, metadata: { authorization: BEARER }, retry: false }));
      // grpc-js: the generator's error code, UNKNOWN when it has none.
      expect(error.code).toBe(grpc.status.UNKNOWN);
      expect(error.details).toBe('Getting metadata from plugin failed with error: token service down');
      expectNoToken(error);
    }
    // A breaker that opens at the first backend failure (volume 1, 1 %) heard none: every call asked the generator.
    expect(asked).toBe(3);
    const breakers = pool.stats().perChannel[0]!.breakers;
    expect(breakers.length).toBeGreaterThan(0);
    expect(breakers.map((b) => [b.state, b.opened])).toEqual(breakers.map(() => ['closed', 0]));
  });
});
