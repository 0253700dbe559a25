/**
 * Connecting to a unix socket that QEMU or qemu-ga creates asynchronously: retry until
 * it exists and accepts, within a deadline.
 *
 * @module
 */
import { retryWithBackoff } from "../async.ts";
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
  let lastError = "";
  return await retryWithBackoff(
    async () => {
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
        lastError = err instanceof Deno.errors.NotFound
          ? "it does not exist"
          : "connection refused";
        return undefined;
      }
    },
    () =>
      new EmuError(
        "socket_unavailable",
        `Cannot connect to ${path}: ${lastError} after ${(timeoutMs / 1000).toFixed(1)} s`,
        { hint: "Check that the process that serves it (QEMU or qemu-ga) is running." },
      ),
    { delayMs: 5, maxDelayMs: 100, timeoutMs, signal: options.signal },
  );
}
