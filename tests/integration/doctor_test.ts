/**
 * The host probe and `emu doctor` on this machine, with real QEMU: the test guest runs,
 * a broken or slow KVM is rejected with its reason, TCG is chosen, and the cache spares
 * every later run from starting QEMU at all.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnEmu } from "../_helpers/cli.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

const REAL_QEMU = "/usr/bin/qemu-system-x86_64";

/** A directory whose qemu-system-x86_64 logs every call, then runs the real one (or prints `version`). */
async function shimQemu(
  dir: string,
  version?: string,
): Promise<{ dir: string; calls: () => Promise<string[]> }> {
  const bin = join(dir, "shim-bin");
  const log = join(dir, "qemu-calls.log");
  await Deno.mkdir(bin, { recursive: true });
  const real = (await Deno.stat(REAL_QEMU).catch(() => null)) ? REAL_QEMU : "qemu-system-x86_64";
  const fakeVersion = version
    ? `if [ "$1" = --version ]; then echo "QEMU emulator version ${version} (test shim: an old QEMU)"; exit 0; fi\n`
    : "";
  await Deno.writeTextFile(
    join(bin, "qemu-system-x86_64"),
    `#!/bin/sh\necho "$*" >> ${log}\n${fakeVersion}exec ${real} "$@"\n`,
    { mode: 0o755 },
  );
  await Deno.symlink("/usr/bin/qemu-img", join(bin, "qemu-img")).catch(() => {});
  return {
    dir: bin,
    calls: async () =>
      (await Deno.readTextFile(log).catch(() => "")).split("\n").filter((l) => l !== ""),
  };
}

async function withHome(fn: (dir: string) => Promise<void>) {
  if (!await requireTool("qemu-system-x86_64", "qemu-system-x86 (bookworm-backports)")) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-doctor-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "doctor: the probe runs the real test guest, proves or rejects KVM, and reports TCG's reason",
  needs(TOOLS.qemu, TOOLS.qemuImg),
  () =>
    withHome(async (dir) => {
      const shim = await shimQemu(dir);
      const env = {
        EMU_HOME: join(dir, "home"),
        EMU_QEMU_DIR: shim.dir,
        EMU_RUNTIME_DIR: join(dir, "run"),
      };
      const r = await spawnEmu(["doctor", "--json"], { env });
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout);
      assert.equal(report.ok, true);
      assert.equal(report.probe.from_cache, false);
      assert.equal(report.probe.machine.startsWith("pc-q35-"), true);
      const accel = report.probe.accel;
      assert.ok(accel.timings.tcg > 0, "TCG ran the test guest");
      const kvm = await Deno.open("/dev/kvm", { read: true, write: true }).then(
        (f) => (f.close(), true),
        () => false,
      );
      if (accel.accel === "tcg") {
        const rejection = accel.rejected.find((x: { accel: string }) => x.accel === "kvm");
        assert.ok(rejection, "KVM's rejection is recorded");
        if (kvm) {
          // This machine kind: /dev/kvm is writable but nested KVM crashes, hangs or crawls.
          assert.match(rejection.reason, /SIGABRT|did not finish|took .* under kvm|exited/);
        } else {
          assert.match(rejection.reason, /\/dev\/kvm/);
        }
        assert.equal(report.probe.cpu.model, "max");
        assert.equal(
          report.checks.find((c: { id: string }) => c.id === "accelerator").status,
          "warn",
        );
      } else {
        assert.equal(accel.accel, "kvm");
        assert.equal(report.probe.cpu.model, "host");
      }
      const calls = await shim.calls();
      assert.ok(
        calls.some((c) => c.includes("isa-debug-exit") && c.includes("-accel tcg")),
        calls.join("\n"),
      );
      if (kvm) {
        assert.ok(calls.some((c) => c.includes("-accel kvm")), "KVM was tested, not trusted");
      }

      // Second run: from probe.json, and not one QEMU process.
      const before = calls.length;
      const again = await spawnEmu(["doctor", "--json"], { env });
      assert.equal(again.code, 0);
      assert.equal(JSON.parse(again.stdout).probe.from_cache, true);
      assert.equal((await shim.calls()).length, before, "no QEMU spawned on a cache hit");

      // --refresh probes again.
      const refreshed = await spawnEmu(["doctor", "--json", "--refresh"], { env });
      assert.equal(JSON.parse(refreshed.stdout).probe.from_cache, false);
      assert.ok((await shim.calls()).length > before);
      const cache = JSON.parse(await Deno.readTextFile(join(dir, "home", "probe.json")));
      assert.equal(cache.results.length, 1);
    }),
);

