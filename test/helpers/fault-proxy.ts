// A TCP proxy on 127.0.0.1 that sits between a gRPC client and a test server and injects
// network faults, switchable while a test runs:
//
//   'pass'       forward bytes both ways
//   'latency'    forward, delaying every chunk by latencyMs (order preserved). Applies to
//                chunks arriving while the mode is on, on new and established connections.
//   'blackhole'  accept new connections but never forward nor answer; keep them open
//   'reset'      accept new connections, then abort them with a TCP RST
//   'refuse'     stop listening, so connects fail with ECONNREFUSED; leaving the mode
//                listens again on the same port
//
// Except for latency, a mode decides the fate of connections accepted while it is on:
// established connections keep forwarding. Call cutAll() to force them through a new mode.
//
// freezeEstablished() makes the connections open at that moment die silently: from then on
// they drop every byte both ways and pass on no FIN and no RST (a dropped NAT or conntrack
// entry, a frozen VM, a partition), while connections accepted later follow the mode. A
// frozen connection is torn down only when its client side closes, or by cutAll()/close().
//
// Counters, to assert on what really crossed: bytesForwarded and bytesDropped (both directions,
// bridged connections), and with { countStreams: true } `streams`, the HTTP/2 streams clients
// opened through the proxy (HEADERS frames client to server, whether forwarded or dropped by a
// freeze): the attempts sent to the endpoint behind it, even those that never reached it.
import { once } from 'node:events';
import net from 'node:net';
import { FrameReader, FrameType } from './h2-frames.js';
import { startTestServer } from './test-server.js';

export type FaultMode = 'pass' | 'latency' | 'blackhole' | 'reset' | 'refuse';

export interface FaultProxyOptions {
  /** Initial mode; 'pass' by default. */
  mode?: FaultMode;
  /** Delay added per chunk and direction in 'latency' mode; 100 ms by default. */
  latencyMs?: number;
  /**
   * Blackhole the first n accepted connections whatever the mode: a peer that accepts TCP but
   * never sends HTTP/2 SETTINGS, to exercise connect watchdogs. Later ones follow the mode.
   */
  blackholeFirst?: number;
  /** Parse the client-to-server bytes of bridged connections to count `streams`; off by default. */
  countStreams?: boolean;
}

export interface FaultProxy {
  readonly port: number;
  /** "127.0.0.1:PORT", to use as a gRPC target. */
  readonly address: string;
  readonly mode: FaultMode;
  /** Connections accepted so far, whatever happened to them. */
  readonly accepted: number;
  /** Client connections currently open. */
  readonly live: number;
  /** Chunks held back by 'latency' mode so far, both directions. */
  readonly delayedChunks: number;
  /** Resolves once the mode is in force (for 'refuse' and back: once the port is closed/open). */
  setMode(mode: FaultMode, options?: { latencyMs?: number }): Promise<void>;
  /** Destroys every open connection, both sides, with a RST: a mid-stream network cut. */
  cutAll(): void;
  /**
   * Silently kills the bridged connections open now: their bytes are dropped both ways, no
   * FIN or RST reaches either side. Later connections are not affected. Returns how many
   * connections it froze.
   */
  freezeEstablished(): number;
  /** Connections frozen so far and still open. */
  readonly frozen: number;
  /** Bytes written on to the other side, both directions, since the proxy started. */
  readonly bytesForwarded: number;
  /** Bytes received and thrown away because their connection was frozen, both directions. */
  readonly bytesDropped: number;
  /**
   * HEADERS frames clients sent on bridged connections (forwarded or dropped): the gRPC calls
   * (attempts) they started through the proxy, a unary call being one stream with one HEADERS
   * frame from the client. Counted only with { countStreams: true }; 0 otherwise.
   */
  readonly streams: number;
  /** Destroys everything; resolves when no socket, server or timer is left. Idempotent. */
  close(): Promise<void>;
}

interface Upstream {
  host?: string;
  port: number;
}

const LOOPBACK = '127.0.0.1';
const DEFAULT_LATENCY_MS = 100;

export async function startFaultProxy(upstream: Upstream, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const proxy = new FaultProxyImpl(upstream, options);
  await proxy.start(options.mode ?? 'pass');
  return proxy;
}

