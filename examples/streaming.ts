// Streaming calls: a server stream read with for await, a client stream fed from a generator,
// and a bidi stream, all with deadlines, cancellation and backpressure.
// Run: npx tsx examples/streaming.ts
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { ChannelPool, StatusError } from '../src/index.js';

interface EchoRequest {
  message: string;
}
interface EchoResponse {
  message: string;
  count: number;
}

const PROTO = fileURLToPath(new URL('../protos/test_service.proto', import.meta.url));
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { longs: Number, defaults: true })) as unknown as {
  resilient: { test: { v1: { TestService: grpc.ServiceClientConstructor } } };
};
const { TestService } = pkg.resilient.test.v1;

// An embedded server: a feed of numbered messages, an upload counter, and an echo chat.
const server = new grpc.Server();
server.addService(TestService.service, {
  async ServerStream(call: grpc.ServerWritableStream<{ message: string; count: number }, EchoResponse>) {
    for (let i = 0; i < call.request.count && !call.cancelled; i++) {
      // write() returns false when the client is not keeping up: wait, do not buffer.
      if (!call.write({ message: `${call.request.message}-${i}`, count: i })) await new Promise((r) => call.once('drain', r));
    }
    call.end();
  },
  ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) {
    const seen: string[] = [];
    call.on('data', (request: EchoRequest) => seen.push(request.message));
    call.on('end', () => callback(null, { message: seen.join(','), count: seen.length }));
  },
  Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) {
    let n = 0;
    call.on('data', (request: EchoRequest) => call.write({ message: `echo: ${request.message}`, count: n++ }));
    call.on('end', () => call.end());
  },
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
);

const pool = new ChannelPool({ deadlineMs: 10_000 });
// Streams may need a longer deadline than unary calls: set it per method.
const client = pool.client(TestService, `127.0.0.1:${port}`, { methods: { ServerStream: { deadlineMs: 60_000 } } });

// Server streaming: stop early and the call is cancelled on the wire.
const firstThree: string[] = [];
for await (const event of client.ServerStream({ message: 'tick', count: 1_000 }) as AsyncIterable<EchoResponse>) {
  firstThree.push(event.message);
  if (firstThree.length === 3) break;
}
console.log('server stream, first three of 1,000:', firstThree);

// Client streaming: the generator is pulled only as fast as the stream accepts writes.
async function* chunks(): AsyncGenerator<EchoRequest> {
  for (const word of ['resilient', 'grpc', 'streams']) yield { message: word };
}
console.log('client stream:', await client.ClientStream(chunks()));

// Bidi: requests and responses flow at the same time.
for await (const answer of client.Bidi([{ message: 'hello' }, { message: 'again' }]) as AsyncIterable<EchoResponse>) {
  console.log('bidi:', answer.message);
}

// A deadline ends a stream like any call: the messages that arrived first are delivered.
try {
  for await (const _ of client.ServerStream({ message: 'slow', count: 5 }, { deadlineMs: 1 })) {
    // nothing arrives within 1 ms
  }
} catch (error) {
  if (error instanceof StatusError) console.log('deadline:', grpc.status[error.code]);
  else throw error;
}

console.log('closed:', await pool.close({ graceMs: 1_000 }));
server.forceShutdown();