Deno.test(
  "doctor: no QEMU on PATH → fail with the install command, exit 1",
  needs(TOOLS.qemu),
  () =>
    withHome(async (dir) => {
      const empty = join(dir, "empty-bin");
      await Deno.mkdir(empty);
      const r = await spawnEmu(["doctor"], {
        env: { EMU_HOME: join(dir, "home"), PATH: empty, EMU_QEMU_DIR: "" },
      });
      assert.equal(r.code, 1);
      assert.match(
        r.stdout,
        /^FAIL {2}Cannot find qemu-system-x86_64 on PATH\n {6}fix: Install QEMU ≥ 9\.0: sudo apt-get install qemu-system-x86 qemu-utils/m,
      );
      assert.match(
        r.stderr,
        /^error\[doctor_failed\]: Cannot run emu on this host yet: 1 check failed \(qemu\)\n/,
      );
    }),
);

Deno.test(
  "doctor: QEMU 7.2 (no mapped-ram) → snapshots off with the reason, still exit 0",
  needs(TOOLS.qemu, TOOLS.qemuImg),
  () =>
    withHome(async (dir) => {
      // A shim reporting 7.2 in front of the real QEMU: Debian 12's own 7.2 cannot be installed beside 10.0.
      const shim = await shimQemu(dir, "7.2.15");
      const r = await spawnEmu(["doctor", "--json"], {
        env: { EMU_HOME: join(dir, "home"), EMU_QEMU_DIR: shim.dir },
      });
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout);
      const snapshots = report.checks.find((c: { id: string }) => c.id === "snapshots");
      assert.equal(snapshots.status, "warn");
      assert.equal(
        snapshots.summary,
        "RAM snapshots off: QEMU 7.2.15 has no mapped-ram (needs 9.0+): emu cold-boots every start",
      );
      assert.match(snapshots.fix, /bookworm-backports/);
    }),
);

Deno.test("doctor: unknown guest architecture is a usage error", async () => {
  const r = await spawnEmu(["doctor", "--arch", "riscv64"]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^error\[usage\]: Cannot use --arch riscv64: expected x86_64 \(amd64\) or aarch64 \(arm64\)\n/,
  );
});

Deno.test(
  "doctor --arch arm64 is aarch64 (Debian's and Apple's word), with its machine, CPU model and firmware",
  needs(TOOLS.qemuArm),
  async () => {
    const home = await Deno.makeTempDir({ prefix: "emu-doctor-arch-" });
    try {
      const arm = await spawnEmu(["doctor", "--arch", "arm64", "--json"], {
        env: { EMU_HOME: home, EMU_RUNTIME_DIR: `${home}/run` },
      });
      const checks = JSON.parse(arm.stdout).checks as { id: string; summary: string }[];
      const summary = (id: string) => checks.find((c) => c.id === id)?.summary ?? "";
      assert.match(summary("machine"), /^machine type virt-\d+\.\d+ /);
      assert.match(summary("cpu"), /^CPU model neoverse-n1: arm64 guest emulated on x86_64/);
      assert.match(summary("firmware"), /UEFI firmware|no UEFI firmware for arm64/);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
);

Deno.test(
  "doctor: a profile port already bound → fail naming the port, exit 1",
  needs(TOOLS.qemu),
  () =>
    withHome(async (dir) => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const port = (listener.addr as Deno.NetAddr).port;
        await Deno.writeTextFile(
          join(dir, "emu.json"),
          JSON.stringify({
            name: "t",
            image: { source: "img" },
            ports: { api: { guest: 80, host: port } },
          }),
        );
        const r = await spawnEmu(["doctor"], { cwd: dir, env: { EMU_HOME: join(dir, "home") } });
        assert.equal(r.code, 1);
        assert.ok(
          r.stdout.includes(
            `FAIL  port api: 127.0.0.1:${port} is in use by another process\n      fix: Stop what holds it`,
          ),
          r.stdout,
        );
        assert.match(r.stderr, /1 check failed \(port:api\)/);
      } finally {
        listener.close();
      }
    }),
);

Deno.test(
  "doctor: an unwritable home → fail with the fix, exit 1; QEMU checks still run",
  needs(TOOLS.qemu),
  () =>
    withHome(async (dir) => {
      const file = join(dir, "a-file");
      await Deno.writeTextFile(file, "");
      const r = await spawnEmu(["doctor", "--home", join(file, "home")]);
      assert.equal(r.code, 1);
      assert.match(
        r.stdout,
        new RegExp(
          `FAIL {2}home ${file}/home is not writable: .*\\n {6}fix: Fix its permissions, or point --home / EMU_HOME at a writable directory\\.`,
        ),
      );
      assert.match(r.stdout, /^ok {4}QEMU \d+\.\d+\.\d+ at /m);
    }),
);
