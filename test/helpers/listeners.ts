/** Wraps a signal's add/removeEventListener to count 'abort' listeners, as a user's wrapper would. */
export function countListeners(signal: AbortSignal): { added: number; removed: number; maxLive: number } {
  const counts = { added: 0, removed: 0, maxLive: 0 };
  const { addEventListener, removeEventListener } = signal;
  signal.addEventListener = function (...args: Parameters<AbortSignal['addEventListener']>) {
    counts.added++;
    counts.maxLive = Math.max(counts.maxLive, counts.added - counts.removed);
    return addEventListener.apply(this, args);
  };
  signal.removeEventListener = function (...args: Parameters<AbortSignal['removeEventListener']>) {
    counts.removed++;
    return removeEventListener.apply(this, args);
  };
  return counts;
}
