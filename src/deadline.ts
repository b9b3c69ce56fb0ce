import { optionError } from './errors.js';

/**
 * The longest delay a Node timer accepts (about 24.8 days); longer ones fire at once. grpc-js
 * clamps its own timers to it, and so do we: every duration option is capped here.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Absolute deadlines below this (2001-09-09, epoch ms 1e12) are taken for a relative duration
 * passed by mistake: grpc-js reads `deadline: 5000` as 5 s after 1970, which expires at once.
 */
const PLAUSIBLE_EPOCH_MS = 1e12;

/** Validates a relative duration option in milliseconds: finite, > 0, at most {@link MAX_TIMER_MS}. */
export function checkDurationMs(option: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw optionError('type', option, 'a number of milliseconds', value);
  }
  if (!(value > 0) || value > MAX_TIMER_MS) {
    throw optionError('range', option, `a finite number of milliseconds > 0 and <= ${MAX_TIMER_MS}`, value);
  }
  return value;
}

/**
 * Validates an absolute deadline (`Date`, or a number of epoch milliseconds as in grpc-js) and
 * returns it as epoch ms. Rejects invalid dates, non-finite numbers, numbers that look like a
 * relative duration, and deadlines that are already in the past.
 */
export function checkAbsoluteDeadline(option: string, value: unknown, now: number): number {
  let epochMs: number;
  if (value instanceof Date) {
    epochMs = value.getTime();
    if (Number.isNaN(epochMs)) throw optionError('type', option, 'a valid Date', value);
  } else if (typeof value === 'number' && !Number.isNaN(value)) {
    if (!Number.isFinite(value)) {
      throw optionError('range', option, 'a finite epoch-milliseconds timestamp (a call must not wait for ever)', value);
    }
    if (value < PLAUSIBLE_EPOCH_MS) {
      throw optionError(
        'range',
        option,
        `an absolute epoch-milliseconds timestamp, as in grpc-js (for a relative timeout pass deadlineMs: ${value})`,
        value,
      );
    }
    epochMs = value;
  } else {
    throw optionError('type', option, 'a Date or a number of epoch milliseconds', value);
  }
  if (epochMs <= now) {
    throw optionError('range', option, `in the future (it is ${now - epochMs} ms in the past)`, value);
  }
  if (epochMs - now > MAX_TIMER_MS) {
    throw optionError('range', option, `at most ${MAX_TIMER_MS} ms from now`, value);
  }
  return epochMs;
}

/** A grpc-js deadline (`Date | number`, possibly `Infinity`) as epoch ms. */
export function deadlineToEpochMs(deadline: Date | number): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}
