// A loopback TCP proxy in front of a (grpc-js) test server that enforces gRFC A8 keepalive
// policy the way grpc-go, grpc-java and C-core servers do by default, so a keepalive design can
// be proved against an enforcing server (a grpc-js server enforces nothing).
//
// It reads the HTTP/2 frames going both ways (9-byte headers; the client's 24-byte preface is
// skipped), forwards them unchanged, and per connection applies grpc-go's handlePing rule:
//
//   - a PING (without ACK) received after the server has sent HEADERS or DATA since the last
//     ping resets the strike count and is never a strike (grpc-go's resetPingStrikes, set on
//     every header and data write; grpc-java resetCounters(), C-core the same);
//   - otherwise it is a bad ping when it comes sooner than minPingIntervalMs after the previous
//     ping, or, while no stream is open and permitWithoutCalls is false, sooner than
//     idleMinPingIntervalMs (grpc-go: 2 hours);
//   - the bad ping that takes the strikes above maxPingStrikes (the third, by default) gets
//     GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"), injected at a frame boundary, and the
//     connection is closed (grpc-go closeConn): the calls in flight on it fail.
//
// Counters: connections, pings, badPings, goaways, and frames seen per direction.
import { once } from 'node:events';
import net from 'node:net';
import { ENHANCE_YOUR_CALM, FrameFlag, FrameReader, FrameType, goawayFrame, type Frame } from './h2-frames.js';

export interface A8PeerOptions {
  /** grpc-go EnforcementPolicy.MinTime; 300000 (5 min) by default. */
  minPingIntervalMs?: number;
  /** Bad pings tolerated; the next one gets GOAWAY. 2 by default (grpc-go maxPingStrikes). */
  maxPingStrikes?: number;
  /** grpc-go EnforcementPolicy.PermitWithoutStream; false by default. */
  permitWithoutCalls?: boolean;
  /** Minimum ping interval while no stream is open (without permitWithoutCalls); 2 h by default. */
  idleMinPingIntervalMs?: number;
}

export interface A8PeerCounters {
  /** TCP connections accepted. */
  connections: number;
  /** PING frames from clients without the ACK flag. */
  pings: number;
  /** Pings that counted as strikes. */
  badPings: number;
  /** GOAWAY too_many_pings sent (one per closed connection). */
  goaways: number;
  clientHeaders: number;
  clientData: number;
  serverHeaders: number;
  serverData: number;
}

export interface A8Peer extends Readonly<A8PeerCounters> {
  readonly port: number;
  /** "127.0.0.1:PORT", to use as a gRPC target. */
  readonly address: string;
  /** Client connections currently open. */
  readonly live: number;
  /** A fresh copy of the counters. */
  counters(): A8PeerCounters;
  /** Destroys every connection and stops listening; resolves when all sockets are closed. */
  close(): Promise<void>;
}

interface Upstream {
  host?: string;
  port: number;
}

const LOOPBACK = '127.0.0.1';
const DEFAULTS = {
  minPingIntervalMs: 300_000,
  maxPingStrikes: 2,
  permitWithoutCalls: false,
  idleMinPingIntervalMs: 2 * 60 * 60 * 1000,
} satisfies Required<A8PeerOptions>;

export async function startA8Peer(upstream: Upstream, options: A8PeerOptions = {}): Promise<A8Peer> {
  const peer = new A8PeerImpl(upstream, {
    minPingIntervalMs: options.minPingIntervalMs ?? DEFAULTS.minPingIntervalMs,
    maxPingStrikes: options.maxPingStrikes ?? DEFAULTS.maxPingStrikes,
    permitWithoutCalls: options.permitWithoutCalls ?? DEFAULTS.permitWithoutCalls,
    idleMinPingIntervalMs: options.idleMinPingIntervalMs ?? DEFAULTS.idleMinPingIntervalMs,
  });
  await peer.listen();
  return peer;
}

/** What grpc-go's http2Server keeps per connection for its ping policy. */
interface ConnectionPolicyState {
  lastPingAt: number;
  strikes: number;
  /** The server has sent HEADERS or DATA since the last ping. */
  serverWroteSincePing: boolean;
  /** Streams the client opened that the server has not ended nor reset. */
  readonly open: Set<number>;
  maxStreamId: number;
  goneAway: boolean;
}

class A8PeerImpl implements A8Peer {
  port = 0;
  connections = 0;
  pings = 0;
  badPings = 0;
  goaways = 0;
  clientHeaders = 0;
  clientData = 0;
  serverHeaders = 0;
  serverData = 0;

