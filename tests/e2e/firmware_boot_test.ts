/**
 * Images that boot through firmware, like cloud images (no `boot` in image.json): the
 * bootable fixtures (fixtures/bootable.ts) — x86_64 under SeaBIOS with SYSLINUX, arm64
 * under UEFI (edk2) with systemd-boot — cold-boot to healthy, are captured and resumed;
 * the arm64 one carries its UEFI variable store with the capture, each instance and each
 * checkpoint. Without UEFI firmware on the host, the arm64 image is refused with the
 * package to install, and nothing is left behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureBootableFixture } from "../../fixtures/bootable.ts";
import type { FixtureArch } from "../../fixtures/fast.ts";
import { ARM64_TOOLS, BOOTABLE_TOOLS, needs, requireTools, TOOLS } from "../_helpers/require.ts";
import { freePort, qemuProcessesWith, withVmEnv } from "../_helpers/vm_env.ts";
import { emuArgs } from "../_helpers/cli.ts";

const AAVMF_VARS = "/usr/share/AAVMF/AAVMF_VARS.fd";

for (const arch of ["x86_64", "aarch64"] as FixtureArch[]) {
  const tools = arch === "x86_64"
    ? BOOTABLE_TOOLS
    : [...BOOTABLE_TOOLS, ...ARM64_TOOLS, TOOLS.aavmf];
  Deno.test(
    `firmware boot (${
      arch === "x86_64" ? "x86_64, SeaBIOS + SYSLINUX" : "arm64, UEFI + systemd-boot"
    }): cold boot → healthy → capture → resume → data partition read`,
    needs(...tools),
    async () => {
      await requireTools(...tools);
      await withVmEnv(async (vm) => {
        const port = freePort();
        const cold = await vm.emu(["start", "--cold", "--json", "--port", `http=${port}`]);
        assert.equal(cold.code, 0, cold.stderr);
        assert.equal(JSON.parse(cold.stdout).boot, "cold");
        const [pid] = await qemuProcessesWith(vm.dir);
        const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
        assert.ok(!argv.includes("-kernel"), "the image's own bootloader, not direct kernel boot");
        assert.ok(argv.includes("virtio-blk-pci,drive=disk0,id=vd0,bootindex=0"));
        const instanceVars = join(vm.home, "instances", "default", "efivars.fd");
        if (arch === "aarch64") {
          assert.ok(
            argv.includes(
              "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd",
            ),
          );
          assert.ok(argv.includes(`if=pflash,format=raw,unit=1,file=${instanceVars}`));
          const info = await Deno.stat(instanceVars);
          assert.equal(info.mode! & 0o777, 0o600);
          assert.equal(info.size, (await Deno.stat(AAVMF_VARS)).size);
        } else {
          assert.ok(
            !argv.some((a) => a.includes("pflash") || a === "-bios"),
            "SeaBIOS, QEMU's own",
          );
          assert.equal(await Deno.stat(instanceVars).catch(() => null), null);
        }
        const disk = await vm.emu(["exec", "--", "cat", "/data/fixture-disk"]);
        assert.equal(disk.stdout, `bootable ${arch}\n`, "the ext4 data partition of the disk");
        const uname = await vm.emu(["exec", "--", "uname", "-m"]);
        assert.equal(uname.stdout, `${arch}\n`);
        const stop = await vm.emu(["stop", "--json"]);
        assert.equal(JSON.parse(stop.stdout).method, "powerdown", stop.stderr);

        const resumed = await vm.emu(["start", "--json", "--port", `http=${port}`]);
        assert.equal(resumed.code, 0, resumed.stderr);
        const r = JSON.parse(resumed.stdout);
        assert.equal(r.boot, "resume");
        assert.equal(r.fallback, null);
        assert.deepEqual(r.health.map((h: { ok: boolean }) => h.ok), [true]);
        const snapshots = join(vm.home, "snapshots");
        const [imageDir] = await Array.fromAsync(Deno.readDir(snapshots));
        const snapDir = join(snapshots, imageDir.name, r.snapshot);
        const meta = JSON.parse(await Deno.readTextFile(join(snapDir, "snapshot.json")));
        if (arch === "aarch64") {
          // The capture's NVRAM lives with the capture disk; the firmware is in the fingerprint.
          assert.equal(
            (await Deno.stat(join(snapDir, "efivars.fd"))).size,
            (await Deno.stat(AAVMF_VARS)).size,
          );
          assert.match(
            meta.firmware,
            /^\/usr\/share\/AAVMF\/AAVMF_CODE\.fd \d+ \S+; \/usr\/share\/AAVMF\/AAVMF_VARS\.fd \d+ \S+$/,
          );
          assert.deepEqual(
            await Deno.readFile(instanceVars),
            await Deno.readFile(join(snapDir, "efivars.fd")),
            "the instance resumed on a copy of the capture's variable store",
          );
          // A checkpoint keeps the variable store that goes with its RAM.
          const save = await vm.emu(["checkpoint", "save", "seeded"]);
          assert.equal(save.code, 0, save.stderr);
          const cpVars = join(
            vm.home,
            "instances",
            "default",
            "checkpoints",
            "seeded",
            "efivars.fd",
          );
          assert.equal((await Deno.stat(cpVars)).size, (await Deno.stat(AAVMF_VARS)).size);
          const restore = await vm.emu(["checkpoint", "restore", "seeded"]);
          assert.equal(restore.code, 0, restore.stderr);
          assert.deepEqual(await Deno.readFile(instanceVars), await Deno.readFile(cpVars));
        } else {
          assert.equal(meta.firmware, undefined);
        }
        const again = await vm.emu(["exec", "--", "cat", "/data/fixture-disk"]);
        assert.equal(again.stdout, `bootable ${arch}\n`);
        assert.equal((await vm.emu(["stop"])).code, 0);
        if (arch === "aarch64") {
          // Without the capture's variable store the RAM cannot be resumed (the template's
          // would not match it): the start says which file, cold-boots, and marks it bad.
          const snapVars = join(snapDir, "efivars.fd");
          await Deno.chmod(snapVars, 0o600);
          await Deno.remove(snapVars);
          const fallback = await vm.emu(["start", "--json", "--port", `http=${port}`]);
          assert.equal(fallback.code, 0, fallback.stderr);
          const f = JSON.parse(fallback.stdout);
          assert.equal(f.boot, "cold");
          assert.equal(
            f.fallback,
            `resume failed (its UEFI variable store ${snapVars} is missing); snapshot marked bad, it will be recaptured`,
          );
          const bad = JSON.parse(await Deno.readTextFile(join(snapDir, "snapshot.json")));
          assert.equal(bad.bad?.reason, `its UEFI variable store ${snapVars} is missing`);
          assert.equal((await vm.emu(["stop"])).code, 0);
        }
      }, { profile: async () => (await ensureBootableFixture({ log: () => {}, arch })).profile });
    },
  );
}

Deno.test(
  "firmware boot: no UEFI firmware on the host → firmware_missing naming the package, nothing started or left",
  needs(...BOOTABLE_TOOLS, ...ARM64_TOOLS, { name: "unshare", pkg: "util-linux" }),
  async () => {
    await requireTools(...BOOTABLE_TOOLS, ...ARM64_TOOLS, { name: "unshare", pkg: "util-linux" });
    if (Deno.uid() !== 0) {
      // Hiding the firmware needs a private mount namespace; CI runs as root.
      if (Deno.env.get("CI") === "true") throw new Error("this test needs root in CI");
      console.warn(
        "SKIPPED (needs root): the firmware-missing test hides /usr/share/AAVMF with a mount",
      );
      return;
    }
    await withVmEnv(async (vm) => {
      // The firmware is hidden from emu alone: a private mount namespace with empty
      // directories over every place Debian puts it.
      const hide = [
        "/usr/share/AAVMF",
        "/usr/share/qemu-efi-aarch64",
      ].filter((d) => {
        try {
          return Deno.statSync(d).isDirectory;
        } catch {
          return false;
        }
      }).map((d) => `mount -t tmpfs tmpfs ${d}`).join(" && ");
      const script = `${hide ? `${hide} && ` : ""}exec "$@"`;
      const run = async (args: string[]) => {
        const out = await new Deno.Command("unshare", {
          args: [
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            Deno.execPath(),
            ...emuArgs(["--config", vm.profile, ...args]),
          ],
          env: { ...vm.env, NO_COLOR: "1" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        return {
          code: out.code,
          stdout: new TextDecoder().decode(out.stdout),
          stderr: new TextDecoder().decode(out.stderr),
        };
      };
      const start = await run(["start", "--cold"]);
      assert.notEqual(start.code, 0);
      assert.match(
        start.stderr,
        /error\[firmware_missing\]: Cannot boot this arm64 image: it boots through UEFI firmware, and none is installed \(tried [^\n]*\/usr\/share\/AAVMF\/AAVMF_CODE\.fd[^\n]*\)\nhint: Install it: sudo apt-get install qemu-efi-aarch64\n/,
      );
      assert.deepEqual(await qemuProcessesWith(vm.dir), []);
      const record = join(vm.home, "instances", "default", "instance.json");
      assert.equal(await Deno.stat(record).catch(() => null), null, "no instance was recorded");
      const made = await Array.fromAsync(
        Deno.readDir(join(vm.home, "instances", "default")),
      ).catch(() => []);
      assert.deepEqual(
        made.map((e) => e.name).filter((n) => n.endsWith(".qcow2") || n.endsWith(".fd")),
        [],
        "no run disk or variable store was made",
      );
      const doctor = await run(["doctor", "--arch", "arm64"]);
      assert.match(
        doctor.stdout + doctor.stderr,
        /warn +no UEFI firmware for arm64: images with a kernel in image\.json run, images that boot through firmware cannot\n +fix: Install it: sudo apt-get install qemu-efi-aarch64\n/,
      );
    }, {
      profile: async () =>
        (await ensureBootableFixture({ log: () => {}, arch: "aarch64" })).profile,
    });
  },
);
