/**
 * UEFI firmware for aarch64 guests that boot through firmware (an image without a `boot`
 * section): where the common packagers put the code and its variable-store template.
 * x86_64 guests boot such images through SeaBIOS, built into QEMU, and need nothing here.
 * The search list and the install hint are pure; checking which file exists is a small
 * adapter that takes the filesystem root, so tests run it against fake trees.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { EmuError } from "../errors.ts";
import type { Arch } from "./cpu_model.ts";
import { exists } from "../exists.ts";

/** Firmware code, the template of its variable store, and how QEMU loads them. */
export interface Firmware {
  /** The code image (read-only). */
  path: string;
  /**
   * The variable-store template each capture and each instance copies (UEFI NVRAM);
   * `null` for a plain `-bios` image, whose variables live only in RAM.
   */
  vars: string | null;
  /** `pflash`: code and vars as two flash devices; `bios`: one plain image. */
  kind: "pflash" | "bios";
  /** Which packaging it is, for `emu doctor`. */
  layout: string;
}

/**
 * Candidate aarch64 firmware, best first: next to the QEMU binary (its own share/qemu,
 * as Homebrew and a source build install it), Homebrew's two prefixes, Debian/Ubuntu
 * (`qemu-efi-aarch64`: AAVMF), Fedora (`edk2-aarch64`), Arch (`edk2-aarch64`, and the
 * older `edk2-armvirt`), and last Debian's plain `QEMU_EFI.fd` (no variable store).
 * `root` prefixes every system path (tests point it at a fake tree).
 */
export function aarch64FirmwareCandidates(qemuBinary: string, root = "/"): Firmware[] {
  const prefix = dirname(dirname(qemuBinary));
  const at = (p: string) => join(root, p);
  const pair = (layout: string, code: string, vars: string): Firmware => ({
    path: code,
    vars,
    kind: "pflash",
    layout,
  });
  return [
    pair(
      "QEMU's own share/qemu",
      join(prefix, "share", "qemu", "edk2-aarch64-code.fd"),
      join(prefix, "share", "qemu", "edk2-arm-vars.fd"),
    ),
    pair(
      "Homebrew (Apple silicon)",
      at("opt/homebrew/share/qemu/edk2-aarch64-code.fd"),
      at("opt/homebrew/share/qemu/edk2-arm-vars.fd"),
    ),
    pair(
      "Homebrew (Intel)",
      at("usr/local/share/qemu/edk2-aarch64-code.fd"),
      at("usr/local/share/qemu/edk2-arm-vars.fd"),
    ),
    pair(
      "Debian/Ubuntu qemu-efi-aarch64",
      at("usr/share/AAVMF/AAVMF_CODE.fd"),
      at("usr/share/AAVMF/AAVMF_VARS.fd"),
    ),
    pair(
      "Fedora edk2-aarch64",
      at("usr/share/edk2/aarch64/QEMU_EFI-pflash.raw"),
      at("usr/share/edk2/aarch64/vars-template-pflash.raw"),
    ),
    pair(
      "Arch edk2-aarch64",
      at("usr/share/edk2/aarch64/QEMU_CODE.fd"),
      at("usr/share/edk2/aarch64/QEMU_VARS.fd"),
    ),
    pair(
      "Arch edk2-armvirt",
      at("usr/share/edk2-armvirt/aarch64/QEMU_CODE.fd"),
      at("usr/share/edk2-armvirt/aarch64/QEMU_VARS.fd"),
    ),
    {
      path: at("usr/share/qemu-efi-aarch64/QEMU_EFI.fd"),
      vars: null,
      kind: "bios",
      layout: "Debian qemu-efi-aarch64 (plain image)",
    },
  ];
}

/**
 * The first candidate whose files all exist (code, and its vars template for pflash), or
 * `null`.
 */
export function pickFirmware(
  candidates: readonly Firmware[],
  exists: (path: string) => boolean,
): Firmware | null {
  return candidates.find((c) => exists(c.path) && (c.vars === null || exists(c.vars))) ?? null;
}

/** The host, as far as the install hint needs it. */
export interface HostKind {
  os: string;
  /** `ID` and `ID_LIKE` words of /etc/os-release on Linux. */
  distro?: readonly string[];
}

/**
 * How to install aarch64 UEFI firmware on `host`.
 *
 * @example
 * ```ts
 * import { firmwareInstallHint } from "./firmware.ts";
 * const hint = firmwareInstallHint({ os: "linux", distro: ["ubuntu", "debian"] });
 * if (hint !== "Install it: sudo apt-get install qemu-efi-aarch64") throw new Error(hint);
 * ```
 */
