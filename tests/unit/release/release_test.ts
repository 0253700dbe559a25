import assert from "node:assert/strict";
import { parseManifest } from "../../../src/artifact/manifest.ts";
import { parseSha256Sums } from "../../../src/artifact/sha256sums.ts";
import {
  addRelease,
  artifactOf,
  releaseEntry,
  renderFormula,
  sha256SumsText,
} from "../../../release/lib.ts";

const GOLDEN = new URL("./emu.rb.golden", import.meta.url);
const hex = (c: string) => c.repeat(64);

Deno.test("release: SHA256SUMS is sorted sha256sum format that emu reads back", () => {
  const text = sha256SumsText([
    { name: "emu-x86_64-unknown-linux-gnu.tar.gz", sha256: hex("b") },
    { name: "emu-aarch64-apple-darwin.tar.gz", sha256: hex("a") },
  ]);
  assert.equal(
    text,
    `${hex("a")}  emu-aarch64-apple-darwin.tar.gz\n${
      hex("b")
    }  emu-x86_64-unknown-linux-gnu.tar.gz\n`,
  );
  assert.equal(parseSha256Sums(text).get("emu-aarch64-apple-darwin.tar.gz"), hex("a"));
});

Deno.test("release: artifact names of published files", () => {
  assert.equal(artifactOf("emu-x86_64-unknown-linux-gnu.tar.gz"), "emu-x86_64-unknown-linux-gnu");
  assert.equal(artifactOf("emu-x86_64-pc-windows-msvc.zip"), "emu-x86_64-pc-windows-msvc");
  assert.equal(artifactOf("stack-amd64.qcow2.zst"), "image-amd64");
  assert.equal(artifactOf("stack-arm64.qcow2"), "image-arm64");
  assert.equal(artifactOf("emu-sparc-sun-solaris.tar.gz"), null);
  assert.equal(artifactOf("SHA256SUMS"), null);
  assert.equal(artifactOf("install.sh"), null);
});

Deno.test("release: the manifest grows newest first; latest_stable skips pre-releases", () => {
  const files = ["emu-x86_64-unknown-linux-gnu.tar.gz", "SHA256SUMS", "stack-amd64.qcow2.zst"];
  const r1 = releaseEntry("v1.0.0", "2026-11-01T00:00:00Z", "https://h/r/v1.0.0/", files);
  assert.deepEqual(r1, {
    version: "1.0.0",
    released_at: "2026-11-01T00:00:00Z",
    sha256sums_url: "https://h/r/v1.0.0/SHA256SUMS",
    sha256sums_sig_url: "https://h/r/v1.0.0/SHA256SUMS.sig",
    artifacts: {
      "emu-x86_64-unknown-linux-gnu": "https://h/r/v1.0.0/emu-x86_64-unknown-linux-gnu.tar.gz",
      "image-amd64": "https://h/r/v1.0.0/stack-amd64.qcow2.zst",
    },
  });
  let m = addRelease(null, r1);
  m = addRelease(
    m,
    releaseEntry("1.1.0-rc.1", "2026-11-10T00:00:00Z", "https://h/r/v1.1.0-rc.1", files),
  );
  assert.equal(m.latest_stable, "1.0.0");
  m = addRelease(m, releaseEntry("1.1.0", "2026-11-20T00:00:00Z", "https://h/r/v1.1.0", files));
  m = addRelease(m, releaseEntry("0.9.0", "2026-10-01T00:00:00Z", "https://h/r/v0.9.0", files));
  assert.equal(m.latest_stable, "1.1.0");
  assert.deepEqual(m.releases.map((r) => r.version), ["1.1.0", "1.1.0-rc.1", "1.0.0", "0.9.0"]);
  // Re-publishing a version replaces it.
  m = addRelease(m, { ...r1, released_at: "2026-11-02T00:00:00Z" });
  assert.equal(m.releases.filter((r) => r.version === "1.0.0").length, 1);
  assert.deepEqual(parseManifest(JSON.stringify(m), "test"), m);
});

Deno.test("release: the Homebrew formula matches the golden file", async () => {
  const sums = new Map([
    ["emu-aarch64-apple-darwin.tar.gz", hex("1")],
    ["emu-x86_64-apple-darwin.tar.gz", hex("2")],
    ["emu-aarch64-unknown-linux-gnu.tar.gz", hex("3")],
    ["emu-x86_64-unknown-linux-gnu.tar.gz", hex("4")],
  ]);
  const formula = renderFormula({
    version: "v1.4.0",
    baseUrl: "https://github.com/OWNER/emu/releases/download/v1.4.0",
    homepage: "https://github.com/OWNER/emu",
    sums,
  });
  if (Deno.env.get("UPDATE_GOLDEN") === "1") await Deno.writeTextFile(GOLDEN, formula);
  assert.equal(formula, await Deno.readTextFile(GOLDEN));
  sums.delete("emu-x86_64-apple-darwin.tar.gz");
  assert.throws(
    () => renderFormula({ version: "1", baseUrl: "u", homepage: "h", sums }),
    /SHA256SUMS has no emu-x86_64-apple-darwin\.tar\.gz/,
  );
});
