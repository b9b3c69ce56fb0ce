// What an idle channel keeps. While no call is in flight, a channel keeps its last call, so that a
// full GC in an idle moment does not throw away the pool's optimized code (in-flight.ts says why);
// the kept call lets go of what would keep its result alive. Each test makes a call of one shape
// against a real grpc-js server, lets go of what the call gave back, forces a full GC, and checks
// that the result was collected while the channel was idle.
import { beforeEach, describe, expect, it } from 'vitest';
import type { BidiStreamMethod, ChannelPool, ClientStreamMethod, ServerStreamMethod, UnaryMethod } from '../../src/index.js';
import { TestServiceClient, type EchoRequest, type EchoResponse, type StreamRequest } from '../helpers/protos.js';
import { collectedByFullGcs } from '../helpers/full-gc.js';
import { startServerAndPools } from '../helpers/server-and-pools.js';

let pool: ChannelPool;
let address: string;

interface Methods {
  Echo: UnaryMethod<Partial<EchoRequest>, EchoResponse>;
  ServerStream: ServerStreamMethod<Partial<StreamRequest>, EchoResponse>;
  ClientStream: ClientStreamMethod<Partial<EchoRequest>, EchoResponse>;
  Bidi: BidiStreamMethod<Partial<EchoRequest>, EchoResponse>;
}

beforeEach(async () => {
  const fixture = await startServerAndPools();
  address = fixture.address;
  // Every feature a call can touch stays on: retries, the breaker, the stall detector.
  pool = fixture.newPool({ deadlineMs: 10_000 });
});

function client(): Methods {
  return pool.client(TestServiceClient, address, { idempotent: true }) as unknown as Methods;
}

function idle(): boolean {
  return pool.stats().perChannel.every((c) => c.inFlight === 0);
}

async function* requests(n: number): AsyncGenerator<Partial<EchoRequest>> {
  for (let i = 0; i < n; i++) yield { message: `r${i}`, payload: Buffer.alloc(1024) };
}

// Each call is made in a function of its own, which returns weak references only: a frame still
// running (the test's) can hold the last value a loop saw in one of its registers.
describe('an idle channel keeps no result of its last call', () => {
  it('a unary response', async () => {
    const refs = await (async () => {
      const response = await client().Echo({ message: 'big', payload: Buffer.alloc(64 * 1024) });
      expect(response.payload.length).toBe(64 * 1024);
      return [new WeakRef(response)];
    })();
    await expectCollected(refs);
  });

  it('a unary failure (the error the caller got, which the call built from its own record of its attempts)', async () => {
    const refs = await (async () => {
      const error: unknown = await client()
        .Echo({ message: 'fail' }, { metadata: { 'x-fail-code': '3' } })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 3 });
      return [new WeakRef(error as object)];
    })();
    await expectCollected(refs);
  });

  it('a server stream and its messages', async () => {
    const refs = await (async () => {
      const stream = client().ServerStream({ message: 's', count: 3 });
      const messages: EchoResponse[] = [];
      for await (const message of stream) messages.push(message);
      expect(messages).toHaveLength(3);
      return [new WeakRef(stream), ...messages.map((m) => new WeakRef(m))];
    })();
    await expectCollected(refs);
  });

  it('a client stream response', async () => {
    const refs = await (async () => {
      const response = await client().ClientStream(requests(3));
      expect(response.message).toBeDefined();
      return [new WeakRef(response)];
    })();
    await expectCollected(refs);
  });

  it('a bidi stream and its messages', async () => {
    const refs = await (async () => {
      const stream = client().Bidi(requests(3));
      const messages: EchoResponse[] = [];
      for await (const message of stream) messages.push(message);
      expect(messages).toHaveLength(3);
      return [new WeakRef(stream), ...messages.map((m) => new WeakRef(m))];
    })();
    await expectCollected(refs);
  });
});

/** The channel is idle, and every target is collected after full GCs. */
async function expectCollected(refs: WeakRef<object>[]): Promise<void> {
  expect(idle()).toBe(true);
  const collected: boolean[] = [];
  for (const ref of refs) collected.push(await collectedByFullGcs(ref));
  expect(collected).toEqual(refs.map(() => true));
}
