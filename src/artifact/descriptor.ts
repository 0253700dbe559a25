/**
 * The image descriptor of a release (`<name>-<arch>.image.json`): what an image release
 * carries beside its disk — the release version, the architecture, the disk as installed
 * (its size and sha256 after decompression) and, for direct kernel boot, the kernel,
 * initrd and command line. It is listed in the signed `SHA256SUMS` like every file, so
 * everything emu installs is vouched for by the release key (the manifest only says
 * where things are). A release without one boots from its own bootloader. Pure.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { parseJsonObject } from "./_json.ts";
import { isPlainName } from "./manifest.ts";
import { parseVersion } from "./versions.ts";

/** Largest descriptor emu reads. */
export const MAX_DESCRIPTOR_BYTES = 64 * 1024;

/** A validated descriptor. */
export interface ImageDescriptor {
  schema_version: 1;
  name: string;
  /** The release version: must equal the version the manifest (or tag) gives. */
  version: string;
  arch: "x86_64" | "aarch64";
  /** The disk as published, and as installed (decompressed). */
  disk: { file: string; size: number; sha256: string };
  boot?: { kernel: string; initrd?: string; append?: string };
}

/** The Debian-style architecture word in release file and artifact names. */
export function archWord(arch: "x86_64" | "aarch64"): "amd64" | "arm64" {
  return arch === "x86_64" ? "amd64" : "arm64";
}

/** The manifest artifact names of one architecture's image release. */
export interface ImageArtifactNames {
  disk: string;
  descriptor: string;
  kernel: string;
  initrd: string;
}

/**
 * The artifact names for `arch`: `image-amd64` (the disk, as before descriptors existed),
 * `image-amd64-descriptor`, `image-amd64-kernel`, `image-amd64-initrd`.
 *
 * @example
 * ```ts
 * import { imageArtifactNames } from "./descriptor.ts";
 * if (imageArtifactNames("aarch64").descriptor !== "image-arm64-descriptor") throw new Error();
 * ```
 */
export function imageArtifactNames(arch: "x86_64" | "aarch64"): ImageArtifactNames {
  const base = `image-${archWord(arch)}`;
  return {
    disk: base,
    descriptor: `${base}-descriptor`,
    kernel: `${base}-kernel`,
    initrd: `${base}-initrd`,
  };
}

/** The file names `emu image publish` gives a release of image `name` for `arch`. */
export function releaseFileNames(
  name: string,
  arch: "x86_64" | "aarch64",
): { disk: string; plainDisk: string; descriptor: string; kernel: string; initrd: string } {
  const base = `${name}-${archWord(arch)}`;
  return {
    disk: `${base}.qcow2.zst`,
    plainDisk: `${base}.qcow2`,
    descriptor: `${base}.image.json`,
    kernel: `${base}.vmlinuz`,
    initrd: `${base}.initrd`,
  };
}

/**
 * The manifest artifact name of a published file, or `null` when it is not one of an
 * image release: `*-amd64.qcow2[.zst]` → `image-amd64`, `*-amd64.image.json` →
 * `image-amd64-descriptor`, `*-amd64.vmlinuz` → `image-amd64-kernel`, `*-amd64.initrd`
 * → `image-amd64-initrd`. GitHub sources map their assets with it.
 *
 * @example
 * ```ts
 * import { imageArtifactOfFile } from "./descriptor.ts";
 * if (imageArtifactOfFile("demo-arm64.vmlinuz") !== "image-arm64-kernel") throw new Error();
 * if (imageArtifactOfFile("notes.txt") !== null) throw new Error();
 * ```
 */
export function imageArtifactOfFile(fileName: string): string | null {
  const m = /-(amd64|arm64)\.(qcow2(?:\.zst)?|image\.json|vmlinuz|initrd)$/.exec(fileName);
  if (!m) return null;
  const suffix = { "image.json": "-descriptor", vmlinuz: "-kernel", initrd: "-initrd" }[m[2]] ?? "";
  return `image-${m[1]}${suffix}`;
}

