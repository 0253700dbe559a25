/**
 * `image.json`: what an installed or built image is (docs/architecture.md, «On-disk layout») —
 * version, architecture, the disk's sha256 and size, where it came from, and optionally a kernel,
 * initrd and command line for direct kernel boot. Pure parsing and validation.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { EmuError } from "../errors.ts";
import { parseJsonObject } from "./_json.ts";
import { IMAGE_FILES } from "../config/filenames.ts";

/** A validated image with absolute paths. */
export interface ImageInfo {
  /** The image directory. */
  dir: string;
  name: string;
  version: string;
  arch: "x86_64" | "aarch64";
  /** Absolute path of the qcow2 disk. */
  disk: string;
  sha256: string;
  size: number;
  source: string;
  /** sha256 of the file as published (compressed, for a .zst), for a pulled image. */
  published_sha256?: string;
  /** Fingerprint of the release key that vouched for it, for a signed release. */
  key_fingerprint?: string;
  boot?: { kernel: string; initrd?: string; append?: string };
}

/** Name of the file in an image directory. */
export const IMAGE_JSON = IMAGE_FILES.meta;

function bad(path: string, problem: string): EmuError {
  return new EmuError("image_invalid", `Cannot use ${path}: ${problem}`, {
    hint:
      "Rebuild or re-pull the image; image.json is written by `emu pull`, `emu image build` and `deno task fixtures`.",
  });
}

/** A plain file name inside the image directory (no separators, no `..`). */
function member(value: unknown, field: string, path: string): string {
  if (
    typeof value !== "string" || value === "" || value.includes("/") || value.includes("\\") ||
    value === ".." || value === "."
  ) {
    throw bad(path, `${field} must be a file name inside the image directory`);
  }
  return value;
}

/**
 * Parses `image.json` text of the image directory `dir`.
 *
 * @example
 * ```ts
 * import { parseImageJson } from "./image_json.ts";
 * const img = parseImageJson(JSON.stringify({ schema_version: 1, name: "x", version: "1.0.0", arch: "x86_64",
 *   disk: "disk.qcow2", sha256: "a".repeat(64), size: 1, source: "test" }), "/img");
 * if (img.disk !== "/img/disk.qcow2") throw new Error(img.disk);
 * ```
 */
export function parseImageJson(text: string, dir: string): ImageInfo {
  const path = join(dir, IMAGE_JSON);
  if (!isAbsolute(dir)) throw bad(path, "the image directory must be an absolute path");
  const raw = parseJsonObject(text, (problem) => bad(path, problem));
  if (raw.schema_version !== 1) {
    throw new EmuError(
      "image_invalid",
      `Cannot use ${path}: schema_version ${JSON.stringify(raw.schema_version)} is not 1`,
      {
        hint: "A newer emu wrote this image: upgrade emu (emu upgrade).",
      },
    );
  }
  if (raw.arch !== "x86_64" && raw.arch !== "aarch64") {
    throw bad(path, `arch must be x86_64 or aarch64, got ${JSON.stringify(raw.arch)}`);
  }
  if (typeof raw.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(raw.sha256)) {
    throw bad(path, "sha256 must be 64 lowercase hex digits");
  }
  if (typeof raw.size !== "number" || !Number.isInteger(raw.size) || raw.size < 0) {
    throw bad(path, "size must be a byte count");
  }
  for (const field of ["name", "version", "source"] as const) {
    if (typeof raw[field] !== "string" || raw[field] === "") {
      throw bad(path, `${field} must be a non-empty string`);
    }
  }
  const info: ImageInfo = {
    dir,
    name: raw.name as string,
    version: raw.version as string,
    arch: raw.arch,
    disk: join(dir, member(raw.disk, "disk", path)),
    sha256: raw.sha256,
    size: raw.size,
    source: raw.source as string,
  };
  for (const field of ["published_sha256", "key_fingerprint"] as const) {
    if (raw[field] === undefined) continue;
    if (typeof raw[field] !== "string" || !/^[0-9a-f]{64}$/.test(raw[field])) {
      throw bad(path, `${field} must be 64 lowercase hex digits`);
    }
    info[field] = raw[field];
  }
  if (raw.boot !== undefined) {
    const boot = raw.boot as Record<string, unknown>;
    if (typeof boot !== "object" || boot === null) throw bad(path, "boot must be an object");
    info.boot = { kernel: join(dir, member(boot.kernel, "boot.kernel", path)) };
    if (boot.initrd !== undefined) {
      info.boot.initrd = join(dir, member(boot.initrd, "boot.initrd", path));
    }
    if (boot.append !== undefined) {
      if (typeof boot.append !== "string") throw bad(path, "boot.append must be a string");
      info.boot.append = boot.append;
    }
  }
  return info;
}
