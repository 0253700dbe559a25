import assert from "node:assert/strict";
import { join } from "node:path";
import { metaData, userDataKind, writeSeed } from "../../../src/image/seed.ts";
import { EmuError } from "../../../src/errors.ts";

Deno.test("seed: the kinds of user-data cloud-init reads", () => {
  assert.equal(userDataKind("#cloud-config\nruncmd: []\n"), "cloud-config");
  assert.equal(userDataKind("#!/bin/sh\necho hi\n"), "script");
  assert.equal(userDataKind("#include\nhttps://x\n"), "include");
  assert.equal(userDataKind("Content-Type: multipart/mixed; boundary=x\n"), "mime");
  assert.equal(userDataKind("runcmd: []\n"), null);
  assert.equal(userDataKind(""), null);
});

Deno.test("seed: meta-data is generated when missing; other files go on the seed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = join(dir, "ud");
    await Deno.mkdir(src);
    await Deno.writeTextFile(join(src, "user-data"), "#cloud-config\n");
    await Deno.writeTextFile(join(src, "provision.sh"), "echo hi\n");
    const files = await writeSeed(src, join(dir, "seed.iso"), "demo");
    assert.deepEqual(files, ["meta-data", "provision.sh", "user-data"]);
    const iso = await Deno.readFile(join(dir, "seed.iso"));
    // Primary volume descriptor at sector 16: the volume label NoCloud looks for.
    const label = new TextDecoder().decode(iso.subarray(16 * 2048 + 40, 16 * 2048 + 72)).trim();
    assert.equal(label, "CIDATA");
    assert.match(metaData("i-1", "demo"), /^instance-id: i-1\nlocal-hostname: demo\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("seed: a missing directory, missing user-data or unknown format is refused, no ISO written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "seed.iso");
    const cases: [string, RegExp][] = [
      [join(dir, "nope"), /it does not exist/],
      [dir, /it has no `user-data` file/],
    ];
    for (const [src, message] of cases) {
      await assert.rejects(
        writeSeed(src, out, "x"),
        (e) => e instanceof EmuError && e.code === "image_build_input" && message.test(e.message),
      );
    }
    await Deno.writeTextFile(join(dir, "user-data"), "packages: [x]\n");
    await assert.rejects(writeSeed(dir, out, "x"), /does not start with #cloud-config/);
    assert.equal(await Deno.stat(out).then(() => true, () => false), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
