import type { Metadata, StatusObject } from '@grpc/grpc-js';
import type { CallHooks } from './call-options.js';

// The caller's `onHeader` and `onTrailer` hooks, attached to each attempt that has them.

/** A grpc-js call's header and status events. */
interface HookedCall {
  on(event: 'metadata', listener: (metadata: Metadata) => void): unknown;
  on(event: 'status', listener: (status: StatusObject) => void): unknown;
}

/** Hands an attempt's headers and trailers to the caller's hooks. */
export function watchHooks(call: HookedCall, hooks: CallHooks): void {
  const { onHeader, onTrailer } = hooks;
  if (onHeader !== undefined) call.on('metadata', (metadata: Metadata) => safely('onHeader', onHeader, metadata));
  if (onTrailer !== undefined) call.on('status', (received: StatusObject) => safely('onTrailer', onTrailer, received.metadata));
}

/** Runs a caller's hook; one that throws must not break grpc-js's event dispatch or the call. */
function safely(name: string, hook: (metadata: Metadata) => void, metadata: Metadata): void {
  try {
    hook(metadata);
  } catch (error) {
    process.emitWarning(`a ${name} hook threw: ${String(error)}`, { code: 'RESILIENT_GRPC_HOOK_ERROR', type: 'ResilientGrpcWarning' });
  }
}
