import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveBase } from "../../../src/image/base.ts";
import { isQcow2Header } from "../../../src/artifact/qcow2.ts";
import { rootfsFiles } from "../../../fixtures/rootfs.ts";
import { outputPaths } from "../../../src/image/build.ts";
import { EmuError } from "../../../src/errors.ts";

const QCOW2_HEAD = new Uint8Array([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]);

Deno.test("base: qcow2 files are recognised by their magic", () => {
  assert.equal(isQcow2Header(QCOW2_HEAD), true);
  assert.equal(isQcow2Header(new TextEncoder().encode("QFI")), false);
  assert.equal(isQcow2Header(new Uint8Array(512)), false);
});

Deno.test("base: a qcow2 file, an image directory, and what is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const disk = join(dir, "base.qcow2");
    await Deno.writeFile(disk, QCOW2_HEAD);
    assert.deepEqual(await resolveBase(disk), { disk, arch: null });

    const imageDir = join(dir, "img");
    await Deno.mkdir(imageDir);
    await Deno.copyFile(disk, join(imageDir, "disk.qcow2"));
    await Deno.writeTextFile(
      join(imageDir, "image.json"),
      JSON.stringify({
        schema_version: 1,
        name: "b",
        version: "1",
        arch: "x86_64",
        disk: "disk.qcow2",
        sha256: "a".repeat(64),
        size: 8,
        source: "t",
        boot: { kernel: "vmlinuz", initrd: "initrd.img", append: "root=/dev/vda" },
      }),
    );
    assert.deepEqual(await resolveBase(imageDir), {
      disk: join(imageDir, "disk.qcow2"),
      arch: "x86_64",
      boot: {
        kernel: join(imageDir, "vmlinuz"),
        initrd: join(imageDir, "initrd.img"),
        append: "root=/dev/vda",
      },
    });

    const raw = join(dir, "raw.img");
    await Deno.writeFile(raw, new Uint8Array(4096));
    const cases: [string, RegExp][] = [
      [join(dir, "missing.qcow2"), /no such file or directory/],
      [raw, /not a qcow2 file \(convert it: qemu-img convert -O qcow2 IN OUT\.qcow2\)/],
      [dir, /a directory without image\.json/],
    ];
    for (const [path, message] of cases) {
      await assert.rejects(
        resolveBase(path),
        (e) => e instanceof EmuError && e.code === "image_build_input" && message.test(e.message),
        path,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("build: an output brings its kernel, initrd, image.json and log beside it", () => {
  assert.deepEqual(outputPaths("/out/stack-1.0.qcow2"), {
    dir: "/out",
    disk: "/out/stack-1.0.qcow2",
    stem: "stack-1.0",
    kernel: "/out/stack-1.0.vmlinuz",
    initrd: "/out/stack-1.0.initrd",
    imageJson: "/out/image.json",
    serialLog: "/out/stack-1.0.build.log",
  });
});

Deno.test("rootfs: the base boots from the whole first disk and probes only NoCloud", () => {
  const files = rootfsFiles("emu");
  assert.equal(files["etc/fstab"], "/dev/vda\t/\text4\trw,discard,errors=remount-ro\t0\t1\n");
  assert.match(files["etc/cloud/cloud.cfg.d/90-emu.cfg"], /^datasource_list: \[NoCloud, None\]$/m);
  assert.match(files["etc/systemd/network/20-emu.network"], /DHCP=ipv4/);
});
