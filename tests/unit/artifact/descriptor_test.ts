import assert from "node:assert/strict";
import {
  imageArtifactNames,
  imageArtifactOfFile,
  parseDescriptor,
  releaseFileNames,
} from "../../../src/artifact/descriptor.ts";

const GOOD = {
  schema_version: 1,
  name: "shop",
  version: "1.4.0",
  arch: "x86_64",
  disk: { file: "shop-amd64.qcow2.zst", size: 1024, sha256: "a".repeat(64) },
  boot: { kernel: "shop-amd64.vmlinuz", initrd: "shop-amd64.initrd", append: "console=ttyS0" },
};
const EXPECT = { version: "1.4.0", arch: "x86_64" } as const;

function rejects(raw: unknown, message: RegExp, code = "image_invalid") {
  assert.throws(() => parseDescriptor(JSON.stringify(raw), "d.json", EXPECT), { code, message });
}

Deno.test("descriptor: a good one parses, boot included", () => {
  const d = parseDescriptor(JSON.stringify(GOOD), "d.json", EXPECT);
  assert.deepEqual(d, GOOD);
});

Deno.test("descriptor: it names its version, so a relabelled release is refused", () => {
  rejects(
    { ...GOOD, version: "0.0.9" },
    /^Cannot use the image descriptor d\.json: it describes release 0\.0\.9, but it was published as 1\.4\.0$/,
  );
  rejects({ ...GOOD, arch: "aarch64" }, /it is for "aarch64", not x86_64$/);
});

Deno.test("descriptor: bad fields are named; file names are plain; a newer schema says upgrade", () => {
  rejects(
    { ...GOOD, disk: { ...GOOD.disk, file: "../x" } },
    /disk\.file must be a plain file name$/,
  );
  rejects({ ...GOOD, disk: { ...GOOD.disk, size: -1 } }, /disk\.size must be a byte count$/);
  rejects({ ...GOOD, disk: { ...GOOD.disk, sha256: "A".repeat(64) } }, /disk\.sha256 must be 64/);
  rejects(
    { ...GOOD, boot: { kernel: "/boot/vmlinuz" } },
    /boot\.kernel must be a plain file name$/,
  );
  rejects({ ...GOOD, boot: { ...GOOD.boot, initrd: "a/b" } }, /boot\.initrd must be a plain/);
  rejects(
    { ...GOOD, boot: { ...GOOD.boot, append: "x\u001b[2J" } },
    /boot\.append must be one line/,
  );
  rejects({ ...GOOD, name: "a b" }, /name must be 1–64 letters/);
  rejects({ ...GOOD, version: "1.4" }, /version must be a semantic version$/);
  rejects({ ...GOOD, schema_version: 2 }, /schema_version 2 is not 1$/, "emu_too_old");
  assert.throws(() => parseDescriptor("{", "d.json", EXPECT), { message: /not JSON/ });
});

Deno.test("descriptor: release file and artifact names agree in both directions", () => {
  for (const arch of ["x86_64", "aarch64"] as const) {
    const files = releaseFileNames("shop", arch);
    const artifacts = imageArtifactNames(arch);
    assert.equal(imageArtifactOfFile(files.disk), artifacts.disk);
    assert.equal(imageArtifactOfFile(files.descriptor), artifacts.descriptor);
    assert.equal(imageArtifactOfFile(files.kernel), artifacts.kernel);
    assert.equal(imageArtifactOfFile(files.initrd), artifacts.initrd);
  }
  assert.equal(imageArtifactOfFile("stack-amd64.qcow2"), "image-amd64", "old releases still map");
  assert.equal(imageArtifactOfFile("SHA256SUMS"), null);
});
