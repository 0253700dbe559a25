/**
 * Stopping an instance: ACPI power-down over a negotiated QMP connection, then SIGTERM,
 * then SIGKILL, each with a deadline. Sockets, pid file and saved secrets go; the run disk
 * and serial log stay.
 *
 * @module
 */
import type { Settings } from "../config/settings.ts";
import { QmpClient } from "../protocol/mod.ts";
import { waitForExit } from "../qemu/process.ts";
import { clearRuntimeFiles, findInstance, lockInstance } from "./instance.ts";
import { writeRecord } from "./record.ts";
import { removeSecretsFile } from "./secrets_file.ts";

/** Options of {@linkcode stopInstance}. */
export interface StopOptions {
  settings: Settings;
  name: string;
  /** Skip the graceful power-down: SIGTERM at once. */
  force?: boolean;
  /** How long the guest may take to power off (default 30 s). */
  powerdownTimeoutMs?: number;
  /** The caller already holds the instance lock. */
  lockHeld?: boolean;
  onProgress?: (text: string) => void;
}

/** How the instance was stopped. */
export interface StopResult {
  wasRunning: boolean;
  method: "powerdown" | "sigterm" | "sigkill" | "already-exited" | "not-started";
  ms: number;
}

/** Stops instance `name` (a stopped or missing instance is fine: nothing to do). */
export async function stopInstance(options: StopOptions): Promise<StopResult> {
  const { settings, name } = options;
  const progress = options.onProgress ?? (() => {});
  const started = performance.now();
  using locked = options.lockHeld ? null : await lockInstance(settings, name);
  const { record, alive, paths } = locked?.found ?? await findInstance(settings, name);
  if (record === null) return { wasRunning: false, method: "not-started", ms: 0 };
  // A suspended instance has no process; stopping it must not forget its saved state.
  if (record.state === "suspended" && !alive) {
    return { wasRunning: false, method: "already-exited", ms: 0 };
  }
  let method: "powerdown" | "sigterm" | "sigkill" | "already-exited" = "already-exited";
  if (alive && record.pid) {
    const pid = record.pid;
    if (!options.force) {
      try {
        {
          await using qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 5000 });
          progress("asking the guest to power off (ACPI)");
          await qmp.systemPowerdown({ timeoutMs: 5000 });
        }
        if (await waitForExit(pid, options.powerdownTimeoutMs ?? 30_000)) method = "powerdown";
      } catch (err) {
        progress(`QMP unavailable (${(err as Error).message}); terminating QEMU`);
      }
    }
    if (method !== "powerdown") {
      progress("sending SIGTERM to QEMU");
      Deno.kill(pid, "SIGTERM");
      method = "sigterm";
      if (!(await waitForExit(pid, 10_000))) {
        progress("QEMU ignored SIGTERM; sending SIGKILL");
        Deno.kill(pid, "SIGKILL");
        method = "sigkill";
        await waitForExit(pid, 10_000);
      }
    }
  }
  await clearRuntimeFiles(paths);
  // The guest that knew the saved secrets is gone.
  await removeSecretsFile(paths.secretsFile);
  if (record.state !== "stopped" || alive) {
    record.state = "stopped";
    record.pid = null;
    record.stopped_at = new Date().toISOString();
    record.stop_method = method;
    await writeRecord(paths.record, record);
  }
  return { wasRunning: alive, method, ms: Math.round(performance.now() - started) };
}
