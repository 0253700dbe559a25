/**
 * Launch QEMU for a spec and wait until the guest agent answers and every health check
 * passes — the common part of a cold boot and of a capture.
 *
 * @module
 */
import type { HealthCheck } from "../config/profile.ts";
import { QgaClient } from "../protocol/mod.ts";
import { buildArgv, type VmSpec } from "../qemu/argv.ts";
import { EmuError } from "../errors.ts";
import { launchQemu, waitForExit } from "../qemu/process.ts";
import { type HealthResult, waitHealthy } from "./health.ts";

/** Options of {@linkcode waitReady}. */
export interface ReadyOptions {
  qgaSocket: string;
  checks: readonly HealthCheck[];
  ports: Record<string, { host: number }>;
  timeoutMs: number;
  signal?: AbortSignal;
  onProgress?: (text: string) => void;
}

/** Waits for the guest agent, then for every health check. */
export async function waitReady(options: ReadyOptions): Promise<HealthResult[]> {
  const started = Date.now();
  options.onProgress?.("waiting for the guest agent");
  // Connecting is the check: the agent answered guest-sync-delimited.
  await (await QgaClient.connect(options.qgaSocket, {
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  })).close();
  return await waitHealthy(options.checks, options.ports, {
    timeoutMs: Math.max(1000, options.timeoutMs - (Date.now() - started)),
    signal: options.signal,
    onWaiting: options.onProgress,
  });
}

/**
 * Launches QEMU (daemonized) for `spec`; returns its pid. A QEMU that fails to start
 * leaves nothing behind (its sockets and pid file are removed); a host port another
 * process took after emu checked it (QEMU cannot set up the forward) is `port_in_use`.
 */
export async function launch(qemu: string, spec: VmSpec): Promise<number> {
  try {
    return await launchQemu(qemu, buildArgv(spec), { pidFile: spec.pidFile! });
  } catch (err) {
    for (const path of [spec.qmpSocket, spec.qgaSocket, spec.pidFile]) {
      if (path) await Deno.remove(path).catch(() => {});
    }
    const port = err instanceof EmuError
      ? /Could not set up host forwarding rule '[^']*?:(\d+)-/.exec(err.message)?.[1]
      : undefined;
    if (port === undefined) throw err;
    throw new EmuError(
      "port_in_use",
      `Cannot forward port 127.0.0.1:${port}: another process took it while QEMU was starting`,
      {
        hint:
          "Run the command again once that process has let it go, or pick another host port (--port NAME=PORT).",
        cause: err,
      },
    );
  }
}

/**
 * When QEMU `pid` is gone (or goes within half a second: a killed QEMU takes a moment to
 * exit), the error to report instead of `err`, which is then only the closed socket it
 * left: QEMU exited under emu — killed, out of memory, crashed. `null` while it runs.
 */
export async function qemuGoneError(
  pid: number,
  action: string,
  err: unknown,
): Promise<EmuError | null> {
  if (pid <= 0 || !(await waitForExit(pid, 500))) return null;
  return new EmuError(
    "qemu_failed",
    `Cannot ${action}: QEMU (pid ${pid}) exited while emu was working with it`,
    {
      hint:
        "Something stopped it (the OOM killer, a kill, a crash: see `dmesg` and the serial console). Run the command again.",
      cause: err,
    },
  );
}
