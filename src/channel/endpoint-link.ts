import type { Metadata } from '@grpc/grpc-js';
import type { EndpointBook, EndpointTracker } from './endpoint-ejection.js';
import type { AttemptOutcome } from '../core/status-meaning.js';

// How an attempt and its pick meet. grpc-js gives the picker the attempt's metadata and nothing
// else of the call: the call layer puts a token in the attempt's request metadata (ATTEMPT_KEY);
// the picker takes it out again before the call goes on the wire, and fills the attempt's link
// with the endpoint, its books and the tracker. The attempt then tells the link what happened:
// heard from the endpoint (`attemptHeard`), judged (`judgeAttempt`, once: a stream at its first
// message), ended (`endAttempt`, at its status: its outstanding count is released then).

/** The metadata key of an attempt's token. */
export const ATTEMPT_KEY = 'x-resilient-grpc-attempt';

/** Where an attempt went, filled by the picker. */
export interface AttemptLink {
  readonly token: string;
  /** An endpoint to avoid if another can take the attempt: where the call's last attempt failed. */
  readonly avoid: string | undefined;
  address: string | undefined;
  tracker: EndpointTracker | undefined;
  /** The books its outstanding count is on, from its pick until it ends. */
  book: EndpointBook | undefined;
  /** When it was picked, epoch ms (the tracker's clock). */
  pickedAt: number;
  /** Its pick was its endpoint's probe, which has not settled yet. */
  probe: boolean;
}

/**
 * Shared through a global symbol, so that the ESM and the CJS builds of the package in one
 * process (each registering the policy; the last one wins in grpc-js) see the same links and trackers.
 */
export interface Registry {
  links: Map<string, AttemptLink>;
  trackers: Map<number, EndpointTracker>;
  nextToken: number;
  nextTracker: number;
  registered: boolean;
}
const REGISTRY_KEY = Symbol.for('resilient-grpc.endpoint-lb');
export const registry: Registry = ((globalThis as Record<symbol, unknown>)[REGISTRY_KEY] ??= {
  links: new Map(),
  trackers: new Map(),
  nextToken: 1,
  nextTracker: 1,
  registered: false,
}) as Registry;

/**
 * Starts the link of an attempt: the token goes into its request metadata, or later with
 * `tagAttempt` (an attempt with interceptors tags a copy innermost, so that no interceptor sees
 * the token). `avoid` is the endpoint where the call's last attempt failed: a retry goes
 * elsewhere when it can.
 */
export function linkAttempt(metadata: Metadata | undefined, avoid?: string): AttemptLink {
  const link: AttemptLink = {
    token: String(registry.nextToken++),
    avoid,
    address: undefined,
    tracker: undefined,
    book: undefined,
    pickedAt: 0,
    probe: false,
  };
  registry.links.set(link.token, link);
  if (metadata !== undefined) tagAttempt(metadata, link);
  return link;
}

/** Puts an attempt's token into request metadata, for the picker to find and take out. */
export function tagAttempt(metadata: Metadata, link: AttemptLink): void {
  metadata.set(ATTEMPT_KEY, link.token);
}

/** The live link whose token is in `metadata` (the picker's view). */
export function linkOf(metadata: Metadata): AttemptLink | undefined {
  const token = metadata.get(ATTEMPT_KEY)[0];
  return typeof token === 'string' ? registry.links.get(token) : undefined;
}

/**
 * A complete pick for the attempt: the link gets its endpoint, and the endpoint an outstanding
 * attempt (or its probe). grpc-js picks again, with the same metadata, when the subchannel it got
 * is no longer READY, and for its transparent retries: the earlier pick is released first.
 */
export function linkPicked(
  link: AttemptLink,
  tracker: EndpointTracker | undefined,
  book: EndpointBook | undefined,
  address: string,
  now: number,
): void {
  if (link.book !== undefined) unpick(link, false);
  link.address = address;
  link.tracker = tracker;
  link.pickedAt = now;
  if (book !== undefined && tracker !== undefined) {
    link.book = book;
    link.probe = tracker.picked(book, true);
  }
}

/** The endpoint of the attempt was heard from (response headers, or a status it sent). */
export function attemptHeard(link: AttemptLink): void {
  const { address, tracker } = link;
  if (address !== undefined && tracker !== undefined) tracker.heard(address, tracker.now());
}

/** The attempt is judged (once): books its outcome against its endpoint, and settles its probe. */
export function judgeAttempt(link: AttemptLink, outcome: AttemptOutcome): void {
  if (link.address !== undefined) link.tracker?.record(link.address, outcome, link.probe);
  link.probe = false;
}

/**
 * The attempt is over (its status arrived, or grpc-js threw): its outstanding count is released
 * and the link forgotten. `silentTimeout`: it failed by its deadline with nothing heard.
 */
export function endAttempt(link: AttemptLink, silentTimeout = false): void {
  registry.links.delete(link.token);
  unpick(link, silentTimeout);
}

function unpick(link: AttemptLink, silentTimeout: boolean): void {
  const { book, tracker } = link;
  if (book === undefined || tracker === undefined) return;
  link.book = undefined;
  if (link.probe) {
    link.probe = false;
    tracker.probeLost(book);
  }
  tracker.released(book, link.pickedAt, silentTimeout);
}
