import { experimental } from '@grpc/grpc-js';
import { admits, type EndpointBook, type EndpointTracker } from './endpoint-ejection.js';
import { ATTEMPT_KEY, linkOf, linkPicked } from './endpoint-link.js';

// The two pickers of the package's LB policy (endpoint-lb.ts). Both run once per attempt on
// grpc-js's pick path, so neither allocates there beyond what grpc-js's own Metadata.get does:
// no arrays, no closures, one clock read (the tracker's refresh).
//
// - LeastRequestPicker: the policy as a leaf policy (no loadBalancingConfig of the user's own).
//   gRFC A48 least-request with two choices: two distinct random READY endpoints, the one with
//   fewer attempts outstanding wins (a tie goes to the first drawn, itself random). A hung
//   endpoint keeps its attempts outstanding, so it loses every draw within milliseconds. Only
//   endpoints the books admit take part (see `admits`): not ejected, serving, or due for their
//   single probe; and not the endpoint the call's last attempt failed on, when another can take it.
// - ShunningPicker: over a user's own policy (the child), which spreads the calls: a pick that
//   lands on an endpoint the books do not admit asks the child again, going round once.

type Picker = experimental.Picker;
type PickArgs = experimental.PickArgs;
type PickResult = experimental.PickResult;

/** A READY endpoint the least-request picker can choose: its leaf's picker and its books. */
export interface PickEntry {
  /** The endpoint's key (its first address, `host:port`): how the books know it. */
  readonly address: string;
  readonly picker: Picker;
  /** undefined when the channel has no tracker (closed while grpc-js still picks). */
  readonly book: EndpointBook | undefined;
}

export class LeastRequestPicker implements Picker {
  constructor(
    readonly entries: readonly PickEntry[],
    readonly tracker: EndpointTracker | undefined,
  ) {}

  pick(args: PickArgs): PickResult {
    const link = linkOf(args.metadata);
    const tracker = this.tracker;
    const now = tracker === undefined ? 0 : tracker.refresh();
    const entry = this.#choose(tracker === undefined ? Math.random : tracker.random, link?.avoid, link !== undefined);
    const result = entry.picker.pick(args);
    // Only a complete pick takes the token out: a queued pick is picked again with the same metadata.
    if (result.pickResultType !== experimental.PickResultType.COMPLETE) return result;
    args.metadata.remove(ATTEMPT_KEY);
    if (link !== undefined) linkPicked(link, tracker, entry.book, entry.address, now);
    return result;
  }

  #choose(random: () => number, avoid: string | undefined, canProbe: boolean): PickEntry {
    const entries = this.entries;
    const n = entries.length;
    if (n === 1) return entries[0]!;
    const i = draw(random, n);
    let j = draw(random, n - 1);
    if (j >= i) j++;
    const a = entries[i]!;
    const b = entries[j]!;
    const okA = usable(a, avoid, canProbe);
    const okB = usable(b, avoid, canProbe);
    if (okA && okB) return load(b) < load(a) ? b : a;
    if (okA) return a;
    if (okB) return b;
    return this.#scan(i, avoid, canProbe);
  }

  /**
   * Neither draw can take it: the least loaded endpoint that can, from a random start; else one
   * the books admit though the call would avoid it; else, with every endpoint out, the least
   * loaded of all (calls then fail as they must, and the target's circuit opens).
   */
  #scan(start: number, avoid: string | undefined, canProbe: boolean): PickEntry {
    const entries = this.entries;
    const n = entries.length;
    let best: PickEntry | undefined;
    let admitted: PickEntry | undefined;
    let any: PickEntry | undefined;
    for (let k = 0; k < n; k++) {
      const e = entries[(start + k) % n]!;
      if (any === undefined || load(e) < load(any)) any = e;
      if (e.book !== undefined && !admits(e.book, canProbe)) continue;
      if (admitted === undefined || load(e) < load(admitted)) admitted = e;
      if (e.address !== avoid && (best === undefined || load(e) < load(best))) best = e;
    }
    return best ?? admitted ?? any!;
  }
}

/** A random integer in [0, n). */
function draw(random: () => number, n: number): number {
  // An injected source may return 1: clamped.
  return Math.min(n - 1, Math.max(0, Math.floor(random() * n)));
}

function usable(entry: PickEntry, avoid: string | undefined, canProbe: boolean): boolean {
  return entry.address !== avoid && (entry.book === undefined || admits(entry.book, canProbe));
}

function load(entry: PickEntry): number {
  return entry.book === undefined ? 0 : entry.book.outstanding;
}

export class ShunningPicker implements Picker {
  constructor(
    readonly child: Picker,
    readonly tracker: EndpointTracker | undefined,
    /** Endpoints in the child's rotation: how many picks it takes to go round once. */
    readonly endpoints: number,
  ) {}

  pick(args: PickArgs): PickResult {
    let result = this.child.pick(args);
    if (result.pickResultType !== experimental.PickResultType.COMPLETE || result.subchannel === null) return result;
    const link = linkOf(args.metadata);
    const tracker = this.tracker;
    const now = tracker === undefined ? 0 : tracker.refresh();
    const avoid = link?.avoid;
    const canProbe = link !== undefined;
    let address = result.subchannel.getAddress();
    let book = tracker?.bookOf(address);
    if (shunned(address, book, avoid, canProbe)) {
      // The child (round_robin) moves on at every pick: going round once finds another endpoint,
      // if any. When every endpoint is shunned, the first pick stands.
      for (let i = 1; i < this.endpoints; i++) {
        const next = this.child.pick(args);
        if (next.pickResultType !== experimental.PickResultType.COMPLETE || next.subchannel === null) break;
        const nextAddress = next.subchannel.getAddress();
        const nextBook = tracker?.bookOf(nextAddress);
        if (!shunned(nextAddress, nextBook, avoid, canProbe)) {
          result = next;
          address = nextAddress;
          book = nextBook;
          break;
        }
      }
    }
    args.metadata.remove(ATTEMPT_KEY);
    if (link !== undefined) linkPicked(link, tracker, book, address, now);
    return result;
  }
}

/** An endpoint the books do not admit, or the one a retry should avoid. */
function shunned(address: string, book: EndpointBook | undefined, avoid: string | undefined, canProbe: boolean): boolean {
  return address === avoid || (book !== undefined && !admits(book, canProbe));
}
