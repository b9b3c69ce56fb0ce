// Probe for issue 12 (A): what a grpc-js 1.14.7 caller sees when a call fails at each phase.
// Run: node research/i12-probe.mjs   (loopback only)
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';

const service = {
  Echo: {
    path: '/probe.P/Echo', requestStream: false, responseStream: false,
    requestSerialize: (b) => b, requestDeserialize: (b) => b,
    responseSerialize: (b) => b, responseDeserialize: (b) => b,
  },
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let executions = 0;
let onHandler = () => {};
async function startServer() {
  const server = new grpc.Server();
  server.addService(service, {
    Echo(call, cb) {
      executions += 1;
      const mode = call.metadata.get('x-mode')[0];
      if (mode === 'headers') call.sendMetadata(new grpc.Metadata());
      onHandler(mode);
      const t = setTimeout(() => cb(null, Buffer.from('ok')), 600);
      call.on('cancelled', () => clearTimeout(t));
    },
  });
  const port = await new Promise((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { server, port };
}

// Minimal proxy: modes 'pass', 'blackhole', 'reset'; cut() resets every socket;
// 'drop-client-bytes': accept, forward server->client, swallow client->server after the first chunk.
async function startProxy(upPort) {
  const sockets = new Set();
  let mode = 'pass';
  const srv = net.createServer((c) => {
    sockets.add(c); c.on('error', () => {}); c.on('close', () => sockets.delete(c));
    if (mode === 'blackhole') return c.resume();
    if (mode === 'reset') return c.resetAndDestroy();
    const u = net.connect(upPort, '127.0.0.1');
    sockets.add(u); u.on('error', () => {}); u.on('close', () => sockets.delete(u));
    u.pipe(c); c.pipe(u);
    c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
  });
  srv.listen(0, '127.0.0.1'); await once(srv, 'listening');
  return {
    port: srv.address().port,
    setMode: (m) => { mode = m; },
    cut: () => { for (const s of sockets) s.resetAndDestroy(); },
    close: () => { for (const s of sockets) s.destroy(); srv.close(); },
  };
}

function interceptorLog(log) {
  return (options, nextCall) => new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      next(metadata, {
        onReceiveMetadata(md, n) { log.push('icpt:metadata'); n(md); },
        onReceiveMessage(m, n) { log.push(m === null ? 'icpt:message(null)' : 'icpt:message'); n(m); },
        onReceiveStatus(s, n) { log.push(`icpt:status keys=${Object.keys(s).join(',')}`); n(s); },
      });
    },
  });
}

async function run(label, target, { deadlineMs = 3000, mode = 'plain', channelOptions = {}, during } = {}) {
  const client = new grpc.Client(target, grpc.credentials.createInsecure(), channelOptions);
  const before = executions;
  const log = [];
  const md = new grpc.Metadata(); md.set('x-mode', mode);
  const result = await new Promise((resolve) => {
    const call = client.makeUnaryRequest(service.Echo.path, (b) => b, (b) => b, Buffer.from('x'), md,
      { deadline: Date.now() + deadlineMs, interceptors: [interceptorLog(log)] },
      (err, res) => resolve({ err, res, call }));
    call.on('metadata', () => log.push('event:metadata'));
    call.on('status', (s) => log.push(`event:status ${s.code}`));
    during?.(call, log);
  });
  await sleep(50);
  const { err, call } = result;
  const peer = call.getPeer();
  console.log(JSON.stringify({
    phase: label, code: err?.code ?? 0, details: err?.details, executions: executions - before,
    peerAfter: peer, events: log, metadataKeys: err ? Object.keys(err.metadata.getMap()) : [],
  }));
  client.close();
}

const { server, port } = await startServer();
const proxy = await startProxy(port);
const via = `127.0.0.1:${proxy.port}`;