  private readonly server = net.createServer((socket) => this.onConnection(socket));
  private readonly sockets = new Set<net.Socket>();
  private readonly clients = new Set<net.Socket>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly upstream: Upstream,
    private readonly policy: Required<A8PeerOptions>,
  ) {}

  get address(): string {
    return `${LOOPBACK}:${this.port}`;
  }

  get live(): number {
    return this.clients.size;
  }

  counters(): A8PeerCounters {
    const { connections, pings, badPings, goaways, clientHeaders, clientData, serverHeaders, serverData } = this;
    return { connections, pings, badPings, goaways, clientHeaders, clientData, serverHeaders, serverData };
  }

  async listen(): Promise<void> {
    this.server.listen({ port: 0, host: LOOPBACK });
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = [...this.sockets].map((socket) => once(socket, 'close'));
      const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      await Promise.all([...closed, serverClosed]);
    })();
    return this.closing;
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
  }

  private onConnection(client: net.Socket): void {
    this.connections += 1;
    this.track(client);
    this.clients.add(client);
    client.once('close', () => this.clients.delete(client));
    const upstream = net.connect({ host: this.upstream.host ?? LOOPBACK, port: this.upstream.port });
    this.track(upstream);

    const state: ConnectionPolicyState = {
      lastPingAt: Number.NEGATIVE_INFINITY,
      strikes: 0,
      serverWroteSincePing: false,
      open: new Set(),
      maxStreamId: 0,
      goneAway: false,
    };
    const fromClient = new FrameReader(true);
    const fromServer = new FrameReader(false);

    client.on('data', (chunk: Buffer) => {
      if (state.goneAway) return;
      // Bytes go on unchanged, as they came; the frames are only read.
      writeWithBackpressure(client, upstream, chunk);
      for (const frame of fromClient.push(chunk)) {
        this.onClientFrame(frame, state);
        if (state.goneAway) {
          this.sendGoaway(client, upstream, state);
          return;
        }
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (state.goneAway) return;
      // Only whole frames are forwarded, so a GOAWAY can always go in between two of them.
      const frames = fromServer.push(chunk);
      for (const frame of frames) this.onServerFrame(frame, state);
      if (frames.length > 0) writeWithBackpressure(upstream, client, Buffer.concat(frames.map((f) => f.bytes)));
    });
    client.once('end', () => upstream.end());
    upstream.once('end', () => client.end());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => {
      if (!state.goneAway) client.destroy();
    });
  }

  private onClientFrame(frame: Frame, state: ConnectionPolicyState): void {
    switch (frame.type) {
      case FrameType.HEADERS:
        this.clientHeaders += 1;
        if (frame.streamId > state.maxStreamId) {
          state.maxStreamId = frame.streamId;
          state.open.add(frame.streamId);
        }
        break;
      case FrameType.DATA:
        this.clientData += 1;
        break;
      case FrameType.RST_STREAM:
        state.open.delete(frame.streamId);
        break;
      case FrameType.PING:
        if ((frame.flags & FrameFlag.ACK) === 0) this.onPing(state);
        break;
      default:
        break;
    }
  }

  private onServerFrame(frame: Frame, state: ConnectionPolicyState): void {
    if (frame.type === FrameType.HEADERS || frame.type === FrameType.DATA) {
      if (frame.type === FrameType.HEADERS) this.serverHeaders += 1;
      else this.serverData += 1;
      state.serverWroteSincePing = true;
      if ((frame.flags & FrameFlag.END_STREAM) !== 0) state.open.delete(frame.streamId);
    } else if (frame.type === FrameType.RST_STREAM) {
      state.open.delete(frame.streamId);
    }
  }

  // grpc-go http2Server.handlePing, policy part (the ACK itself comes from the real server).
  private onPing(state: ConnectionPolicyState): void {
    this.pings += 1;
    const now = Date.now();
    const last = state.lastPingAt;
    state.lastPingAt = now;
    if (state.serverWroteSincePing) {
      state.serverWroteSincePing = false;
      state.strikes = 0;
      return;
    }
    const idle = state.open.size === 0 && !this.policy.permitWithoutCalls;
    const minInterval = idle ? this.policy.idleMinPingIntervalMs : this.policy.minPingIntervalMs;
    if (now - last < minInterval) {
      state.strikes += 1;
      this.badPings += 1;
    }
    if (state.strikes > this.policy.maxPingStrikes) state.goneAway = true;
  }

  private sendGoaway(client: net.Socket, upstream: net.Socket, state: ConnectionPolicyState): void {
    this.goaways += 1;
    client.end(goawayFrame(state.maxStreamId, ENHANCE_YOUR_CALM, 'too_many_pings'));
    upstream.destroy();
  }
}

function writeWithBackpressure(from: net.Socket, to: net.Socket, chunk: Buffer): void {
  if (to.destroyed) return;
  if (!to.write(chunk) && !from.isPaused()) {
    from.pause();
    to.once('drain', () => from.resume());
  }
}