class FaultProxyImpl implements FaultProxy {
  port = 0;
  mode: FaultMode = 'pass';
  accepted = 0;
  delayedChunks = 0;
  streams = 0;

  private latencyMs: number;
  private readonly blackholeFirst: number;
  private readonly countStreams: boolean;
  private readonly counters: ByteCounters = { forwarded: 0, dropped: 0 };
  private listener: net.Server | undefined;
  // Every socket we own (client and upstream sides), and the client sides alone for `live`.
  private readonly sockets = new Set<net.Socket>();
  private readonly clients = new Set<net.Socket>();
  // Bridged connections, each with the flag freezeEstablished() sets.
  private readonly bridges = new Set<Bridge>();
  // Servers whose 'close' has not fired yet; a server closed for 'refuse' waits for its
  // remaining connections before it does.
  private readonly servers = new Set<net.Server>();
  // Mode changes run one after another so 'refuse' and back cannot interleave listen/close.
  private transition: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly upstream: Upstream,
    options: FaultProxyOptions,
  ) {
    this.latencyMs = options.latencyMs ?? DEFAULT_LATENCY_MS;
    this.blackholeFirst = options.blackholeFirst ?? 0;
    this.countStreams = options.countStreams === true;
  }

  get bytesForwarded(): number {
    return this.counters.forwarded;
  }

  get bytesDropped(): number {
    return this.counters.dropped;
  }

  get address(): string {
    return `${LOOPBACK}:${this.port}`;
  }

  get live(): number {
    return this.clients.size;
  }

  async start(mode: FaultMode): Promise<void> {
    // Listen even when starting in 'refuse', to learn the port we will later re-open.
    await this.listen(0);
    await this.setMode(mode);
  }

  setMode(mode: FaultMode, options: { latencyMs?: number } = {}): Promise<void> {
    if (options.latencyMs !== undefined) this.latencyMs = options.latencyMs;
    const applied = this.transition.then(() => this.applyMode(mode));
    // A failed change (say the port was taken meanwhile) must not jam later ones nor close().
    this.transition = applied.catch(() => {});
    return applied;
  }

  cutAll(): void {
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  freezeEstablished(): number {
    let count = 0;
    for (const bridge of this.bridges) {
      if (!bridge.frozen) {
        bridge.frozen = true;
        count += 1;
      }
    }
    return count;
  }

  get frozen(): number {
    let count = 0;
    for (const bridge of this.bridges) if (bridge.frozen) count += 1;
    return count;
  }

  close(): Promise<void> {
    this.closing ??= this.transition.then(() => this.shutdown());
    return this.closing;
  }

  private async applyMode(mode: FaultMode): Promise<void> {
    if (this.closing) return;
    this.mode = mode;
    if (mode === 'refuse') this.stopListening();
    else if (!this.listener) await this.listen(this.port);
  }

  private async shutdown(): Promise<void> {
    this.stopListening();
    const closed = [...this.sockets, ...this.servers].map((handle) => once(handle, 'close'));
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closed);
  }

  private async listen(port: number): Promise<void> {
    const server = net.createServer((socket) => this.onConnection(socket));
    this.servers.add(server);
    server.once('close', () => this.servers.delete(server));
    server.listen({ port, host: LOOPBACK });
    try {
      await once(server, 'listening');
    } catch (error) {
      this.servers.delete(server);
      throw error;
    }
    this.listener = server;
    const address = server.address() as net.AddressInfo;
    this.port = address.port;
  }

  // net.Server#close() releases the port at once; its 'close' event waits for the
  // connections it accepted, which keep running.
  private stopListening(): void {
    this.listener?.close();
    this.listener = undefined;
  }

  private onConnection(client: net.Socket): void {
    this.accepted += 1;
    this.track(client);
    this.clients.add(client);
    client.once('close', () => this.clients.delete(client));

    if (this.accepted <= this.blackholeFirst || this.mode === 'blackhole') blackhole(client);
    else if (this.mode === 'reset') client.resetAndDestroy();
    else this.bridge(client);
  }

  private bridge(client: net.Socket): void {
    const upstream = net.connect({ host: this.upstream.host ?? LOOPBACK, port: this.upstream.port });
    this.track(upstream);
    const bridge: Bridge = { frozen: false };
    this.bridges.add(bridge);
    client.once('close', () => this.bridges.delete(bridge));
    const delay = (): number => (this.mode === 'latency' ? this.latencyMs : 0);
    const delayed = (): void => {
      this.delayedChunks++;
    };
    forward(client, upstream, delay, delayed, bridge, true, this.counters);
    forward(upstream, client, delay, delayed, bridge, false, this.counters);
    if (this.countStreams) {
      const reader = new FrameReader(true);
      client.on('data', (chunk: Buffer) => {
        for (const frame of reader.push(chunk)) if (frame.type === FrameType.HEADERS) this.streams++;
      });
    }
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    // Resets and refused upstream connects are the point of this proxy: they surface as
    // 'close' (handled by forward()), not as unhandled 'error' events.
    socket.on('error', () => {});
  }
}

