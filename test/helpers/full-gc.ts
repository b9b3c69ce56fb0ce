// Full GCs from a test, and whether they collected an object: `--expose-gc` turned on at run
// time, `gc` taken from a fresh context (vitest's workers start without the flag).
import { setImmediate as tick } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Whether the object behind `ref` is gone after three full GCs. A WeakRef holds its target until
 * the current job ends, so each GC runs in a later macrotask, and the answer is read in one more.
 */
export async function collectedByFullGcs(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    await tick();
    gc();
  }
  await tick();
  return ref.deref() === undefined;
}