function invalid(source: string, problem: string): EmuError {
  return new EmuError("image_invalid", `Cannot use the image descriptor ${source}: ${problem}`, {
    hint: "The release is broken; nothing was installed. Ask its publisher to publish it again.",
  });
}

/**
 * Parses descriptor text (already checked against `SHA256SUMS`) and checks it against
 * what the release says: its version and architecture.
 *
 * @throws {EmuError} `image_invalid` naming the field.
 * @example
 * ```ts
 * import { parseDescriptor } from "./descriptor.ts";
 * const d = parseDescriptor(JSON.stringify({ schema_version: 1, name: "shop", version: "1.4.0",
 *   arch: "x86_64", disk: { file: "shop-amd64.qcow2.zst", size: 1, sha256: "a".repeat(64) } }),
 *   "shop-amd64.image.json", { version: "1.4.0", arch: "x86_64" });
 * if (d.boot !== undefined || d.disk.size !== 1) throw new Error();
 * ```
 */
export function parseDescriptor(
  text: string,
  source: string,
  expect: { version: string; arch: "x86_64" | "aarch64" },
): ImageDescriptor {
  const raw = parseJsonObject(text, (problem) => invalid(source, problem));
  if (raw.schema_version !== 1) {
    throw new EmuError(
      "emu_too_old",
      `Cannot read the image descriptor ${source}: schema_version ${
        JSON.stringify(raw.schema_version)
      } is not 1`,
      { hint: "Upgrade emu (emu upgrade, or brew upgrade emu)." },
    );
  }
  if (typeof raw.name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(raw.name)) {
    throw invalid(source, "name must be 1–64 letters, digits, '.', '_' or '-'");
  }
  if (typeof raw.version !== "string" || parseVersion(raw.version) === null) {
    throw invalid(source, "version must be a semantic version");
  }
  // The signed descriptor names its version: a release cannot be relabelled by whoever
  // serves the manifest or moves a tag.
  if (parseVersion(raw.version) !== parseVersion(expect.version)) {
    throw invalid(
      source,
      `it describes release ${raw.version}, but it was published as ${expect.version}`,
    );
  }
  if (raw.arch !== expect.arch) {
    throw invalid(source, `it is for ${JSON.stringify(raw.arch)}, not ${expect.arch}`);
  }
  const disk = raw.disk as Record<string, unknown>;
  if (typeof disk !== "object" || disk === null || Array.isArray(disk)) {
    throw invalid(source, "disk must be an object");
  }
  if (typeof disk.file !== "string" || !isPlainName(disk.file)) {
    throw invalid(source, "disk.file must be a plain file name");
  }
  if (typeof disk.size !== "number" || !Number.isSafeInteger(disk.size) || disk.size <= 0) {
    throw invalid(source, "disk.size must be a byte count");
  }
  if (typeof disk.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(disk.sha256)) {
    throw invalid(source, "disk.sha256 must be 64 lowercase hex digits");
  }
  const descriptor: ImageDescriptor = {
    schema_version: 1,
    name: raw.name,
    version: raw.version,
    arch: expect.arch,
    disk: { file: disk.file, size: disk.size, sha256: disk.sha256 },
  };
  if (raw.boot !== undefined) {
    const boot = raw.boot as Record<string, unknown>;
    if (typeof boot !== "object" || boot === null || Array.isArray(boot)) {
      throw invalid(source, "boot must be an object");
    }
    if (typeof boot.kernel !== "string" || !isPlainName(boot.kernel)) {
      throw invalid(source, "boot.kernel must be a plain file name");
    }
    descriptor.boot = { kernel: boot.kernel };
    if (boot.initrd !== undefined) {
      if (typeof boot.initrd !== "string" || !isPlainName(boot.initrd)) {
        throw invalid(source, "boot.initrd must be a plain file name");
      }
      descriptor.boot.initrd = boot.initrd;
    }
    if (boot.append !== undefined) {
      // deno-lint-ignore no-control-regex
      if (typeof boot.append !== "string" || /[\x00-\x1f\x7f]/.test(boot.append)) {
        throw invalid(source, "boot.append must be one line of text");
      }
      descriptor.boot.append = boot.append;
    }
  }
  return descriptor;
}