interface Bridge {
  frozen: boolean;
}

interface ByteCounters {
  forwarded: number;
  dropped: number;
}

/** Reads and discards, so we still notice the peer leaving, and never answers. */
function blackhole(socket: net.Socket): void {
  socket.resume();
}

/**
 * Copies `from` to `to`, holding each chunk back by delayMs() as measured when it arrives (and
 * telling onDelayed) and never letting a chunk overtake an earlier one. A clean end is passed on
 * after the queued chunks; an abrupt close (reset, error, cut) destroys the other side at once.
 * Once the bridge is frozen, chunks and ends are dropped; only the client leaving still tears
 * down the upstream side (fromClient), so nothing ever reaches the client.
 */
function forward(
  from: net.Socket,
  to: net.Socket,
  delayMs: () => number,
  onDelayed: () => void,
  bridge: Bridge,
  fromClient: boolean,
  counters: ByteCounters,
): void {
  const queue: Array<{ chunk: Buffer; at: number }> = [];
  let timer: NodeJS.Timeout | undefined;
  let ended = false;

  const write = (chunk: Buffer): void => {
    if (bridge.frozen) {
      counters.dropped += chunk.length;
      return;
    }
    if (to.destroyed) return;
    counters.forwarded += chunk.length;
    // Backpressure: stop reading until the slow side has flushed.
    if (!to.write(chunk) && !from.isPaused()) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  };

  const flush = (): void => {
    timer = undefined;
    const now = Date.now();
    for (let next = queue[0]; next !== undefined && next.at <= now; next = queue[0]) {
      queue.shift();
      write(next.chunk);
    }
    const pending = queue[0];
    if (pending !== undefined) timer = setTimeout(flush, pending.at - now);
    else if (ended && !bridge.frozen) to.end();
  };

  from.on('data', (chunk: Buffer) => {
    if (bridge.frozen) {
      for (const held of queue) counters.dropped += held.chunk.length;
      queue.length = 0;
      counters.dropped += chunk.length;
      return;
    }
    const delay = delayMs();
    if (delay <= 0 && queue.length === 0) {
      write(chunk);
      return;
    }
    if (delay > 0) onDelayed();
    const last = queue.at(-1)?.at ?? 0;
    queue.push({ chunk, at: Math.max(Date.now() + delay, last) });
    timer ??= setTimeout(flush, delay);
  });
  from.once('end', () => {
    if (bridge.frozen) return;
    ended = true;
    if (queue.length === 0) to.end();
  });
  from.once('close', () => {
    if (bridge.frozen ? fromClient : !from.readableEnded) to.destroy();
  });
  to.once('close', () => {
    clearTimeout(timer);
    queue.length = 0;
    // Nothing can be delivered any more: drain what `from` sends so it can see its own end.
    from.resume();
  });
}

/**
 * A test server (startTestServer) behind a fault proxy of its own, the proxy returned. Both are
 * stopped by the functions pushed onto `cleanups` (the caller runs them, in reverse, after each test).
 */
export async function startProxiedServer(cleanups: Array<() => Promise<unknown>>): Promise<FaultProxy> {
  const server = await startTestServer();
  cleanups.push(() => server.kill());
  const proxy = await startFaultProxy({ port: server.port });
  cleanups.push(() => proxy.close());
  return proxy;
}
