import type { PolicyOptions, ResolvedPolicy } from './options.js';
import { mergeSwitchable } from './with-defined.js';

/**
 * Applies one level of the cascading policy (pool, client, method, call) over the resolved one
 * above it, field by field: an unset field keeps the level above.
 */
export function mergePolicy(base: ResolvedPolicy, over: PolicyOptions): ResolvedPolicy {
  return {
    deadlineMs: over.deadlineMs ?? base.deadlineMs,
    idempotent: over.idempotent ?? base.idempotent,
    retry: mergeSwitchable(base.retry, over.retry),
  };
}
