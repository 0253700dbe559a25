/**
 * The VM spec for a profile and image under the host probe's decisions, shared by cold
 * boot, capture and resume so the three can only differ in paths, host ports and
 * `-incoming defer`.
 *
 * @module
 */
import type { ImageInfo } from "../artifact/image_json.ts";
import type { InstancePaths } from "../config/paths.ts";
import type { Profile } from "../config/profile.ts";
import type { VmSpec } from "../qemu/argv.ts";
import type { ProbeResult } from "../qemu/probe.ts";

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

/** The spec for `profile` on `image` with the probe's machine, accelerator and CPU. */
export function vmSpec(
  profile: Profile,
  image: ImageInfo,
  probe: ProbeResult,
  run: RunPaths,
): VmSpec {
  return {
    arch: image.arch,
    machine: probe.machine,
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
    ...(image.boot
      ? {
        kernel: { path: image.boot.kernel, initrd: image.boot.initrd, append: image.boot.append },
      }
      : {}),
    ...(probe.firmware ? { firmware: probe.firmware.path } : {}),
  };
}
