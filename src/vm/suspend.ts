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
import { QmpClient } from "../protocol/mod.ts";
import { topologyHash } from "../qemu/argv.ts";
import { processExists } from "../qemu/process.ts";
import { probeHost } from "../qemu/probe.ts";
import { resolveImage } from "./image_source.ts";
import { clearRuntimeFiles, findInstance } from "./instance.ts";
import { InstanceLock } from "./lock.ts";
import { saveState } from "./migration.ts";
import { writeRecord } from "./record.ts";
import { readSnapshot, type SnapshotMeta, writeSnapshotMeta } from "./snapshot.ts";
import { vmSpec } from "./spec.ts";

/** The directory of an instance's suspended state. */
export function suspendDir(instanceDir: string): string {
  return join(instanceDir, "suspend");
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
  const { paths } = await findInstance(settings, name);
  using _lock = await InstanceLock.acquire(paths.lock, `instance ${name}`, { waitMs: 30_000 });
  const { record, alive } = await findInstance(settings, name);
  if (!alive || record === null || record.pid === null) {
    throw new EmuError(
      "instance_not_running",
      `Cannot suspend instance ${name}: it is not running`,
      {
        hint: "Start it with `emu start`; only a running instance can be suspended.",
      },
    );
  }
  const image = await resolveImage(profile);
  const { result: probe } = await probeHost({
    cachePath: settings.layout.probe,
    env: options.env,
    guestArch: image.arch,
  });
  const runtimeIso = record.runtime_iso ?? paths.runtimeIso;
  const spec = vmSpec(profile, image, probe, {
    disk: paths.runDisk,
    runtimeIso,
    qmpSocket: paths.qmpSocket,
    qgaSocket: paths.qgaSocket,
    serialLog: paths.serialLog,
    pidFile: paths.pidFile,
    name,
    forwards: record.ports,
  });
  const dir = suspendDir(paths.dir);
  const staging = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(staging, { recursive: true });
  const started = performance.now();
  try {
    progress("saving RAM and device state");
    const qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 10_000 });
    try {
      await saveState(qmp, join(staging, "state.raw"), {
        channels: Math.max(1, Math.min(profile.vm.cpus, 4)),
      });
      await qmp.quit().catch(() => {});
    } finally {
      await qmp.close();
    }
    for (let i = 0; i < 200 && processExists(record.pid); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const file = await Deno.open(join(staging, "state.raw"), { read: true, write: true });
    await file.sync();
    file.close();
    const info = await Deno.stat(join(staging, "state.raw"));
    const meta: SnapshotMeta = {
      schema: 1,
      fingerprint: "suspend",
      created_at: new Date().toISOString(),
      qemu_version: probe.qemu.versionText,
      machine: spec.machine,
      accel: spec.accel,
      cpu: spec.cpu,
      memory_mib: spec.memoryMib,
      cpus: spec.cpus,
      topology_hash: topologyHash(spec),
      image_sha256: image.sha256,
      image_version: image.version,
      state: {
        file: "state.raw",
        logical_bytes: info.size,
        allocated_bytes: (info.blocks ?? 0) * 512,
      },
      capture_ms: Math.round(performance.now() - started),
      bad: null,
    };
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
