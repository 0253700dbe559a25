/**
 * `qemu-img`, the one place emu runs it: reading an overlay's backing file and the
 * compressed flattening of a built disk (overlays themselves are written by emu:
 * `qcow2_overlay.ts`). Errors have one shape: `qemu_missing` when it is not installed,
 * `qemu_failed` with its own words.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { runProgram } from "../process.ts";

function requireImg(qemuImg: string | null, what: string): string {
  if (qemuImg === null) {
    throw new EmuError("qemu_missing", `Cannot ${what}: qemu-img is not installed`, {
      hint: "Install qemu-utils (Debian) or qemu (Homebrew).",
    });
  }
  return qemuImg;
}

async function img(qemuImg: string, args: string[], what: string): Promise<string> {
  const r = await runProgram(qemuImg, args);
  if (!r.ok) {
    throw new EmuError(
      "qemu_failed",
      `Cannot ${what}: qemu-img ${args[0]} failed: ${(r.spawnError ?? r.stderr).trim()}`,
    );
  }
  return r.stdout;
}

/**
 * The backing file `overlay` names (absolute, as emu writes them). `-U`: the overlay may
 * be open in a running QEMU.
 */
export async function backingFile(qemuImg: string | null, overlay: string): Promise<string> {
  const binary = requireImg(qemuImg, `read the backing file of ${overlay}`);
  const info = JSON.parse(
    await img(binary, ["info", "-U", "--output=json", overlay], `read ${overlay}`),
  );
  const backing = info["full-backing-filename"] ?? info["backing-filename"];
  if (typeof backing !== "string") {
    throw new EmuError("image_invalid", `Cannot use ${overlay}: it has no backing file`);
  }
  return backing;
}

/**
 * `qemu-img convert -c`: flattens `from` (an overlay) onto its backing chain into `to`,
 * its clusters zstd-compressed, then fsyncs `to`.
 */
export async function convertCompressed(
  qemuImg: string | null,
  from: string,
  to: string,
): Promise<void> {
  const binary = requireImg(qemuImg, "compress the disk");
  await img(
    binary,
    ["convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", from, to],
    "compress the built disk",
  );
  using file = await Deno.open(to, { read: true, write: true });
  await file.sync();
}
