/**
 * arm64 guests under TCG on this x86_64 host, through the real `emu` process: the fast
 * arm64 fixture (Debian's arm64 kernel, busybox and qemu-ga, direct kernel boot on the
 * `virt` machine) through cold start, exec, capture, resume with rotation, suspend, stop
 * and reset; and an arm64 image build (`emu image build --arch arm64`) from the
 * firmware-bootable arm64 fixture.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureFastFixture } from "../../fixtures/fast.ts";
import { ensureBootableFixture } from "../../fixtures/bootable.ts";
import { spawnEmu } from "../_helpers/cli.ts";
import { ARM64_TOOLS, BOOTABLE_TOOLS, needs, requireTools, TOOLS } from "../_helpers/require.ts";
import {
  fastGuestHealth,
  freePort,
  PLACEHOLDER_SECRET_SHA256,
  qemuProcessesWith,
  secretHash,
  withVmEnv,
} from "../_helpers/vm_env.ts";

const arm64Profile = async () =>
  (await ensureFastFixture({ log: () => {}, arch: "aarch64" })).profile;

Deno.test(
  "arm64: cold start → exec (aarch64) → stop → capture → resume with rotation → suspend → resume → stop → reset",
  needs(...ARM64_TOOLS),
  async () => {
    await requireTools(...ARM64_TOOLS);
    await withVmEnv(async (vm) => {
      const port = freePort();
      const cold = await vm.emu(["start", "--cold", "--json", "--port", `http=${port}`]);
      assert.equal(cold.code, 0, cold.stderr);
      const started = JSON.parse(cold.stdout);
      assert.equal(started.boot, "cold");
      assert.equal(started.state, "running");
      assert.equal(started.image.name, "emu-fast-fixture-arm64");
      assert.deepEqual(started.health.map((h: { ok: boolean }) => h.ok), [true]);
      const coldSecret = await secretHash(port);

      const uname = await vm.emu(["exec", "--", "uname", "-m"]);
      assert.equal(uname.code, 0, uname.stderr);
      assert.equal(uname.stdout, "aarch64\n");
      // The guest's console is the PL011 UART of the virt machine.
      const cmdline = await vm.emu(["exec", "--", "cat", "/proc/cmdline"]);
      assert.match(cmdline.stdout, /console=ttyAMA0/);

      // The QEMU command line: the versioned virt machine with GICv3, the measured CPU
      // model, no vmgenid (QEMU has none for arm64).
      const [pid] = await qemuProcessesWith(vm.dir);
      const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
      assert.match(argv[0], /qemu-system-aarch64$/);
      assert.match(argv[argv.indexOf("-machine") + 1], /^virt-\d+\.\d+,gic-version=3$/);
      assert.equal(argv[argv.indexOf("-cpu") + 1], "neoverse-n1");
      assert.ok(!argv.includes("vmgenid,id=vmgen0"));
      assert.ok(!argv.some((a) => a.startsWith("if=pflash")), "direct kernel boot: no firmware");

      // The power button (a PL061 GPIO line, gpio-keys in the guest) powers it off.
      const stop = await vm.emu(["stop", "--json"]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(JSON.parse(stop.stdout).method, "powerdown");
      assert.match(
        await Deno.readTextFile(join(vm.home, "instances", "default", "serial.log")),
        /reboot: Power down/,
      );

      const capture = await vm.emu(["capture", "--json"]);
      assert.equal(capture.code, 0, capture.stderr);
      const snap = JSON.parse(capture.stdout);
      const meta = JSON.parse(
        await Deno.readTextFile(join(snap.dir, "snapshot.json")),
      );
      assert.match(meta.machine, /^virt-\d+\.\d+,gic-version=3$/);
      assert.equal(meta.cpu, "neoverse-n1");
      assert.equal(meta.accel, "tcg");
      assert.equal(meta.firmware, undefined);
      assert.ok(meta.state.allocated_bytes > 0);

      const resumed = await vm.emu(["start", "--json", "--port", `http=${port}`]);
      assert.equal(resumed.code, 0, resumed.stderr);
      const r = JSON.parse(resumed.stdout);
      assert.equal(r.boot, "resume");
      assert.equal(r.fallback, null);
      assert.ok(r.timings.rotate > 0, "rotation ran");
      const afterResume = await fastGuestHealth(port);
      assert.equal(afterResume.instance, "default");
      assert.notEqual(afterResume.secretSha256, coldSecret);
      // The secret is the one emu generated at this start, not the snapshot's placeholder.
      assert.notEqual(afterResume.secretSha256, PLACEHOLDER_SECRET_SHA256);
      // The guest clock is the host's again (within a second) after the resume.
      const before = Math.floor(Date.now() / 1000);
      const date = await vm.emu(["exec", "--", "date", "+%s"]);
      const after = Math.ceil(Date.now() / 1000);
      const guest = Number(date.stdout.trim());
      assert.ok(
        guest >= before - 1 && guest <= after + 1,
        `guest ${guest}, host ${before}..${after}`,
      );

      const suspend = await vm.emu(["suspend"]);
      assert.equal(suspend.code, 0, suspend.stderr);
      const again = await vm.emu(["start", "--json", "--port", `http=${port}`]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).boot, "suspend");
      assert.equal(
        await secretHash(port),
        afterResume.secretSha256,
        "secrets kept",
      );

      assert.equal((await vm.emu(["stop"])).code, 0);
      const reset = await vm.emu(["reset"]);
      assert.equal(reset.code, 0, reset.stderr);
      assert.equal(
        await Deno.stat(join(vm.home, "instances", "default")).then(() => true, () => false),
        false,
      );
    }, { profile: arm64Profile });
  },
);

Deno.test(
  "arm64: emu image build --arch arm64 from the UEFI-bootable arm64 fixture, then the image boots",
  needs(...ARM64_TOOLS, ...BOOTABLE_TOOLS, TOOLS.aavmf, TOOLS.qemuImg),
  async () => {
    await requireTools(...ARM64_TOOLS, ...BOOTABLE_TOOLS, TOOLS.aavmf, TOOLS.qemuImg);
    const base = await ensureBootableFixture({ log: () => {}, arch: "aarch64" });
    const dir = await Deno.makeTempDir({ prefix: "emu-vm-arm64-build-" });
    const env = { EMU_HOME: join(dir, "home"), EMU_RUNTIME_DIR: join(dir, "run") };
    try {
      const ud = join(dir, "ud");
      await Deno.mkdir(ud);
      await Deno.writeTextFile(join(ud, "user-data"), "#cloud-config\nruncmd:\n  - [true]\n");
      const out = join(dir, "out", "stack.qcow2");
      const build = await spawnEmu([
        "image",
        "build",
        "--arch",
        "arm64",
        "--base",
        base.dir,
        "--user-data",
        ud,
        "--out",
        out,
        "--name",
        "stack-arm64",
        "--json",
      ], { env });
      assert.equal(build.code, 0, build.stderr);
      assert.match(
        build.stderr,
        /an aarch64 guest emulated on this x86_64 machine \(TCG\) provisions slower: waiting up to 5400 s \(--timeout 1800 × 3\)\n/,
      );
      assert.match(build.stderr, /provisioned in \d+ s; powering the guest off\n/);
      const image = JSON.parse(await Deno.readTextFile(join(dir, "out", "image.json")));
      assert.equal(image.arch, "aarch64");
      assert.equal(image.boot, undefined, "a firmware-booted base gives a firmware-booted image");
      // The build's own variable store went with its work directory.
      const left = (await Array.fromAsync(Deno.readDir(join(dir, "out")))).map((e) => e.name)
        .sort();
      assert.deepEqual(left, ["image.json", "stack.build.log", "stack.qcow2"]);
      assert.match(
        await Deno.readTextFile(join(dir, "out", "stack.build.log")),
        /EMU_PROVISION_DONE/,
      );

      // The built image cold-boots under UEFI to healthy.
      const profile = join(dir, "emu.json");
      await Deno.writeTextFile(
        profile,
        JSON.stringify({
          ...JSON.parse(await Deno.readTextFile(base.profile)),
          image: { source: join(dir, "out") },
        }),
      );
      const port = freePort();
      const start = await spawnEmu(
        ["--config", profile, "start", "--cold", "--json", "--port", `http=${port}`],
        { env },
      );
      assert.equal(start.code, 0, start.stderr);
      assert.equal(JSON.parse(start.stdout).image.name, "stack-arm64");
      const exec = await spawnEmu(
        ["--config", profile, "exec", "--", "cat", "/data/fixture-disk"],
        {
          env,
        },
      );
      assert.equal(exec.stdout, "bootable aarch64\n");
      assert.equal((await spawnEmu(["--config", profile, "stop"], { env })).code, 0);
    } finally {
      const left = await qemuProcessesWith(dir);
      for (const pid of left) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
      assert.deepEqual(left, [], "no QEMU process outlives the test");
    }
  },
);
