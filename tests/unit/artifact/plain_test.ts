import assert from "node:assert/strict";
import { parseSha256File, pinnedSha256 } from "../../../src/artifact/plain.ts";
import { isPlainImageSource } from "../../../src/artifact/source_kind.ts";
import { EmuError } from "../../../src/errors.ts";

const HEX = "ab".repeat(32);

Deno.test("plain sources: qcow2 files and URLs, optionally .zst; nothing else", () => {
  for (
    const s of [
      "/srv/stack.qcow2",
      "/srv/stack.qcow2.zst",
      "https://x.test/a/stack.qcow2",
      `https://x.test/a/stack.qcow2.zst#sha256=${HEX}`,
      "https://x.test/a/stack.qcow2?token=1",
    ]
  ) assert.equal(isPlainImageSource(s), true, s);
  for (
    const s of [
      "https://x.test/manifest.json",
      "/srv/manifest.json",
      "/srv/image-dir",
      "/srv/stack.img",
      "github:o/r",
      "https://x.test/stack.qcow2/manifest.json",
    ]
  ) assert.equal(isPlainImageSource(s), false, s);
});

Deno.test("plain sources: a #sha256= pin, lower-cased; anything else is no pin", () => {
  assert.equal(pinnedSha256(`https://x/s.qcow2#sha256=${HEX.toUpperCase()}`), HEX);
  assert.equal(pinnedSha256("https://x/s.qcow2"), null);
  assert.equal(pinnedSha256("https://x/s.qcow2#sha256=abc"), null);
});

Deno.test("plain sources: .sha256 files in sha256sum format", () => {
  assert.equal(parseSha256File(`${HEX}\n`, "s.qcow2", "u"), HEX);
  assert.equal(parseSha256File(`${HEX}  s.qcow2\n`, "s.qcow2", "u"), HEX);
  assert.equal(parseSha256File(`${HEX} *s.qcow2\n`, "s.qcow2", "u"), HEX);
  assert.equal(
    parseSha256File(`${"0".repeat(64)}  other.qcow2\n${HEX}  s.qcow2\n`, "s.qcow2", "u"),
    HEX,
  );
  for (
    const bad of ["", "not a hash\n", `${"0".repeat(64)}  other.qcow2\n${HEX}  x\n`, "abc  s.qcow2"]
  ) {
    assert.throws(
      () => parseSha256File(bad, "s.qcow2", "https://x/s.qcow2"),
      (e) =>
        e instanceof EmuError && e.code === "checksums_invalid" &&
        /^Cannot verify https:\/\/x\/s\.qcow2: its \.sha256 file has no hash for s\.qcow2$/.test(
          e.message,
        ),
      JSON.stringify(bad),
    );
  }
});
