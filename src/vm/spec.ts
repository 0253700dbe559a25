/**
 * The VM spec for a profile and image under the host probe's decisions, shared by cold
 * boot, capture and resume so the three can only differ in paths, host ports and
 * `-incoming defer`.
 *
 * @module
 */
import { dirname, join } from "node:path";
import type { ImageInfo } from "../artifact/image_json.ts";
import { EFI_VARS_FILE } from "../config/filenames.ts";
import type { InstancePaths } from "../config/paths.ts";
import type { Profile } from "../config/profile.ts";
import type { VmSpec } from "../qemu/argv.ts";
import type { ProbeResult } from "../qemu/probe.ts";
import { bootFirmware } from "../qemu/firmware.ts";
import { machineOption } from "../qemu/machine.ts";

/** Per-run paths and ports. */
export interface RunPaths {
  disk: string;
  runtimeIso: string;
  qmpSocket: string;
  qgaSocket: string;
  serialLog: string;
  pidFile: string;
  name: string;
  forwards: Record<string, { guest: number; host: number }>;
  incoming?: boolean;
  /** Guest RAM in a file (a capture: shared; a snapshot's resume: private). */
  ramFile?: { path: string; shared: boolean };
}

/** The run paths of an instance: its disk, sockets, log and pid file, with these ports. */
export function instanceRunPaths(
  paths: InstancePaths,
  name: string,
  forwards: RunPaths["forwards"],
  runtimeIso: string,
  incoming = false,
): RunPaths {
  return {
    disk: paths.runDisk,
    runtimeIso,
    qmpSocket: paths.qmpSocket,
    qgaSocket: paths.qgaSocket,
    serialLog: paths.serialLog,
    pidFile: paths.pidFile,
    name,
    forwards,
    incoming,
  };
}

/**
 * The UEFI variable store a run disk goes with: beside it, so it travels with the disk
 * (the capture's with the capture disk, an instance's with its run disk, a checkpoint's
 * with its copy) — the firmware's NVRAM must match the RAM it is resumed with.
 */
export function efiVarsBeside(disk: string): string {
  return join(dirname(disk), EFI_VARS_FILE);
}

/** The spec for `profile` on `image` with the probe's machine, accelerator and CPU. */
export function vmSpec(
  profile: Profile,
  image: ImageInfo,
  probe: ProbeResult,
  run: RunPaths,
): VmSpec {
  const spec: VmSpec = {
    arch: image.arch,
    machine: machineOption(probe.machine, image.arch, probe.accel.accel).value,
    accel: probe.accel.accel,
    cpu: probe.cpu.model,
    memoryMib: profile.vm.memory_mib,
    cpus: profile.vm.cpus,
    disk: run.disk,
    runtimeIso: run.runtimeIso,
    forwards: Object.entries(run.forwards).map(([name, p]) => ({
      name,
      host: p.host,
      guest: p.guest,
    })),
    qmpSocket: run.qmpSocket,
    qgaSocket: run.qgaSocket,
    serialLog: run.serialLog,
    name: run.name,
    pidFile: run.pidFile,
    incoming: run.incoming,
    ...(run.ramFile ? { ramFile: run.ramFile } : {}),
    ...(image.boot
      ? {
        kernel: { path: image.boot.kernel, initrd: image.boot.initrd, append: image.boot.append },
      }
      : {}),
  };
  const firmware = bootFirmware({
    arch: image.arch,
    directKernel: image.boot !== undefined,
    found: probe.firmware,
    vars: efiVarsBeside(run.disk),
    qemuPath: probe.qemu.path,
    os: probe.host.os,
  });
  return firmware ? { ...spec, firmware } : spec;
}

/**
 * What identifies the firmware a run boots (see `SnapshotMeta.firmware`): path, size and
 * modification time of the code and of the variable-store template; `null` without
 * firmware. A stat, not a hash: it runs at every resume, and a package upgrade changes
 * both size or time.
 */
export function firmwareIdentity(spec: VmSpec, probe: ProbeResult): string | null {
  if (!spec.firmware) return null;
  const id = (path: string) => {
    const info = Deno.statSync(path);
    return `${path} ${info.size} ${info.mtime?.toISOString() ?? "?"}`;
  };
  const template = probe.firmware?.vars;
  return [id(spec.firmware.code), ...(template ? [id(template)] : [])].join("; ");
}
