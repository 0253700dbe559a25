/**
 * qcow2 overlays: a run disk or capture disk whose backing file is an image (absolute
 * path: QEMU resolves it after changing directory).
 *
 * @module
 */
import { EmuError } from "../errors.ts";

/** Creates `overlay` backed by `backing`, atomically (temp file, rename). */
export async function createOverlay(
  qemuImg: string | null,
  backing: string,
  overlay: string,
): Promise<void> {
  if (qemuImg === null) {
    throw new EmuError("qemu_missing", "Cannot create a disk overlay: qemu-img is not installed", {
      hint: "Install qemu-utils (Debian) or qemu (Homebrew).",
    });
  }
  const temp = `${overlay}.tmp-${crypto.randomUUID()}`;
  const out = await new Deno.Command(qemuImg, {
    args: ["create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", temp],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(temp).catch(() => {});
    throw new EmuError(
      "qemu_failed",
      `Cannot create ${overlay}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  await Deno.rename(temp, overlay);
}
