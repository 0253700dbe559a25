/**
 * `emu image build` through the real CLI: bad inputs refused before anything boots, and
 * the whole pipeline (seed, boot under the probe's accelerator, markers, ACPI power-off,
 * `qemu-img convert -c`, sha256, image.json) with the fast fixture as base. The fixture
 * prints EMU_PROVISION_DONE at every boot, so it stands in for a guest that provisions
 * in seconds; the demo stack's real cloud-init build is tests/e2e/demo_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureFastFixture } from "../../fixtures/fast.ts";
import { MAIN, spawnEmu } from "../_helpers/cli.ts";
import { needs, requireTool, TOOLS, VM_TOOLS } from "../_helpers/require.ts";
import { qemuProcessesWith } from "../_helpers/vm_env.ts";

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

async function withBuildDir(fn: (dir: string, env: Record<string, string>) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "emu-build-" });
  const env = { EMU_HOME: join(dir, "home"), EMU_RUNTIME_DIR: join(dir, "run") };
  let failure: unknown = null;
  try {
    await fn(dir, env);
  } catch (err) {
    failure = err;
  }
  const left = await qemuProcessesWith(dir);
  for (const pid of left) Deno.kill(pid, "SIGKILL");
  await Deno.remove(dir, { recursive: true });
  if (failure) throw failure; // the test's own failure first: leftovers are its consequence
  assert.deepEqual(left, [], "no QEMU process outlives the test");
}

async function listDir(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

async function userData(
  dir: string,
  text = '#cloud-config\nruncmd:\n  - [sh, -c, "true"]\n',
): Promise<string> {
  const ud = join(dir, "ud");
  await Deno.mkdir(ud, { recursive: true });
  await Deno.writeTextFile(join(ud, "user-data"), text);
  return ud;
}

Deno.test(
  "image build: bad input is refused with a clear error and nothing written",
  needs(TOOLS.qemuImg),
  () =>
    withBuildDir(async (dir, env) => {
      const ud = await userData(dir);
      const notQcow2 = join(dir, "raw.img");
      await Deno.writeFile(notQcow2, new Uint8Array(65536));
      const out = join(dir, "out");
      await Deno.mkdir(out);
      const cases: [string[], RegExp][] = [
        [
          ["--base", join(dir, "missing.qcow2"), "--user-data", ud, "--out", join(out, "x.qcow2")],
          /^error\[image_build_input\]: Cannot use base \S+missing\.qcow2: no such file or directory\n/,
        ],
        [
          ["--base", notQcow2, "--user-data", ud, "--out", join(out, "x.qcow2")],
          /^error\[image_build_input\]: Cannot use base \S+raw\.img: not a qcow2 file/,
        ],
        [
          ["--base", notQcow2, "--user-data", ud, "--out", join(out, "x.img")],
          /^error\[image_build_input\]: Cannot write \S+x\.img: --out must end in \.qcow2\n/,
        ],
      ];
      const base = join(dir, "base.qcow2");
      const img = await new Deno.Command("qemu-img", {
        args: ["create", "-q", "-f", "qcow2", base, "64M"],
      }).output().catch(() => null);
      if (img?.success) {
        cases.push([
          ["--base", base, "--user-data", join(dir, "nope"), "--out", join(out, "x.qcow2")],
          /^error\[image_build_input\]: Cannot use user-data directory \S+nope: it does not exist\n/,
        ]);
      }
      for (const [args, message] of cases) {
        const r = await spawnEmu(["image", "build", ...args], { env });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, message);
        assert.match(r.stderr, /\nhint: /);
        assert.equal(r.stdout, "");
      }
      assert.deepEqual(await listDir(out), [], "no output, no temp directory");
      // Input errors come before the host probe: nothing was probed or booted.
      assert.equal(await Deno.stat(join(env.EMU_HOME, "probe.json")).catch(() => null), null);
    }),
);

Deno.test(
  "image build: boot, markers, power-off, compressed qcow2, sha256 and image.json",
  needs(TOOLS.qemu, TOOLS.qemuImg, TOOLS.zstd, TOOLS.sha256sum, ...VM_TOOLS),
  async () => {
    if (!await requireTool("qemu-system-x86_64", "qemu-system-x86 (bookworm-backports)")) return;
    if (!await requireTool("qemu-img", "qemu-utils (bookworm-backports)")) return;
    const fixture = await ensureFastFixture({ log: () => {} });
    await withBuildDir(async (dir, env) => {
      const ud = await userData(dir);
      const out = join(dir, "out", "stack.qcow2");
      const r = await spawnEmu([
        "image",
        "build",
        "--base",
        fixture.dir,
        "--user-data",
        ud,
        "--out",
        out,
        "--name",
        "stack",
        "--image-version",
        "1.2.3",
        "--json",
      ], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /seed: meta-data, user-data\n/);
      assert.match(r.stderr, /booting fast \((tcg|kvm), 1024 MiB, 2 vCPU\)\n/);
      assert.match(r.stderr, /provisioned in \d+ s; powering the guest off\n/);
      assert.match(r.stderr, /compressing the disk \(qemu-img convert -c\)\n/);
      const result = JSON.parse(r.stdout);
      assert.equal(result.disk, out);
      assert.deepEqual(await listDir(join(dir, "out")), [
        "image.json",
        "stack.build.log",
        "stack.initrd",
        "stack.qcow2",
        "stack.vmlinuz",
      ]);
      const image = JSON.parse(await Deno.readTextFile(join(dir, "out", "image.json")));
      const sha = new TextDecoder().decode(
        (await new Deno.Command("sha256sum", { args: [out] }).output()).stdout,
      ).split(" ")[0];
      assert.equal(image.sha256, sha);
      assert.equal(image.size, (await Deno.stat(out)).size);
      assert.equal(image.name, "stack");
      assert.equal(image.version, "1.2.3");
      assert.equal(image.arch, "x86_64");
      assert.deepEqual(image.boot, {
        kernel: "stack.vmlinuz",
        initrd: "stack.initrd",
        append: JSON.parse(await Deno.readTextFile(join(fixture.dir, "image.json"))).boot.append,
      });
      // A standalone qcow2 (no backing file), compressed, that qemu-img finds consistent.
      const info = JSON.parse(new TextDecoder().decode(
        (await new Deno.Command("qemu-img", { args: ["info", "--output=json", out] }).output())
          .stdout,
      ));
      assert.equal(info.format, "qcow2");
      assert.equal(info["backing-filename"], undefined);
      assert.equal(info["format-specific"].data["compression-type"], "zstd");
      const check = await new Deno.Command("qemu-img", { args: ["check", out] }).output();
      assert.equal(check.success, true, new TextDecoder().decode(check.stdout));
      assert.deepEqual(
        await Deno.readFile(join(dir, "out", "stack.vmlinuz")),
        await Deno.readFile(join(fixture.dir, "vmlinuz")),
      );
      // The console log is kept and shows the guest's own marker.
      assert.match(
        await Deno.readTextFile(join(dir, "out", "stack.build.log")),
        /EMU_PROVISION_DONE/,
      );
    });
  },
);

Deno.test(
  "image build: a guest that never reports times out; QEMU killed, no output, log kept",
  needs(TOOLS.qemu, ...VM_TOOLS),
  async () => {
    if (!await requireTool("qemu-system-x86_64", "qemu-system-x86 (bookworm-backports)")) return;
    const fixture = await ensureFastFixture({ log: () => {} });
    await withBuildDir(async (dir, env) => {
      const ud = await userData(dir);
      const out = join(dir, "out", "stack.qcow2");
      // The fixture reports after about 3 s; one second is too short.
      const r = await spawnEmu([
        "image",
        "build",
        "--base",
        fixture.dir,
        "--user-data",
        ud,
        "--out",
        out,
        "--timeout",
        "1",
      ], { env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /error\[provision_timeout\]: Cannot build the image: the guest did not report EMU_PROVISION_DONE within 1 s \(last step: booting\)/,
      );
      assert.match(
        r.stderr,
        /hint: Nothing was written\. The whole console is in \S+stack\.build\.log; a slow machine may need a longer --timeout\./,
      );
      assert.deepEqual(await listDir(join(dir, "out")), ["stack.build.log"]);
    });
  },
);

Deno.test(
  "image build: user-data that fails cloud-init's schema is a warning, and with --strict refused before any boot",
  needs(TOOLS.qemu, TOOLS.qemuImg, TOOLS.cloudInit, ...VM_TOOLS),
  async () => {
    const fixture = await ensureFastFixture({ log: () => {} });
    await withBuildDir(async (dir, env) => {
      const ud = await userData(
        dir,
        '#cloud-config\nssh_genkeytypes: []\nruncmd:\n  - [sh, -c, "true"]\n',
      );
      const out = join(dir, "out", "stack.qcow2");
      const args = ["image", "build", "--base", fixture.dir, "--user-data", ud, "--out", out];
      const strict = await spawnEmu([...args, "--strict"], { env });
      assert.equal(strict.code, 1);
      assert.match(
        strict.stderr,
        /^error\[image_build_input\]: Cannot build from .*\/ud: its user-data fails cloud-init's schema:\n {2}ssh_genkeytypes: \[\] is too short\n/,
      );
      assert.equal(
        await Deno.stat(join(dir, "out")).then(() => true, () => false),
        false,
        "nothing written, nothing booted",
      );
      const lenient = await spawnEmu(args, { env });
      assert.equal(lenient.code, 0, lenient.stderr);
      assert.match(
        lenient.stderr,
        /warning: .*\/ud\/user-data fails cloud-init's schema \(cloud-init schema --config-file\):\n {2}ssh_genkeytypes: \[\] is too short\n/,
      );
    });
  },
);

Deno.test(
  "image build: a build killed mid-way (its QEMU still provisioning) is cleaned up by the next build into that directory",
  needs(TOOLS.qemu, TOOLS.qemuImg, ...VM_TOOLS),
  async () => {
    const fixture = await ensureFastFixture({ log: () => {} });
    await withBuildDir(async (dir, env) => {
      const ud = await userData(dir);
      const out = join(dir, "out", "stack.qcow2");
      const args = ["image", "build", "--base", fixture.dir, "--user-data", ud, "--out", out];
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--config", CONFIG, MAIN, ...args],
        env,
        stdout: "null",
        stderr: "null",
      }).spawn();
      // Wait for the daemonized QEMU's own pid file in the build's work directory.
      let orphan = 0;
      for (let i = 0; i < 1500 && orphan === 0; i++) {
        for (const e of await listDir(join(dir, "out")).catch(() => [])) {
          if (!e.startsWith(".emu-build-")) continue;
          const text = await Deno.readTextFile(join(dir, "out", e, "qemu.pid")).catch(() => "");
          orphan = Number(text.trim()) || 0;
        }
        if (orphan === 0) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(orphan > 0, "the build's QEMU started");
      // Until QEMU's daemonizing parent has exited, two processes carry its command line.
      for (let i = 0; i < 250; i++) {
        if ((await qemuProcessesWith(join(dir, "out"))).length === 1) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const orphans = [orphan];
      child.kill("SIGKILL");
      await child.status;
      assert.deepEqual(await qemuProcessesWith(join(dir, "out")), orphans, "left running");

      const r = await spawnEmu(args, { env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`stopping QEMU \\(pid ${orphans[0]}\\) of an interrupted build`),
      );
      assert.deepEqual(await qemuProcessesWith(join(dir, "out")), [], "no QEMU left");
      assert.deepEqual(await listDir(join(dir, "out")), [
        "image.json",
        "stack.build.log",
        "stack.initrd",
        "stack.qcow2",
        "stack.vmlinuz",
      ]);
    });
  },
);
