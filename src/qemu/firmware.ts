/**
 * UEFI firmware for aarch64 guests: where the common packagers put it. The search list
 * is pure; checking which exists is a small adapter.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { EmuError } from "../errors.ts";

/** A firmware file and how QEMU loads it. */
export interface Firmware {
  path: string;
  /** `pflash` for 64 MiB padded code images, `bios` for plain images. */
  kind: "pflash" | "bios";
}

/**
 * Candidate aarch64 firmware paths, best first: next to the QEMU binary (its own
 * share/qemu), Homebrew (Apple silicon and Intel prefixes), Debian/Ubuntu (`AAVMF`,
 * `qemu-efi-aarch64`), Fedora and Arch (`edk2`).
 */
export function aarch64FirmwareCandidates(qemuBinary: string): Firmware[] {
  const prefix = dirname(dirname(qemuBinary));
  return [
    { path: join(prefix, "share", "qemu", "edk2-aarch64-code.fd"), kind: "pflash" },
    { path: "/opt/homebrew/share/qemu/edk2-aarch64-code.fd", kind: "pflash" },
    { path: "/usr/local/share/qemu/edk2-aarch64-code.fd", kind: "pflash" },
    { path: "/usr/share/AAVMF/AAVMF_CODE.fd", kind: "pflash" },
    { path: "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd", kind: "bios" },
    { path: "/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw", kind: "pflash" },
    { path: "/usr/share/edk2/aarch64/QEMU_CODE.fd", kind: "pflash" },
    { path: "/usr/share/edk2/aarch64/QEMU_EFI.fd", kind: "bios" },
    { path: "/usr/share/edk2-armvirt/aarch64/QEMU_CODE.fd", kind: "pflash" },
  ];
}

/**
 * The first candidate for which `exists` is true.
 *
 * @throws {EmuError} `firmware_missing` listing every path tried and how to install one.
 */
export function pickFirmware(
  candidates: readonly Firmware[],
  exists: (path: string) => boolean,
): Firmware {
  const found = candidates.find((c) => exists(c.path));
  if (found !== undefined) return found;
  const tried = [...new Set(candidates.map((c) => c.path))].join(", ");
  throw new EmuError(
    "firmware_missing",
    `Cannot find UEFI firmware for aarch64 guests; tried: ${tried}`,
    {
      hint:
        "Install it: brew install qemu (macOS), sudo apt-get install qemu-efi-aarch64 (Debian/Ubuntu), sudo dnf install edk2-aarch64 (Fedora), sudo pacman -S edk2-aarch64 (Arch).",
    },
  );
}

/** {@linkcode pickFirmware} against the real filesystem. */
export function findAarch64Firmware(qemuBinary: string): Firmware {
  return pickFirmware(aarch64FirmwareCandidates(qemuBinary), (path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}
