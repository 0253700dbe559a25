/**
 * Connecting to a unix socket that QEMU or qemu-ga creates asynchronously: retry until
 * it exists and accepts, within a deadline.
 *
 * @module
 */
import { EmuError } from "../errors.ts";

/** Options of {@linkcode connectUnix}. */
export interface ConnectOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Connects to the unix socket at `path`, retrying while it does not exist yet or refuses
 * connections (the server is still starting), with a short backoff.
 *
 * @throws {EmuError} `socket_unavailable` when the deadline passes, `aborted` on abort.
 */
export async function connectUnix(
  path: string,
  options: ConnectOptions = {},
): Promise<Deno.UnixConn> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  let lastError = "";
  while (true) {
    throwIfAborted(options.signal);
    try {
      return await Deno.connect({ transport: "unix", path });
    } catch (err) {
      const retryable = err instanceof Deno.errors.NotFound ||
        err instanceof Deno.errors.ConnectionRefused;
      if (!retryable) {
        throw new EmuError(
          "socket_unavailable",
          `Cannot connect to ${path}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      lastError = err instanceof Deno.errors.NotFound ? "it does not exist" : "connection refused";
    }
    if (Date.now() + delay > deadline) {
      throw new EmuError(
        "socket_unavailable",
        `Cannot connect to ${path}: ${lastError} after ${(timeoutMs / 1000).toFixed(1)} s`,
        { hint: "Check that the process that serves it (QEMU or qemu-ga) is running." },
      );
    }
    await sleep(delay, options.signal);
    delay = Math.min(delay * 2, 100);
  }
}

/** Throws `aborted` (with the signal's reason as cause) if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new EmuError("aborted", "Cannot continue: the operation was cancelled", {
      cause: signal.reason,
    });
  }
}

/** Waits `ms`, or rejects with `aborted` as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal): EmuError {
  return new EmuError("aborted", "Cannot continue: the operation was cancelled", {
    cause: signal.reason,
  });
}
