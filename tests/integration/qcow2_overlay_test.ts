/**
 * emu's own qcow2 overlay (src/qemu/qcow2_overlay.ts) against the real `qemu-img`: byte
 * for byte what `qemu-img create -f qcow2 -b BACKING -F qcow2` writes, for backing files
 * of several sizes (an L1 table of one entry up to QEMU's largest, 32 MiB for 2 PiB), and
 * a file `qemu-img check` finds clean and `qemu-img info` reads as the same overlay; a
 * header declaring more than that is refused.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createOverlay, qcow2VirtualSize } from "../../src/qemu/qcow2_overlay.ts";
import { EmuError } from "../../src/errors.ts";
import { needs, requireTools, TOOLS } from "../_helpers/require.ts";

async function qemuImg(...args: string[]): Promise<string> {
  const out = await new Deno.Command("qemu-img", { args }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `qemu-img ${args.join(" ")}: ${text}`);
  return text;
}

const SIZES = ["1M", "511M", "4G", "10G", "5000G", "70T", "2P"]; // 2P: QEMU's largest

Deno.test(
  "qcow2 overlay: the same bytes as qemu-img create, for backing files of every size",
  needs(TOOLS.qemuImg),
  async () => {
    await requireTools(TOOLS.qemuImg);
    const dir = await Deno.makeTempDir({ prefix: "emu-qcow2-" });
    try {
      for (const size of SIZES) {
        const backing = join(dir, `backing-${size}.qcow2`);
        await qemuImg("create", "-q", "-f", "qcow2", backing, size);
        const theirs = join(dir, `theirs-${size}.qcow2`);
        await qemuImg("create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", theirs);
        const ours = join(dir, `ours-${size}.qcow2`);
        await createOverlay(backing, ours);
        assert.deepEqual(await Deno.readFile(ours), await Deno.readFile(theirs), size);
        assert.equal((await Deno.stat(ours)).mode! & 0o777, 0o600);
        await qemuImg("check", "-q", ours);
        const info = JSON.parse(await qemuImg("info", "--output=json", ours));
        assert.equal(info["backing-filename"], backing);
        assert.equal(info["backing-filename-format"], "qcow2");
        assert.equal(info["virtual-size"], Number(await qcow2VirtualSize(backing)));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("qcow2 overlay: a backing file that is not qcow2 is refused, nothing written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "emu-qcow2-" });
  try {
    const raw = join(dir, "disk.raw");
    await Deno.writeFile(raw, new Uint8Array(4096));
    await assert.rejects(
      createOverlay(raw, join(dir, "run.qcow2")),
      (err: unknown) =>
        err instanceof EmuError && err.code === "image_invalid" &&
        err.message === `Cannot make an overlay of ${raw}: it is not a qcow2 file`,
    );
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["disk.raw"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "qcow2 overlay: a header declaring more than QEMU's qcow2 holds is refused, nothing written",
  needs(TOOLS.qemuImg),
  async () => {
    await requireTools(TOOLS.qemuImg);
    const dir = await Deno.makeTempDir({ prefix: "emu-qcow2-" });
    try {
      const backing = join(dir, "huge.qcow2");
      await qemuImg("create", "-q", "-f", "qcow2", backing, "1M");
      // The virtual size field (offset 24) rewritten to 2 PiB + 512 bytes.
      const bytes = await Deno.readFile(backing);
      new DataView(bytes.buffer).setBigUint64(24, 2n ** 51n + 512n);
      await Deno.writeFile(backing, bytes);
      await assert.rejects(
        createOverlay(backing, join(dir, "run.qcow2")),
        (err: unknown) =>
          err instanceof EmuError && err.code === "image_invalid" &&
          err.message ===
            `Cannot make an overlay of a ${2n ** 51n + 512n}-byte disk: QEMU's qcow2 goes up to ${
              2n ** 51n
            } bytes`,
      );
      assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), [
        "huge.qcow2",
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
