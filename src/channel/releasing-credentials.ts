import type { Socket } from 'node:net';
import { ChannelCredentials, type CallCredentials, type ChannelOptions, type experimental } from '@grpc/grpc-js';

// Channel credentials that release the sockets grpc-js forgets. A subchannel dropped while
// CONNECTING to a peer that accepted TCP but never answered (no HTTP/2 SETTINGS, no TLS bytes)
// keeps that socket open for as long as the peer does (grpc-node #2785): `Subchannel.unref()`
// destroys the subchannel's SecureConnector, but nobody stops the pending `http2.connect`. The
// connect watchdog closes such channels every `connectTimeoutMs`, so without this it would leave
// one socket per replacement (about 180 an hour per target at 20 s), and `close()` would leave the
// last one.
//
// The wrapper sits where grpc-js hands every dialled TCP socket to the credentials:
// `_createSecureConnector()` makes one SecureConnector per subchannel, whose `connect(socket)`
// sees the socket before the handshake and whose `destroy()` runs when the subchannel's last
// reference goes. On `destroy()`, a socket that has read no byte from the peer is destroyed;
// sockets that heard from the peer belong to transports grpc-js closes itself (a closed channel's
// running calls keep their connection). Destroying it makes grpc-js's pending handshake fail
// like any failed connection attempt.
//
// The same wrapper keeps the registry of live sockets that per-endpoint liveness uses
// (endpoint-liveness.ts): a channel that watches its endpoints sets LIVENESS_OPTION in its grpc-js
// options (grpc-js hands the options to `_createSecureConnector`), and each socket its
// subchannels dial is filed under that id and the socket's remote address, `host:port` as
// grpc-js writes an endpoint (`[::1]:port` for IPv6). `dropSockets(id, address)` destroys them:
// grpc-js sees the connection close, fails the calls on it UNAVAILABLE and reconnects. Sockets to
// other endpoints, and other channels' sockets to the same endpoint, are untouched.
//
// These underscore methods are grpc-js internals (1.14.x): everything about them is in this file,
// test/integration/watchdog-leak.test.ts pins the behaviour, and when they are missing the
// user's credentials are used unwrapped (`releasingCredentials` returns undefined) and the
// connect watchdog backs off instead (connect-watchdog.ts).

type Connector = experimental.SecureConnector;

/**
 * The channel option under which a channel's liveness id reaches the connectors of its
 * subchannels. grpc-js ignores options it does not know; the id only files the sockets.
 */
export const LIVENESS_OPTION = 'resilient_grpc.liveness_id';

/** Live sockets by liveness id, then by remote address (`host:port`, IPv6 in brackets). */
const sockets = new Map<number, Map<string, Set<Socket>>>();

/** The remote address of a connected socket as grpc-js writes an endpoint, or undefined. */
function remoteOf(socket: Socket): string | undefined {
  const { remoteAddress, remotePort } = socket;
  if (remoteAddress === undefined || remotePort === undefined) return undefined;
  return remoteAddress.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`;
}

/** Files a dialled socket under its channel's liveness id and remote address, until it closes. */
function file(id: number, socket: Socket): void {
  const address = remoteOf(socket);
  if (address === undefined) return;
  let byAddress = sockets.get(id);
  if (byAddress === undefined) sockets.set(id, (byAddress = new Map()));
  let set = byAddress.get(address);
  if (set === undefined) byAddress.set(address, (set = new Set()));
  set.add(socket);
  socket.once('close', () => {
    set.delete(socket);
    if (set.size === 0 && byAddress.get(address) === set) byAddress.delete(address);
    if (byAddress.size === 0 && sockets.get(id) === byAddress) sockets.delete(id);
  });
}

/** How many live sockets the channel with liveness id `id` has to `address`. */
export function liveSockets(id: number, address: string): number {
  return sockets.get(id)?.get(address)?.size ?? 0;
}

/**
 * Destroys every live socket of the channel with liveness id `id` to `address` (grpc-js then
 * fails the calls on them UNAVAILABLE and reconnects); returns how many it destroyed.
 */
export function dropSockets(id: number, address: string): number {
  const set = sockets.get(id)?.get(address);
  if (set === undefined) return 0;
  let dropped = 0;
  for (const socket of [...set]) {
    if (socket.destroyed) continue;
    socket.destroy();
    dropped++;
  }
  return dropped;
}
type GrpcUri = Parameters<ChannelCredentials['_createSecureConnector']>[0];

/** The wrapper of a user's credentials object. */
class ReleasingCredentials extends ChannelCredentials {
  constructor(readonly inner: ChannelCredentials) {
    super();
  }

  _isSecure(): boolean {
    return this.inner._isSecure();
  }

  // grpc-js's global subchannel pool shares a subchannel between channels whose credentials are
  // `_equals`: wrappers compare as their inner credentials do, so TLS sharing is unchanged (one
  // wrapper per user object, see `releasingCredentials`).
  _equals(other: ChannelCredentials): boolean {
    return other === this || (other instanceof ReleasingCredentials && this.inner._equals(other.inner));
  }

  _createSecureConnector(channelTarget: GrpcUri, options: ChannelOptions, callCredentials?: CallCredentials): Connector {
    const connector = this.inner._createSecureConnector(channelTarget, options, callCredentials);
    const dialled = new Set<Socket>();
    const livenessId = options[LIVENESS_OPTION];
    return {
      connect(socket: Socket) {
        dialled.add(socket);
        socket.once('close', () => dialled.delete(socket));
        if (typeof livenessId === 'number') file(livenessId, socket);
        return connector.connect(socket);
      },
      waitForReady: () => connector.waitForReady(),
      getCallCredentials: () => connector.getCallCredentials(),
      destroy() {
        for (const socket of dialled) {
          // No listener of ours reads the socket (node:http2 owns it): bytesRead says whether the peer ever spoke.
          if (socket.bytesRead === 0 && !socket.destroyed) socket.destroy();
        }
        dialled.clear();
        connector.destroy();
      },
    };
  }
}

/** One wrapper per user credentials object, so that equal objects stay equal to grpc-js. */
const wrappers = new WeakMap<ChannelCredentials, ChannelCredentials>();

/**
 * The credentials to hand grpc-js for `credentials`: a wrapper that releases unanswered sockets,
 * the same object for the same credentials every time; or undefined when this grpc-js does not
 * have the internals the wrapper relies on (then use `credentials` as they are).
 */
export function releasingCredentials(credentials: ChannelCredentials): ChannelCredentials | undefined {
  if (credentials instanceof ReleasingCredentials) return credentials;
  if (!(credentials instanceof ChannelCredentials) || typeof credentials._createSecureConnector !== 'function') return undefined;
  let wrapper = wrappers.get(credentials);
  if (wrapper === undefined) {
    wrapper = new ReleasingCredentials(credentials);
    wrappers.set(credentials, wrapper);
  }
  return wrapper;
}
