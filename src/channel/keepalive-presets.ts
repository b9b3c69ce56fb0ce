import type { ChannelOptions } from '@grpc/grpc-js';
import { KEEPALIVE_DEFAULTS } from '../config/channel-options.js';

// Keepalive presets for users who know what their servers allow. The pool's default is
// `anyServer` (config/channel-options.ts KEEPALIVE_DEFAULTS): one ping every 6 minutes while calls
// are open, for connections that go silent under a stream (the stall detector, stall-detector.ts,
// finds dead connections under unary calls within seconds, without pings). Servers that follow
// gRFC A8 (grpc-go, grpc-java, C-core) allow at most one ping per 5 minutes by default while they
// have sent nothing, and answer the third ping too many with GOAWAY ENHANCE_YOUR_CALM
// "too_many_pings", failing the calls in flight on that connection (grpc-js then doubles that
// subchannel's keepalive time). A grpc-js server enforces nothing, which is why a test against one
// proves nothing here (test/helpers/a8-peer.ts enforces A8 in front of one).
//
// grpc-js pings every `grpc.keepalive_time_ms` while calls are active (whatever the traffic),
// and gives up on the connection when an answer takes longer than `grpc.keepalive_timeout_ms`.
// It ignores the C-core `grpc.http2.*` ping options that are often copied from other languages.
// None of these presets sets `grpc.keepalive_permit_without_calls`: against an A8 server, pings
// on an idle connection get GOAWAY within a few intervals.

/**
 * grpc-js keepalive channel options, for `channelOptions` (pool-wide or per client):
 *
 * - `anyServer` (the pool's default): one ping every 6 minutes while calls are active, 20 s to
 *   answer. Safe with the default enforcement of every A8 server (5 minutes), also under long
 *   quiet streams; finds a dead connection under a stream, which the stall detector does not
 *   watch, within 6 min 20 s instead of the kernel's 15 minutes.
 * - `tunedServer`: one ping every 10 s while calls are active, 5 s to answer: a dead connection
 *   is left within 15 s, streams included. Only for servers configured to allow it, e.g.
 *   grpc-go `keepalive.EnforcementPolicy{MinTime: 10 * time.Second}`, grpc-java
 *   `permitKeepAliveTime(10, TimeUnit.SECONDS)`, C-core
 *   `grpc.http2.min_ping_interval_without_data_ms` 10000, or a grpc-js / Node server. Against a
 *   server with the default 5-minute policy it fails every call that stays silent for 30 to 40 s.
 *
 * ```ts
 * new ChannelPool({ channelOptions: { ...KEEPALIVE_PRESETS.tunedServer } });
 * ```
 */
export const KEEPALIVE_PRESETS: Readonly<Record<'anyServer' | 'tunedServer', Readonly<ChannelOptions>>> = Object.freeze({
  anyServer: Object.freeze({ ...KEEPALIVE_DEFAULTS }),
  tunedServer: Object.freeze({ 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 }),
});
