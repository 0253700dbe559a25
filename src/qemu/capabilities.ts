/**
 * Parsing what QEMU says about itself: `--version`, `-accel help`, `-machine help`,
 * `-cpu help`. Pure: each takes the command's output and returns values.
 *
 * @module
 */

/** A QEMU version. */
export interface QemuVersion {
  major: number;
  minor: number;
  micro: number;
  /** The whole first line, e.g. `QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2…)`. */
  text: string;
}

/** Oldest QEMU with mapped-ram migration to a file (what snapshots need). */
export const MAPPED_RAM_MIN = { major: 9, minor: 0 } as const;

/**
 * Parses `qemu-system-* --version` or `qemu-img --version`.
 *
 * @example
 * ```ts
 * import { parseQemuVersion } from "./capabilities.ts";
 * const v = parseQemuVersion("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright …");
 * if (v?.major !== 10 || v.micro !== 2) throw new Error();
 * ```
 */
export function parseQemuVersion(output: string): QemuVersion | null {
  const line = output.split("\n")[0].trim();
  const match = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(line);
  if (match === null) return null;
  return {
    major: Number(match[1]),
    minor: Number(match[2]),
    micro: Number(match[3] ?? 0),
    text: line,
  };
}

/** `major.minor.micro`. */
export function formatVersion(v: { major: number; minor: number; micro: number }): string {
  return `${v.major}.${v.minor}.${v.micro}`;
}

/** Whether `v` is at least `min`. */
export function versionAtLeast(
  v: { major: number; minor: number },
  min: { major: number; minor: number },
): boolean {
  return v.major > min.major || (v.major === min.major && v.minor >= min.minor);
}

/** Accelerators from `-accel help` (`tcg`, `kvm`, `hvf`, `whpx`, …). */
export function parseAccelHelp(output: string): string[] {
  return output.split("\n").map((l) => l.trim()).filter((l) => /^[a-z][a-z0-9_-]*$/.test(l));
}

/** One machine type from `-machine help`. */
export interface MachineType {
  name: string;
  description: string;
  /** The versioned type this name is an alias of (`q35` → `pc-q35-10.0`). */
  aliasOf?: string;
  isDefault: boolean;
  deprecated: boolean;
}

/** Machine types from `-machine help`. */
export function parseMachineHelp(output: string): MachineType[] {
  const machines: MachineType[] = [];
  for (const line of output.split("\n")) {
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (match === null || line.startsWith("Supported machines")) continue;
    const description = match[2].trim();
    const alias = /\(alias of ([^)]+)\)/.exec(description);
    machines.push({
      name: match[1],
      description,
      ...(alias ? { aliasOf: alias[1] } : {}),
      isDefault: description.includes("(default)"),
      deprecated: description.includes("(deprecated)"),
    });
  }
  return machines;
}

/** The unversioned family emu uses per guest architecture. */
const FAMILY: Record<string, { alias: string; prefix: string }> = {
  x86_64: { alias: "q35", prefix: "pc-q35-" },
  aarch64: { alias: "virt", prefix: "virt-" },
};

/**
 * The versioned machine type for `arch`: what the `q35`/`virt` alias points at, else the
 * newest `pc-q35-X.Y`/`virt-X.Y`. A versioned type keeps the device model stable across
 * QEMU upgrades, which a saved RAM snapshot needs. `null` if QEMU offers none.
 */
export function pickMachineType(machines: readonly MachineType[], arch: string): string | null {
  const family = FAMILY[arch];
  if (family === undefined) return null;
  const alias = machines.find((m) => m.name === family.alias)?.aliasOf;
  if (alias !== undefined && machines.some((m) => m.name === alias)) return alias;
  const versioned = machines
    .map((m) => ({ name: m.name, v: new RegExp(`^${family.prefix}(\\d+)\\.(\\d+)$`).exec(m.name) }))
    .filter((m): m is { name: string; v: RegExpExecArray } => m.v !== null)
    .sort((a, b) => Number(b.v[1]) - Number(a.v[1]) || Number(b.v[2]) - Number(a.v[2]));
  return versioned[0]?.name ?? null;
}

/** CPU model names from `-cpu help` (`max`, `host`, `qemu64`, `cortex-a76`, …). */
export function parseCpuHelp(output: string): string[] {
  const models: string[] = [];
  for (const line of output.split("\n")) {
    if (/^Recognized CPUID flags/i.test(line.trim())) break;
    const match = /^\s*(?:x86\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)(\s|$)/.exec(line);
    if (match === null || /^Available/.test(line.trim())) continue;
    models.push(match[1]);
  }
  return models;
}
