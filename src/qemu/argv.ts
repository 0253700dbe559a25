/**
 * The QEMU command line (docs/architecture.md, «VM topology and accelerator»): one device topology,
 * in a fixed order, for cold boot, capture and resume, so a RAM snapshot always meets the devices
 * it was taken with. Pure: assembles argv from a typed spec and decides nothing.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { isAbsolute } from "node:path";
import { EmuError } from "../errors.ts";
import type { Accelerator, Arch } from "./cpu_model.ts";
import { hasVmgenid } from "./machine.ts";

/** One port forward: `127.0.0.1:host` → guest `guest`. */
export interface ForwardSpec {
  name: string;
  host: number;
  guest: number;
}

/** Everything the command line is made from. */
export interface VmSpec {
  arch: Arch;
  /** A versioned machine type with its options (`pc-q35-10.0`, `virt-10.0,gic-version=3`). */
  machine: string;
  accel: Accelerator;
  /** `-cpu` value, flags included. */
  cpu: string;
  memoryMib: number;
  cpus: number;
  /** The run disk (a qcow2 overlay). */
  disk: string;
  /** The runtime config ISO (label EMUCFG), attached read-only. */
  runtimeIso: string;
  forwards: readonly ForwardSpec[];
  qmpSocket: string;
  qgaSocket: string;
  serialLog: string;
  /**
   * UEFI for a firmware-booted aarch64 guest: `pflash` code (read-only) and this run's own
   * copy of the variable store, or one `bios` image.
   */
  firmware?: { kind: "pflash" | "bios"; code: string; vars: string | null };
  /**
   * Guest RAM in a file instead of anonymous memory (a snapshot's lazy restore): `shared`
   * while capturing (the guest's RAM is written to the file itself), private when resuming
   * (a copy-on-write mapping of it: the guest reads pages from the file as it touches
   * them and its writes never reach it). Not part of the topology: QEMU names this RAM
   * block like the anonymous one, so a state saved either way loads into the other.
   */
  ramFile?: { path: string; shared: boolean };
  /** Direct kernel boot (recorded in image.json). */
  kernel?: { path: string; initrd?: string; append?: string };
  /** `-name`, for `ps` and logs. */
  name?: string;
  /** Start paused, waiting for `migrate-incoming` (resume). */
  incoming?: boolean;
  /** Daemonize and write this pid file. */
  pidFile?: string;
}

const QEMU_BINARY: Record<Arch, string> = {
  x86_64: "qemu-system-x86_64",
  aarch64: "qemu-system-aarch64",
};

/**
 * The machine's own name for its RAM block (QEMU's `default_ram_id`): a memory backend
 * with this id and `x-use-canonical-path-for-ramblock-id=off` is, to migration, the same
 * RAM as the machine's anonymous default.
 */
const DEFAULT_RAM_ID: Record<Arch, string> = { x86_64: "pc.ram", aarch64: "mach-virt.ram" };

/** The `qemu-system-*` program for a guest architecture. */
export function qemuBinaryName(arch: Arch): string {
  return QEMU_BINARY[arch];
}

/**
 * The argv (without the program) for `spec`. Every path must be absolute: QEMU changes
 * directory to `/` when it daemonizes, and a relative disk path then breaks migration at
 * completion ("Bad address").
 *
 * @throws {EmuError} `internal` naming the relative path.
 */
export function buildArgv(spec: VmSpec): string[] {
  for (const [what, path] of pathsOf(spec)) {
    if (!isAbsolute(path)) {
      throw new EmuError(
        "internal",
        `Cannot build the QEMU command line: ${what} "${path}" is not an absolute path`,
      );
    }
  }
  const argv: string[] = [];
  if (spec.name) argv.push("-name", `${spec.name},process=emu-${spec.name}`);
  argv.push(...topologyArgs(spec));
  if (spec.ramFile) {
    argv.push(
      "-object",
      `memory-backend-file,id=${
        DEFAULT_RAM_ID[spec.arch]
      },size=${spec.memoryMib}M,mem-path=${spec.ramFile.path},share=${
        spec.ramFile.shared ? "on" : "off"
      },x-use-canonical-path-for-ramblock-id=off`,
    );
  }
  if (spec.kernel) {
    argv.push("-kernel", spec.kernel.path);
    if (spec.kernel.initrd) argv.push("-initrd", spec.kernel.initrd);
    if (spec.kernel.append) argv.push("-append", spec.kernel.append);
  }
  argv.push("-display", "none", "-serial", `file:${spec.serialLog}`);
  if (spec.incoming) argv.push("-incoming", "defer");
  if (spec.pidFile) argv.push("-daemonize", "-pidfile", spec.pidFile);
  return argv;
}

