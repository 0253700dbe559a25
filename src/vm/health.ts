/**
 * Health checks: plain HTTP GETs to 127.0.0.1 host ports, each with its own timeout, and
 * a wait for all of them under an overall deadline that says what it is waiting for.
 *
 * @module
 */
import type { HealthCheck } from "../config/profile.ts";
import { EmuError } from "../errors.ts";
import { retryWithBackoff } from "../async.ts";

/** One check's outcome. */
export interface HealthResult {
  name: string;
  url: string;
  ok: boolean;
  /** HTTP status, if there was a response. */
  status: number | null;
  /** Why it failed: connection error, timeout, or unexpected status. */
  error: string | null;
  ms: number;
}

/** The URL a check requests. */
export function healthUrl(check: HealthCheck, hostPort: number): string {
  return `http://127.0.0.1:${hostPort}${check.path}`;
}

/** Runs one check once. */
export async function runHealthCheck(
  check: HealthCheck,
  hostPort: number,
  timeoutMs = 2000,
): Promise<HealthResult> {
  const url = healthUrl(check, hostPort);
  const started = performance.now();
  try {
    const response = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      redirect: "manual",
    });
    await response.body?.cancel();
    const ok = response.status === check.status;
    return {
      name: check.name,
      url,
      ok,
      status: response.status,
      error: ok ? null : `answered ${response.status}, expected ${check.status}`,
      ms: Math.round(performance.now() - started),
    };
  } catch (err) {
    const e = err as Error;
    const error = e.name === "TimeoutError"
      ? `no answer within ${timeoutMs} ms`
      : "connection refused or reset";
    return {
      name: check.name,
      url,
      ok: false,
      status: null,
      error,
      ms: Math.round(performance.now() - started),
    };
  }
}

/** Runs every check once. */
export function runHealthChecks(
  checks: readonly HealthCheck[],
  ports: Record<string, { host: number }>,
): Promise<HealthResult[]> {
  return Promise.all(checks.map((c) => runHealthCheck(c, ports[c.port].host)));
}

/** Options of {@linkcode waitHealthy}. */
export interface WaitHealthyOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called when what is being waited for changes. */
  onWaiting?: (text: string) => void;
}

/**
 * Polls until every check passes.
 *
 * @throws {EmuError} `health_timeout` naming the checks still failing and why.
 */
export async function waitHealthy(
  checks: readonly HealthCheck[],
  ports: Record<string, { host: number }>,
  options: WaitHealthyOptions,
): Promise<HealthResult[]> {
  let lastWaiting = "";
  let failing: HealthResult[] = [];
  return await retryWithBackoff(
    async () => {
      const results = await runHealthChecks(checks, ports);
      failing = results.filter((r) => !r.ok);
      if (failing.length === 0) return results;
      const waiting = `waiting for health check${failing.length > 1 ? "s" : ""} ${
        failing.map((r) => `${r.name} (GET ${r.url})`).join(", ")
      }`;
      if (waiting !== lastWaiting) options.onWaiting?.(waiting);
      lastWaiting = waiting;
      return undefined;
    },
    () =>
      new EmuError(
        "health_timeout",
        `Cannot get a healthy stack within ${(options.timeoutMs / 1000).toFixed(0)} s: ${
          failing.map((r) => `${r.name} (GET ${r.url}) ${r.error}`).join("; ")
        }`,
      ),
    { delayMs: 50, maxDelayMs: 500, timeoutMs: options.timeoutMs, signal: options.signal },
  );
}
