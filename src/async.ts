/**
 * The small vocabulary of waiting: sleeping with an `AbortSignal`, the one `aborted`
 * error, and retrying with backoff until a deadline. Every wait in emu has a deadline and
 * a signal.
 *
 * @module
 */
import { EmuError } from "./errors.ts";

/**
 * The error for a cancelled operation: `aborted`, "Cannot <action>: it was cancelled"
 * (and `detail`, e.g. what was kept), with the signal's reason as its cause.
 *
 * @example
 * ```ts
 * import { abortedError } from "./async.ts";
 * const err = abortedError(AbortSignal.abort(), "finish the download", "the part file is kept");
 * if (err.code !== "aborted" || err.message !== "Cannot finish the download: it was cancelled; the part file is kept") throw new Error();
 * ```
 */
export function abortedError(
  signal: AbortSignal | undefined,
  action = "continue",
  detail?: string,
): EmuError {
  return new EmuError(
    "aborted",
    `Cannot ${action}: it was cancelled${detail ? `; ${detail}` : ""}`,
    { cause: signal?.reason },
  );
}

/** Throws {@linkcode abortedError} if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, action?: string): void {
  if (signal?.aborted) throw abortedError(signal, action);
}

/**
 * Waits `ms`, or rejects with {@linkcode abortedError} as soon as `signal` aborts.
 *
 * @example
 * ```ts
 * import { sleep } from "./async.ts";
 * await sleep(1);
 * await sleep(1000, AbortSignal.abort()).then(() => { throw new Error("slept"); }, () => {});
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Options of {@linkcode retryWithBackoff}. */
export interface BackoffOptions {
  /** First delay between attempts (doubled after each, up to `maxDelayMs`). */
  delayMs: number;
  maxDelayMs: number;
  /** Give up once the next attempt would start after this long. */
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Ends a sleep early once it settles (an event that usually answers before the next
   * poll would): from then on the attempts follow each other without a pause.
   */
  wake?: Promise<unknown>;
}

/**
 * Calls `attempt` until it returns a value other than `undefined`, sleeping between
 * attempts with exponential backoff; returns `onTimeout()`'s error as a rejection when
 * the deadline passes. An error thrown by `attempt` ends the retries at once.
 *
 * @example
 * ```ts
 * import { retryWithBackoff } from "./async.ts";
 * let n = 0;
 * const v = await retryWithBackoff(() => ++n === 3 ? "ready" : undefined, () => new Error("late"), {
 *   delayMs: 1, maxDelayMs: 4, timeoutMs: 1000 });
 * if (v !== "ready" || n !== 3) throw new Error();
 * ```
 */
export async function retryWithBackoff<T>(
  attempt: () => T | undefined | Promise<T | undefined>,
  onTimeout: () => Error,
  options: BackoffOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let delay = options.delayMs;
  while (true) {
    throwIfAborted(options.signal);
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() + delay > deadline) throw onTimeout();
    await (options.wake
      ? Promise.race([sleep(delay, options.signal), options.wake.then(() => {}, () => {})])
      : sleep(delay, options.signal));
    delay = Math.min(delay * 2, options.maxDelayMs);
  }
}

/** Options of {@linkcode withDeadline}. */
export interface DeadlineOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** The error when the time is up. */
  onTimeout: () => Error;
  /** What is being done, for the `aborted` error ("run query-status"). */
  action: string;
}

/**
 * A promise settled by `start` through the `resolve`/`reject` it is given, or rejected
 * with `onTimeout()` after `timeoutMs`, or with {@linkcode abortedError} when `signal`
 * aborts — whichever comes first. The cleanup `start` returns runs exactly once, however
 * it ends (one place for the timer, the abort listener and the caller's bookkeeping).
 *
 * @example
 * ```ts
 * import { withDeadline } from "./async.ts";
 * const v = await withDeadline<number>((resolve) => {
 *   const t = setTimeout(() => resolve(7), 1);
 *   return () => clearTimeout(t);
 * }, { timeoutMs: 1000, onTimeout: () => new Error("late"), action: "wait" });
 * if (v !== 7) throw new Error();
 * ```
 */
export function withDeadline<T>(
  start: (resolve: (value: T) => void, reject: (err: unknown) => void) => () => void,
  options: DeadlineOptions,
): Promise<T> {
  if (options.signal?.aborted) {
    return Promise.reject(abortedError(options.signal, options.action));
  }
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let cleanup: () => void = () => {};
    const finish = (settle: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      cleanup();
      settle();
    };
    const onAbort = () => finish(() => reject(abortedError(options.signal, options.action)));
    const timer = setTimeout(() => finish(() => reject(options.onTimeout())), options.timeoutMs);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    cleanup = start(
      (value) => finish(() => resolve(value)),
      (err) => finish(() => reject(err)),
    );
    if (done) cleanup();
  });
}
