// Prelude: a pool made earlier in the application.
import type { ChannelPool as PreludeChannelPool } from 'resilient-grpc';
declare const pool: PreludeChannelPool;
