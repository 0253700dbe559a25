/**
 * Download progress for humans and machines (docs/architecture.md, «Downloads»): on a terminal one
 * line redrawn at most 10 times a second with bytes, rate and ETA; otherwise a plain line every 5
 * seconds; with `--json`, JSON events on stderr once a second; nothing with `--quiet`.
 *
 * @module
 */
import type { CliIo } from "./io.ts";
import type { OutputMode } from "./output.ts";

/** One progress sample. */
export interface ProgressSample {
  bytes: number;
  total: number | null;
  resumedFrom: number;
}

const MIB = 1024 * 1024;

/** `12.3 MiB`. */
export function formatBytes(bytes: number): string {
  return bytes >= 1024 * MIB
    ? `${(bytes / (1024 * MIB)).toFixed(2)} GiB`
    : `${(bytes / MIB).toFixed(1)} MiB`;
}

/** `1m05s`, `42s`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/**
 * The progress line: `  45.0 MiB / 266.0 MiB  17%  12.3 MiB/s  ETA 18s`.
 *
 * @example
 * ```ts
 * import { progressLine } from "./progress.ts";
 * const line = progressLine({ bytes: 50 * 2 ** 20, total: 100 * 2 ** 20, resumedFrom: 0 }, 10 * 2 ** 20);
 * if (line !== "  50.0 MiB / 100.0 MiB  50%  10.0 MiB/s  ETA 5s") throw new Error(line);
 * ```
 */
export function progressLine(p: ProgressSample, bytesPerSecond: number | null): string {
  const parts = [`  ${formatBytes(p.bytes)}${p.total ? ` / ${formatBytes(p.total)}` : ""}`];
  if (p.total) parts.push(`${Math.floor((p.bytes / p.total) * 100)}%`);
  if (bytesPerSecond !== null && bytesPerSecond > 0) {
    parts.push(`${formatBytes(bytesPerSecond)}/s`);
    if (p.total) parts.push(`ETA ${formatDuration((p.total - p.bytes) / bytesPerSecond)}`);
  }
  if (p.resumedFrom > 0) parts.push(`(resumed at ${formatBytes(p.resumedFrom)})`);
  return parts.join("  ");
}

/** Renders progress samples according to the output mode. */
export class ProgressReporter {
  readonly #io: CliIo;
  readonly #mode: OutputMode;
  readonly #now: () => number;
  readonly #window: { t: number; bytes: number }[] = [];
  #last = -Infinity;
  #drawn = false;

  constructor(io: CliIo, mode: OutputMode, now: () => number = () => performance.now()) {
    this.#io = io;
    this.#mode = mode;
    this.#now = now;
  }

  /** Bytes per second over the last 3 seconds, or null before there is a span to measure. */
  #rate(t: number, bytes: number): number | null {
    this.#window.push({ t, bytes });
    while (this.#window.length > 1 && t - this.#window[0].t > 3000) this.#window.shift();
    const first = this.#window[0];
    return t - first.t >= 200 ? ((bytes - first.bytes) * 1000) / (t - first.t) : null;
  }

  /** Records a sample and prints if it is time to. */
  update(p: ProgressSample): void {
    if (this.#mode.quiet) return;
    const t = this.#now();
    const rate = this.#rate(t, p.bytes);
    const finished = p.total !== null && p.bytes >= p.total;
    const interval = this.#mode.json ? 1000 : this.#io.stderrIsTerminal ? 100 : 5000;
    if (t - this.#last < interval && !finished) return;
    this.#last = t;
    if (this.#mode.json) {
      const eta = rate && p.total ? Math.round((p.total - p.bytes) / rate) : null;
      this.#io.stderr(
        `${
          JSON.stringify({
            event: "progress",
            bytes: p.bytes,
            total: p.total,
            bytes_per_second: rate === null ? null : Math.round(rate),
            eta_s: eta,
          })
        }\n`,
      );
    } else if (this.#io.stderrIsTerminal) {
      this.#io.stderr(`\r\x1b[K${progressLine(p, rate)}`);
      this.#drawn = true;
    } else {
      this.#io.stderr(`${progressLine(p, rate)}\n`);
    }
  }

  /** Ends a redrawn line. */
  done(): void {
    if (this.#drawn) this.#io.stderr("\n");
    this.#drawn = false;
  }
}