export function firmwareInstallHint(host: HostKind): string {
  if (host.os === "darwin") return "Install it: brew install qemu (it ships edk2-aarch64-code.fd)";
  const distro = host.distro ?? [];
  if (distro.some((d) => d === "debian" || d === "ubuntu")) {
    return "Install it: sudo apt-get install qemu-efi-aarch64";
  }
  if (distro.some((d) => d === "fedora" || d === "rhel" || d === "centos")) {
    return "Install it: sudo dnf install edk2-aarch64";
  }
  if (distro.some((d) => d === "arch")) return "Install it: sudo pacman -S edk2-aarch64";
  return "Install it: brew install qemu (macOS), sudo apt-get install qemu-efi-aarch64 (Debian/Ubuntu), sudo dnf install edk2-aarch64 (Fedora), sudo pacman -S edk2-aarch64 (Arch).";
}

/** The `firmware_missing` error: every path tried, and the hint for this host. */
export function firmwareMissing(candidates: readonly Firmware[], host: HostKind): EmuError {
  const tried = [...new Set(candidates.map((c) => c.path))].join(", ");
  return new EmuError(
    "firmware_missing",
    `Cannot boot this arm64 image: it boots through UEFI firmware, and none is installed (tried ${tried})`,
    { hint: firmwareInstallHint(host) },
  );
}

/** `ID` and `ID_LIKE` of an os-release file's text. */
export function osReleaseIds(text: string): string[] {
  const ids: string[] = [];
  for (const m of text.matchAll(/^(ID|ID_LIKE)=("?)([^"\n]*)\2$/gm)) ids.push(...m[3].split(/\s+/));
  return ids.filter((w) => w !== "");
}

/** This host's kind, read from `root`/etc/os-release on Linux. */
export function hostKind(os: string, root = "/"): HostKind {
  if (os !== "linux") return { os };
  try {
    return { os, distro: osReleaseIds(Deno.readTextFileSync(join(root, "etc/os-release"))) };
  } catch {
    return { os };
  }
}

/** What {@linkcode bootFirmware} decides from. */
export interface BootFirmwareInput {
  arch: Arch;
  /** The image boots by direct kernel boot (`boot` in image.json). */
  directKernel: boolean;
  /** The probe's firmware (`null`: none installed). */
  found: Firmware | null;
  /** The run's own variable store (a copy the caller makes before launch). */
  vars: string;
  qemuPath: string;
  os: string;
}

/**
 * The firmware a run needs: none for direct kernel boot, none for x86_64 (SeaBIOS is
 * built into QEMU); UEFI for a firmware-booted aarch64 image, with the run's variable
 * store.
 *
 * @throws {EmuError} `firmware_missing` with the package to install for this host.
 */
export function bootFirmware(
  input: BootFirmwareInput,
): { kind: "pflash" | "bios"; code: string; vars: string | null } | undefined {
  if (input.directKernel || input.arch !== "aarch64") return undefined;
  const fw = input.found;
  if (!fw) throw firmwareMissing(aarch64FirmwareCandidates(input.qemuPath), hostKind(input.os));
  return { kind: fw.kind, code: fw.path, vars: fw.vars ? input.vars : null };
}

/**
 * Gives a firmware-booted run its UEFI variable store (`firmware.vars`, from
 * {@linkcode bootFirmware}) before QEMU starts: a copy of `from` (a snapshot's or a
 * checkpoint's, which match the RAM about to be loaded), or — without `from` — of the
 * firmware's `template`, unless the run already has one (an instance keeps its NVRAM
 * across cold boots, like a disk). Nothing for a run without a variable store.
 */
export async function provideVarsStore(
  firmware: { vars: string | null } | undefined,
  template: string | null | undefined,
  from?: string,
): Promise<void> {
  const vars = firmware?.vars;
  if (!vars) return;
  if (from !== undefined) return await copyVarsStore(from, vars);
  if (await exists(vars)) return;
  if (!template) throw new EmuError("internal", `No UEFI variable template for ${vars}`);
  await copyVarsStore(template, vars);
}

/**
 * Makes `to` a private copy of the variable store `from` (the firmware's template, a
 * snapshot's or a checkpoint's), replacing what was there.
 */
export async function copyVarsStore(from: string, to: string): Promise<void> {
  const temp = `${to}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.copyFile(from, temp);
    await Deno.chmod(temp, 0o600);
    await Deno.rename(temp, to);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** {@linkcode pickFirmware} against the filesystem under `root`: the firmware, or `null`. */
export function findAarch64Firmware(qemuBinary: string, root = "/"): Firmware | null {
  return pickFirmware(aarch64FirmwareCandidates(qemuBinary, root), isFile);
}
