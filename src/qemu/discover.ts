/**
 * Finding QEMU (`qemu-system-<arch>`, `qemu-img`) on `EMU_QEMU_DIR` or `PATH`, and asking
 * it what it supports. Running the commands is here; parsing their output is in
 * `capabilities.ts`.
 *
 * @module
 */
import { delimiter, join } from "node:path";
import { EmuError } from "../errors.ts";
import { runProgram } from "../process.ts";
import { qemuBinaryName } from "./argv.ts";
import {
  type MachineType,
  parseAccelHelp,
  parseCpuHelp,
  parseMachineHelp,
  parseQemuVersion,
  type QemuVersion,
} from "./capabilities.ts";
import type { Arch } from "./cpu_model.ts";

/** A QEMU installation and what it offers. */
export interface QemuInstall {
  system: string;
  img: string | null;
  version: QemuVersion;
  accels: string[];
  machines: MachineType[];
  cpuModels: string[];
}

/** Where to look: `EMU_QEMU_DIR` first, then every `PATH` entry. */
export function searchDirs(env: Record<string, string | undefined>): string[] {
  const dirs: string[] = [];
  if (env.EMU_QEMU_DIR) dirs.push(env.EMU_QEMU_DIR);
  for (const dir of (env.PATH ?? "").split(delimiter)) if (dir !== "") dirs.push(dir);
  return dirs;
}

/** The first executable `name` in `dirs`, or `null`. */
export async function findExecutable(
  name: string,
  dirs: readonly string[],
): Promise<string | null> {
  const names = Deno.build.os === "windows" ? [`${name}.exe`] : [name];
  for (const dir of dirs) {
    for (const candidate of names) {
      const path = join(dir, candidate);
      try {
        const info = await Deno.stat(path);
        if (info.isFile && (info.mode === null || (info.mode & 0o111) !== 0)) return path;
      } catch { /* not here */ }
    }
  }
  return null;
}

/** The command that installs QEMU on this OS. */
export function installHint(arch: Arch, os = Deno.build.os): string {
  if (os === "darwin") return "Install QEMU: brew install qemu";
  if (os === "windows") {
    return "Install QEMU from https://www.qemu.org/download/#windows and put it on PATH (or set EMU_QEMU_DIR)";
  }
  const pkg = arch === "aarch64" ? "qemu-system-arm" : "qemu-system-x86";
  return `Install QEMU ≥ 9.0: sudo apt-get install ${pkg} qemu-utils (Debian 12: add bookworm-backports and use -t bookworm-backports; Fedora: sudo dnf install qemu-kvm qemu-img)`;
}

/**
 * Finds `qemu-system-<arch>` without running it.
 *
 * @throws {EmuError} `qemu_missing` with the install command.
 */
export async function findQemu(
  arch: Arch,
  env: Record<string, string | undefined>,
): Promise<string> {
  const name = qemuBinaryName(arch);
  const system = await findExecutable(name, searchDirs(env));
  if (system === null) {
    throw new EmuError(
      "qemu_missing",
      `Cannot find ${name} on ${env.EMU_QEMU_DIR ? "EMU_QEMU_DIR or " : ""}PATH`,
      {
        hint: installHint(arch),
      },
    );
  }
  return system;
}

/** Queries the QEMU at `system` for its version and capabilities. */
export async function inspectQemu(
  system: string,
  arch: Arch,
  env: Record<string, string | undefined>,
): Promise<QemuInstall> {
  const versionText = await runForOutput(system, ["--version"]);
  const version = parseQemuVersion(versionText);
  if (version === null) {
    throw new EmuError(
      "qemu_failed",
      `Cannot read the version of ${system}: it printed "${versionText.split("\n")[0]}"`,
      {
        hint: installHint(arch),
      },
    );
  }
  const [accel, machine, cpu] = await Promise.all([
    runForOutput(system, ["-accel", "help"]),
    runForOutput(system, ["-machine", "help"]),
    runForOutput(system, ["-cpu", "help"]),
  ]);
  return {
    system,
    img: await findExecutable("qemu-img", searchDirs(env)),
    version,
    accels: parseAccelHelp(accel),
    machines: parseMachineHelp(machine),
    cpuModels: parseCpuHelp(cpu),
  };
}

async function runForOutput(program: string, args: string[]): Promise<string> {
  const r = await runProgram(program, args);
  if (r.spawnError !== undefined) {
    throw new EmuError("qemu_failed", `Cannot run ${program}: ${r.spawnError}`);
  }
  if (!r.ok) {
    const stderr = r.stderr.trim();
    throw new EmuError(
      "qemu_failed",
      `Cannot run ${program} ${args.join(" ")}: exit ${r.code}${stderr ? `: ${stderr}` : ""}`,
    );
  }
  return r.stdout;
}
