import type { Metadata, StatusObject } from '@grpc/grpc-js';
import type { CallOptions } from '../config/options.js';

/** The events of a grpc-js call that carry headers and trailers. */
export interface MetadataEvents {
  on(event: 'metadata', listener: (metadata: Metadata) => void): unknown;
  on(event: 'status', listener: (status: StatusObject) => void): unknown;
}

/** Hands an attempt's headers and trailers to the caller's `onHeader` / `onTrailer` hooks. */
export function watchMetadata(call: MetadataEvents, options: CallOptions | undefined): void {
  if (options === undefined) return;
  const { onHeader, onTrailer } = options;
  if (onHeader !== undefined) call.on('metadata', (metadata: Metadata) => safely('onHeader', onHeader, metadata));
  if (onTrailer !== undefined) call.on('status', (status: StatusObject) => safely('onTrailer', onTrailer, status.metadata));
}

/** Runs a caller's hook; one that throws must not break grpc-js's event dispatch or the call. */
function safely(name: string, hook: (metadata: Metadata) => void, metadata: Metadata): void {
  try {
    hook(metadata);
  } catch (error) {
    process.emitWarning(`a ${name} hook threw: ${String(error)}`, { code: 'RESILIENT_GRPC_HOOK_ERROR', type: 'ResilientGrpcWarning' });
  }
}
