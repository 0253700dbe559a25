import assert from "node:assert/strict";
import { join } from "node:path";
import { compressState, decompressStateSparse, isZero } from "../../../src/vm/state_file.ts";
import { EmuError } from "../../../src/errors.ts";

Deno.test("state file: zero blocks are found a word at a time, aligned or not", () => {
  const buf = new Uint8Array(4096 + 3);
  assert.equal(isZero(buf.subarray(0, 4096)), true);
  assert.equal(isZero(buf.subarray(3, 4099)), true);
  buf[4098] = 1;
  assert.equal(isZero(buf.subarray(3, 4099)), false);
  assert.equal(isZero(new Uint8Array([0, 0, 0, 0, 0, 7])), false);
  assert.equal(isZero(new Uint8Array(5)), true);
});

Deno.test("state file: compress then decompress gives the same bytes, holes for zero blocks", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // 8 MiB + 100 bytes: data at odd offsets, across block edges, and at the very end.
    const size = 8 * 1024 * 1024 + 100;
    const raw = join(dir, "state.raw");
    const f = await Deno.open(raw, { write: true, create: true });
    await f.truncate(size);
    for (
      const [at, text] of [[0, "head"], [4094, "edge"], [5_000_000, "mid"], [
        size - 3,
        "end",
      ]] as const
    ) {
      await f.seek(at, Deno.SeekMode.Start);
      await f.write(new TextEncoder().encode(text));
    }
    f.close();
    const zst = join(dir, "state.zst");
    const compressed = await compressState(raw, zst);
    assert.equal(compressed, (await Deno.stat(zst)).size);
    assert.ok(compressed < 64 * 1024, `${compressed} bytes`);

    const out = join(dir, "again.raw");
    const result = await decompressStateSparse(zst, out);
    assert.equal(result.logicalBytes, size);
    // Blocks 0 and 1 (head, edge), the one at 5 MB, and the last partial block.
    assert.equal(result.dataBytes, 3 * 4096 + 100, "only the blocks holding data were written");
    assert.deepEqual(await Deno.readFile(out), await Deno.readFile(raw));
    const st = await Deno.stat(out);
    assert.ok(st.blocks! * 512 <= 64 * 1024, `allocated ${st.blocks! * 512}`);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(),
      ["again.raw", "state.raw", "state.zst"],
      "no temp files",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("state file: a corrupt state.zst is a clear error and leaves no raw file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const zst = join(dir, "state.zst");
    await Deno.writeFile(zst, new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5, 6, 7, 8]));
    await assert.rejects(
      decompressStateSparse(zst, join(dir, "state.raw")),
      (e) =>
        e instanceof EmuError && e.code === "snapshot_failed" &&
        /^Cannot decompress the snapshot state \S+state\.zst: /.test(e.message),
    );
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["state.zst"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
