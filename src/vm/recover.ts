/**
 * What an interrupted emu (killed mid-start or mid-suspend) left in an instance, put
 * right under the instance lock before a command acts on it (docs/architecture.md,
 * «Interrupted commands»). The lock proves the emu that wrote the record is gone, so
 * the record's state says what it was doing:
 *
 * - A QEMU no record names (the start was killed between launching it and recording it),
 *   found by its pid file and its QMP socket: stopped.
 * - `starting` with QEMU alive: a start that never finished (its secrets may not be
 *   rotated, the guest may be half-loaded). QEMU is stopped and the start begins again.
 * - `running` with QEMU alive but its guest not running: paused by a suspend (or still
 *   saving), so the guest goes on where it was (`migrate_cancel`, `cont`); any other run
 *   state (waiting for a state, shut down, crashed) is stopped and started again.
 * - `running` with QEMU gone and a complete suspended state: the suspend finished
 *   saving but not recording; the instance is recorded as suspended, so the next start
 *   resumes it.
 * - A suspended state a `suspended` record does not claim is stale (the disk moved on)
 *   and is removed, as are staging directories of a suspend that never finished.
 *
 * @module
 */
import { join } from "node:path";
import { QmpClient } from "../protocol/mod.ts";
import { killAndWait } from "../qemu/process.ts";
import { type FoundInstance, isOurQemu } from "./instance.ts";
import { writeRecord } from "./record.ts";
import { readSnapshot } from "./snapshot.ts";
import { INSTANCE_FILES } from "../config/filenames.ts";

/** Run states a suspend leaves a guest in while (or after) it saves. */
const PAUSED_BY_SUSPEND = new Set(["paused", "finish-migrate", "postmigrate"]);

/** QEMU's run state, or `null` when it does not answer. */
async function runState(qmpSocket: string): Promise<string | null> {
  try {
    await using qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 3000 });
    return (await qmp.queryStatus({ timeoutMs: 3000 })).status;
  } catch {
    return null;
  }
}

/** Lets a guest paused by an interrupted or failed suspend run on; false if QEMU refuses. */
export async function continueGuest(qmpSocket: string): Promise<boolean> {
  try {
    await using qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 3000 });
    await qmp.execute("migrate_cancel", undefined, { timeoutMs: 3000 }).catch(() => {});
    await qmp.cont({ timeoutMs: 10_000 });
    return (await qmp.queryStatus({ timeoutMs: 3000 })).status === "running";
  } catch {
    return false;
  }
}

/**
 * Puts right what an interrupted emu left (see the module doc) and returns the instance
 * as it now is. Call it with the instance lock held.
 */
export async function recoverInterrupted(
  found: FoundInstance,
  progress: (text: string) => void,
): Promise<FoundInstance> {
  const { name, paths } = found;
  let { record, alive } = found;
  await removeSuspendStaging(paths.dir);
  // A QEMU launched by a start killed before it wrote the record: found by the pid file
  // QEMU writes itself, and ours only if it serves this instance's QMP socket.
  const pidFromFile = Number((await Deno.readTextFile(paths.pidFile).catch(() => "")).trim());
  if (
    pidFromFile > 0 && !(alive && record?.pid === pidFromFile) &&
    await isOurQemu(pidFromFile, paths.qmpSocket)
  ) {
    progress(
      `instance ${name}: an interrupted start left QEMU (pid ${pidFromFile}) unrecorded; stopping it`,
    );
    await killAndWait(pidFromFile);
  }
  if (alive && record?.pid) {
    const pid = record.pid;
    const state = record.state === "starting" ? "starting" : await runState(paths.qmpSocket);
    if (state !== null && state !== "running") {
      if (
        state !== "starting" && PAUSED_BY_SUSPEND.has(state) && await continueGuest(paths.qmpSocket)
      ) {
        progress(
          `instance ${name}: an interrupted suspend or checkpoint had paused the guest; it runs on`,
        );
      } else {
        progress(
          state === "starting"
            ? `instance ${name}: an interrupted start left QEMU (pid ${pid}) behind; starting again`
            : `instance ${name}: QEMU (pid ${pid}) is not running its guest (${state}); starting again`,
        );
        await killAndWait(pid);
        alive = false;
      }
    }
  }
  const dir = join(paths.dir, INSTANCE_FILES.suspend);
  const saved = await readSnapshot(dir);
  if (record && !alive && record.state === "running" && saved !== null) {
    progress(`instance ${name}: an interrupted suspend had saved the guest; it will be resumed`);
    record = { ...record, state: "suspended", pid: null, stopped_at: new Date().toISOString() };
    await writeRecord(paths.record, record);
  } else if (record?.state !== "suspended") {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return { ...found, record, alive };
}

/** Removes `suspend.tmp-*` directories: a suspend that was killed while saving. */
async function removeSuspendStaging(instanceDir: string): Promise<void> {
  const prefix = `${INSTANCE_FILES.suspend}.tmp-`;
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(instanceDir));
  } catch { /* no instance directory yet */ }
  for (const e of entries) {
    if (e.name.startsWith(prefix)) {
      await Deno.remove(join(instanceDir, e.name), { recursive: true }).catch(() => {});
    }
  }
}
