/**
 * `emu suspend`: save this instance's RAM and device state next to its own run disk, so
 * the next `emu start` of the instance resumes the user's state and data, secrets
 * unchanged. The state is used once: after that resume the disk moves on. `emu reset`
 * drops it and goes back to the pristine snapshot.
 *
 * @module
 */
import { join } from "node:path";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import type { InstancePaths } from "../config/paths.ts";
import type { ImageInfo } from "../artifact/image_json.ts";
import type { ProbeResult } from "../qemu/probe.ts";
import type { VmSpec } from "../qemu/argv.ts";
import { EmuError } from "../errors.ts";
import { probeHost } from "../qemu/probe.ts";
import { resolveImage } from "./image_source.ts";
import { clearRuntimeFiles, lockInstance } from "./instance.ts";
import { migrationChannels, saveState, syncStateFile } from "./migration.ts";
import { QmpClient } from "../protocol/mod.ts";
import { waitForExit } from "../qemu/process.ts";
import { type InstanceRecord, writeRecord } from "./record.ts";
import { newSnapshotMeta, readSnapshot, type SnapshotMeta, writeSnapshotMeta } from "./snapshot.ts";
import { firmwareIdentity, instanceRunPaths, vmSpec } from "./spec.ts";
import { INSTANCE_FILES } from "../config/filenames.ts";
import { continueGuest, recoverInterrupted } from "./recover.ts";
import { qemuGoneError } from "./boot.ts";
import { attachAgent } from "./_boot.ts";

/** The directory of an instance's suspended state. */
export function suspendDir(instanceDir: string): string {
  return join(instanceDir, INSTANCE_FILES.suspend);
}

/** Options of {@linkcode suspendInstance}. */
export interface SuspendOptions {
  settings: Settings;
  profile: Profile;
  name: string;
  env: Record<string, string | undefined>;
  onProgress?: (text: string) => void;
}

/**
 * What a running instance was started with, for saving its state: its image, the host
 * probe, its runtime ISO and the VM spec (the fingerprint a saved state is checked by).
 */
export async function runningSpec(
  settings: Settings,
  profile: Profile,
  record: InstanceRecord,
  paths: InstancePaths,
  env: Record<string, string | undefined>,
): Promise<{ image: ImageInfo; probe: ProbeResult; runtimeIso: string; spec: VmSpec }> {
  const image = await resolveImage(profile, settings);
  const { result: probe } = await probeHost({
    cachePath: settings.layout.probe,
    env,
    guestArch: image.arch,
  });
  const runtimeIso = record.runtime_iso ?? paths.runtimeIso;
  const spec = vmSpec(
    profile,
    image,
    probe,
    instanceRunPaths(paths, record.name, record.ports, runtimeIso),
  );
  return { image, probe, runtimeIso, spec };
}

/** Suspends running instance `name`; its QEMU exits once the state is saved. */
export async function suspendInstance(
  options: SuspendOptions,
): Promise<{ meta: SnapshotMeta; ms: number }> {
  const { settings, profile, name } = options;
  const progress = options.onProgress ?? (() => {});
  using locked = await lockInstance(settings, name);
  const { record, alive, paths } = await recoverInterrupted(locked.found, progress);
  if (!alive || record === null || record.pid === null) {
    throw new EmuError(
      "instance_not_running",
      `Cannot suspend instance ${name}: it is not running`,
      {
        hint: "Start it with `emu start`; only a running instance can be suspended.",
      },
    );
  }
  const pid = record.pid;
  const { image, probe, runtimeIso, spec } = await runningSpec(
    settings,
    profile,
    record,
    paths,
    options.env,
  );
  const dir = suspendDir(paths.dir);
  const staging = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(staging, { recursive: true });
  const started = performance.now();
  let saved = false;
  try {
    progress("saving RAM and device state");
    await using qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 10_000 });
    // Held through the save, so the resumed agent answers at once (see attachAgent).
    await using _agent = await attachAgent(paths.qgaSocket, { timeoutMs: 5_000 });
    await saveState(qmp, join(staging, "state.raw"), {
      channels: migrationChannels(profile.vm.cpus),
    });
    saved = true;
    const stateInfo = await syncStateFile(join(staging, "state.raw"));
    const meta = newSnapshotMeta({
      fingerprint: "suspend",
      qemuVersion: probe.qemu.versionText,
      image,
      spec,
      stateFile: "state.raw",
      state: stateInfo,
      ms: Math.round(performance.now() - started),
      firmware: firmwareIdentity(spec, probe),
    });
    await writeSnapshotMeta(staging, meta);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(staging, dir);
    record.state = "suspended";
    record.pid = null;
    record.runtime_iso = runtimeIso;
    record.stopped_at = new Date().toISOString();
    await writeRecord(paths.record, record);
    // QEMU goes only now: an emu killed before this point leaves a paused guest (which
    // the next command lets run on) or a recorded suspended state, never neither.
    await qmp.quit().catch(() => {});
  } catch (err) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    const gone = saved ? null : await qemuGoneError(pid, `suspend instance ${name}`, err);
    // The state is not kept: the guest runs on as it was.
    if (gone === null && await continueGuest(paths.qmpSocket)) {
      progress(`the suspend failed; instance ${name} runs on`);
    }
    throw gone ?? err;
  }
  await waitForExit(pid, 5000);
  await clearRuntimeFiles(paths);
  return { meta: (await readSnapshot(dir))!, ms: Math.round(performance.now() - started) };
}