/** The device topology, in the order of docs/architecture.md, «VM topology and accelerator». */
function topologyArgs(spec: VmSpec): string[] {
  const hostfwd = spec.forwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join("");
  const machine = spec.ramFile
    ? `${spec.machine},memory-backend=${DEFAULT_RAM_ID[spec.arch]}`
    : spec.machine;
  const args = ["-nodefaults", "-machine", machine, "-accel", spec.accel, "-cpu", spec.cpu];
  if (spec.firmware?.kind === "bios") args.push("-bios", spec.firmware.code);
  else if (spec.firmware) {
    args.push("-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${spec.firmware.code}`);
    if (spec.firmware.vars) {
      args.push("-drive", `if=pflash,format=raw,unit=1,file=${spec.firmware.vars}`);
    }
  }
  args.push(
    "-m",
    String(spec.memoryMib),
    "-smp",
    String(spec.cpus),
    "-drive",
    `if=none,id=disk0,format=qcow2,file=${spec.disk},discard=unmap`,
    "-device",
    // Direct kernel boot takes boot index 0 itself (QEMU's linuxboot option ROM).
    `virtio-blk-pci,drive=disk0,id=vd0${spec.kernel ? "" : ",bootindex=0"}`,
    "-drive",
    `if=none,id=cfg0,format=raw,readonly=on,file=${spec.runtimeIso}`,
    "-device",
    "virtio-blk-pci,drive=cfg0,id=vd1",
    "-netdev",
    `user,id=net0,ipv6=off${hostfwd}`,
    "-device",
    "virtio-net-pci,netdev=net0,id=nic0",
    "-device",
    "virtio-serial-pci,id=vser0",
    "-chardev",
    `socket,id=qga0,path=${spec.qgaSocket},server=on,wait=off`,
    "-device",
    "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
    "-chardev",
    `socket,id=qmp0,path=${spec.qmpSocket},server=on,wait=off`,
    "-mon",
    "chardev=qmp0,mode=control",
  );
  if (hasVmgenid(spec.arch)) args.push("-device", "vmgenid,id=vmgen0");
  args.push(
    "-object",
    "rng-random,id=rng0,filename=/dev/urandom",
    "-device",
    "virtio-rng-pci,rng=rng0,id=rng0dev",
  );
  return args;
}

function pathsOf(spec: VmSpec): [string, string][] {
  const paths: [string, string][] = [
    ["disk", spec.disk],
    ["runtime ISO", spec.runtimeIso],
    ["QMP socket", spec.qmpSocket],
    ["QGA socket", spec.qgaSocket],
    ["serial log", spec.serialLog],
  ];
  if (spec.firmware) paths.push(["firmware", spec.firmware.code]);
  if (spec.firmware?.vars) paths.push(["UEFI variable store", spec.firmware.vars]);
  if (spec.kernel) {
    paths.push(["kernel", spec.kernel.path]);
    if (spec.kernel.initrd) paths.push(["initrd", spec.kernel.initrd]);
  }
  if (spec.pidFile) paths.push(["pid file", spec.pidFile]);
  if (spec.ramFile) paths.push(["RAM file", spec.ramFile.path]);
  return paths;
}

/**
 * A stable hash of what a RAM snapshot depends on: machine, accelerator, CPU, memory,
 * vCPUs, the device list and the kernel command line — not host paths or host ports,
 * which differ per instance and are not guest state. Recorded in `snapshot.json`.
 *
 * @example
 * ```ts
 * import { topologyHash, type VmSpec } from "./argv.ts";
 * const spec: VmSpec = { arch: "x86_64", machine: "pc-q35-10.0", accel: "tcg", cpu: "max", memoryMib: 1024, cpus: 2,
 *   disk: "/a/run.qcow2", runtimeIso: "/a/rt.iso", forwards: [], qmpSocket: "/r/q", qgaSocket: "/r/g", serialLog: "/a/s" };
 * const moved = { ...spec, disk: "/b/run.qcow2", forwards: [{ name: "api", host: 1, guest: 80 }] };
 * if (topologyHash(spec) !== topologyHash({ ...moved, forwards: [] })) throw new Error();
 * ```
 */
export function topologyHash(spec: VmSpec): string {
  const placeholder: VmSpec = {
    ...spec,
    ramFile: undefined,
    disk: "/disk",
    runtimeIso: "/runtime.iso",
    qmpSocket: "/qmp",
    qgaSocket: "/qga",
    serialLog: "/serial",
    forwards: spec.forwards.map((f) => ({ name: f.name, host: 0, guest: f.guest })),
    ...(spec.firmware
      ? {
        firmware: {
          kind: spec.firmware.kind,
          code: "/firmware",
          vars: spec.firmware.vars ? "/vars" : null,
        },
      }
      : {}),
  };
  const canonical = JSON.stringify({
    topology: topologyArgs(placeholder),
    append: spec.kernel?.append ?? null,
    directKernel: spec.kernel !== undefined,
  });
  return createHash("sha256").update(canonical).digest("hex");
}