// P0a: nothing listens at the port (connect refused)
const dead = net.createServer(); dead.listen(0, '127.0.0.1'); await once(dead, 'listening');
const deadPort = dead.address().port; dead.close();
await run('P0a refused (no listener)', `127.0.0.1:${deadPort}`);
// P0b: blackhole (TCP accepted, no HTTP/2 SETTINGS): waits for the LB pick until the deadline
proxy.setMode('blackhole');
await run('P0b blackhole until deadline', via, { deadlineMs: 800 });
proxy.cut();
// P0c: reset at accept
proxy.setMode('reset');
await run('P0c reset on accept', via);
proxy.setMode('pass');
await sleep(100);
// P0d: channel closed while the call waits for a pick
proxy.setMode('blackhole');
{
  const client = new grpc.Client(via, grpc.credentials.createInsecure(), {});
  const r = await new Promise((resolve) => {
    client.makeUnaryRequest(service.Echo.path, (b) => b, (b) => b, Buffer.from('x'), new grpc.Metadata(), { deadline: Date.now() + 3000 }, (err, _res) => resolve(err));
    setTimeout(() => client.close(), 200);
  });
  console.log(JSON.stringify({ phase: 'P0d channel closed while queued', code: r.code, details: r.details }));
}
proxy.cut(); proxy.setMode('pass'); await sleep(100);

// P1: cut after the request reached the server handler, before any response
onHandler = (mode) => { if (mode === 'plain') setTimeout(() => proxy.cut(), 100); };
await run('P1 cut after request reached server, before headers', via);
// P2: cut after response headers arrived at the client
onHandler = () => {};
await run('P2 cut after response headers', via, { mode: 'headers', during: (call) => call.on('metadata', () => setTimeout(() => proxy.cut(), 50)) });
// P3: deadline after the stream was opened (server slow, no headers)
await run('P3 deadline after request sent', via, { deadlineMs: 300 });
// P3b: deadline with headers
await run('P3b deadline after headers', via, { deadlineMs: 300, mode: 'headers' });

// P4: server refuses the stream with RST_STREAM REFUSED_STREAM (raw http2 server)
let refusedStreams = 0;
const h2 = http2.createServer();
h2.on('session', (s) => s.on('error', () => {}));
h2.on('stream', (stream) => { stream.on('error', () => {}); refusedStreams += 1; stream.close(http2.constants.NGHTTP2_REFUSED_STREAM); });
h2.listen(0, '127.0.0.1'); await once(h2, 'listening');
await run('P4 RST_STREAM REFUSED_STREAM', `127.0.0.1:${h2.address().port}`);
console.log(JSON.stringify({ phase: 'P4 streams the server saw', refusedStreams }));
refusedStreams = 0;
await run('P4b same with grpc.enable_retries=0', `127.0.0.1:${h2.address().port}`, { channelOptions: { 'grpc.enable_retries': 0 } });
console.log(JSON.stringify({ phase: 'P4b streams the server saw', refusedStreams }));
// P5: server sends RST_STREAM CANCEL / INTERNAL_ERROR after reading the request
h2.removeAllListeners('stream');
h2.on('stream', (stream) => { stream.on('error', () => {}); stream.resume(); stream.on('end', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR)); });
await run('P5 RST_STREAM INTERNAL_ERROR', `127.0.0.1:${h2.address().port}`);
// P6: server GOAWAY (session.close) after reading the request, without answering
h2.removeAllListeners('stream');
h2.on('stream', (stream) => { stream.on('error', () => {}); stream.resume(); stream.on('end', () => stream.session.goaway(http2.constants.NGHTTP2_NO_ERROR, 0)); setTimeout(() => stream.session.destroy(), 200); });
await run('P6 GOAWAY last-stream-id 0 then destroy', `127.0.0.1:${h2.address().port}`);
// P7: trailers-only server answer UNAVAILABLE (server app decided)
const srv2 = new grpc.Server();
srv2.addService(service, { Echo(call, cb) { executions += 1; cb({ code: grpc.status.UNAVAILABLE, details: 'server says unavailable' }); } });
const p2 = await new Promise((res) => srv2.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => res(p)));
await run('P7 server-sent trailers-only UNAVAILABLE', `127.0.0.1:${p2}`);

proxy.close(); h2.close(); server.forceShutdown(); srv2.forceShutdown();
for (const s of h2.sessions ?? []) s.destroy();
setTimeout(() => process.exit(0), 300).unref();
