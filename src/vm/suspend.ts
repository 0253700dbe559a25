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
import { EmuError } from "../errors.ts";
import { probeHost } from "../qemu/probe.ts";
import { resolveImage } from "./image_source.ts";
import { clearRuntimeFiles, lockInstance } from "./instance.ts";
import { migrationChannels, saveToFileAndQuit } from "./migration.ts";
import { writeRecord } from "./record.ts";
import { newSnapshotMeta, readSnapshot, type SnapshotMeta, writeSnapshotMeta } from "./snapshot.ts";
import { instanceRunPaths, vmSpec } from "./spec.ts";
import { INSTANCE_FILES } from "../config/filenames.ts";

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

/** Suspends running instance `name`; its QEMU exits once the state is saved. */
export async function suspendInstance(
  options: SuspendOptions,
): Promise<{ meta: SnapshotMeta; ms: number }> {
  const { settings, profile, name } = options;
  const progress = options.onProgress ?? (() => {});
  using locked = await lockInstance(settings, name);
  const { record, alive, paths } = locked.found;
  if (!alive || record === null || record.pid === null) {
    throw new EmuError(
      "instance_not_running",
      `Cannot suspend instance ${name}: it is not running`,
      {
        hint: "Start it with `emu start`; only a running instance can be suspended.",
      },
    );
  }
  const image = await resolveImage(profile, settings);
  const { result: probe } = await probeHost({
    cachePath: settings.layout.probe,
    env: options.env,
    guestArch: image.arch,
  });
  const runtimeIso = record.runtime_iso ?? paths.runtimeIso;
  const spec = vmSpec(
    profile,
    image,
    probe,
    instanceRunPaths(paths, name, record.ports, runtimeIso),
  );
  const dir = suspendDir(paths.dir);
  const staging = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(staging, { recursive: true });
  const started = performance.now();
  try {
    progress("saving RAM and device state");
    const stateInfo = await saveToFileAndQuit(
      paths.qmpSocket,
      record.pid,
      join(staging, "state.raw"),
      {
        channels: migrationChannels(profile.vm.cpus),
      },
    );
    const meta = newSnapshotMeta({
      fingerprint: "suspend",
      qemuVersion: probe.qemu.versionText,
      image,
      spec,
      stateFile: "state.raw",
      state: stateInfo,
      ms: Math.round(performance.now() - started),
    });
    await writeSnapshotMeta(staging, meta);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(staging, dir);
  } catch (err) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw err;
  }
  await clearRuntimeFiles(paths);
  record.state = "suspended";
  record.pid = null;
  record.runtime_iso = runtimeIso;
  record.stopped_at = new Date().toISOString();
  await writeRecord(paths.record, record);
  return { meta: (await readSnapshot(dir))!, ms: Math.round(performance.now() - started) };
}
