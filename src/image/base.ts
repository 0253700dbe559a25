/**
 * The base of an image build: a qcow2 that boots with its own bootloader (a Debian cloud
 * image), or an image directory whose `image.json` names a disk and a kernel, initrd and
 * command line for direct kernel boot (what the debootstrap helper writes).
 *
 * @module
 */
import { join, resolve } from "node:path";
import { IMAGE_JSON, type ImageInfo, parseImageJson } from "../artifact/image_json.ts";
import { isQcow2File } from "../artifact/qcow2.ts";
import { EmuError } from "../errors.ts";
import type { Arch } from "../qemu/cpu_model.ts";

/** A base to boot: its disk and, for direct kernel boot, the kernel. */
export interface BuildBase {
  /** Absolute path of the base qcow2. */
  disk: string;
  arch: Arch | null;
  boot?: ImageInfo["boot"];
}

function bad(path: string, problem: string): EmuError {
  return new EmuError("image_build_input", `Cannot use base ${path}: ${problem}`, {
    hint:
      "Give a qcow2 disk (e.g. Debian's genericcloud image) or an image directory with image.json.",
  });
}

/**
 * Resolves `--base`: a qcow2 file, or an image directory.
 *
 * @throws {EmuError} `image_build_input` when it is missing or not qcow2.
 */
export async function resolveBase(path: string): Promise<BuildBase> {
  const abs = resolve(path);
  const info = await Deno.stat(abs).catch(() => null);
  if (info === null) throw bad(abs, "no such file or directory");
  if (info.isDirectory) {
    const text = await Deno.readTextFile(join(abs, IMAGE_JSON)).catch(() => null);
    if (text === null) throw bad(abs, `a directory without ${IMAGE_JSON}`);
    const image = parseImageJson(text, abs);
    if (!await isQcow2File(image.disk)) {
      throw bad(image.disk, "the image's disk is missing or not a qcow2 file");
    }
    return { disk: image.disk, arch: image.arch, ...(image.boot ? { boot: image.boot } : {}) };
  }
  if (!await isQcow2File(abs)) {
    throw bad(abs, "not a qcow2 file (convert it: qemu-img convert -O qcow2 IN OUT.qcow2)");
  }
  return { disk: abs, arch: null };
}
