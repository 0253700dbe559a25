/**
 * Where a start's time goes: milliseconds per phase (launch, state load, agent, clock,
 * rotation, health …), for `emu start --json`'s `timings` and `-v`. Phases may overlap
 * (the clock is set while the rotate command runs), so they need not add up to the total.
 *
 * @module
 */

/** Milliseconds per phase, in the order the phases began, and `total`. */
export type Timings = Record<string, number>;

/**
 * Times the phases of one start from its origin (the moment QEMU is about to launch).
 *
 * @example
 * ```ts
 * import { PhaseTimer } from "./timings.ts";
 * const timer = new PhaseTimer(0);
 * timer.record("launch", 0, 12.4);
 * timer.record("launch", 20, 21);
 * timer.record("health", 21, 50.6);
 * const t = timer.timings(60);
 * if (JSON.stringify(t) !== '{"launch":13,"health":30,"total":60}') throw new Error(JSON.stringify(t));
 * ```
 */
export class PhaseTimer {
  /** `performance.now()` when the start began. */
  readonly origin: number;
  readonly #phases = new Map<string, number>();

  constructor(origin = performance.now()) {
    this.origin = origin;
  }

  /** Adds the span `from`–`to` (`performance.now()` values) to phase `name`. */
  record(name: string, from: number, to = performance.now()): void {
    this.#phases.set(name, (this.#phases.get(name) ?? 0) + (to - from));
  }

  /** Runs `fn` as (part of) phase `name`; the time counts whether it succeeds or not. */
  async time<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const from = performance.now();
    try {
      return await fn();
    } finally {
      this.record(name, from);
    }
  }

  /** Milliseconds since the origin. */
  elapsed(now = performance.now()): number {
    return now - this.origin;
  }

  /** The phases so far, rounded to whole milliseconds, and `total` (origin to `now`). */
  timings(now = performance.now()): Timings {
    const out: Timings = {};
    for (const [name, ms] of this.#phases) out[name] = Math.round(ms);
    out.total = Math.round(now - this.origin);
    return out;
  }
}

/**
 * One line for `-v`: each phase and its milliseconds.
 *
 * @example
 * ```ts
 * import { formatTimings } from "./timings.ts";
 * if (formatTimings({ launch: 21, load: 130, total: 420 }) !== "launch 21 ms · load 130 ms · total 420 ms") throw new Error();
 * ```
 */
export function formatTimings(timings: Timings): string {
  return Object.entries(timings).map(([name, ms]) => `${name} ${ms} ms`).join(" · ");
}
