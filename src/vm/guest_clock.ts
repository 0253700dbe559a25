/**
 * Setting a resumed guest's clock (docs/architecture.md, «Start: resume and rotation»): the
 * guest wakes with the time of its capture. `date -u -s @SECONDS.NANOS` run by the agent
 * sets it in tens of milliseconds; the agent's own `guest-set-time` also writes the
 * hardware clock, and `hwclock` waits for the RTC's next second (0.2–1.5 s measured under
 * TCG), so it is only the fallback for a guest whose `date` does not take that form
 * (BusyBox rejects the fraction).
 *
 * @module
 */
import { CommandError } from "../errors.ts";
import type { QgaClient } from "../protocol/mod.ts";

/**
 * The `@SECONDS.NANOS` argument of `date -s` for `nanoseconds` since the epoch.
 *
 * @example
 * ```ts
 * import { dateArgument } from "./guest_clock.ts";
 * if (dateArgument(1_733_100_000_012_345_678n) !== "@1733100000.012345678") throw new Error();
 * ```
 */
export function dateArgument(nanoseconds: bigint): string {
  const seconds = nanoseconds / 1_000_000_000n;
  const fraction = nanoseconds % 1_000_000_000n;
  return `@${seconds}.${fraction.toString().padStart(9, "0")}`;
}

/** The host's time now, in nanoseconds since the epoch (to the millisecond). */
export function hostNowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** How the guest clock was set. */
export type ClockMethod = "date" | "guest-set-time";

/**
 * Sets the guest's system clock to the host's time: `date -u -s`, else the agent's
 * `guest-set-time` (straight away when `method` says the guest's `date` cannot). A guest
 * without `hwclock` still has the right time after the latter (the agent sets the system
 * clock first), so only that step may fail quietly. Returns the method that worked.
 */
export async function setGuestClock(
  qga: QgaClient,
  options: { timeoutMs: number; signal?: AbortSignal; method?: ClockMethod },
): Promise<ClockMethod> {
  if (options.method !== "guest-set-time") {
    if (await setByDate(qga, options)) return "date";
  }
  try {
    await qga.setTime(hostNowNs(), { timeoutMs: options.timeoutMs, signal: options.signal });
  } catch (err) {
    if (!(err instanceof CommandError && /hardware clock/.test(err.description))) throw err;
  }
  return "guest-set-time";
}

/** `date -u -s @SECONDS.NANOS` in the guest; whether it worked. */
async function setByDate(
  qga: QgaClient,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<boolean> {
  try {
    const result = await qga.exec("date", {
      args: ["-u", "-s", dateArgument(hostNowNs())],
      timeoutMs: options.timeoutMs,
      signal: options.signal,
    });
    return result.exitCode === 0;
  } catch (err) {
    // No `date` in the agent's PATH: guest-exec itself fails; anything else is real.
    if (!(err instanceof CommandError)) throw err;
    return false;
  }
}
