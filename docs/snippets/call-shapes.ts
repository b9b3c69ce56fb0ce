// Prelude: clients of three made-up services, one per streaming shape, and their request sources.
import type {
  BidiStreamMethod as PreludeBidi,
  ClientStreamMethod as PreludeClientStream,
  ServerStreamMethod as PreludeServerStream,
} from 'resilient-grpc';
declare const feed: { Subscribe: PreludeServerStream<{ topic: string }, { last: boolean }> };
declare const uploads: { Upload: PreludeClientStream<{ chunk: Uint8Array }, { bytes: number }> };
declare const chat: { Converse: PreludeBidi<{ text: string }, { text: string }> };
declare function readChunks(file: string): AsyncIterable<{ chunk: Uint8Array }>;
declare const file: string;
declare function questions(): AsyncIterable<{ text: string }>;
