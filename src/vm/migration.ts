/**
 * Saving and loading VM state through a file with mapped-ram + multifd (docs/architecture.md,
 * «Capture», «Start: resume and rotation»): the same capabilities on both sides, completion seen
 * through MIGRATION events with query-migrate polling as a fallback.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { QmpClient } from "../protocol/mod.ts";
import { waitForExit } from "../qemu/process.ts";
import { retryWithBackoff } from "../async.ts";
import type { PhaseTimer } from "./timings.ts";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** multifd channels for a guest: one per vCPU, at most 4 (both sides must agree). */
export function migrationChannels(cpus: number): number {
  return Math.max(1, Math.min(cpus, 4));
}

/**
 * Capabilities and parameters both sides must agree on. A state whose RAM is in its own
 * file (`ramInFile`: the guest ran with RAM shared with a file, see `VmSpec.ramFile`)
 * leaves that RAM out (`x-ignore-shared`) and holds only device state; QEMU 10 refuses
 * that with mapped-ram, and a few hundred KiB need no multifd. Every other state is
 * saved whole with mapped-ram (one fixed place per page, written by `channels` threads).
 */
async function configure(
  qmp: QmpClient,
  channels: number,
  outgoing: boolean,
  ramInFile: boolean,
): Promise<void> {
  if (ramInFile) {
    await qmp.migrateSetCapabilities({
      "x-ignore-shared": true,
      "mapped-ram": false,
      multifd: false,
      events: true,
    });
    if (outgoing) await qmp.migrateSetParameters({ "max-bandwidth": 0 });
    return;
  }
  // x-ignore-shared off explicitly: a QEMU resumed from a snapshot still has it on from
  // that load, and a state saved with it on loads only where it is on too.
  await qmp.migrateSetCapabilities({
    "x-ignore-shared": false,
    "mapped-ram": true,
    multifd: true,
    events: true,
  });
  const params: Record<string, unknown> = { "multifd-channels": channels };
  if (outgoing) params["max-bandwidth"] = 0;
  await qmp.migrateSetParameters(params);
}

/** Waits for the migration to end; resolves on `completed`, throws with QEMU's reason otherwise. */
async function waitMigration(
  qmp: QmpClient,
  what: string,
  timeoutMs: number,
  event: Promise<unknown>,
): Promise<void> {
  let last: string | undefined;
  // The event usually ends the wait at once; polling covers a missed or late event.
  await retryWithBackoff(
    async () => {
      const info = await qmp.queryMigrate({ timeoutMs: 10_000 });
      last = info.status;
      if (!info.status || !TERMINAL.has(info.status)) return undefined;
      if (info.status === "completed") return true;
      throw new EmuError(
        "snapshot_failed",
        `Cannot ${what}: migration ${info.status}${
          info["error-desc"] ? `: ${info["error-desc"]}` : ""
        }`,
      );
    },
    () =>
      new EmuError(
        "snapshot_failed",
        `Cannot ${what}: migration still ${last ?? "not started"} after ${timeoutMs / 1000} s`,
      ),
    { delayMs: 200, maxDelayMs: 200, timeoutMs, wake: event },
  );
}

/**
 * Pauses the guest and writes its RAM and device state to `file` (absolute). When it
 * returns, QEMU has also left its `finish-migrate` run state, so a `cont` is accepted.
 */
export async function saveState(
  qmp: QmpClient,
  file: string,
  options: { channels: number; timeoutMs?: number; ramInFile?: boolean },
): Promise<void> {
  await qmp.stop();
  await configure(qmp, options.channels, true, options.ramInFile ?? false);
  const event = qmp.waitForEvent("MIGRATION", (e) => TERMINAL.has(String(e.data.status)), {
    timeoutMs: options.timeoutMs ?? 600_000,
  });
  event.catch(() => {});
  await qmp.migrate(`file:${file}`);
  await waitMigration(qmp, "save the VM state", options.timeoutMs ?? 600_000, event);
  await waitFinalized(qmp);
}

/**
 * Waits for QEMU to leave `finish-migrate`. The migration thread reports "completed"
 * before it moves the run state on (to `postmigrate`), and until it has, `cont` fails
 * with "Migration is not finalized yet": a checkpoint save on a busy host once left its
 * guest paused that way (RELIABILITY.md).
 */
async function waitFinalized(qmp: QmpClient): Promise<void> {
  let status = "";
  await retryWithBackoff(
    async () => {
      status = (await qmp.queryStatus({ timeoutMs: 5_000 })).status;
      return status === "finish-migrate" ? undefined : true;
    },
    () =>
      new EmuError(
        "snapshot_failed",
        `Cannot save the VM state: QEMU was still finishing the migration (${status}) after 10 s`,
      ),
    { delayMs: 2, maxDelayMs: 50, timeoutMs: 10_000 },
  );
}

/**
 * Loads state from `file` into a QEMU started with `-incoming defer`, then resumes the
 * vCPUs (the source was stopped before saving, so the destination comes up paused).
 */
export async function loadState(
  qmp: QmpClient,
  file: string,
  options: { channels: number; timeoutMs?: number; timer?: PhaseTimer; ramInFile?: boolean },
): Promise<void> {
  const from = performance.now();
  await configure(qmp, options.channels, false, options.ramInFile ?? false);
  const event = qmp.waitForEvent("MIGRATION", (e) => TERMINAL.has(String(e.data.status)), {
    timeoutMs: options.timeoutMs ?? 600_000,
  });
  event.catch(() => {});
  await qmp.migrateIncoming(`file:${file}`, { exitOnError: false });
  await waitMigration(qmp, "load the snapshot", options.timeoutMs ?? 600_000, event);
  options.timer?.record("load", from);
  const resumed = performance.now();
  await qmp.cont();
  options.timer?.record("cont", resumed);
}

/** Sizes of a saved state file. */
export interface StateFileInfo {
  logical_bytes: number;
  allocated_bytes: number;
}

/**
 * Saves the VM behind `qmpSocket` to `file`, quits QEMU (pid `pid`) and waits for it,
 * then fsyncs the file. Returns its logical and allocated size (mapped-ram files are
 * sparse).
 */
export async function saveToFileAndQuit(
  qmpSocket: string,
  pid: number,
  file: string,
  options: { channels: number; ramInFile?: boolean },
): Promise<StateFileInfo> {
  {
    await using qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 10_000 });
    await saveState(qmp, file, options);
    await qmp.quit().catch(() => {});
  }
  await waitForExit(pid, 5000);
  return await syncStateFile(file);
}

/** fsyncs a saved state file; returns its logical and allocated size (it is sparse). */
export async function syncStateFile(file: string): Promise<StateFileInfo> {
  const handle = await Deno.open(file, { read: true, write: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
  const info = await Deno.stat(file);
  return { logical_bytes: info.size, allocated_bytes: (info.blocks ?? 0) * 512 };
}
