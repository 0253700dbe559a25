/**
 * arm64 guests and firmware boot under TCG on this x86_64 host, same run:
 *
 * 1. The arm64 CPU model: the fast arm64 fixture booted to ready with each candidate
 *    `-cpu` (emu's own command line otherwise), five times each (interleaved), then powered off with
 *    the power button; a candidate is stable when every boot was ready and powered off.
 * 2. Through the real `emu` process, per fixture — fast x86_64 and arm64 (direct kernel
 *    boot), bootable x86_64 (SeaBIOS + SYSLINUX) and arm64 (UEFI + systemd-boot): the best
 *    `boot_ms` of `emu start --cold --json` and of a resume with rotation (`emu start
 *    --json` from a snapshot), and their ratio; then firmware boot vs direct kernel boot.
 *
 * Run with `deno task bench` (needs `deno task fixtures`); about 4 minutes.
 */
import { join } from "node:path";
import { runEmu } from "./_emu.ts";
import { ensureBootableFixture } from "../../fixtures/bootable.ts";
import { ensureFastFixture } from "../../fixtures/fast.ts";
import { buildArgv } from "../../src/qemu/argv.ts";
import { machineOption } from "../../src/qemu/machine.ts";
import { QmpClient } from "../../src/protocol/mod.ts";

const CPU_CANDIDATES = ["cortex-a76", "neoverse-n1", "cortex-a72", "cortex-a57", "max"];
const BOOTS = 3;
const CPU_BOOTS = 5;
const dir = await Deno.makeTempDir({ prefix: "emu-arm64-bench-" });

const log = () => {};
const fixtures = {
  "fast x86_64 (direct kernel)": await ensureFastFixture({ log }),
  "fast arm64 (direct kernel)": await ensureFastFixture({ log, arch: "aarch64" }),
  "bootable x86_64 (SeaBIOS)": await ensureBootableFixture({ log }),
  "bootable arm64 (UEFI)": await ensureBootableFixture({ log, arch: "aarch64" }),
};

// 1. CPU model candidates.
const arm = fixtures["fast arm64 (direct kernel)"].dir;
const image = JSON.parse(await Deno.readTextFile(join(arm, "image.json")));
const cpuRows = CPU_CANDIDATES.map((model) => ({
  model,
  ready: [] as number[],
  failures: [] as string[],
}));
// Interleaved (one boot of each model per round), so a slow moment of the machine does not
// fall on one model.
for (let i = 0; i < CPU_BOOTS; i++) {
  for (const row of cpuRows) {
    const model = row.model;
    const run = join(dir, `cpu-${model}-${i}`);
    await Deno.mkdir(run);
    await new Deno.Command("qemu-img", {
      args: [
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        join(arm, "disk.qcow2"),
        join(run, "d.qcow2"),
      ],
    }).output();
    await Deno.writeFile(join(run, "cfg.iso"), new Uint8Array(64 * 1024));
    const argv = buildArgv({
      arch: "aarch64",
      machine: machineOption("virt-10.0", "aarch64", "tcg").value,
      accel: "tcg",
      cpu: model,
      memoryMib: 256,
      cpus: 1,
      disk: join(run, "d.qcow2"),
      runtimeIso: join(run, "cfg.iso"),
      forwards: [],
      qmpSocket: join(run, "q"),
      qgaSocket: join(run, "g"),
      serialLog: join(run, "serial.log"),
      kernel: {
        path: join(arm, image.boot.kernel),
        initrd: join(arm, image.boot.initrd),
        append: image.boot.append,
      },
    });
    const started = performance.now();
    const child = new Deno.Command("qemu-system-aarch64", {
      args: argv,
      stdout: "null",
      stderr: "piped",
    })
      .spawn();
    let ready = 0;
    while (performance.now() - started < 60_000) {
      const text = await Deno.readTextFile(join(run, "serial.log")).catch(() => "");
      if (text.includes("EMU_READY")) {
        ready = performance.now() - started;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (ready === 0) row.failures.push(`boot ${i + 1}: not ready in 60 s`);
    else row.ready.push(Math.round(ready));
    const qmp = await QmpClient.connect(join(run, "q"), { timeoutMs: 5000 }).catch(() => null);
    await qmp?.execute("system_powerdown").catch(() => {});
    const exited = await Promise.race([
      child.status.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 15_000)),
    ]);
    await qmp?.close();
    if (!exited) {
      row.failures.push(`boot ${i + 1}: no power-off in 15 s`);
      child.kill("SIGKILL");
      await child.status;
    }
    await child.stderr.cancel();
  }
}

const best = (xs: number[]) => (xs.length ? Math.min(...xs) : NaN);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `\narm64 -cpu candidates (fast arm64 fixture, TCG on x86_64, ${CPU_BOOTS} boots each, interleaved)`,
);
console.log("model | ready ms best | median | stable");
for (const r of cpuRows) {
  console.log(
    `${r.model} | ${best(r.ready)} | ${r.ready.length ? median(r.ready) : "-"} | ${
      r.failures.length === 0 ? "yes" : r.failures.join("; ")
    }`,
  );
}

// 2. emu: cold boot vs resume, per fixture.
const emu = runEmu;
const emuRows: { label: string; cold: number[]; resume: number[] }[] = [];
for (const [label, fixture] of Object.entries(fixtures)) {
  const home = join(dir, label.replace(/\W+/g, "-"));
  const row = { label, cold: [] as number[], resume: [] as number[] };
  emuRows.push(row);
  for (let i = 0; i < BOOTS; i++) {
    row.cold.push(
      JSON.parse(await emu(fixture.profile, home, "start", "--cold", "--json", "--timeout", "300"))
        .boot_ms,
    );
    await emu(fixture.profile, home, "reset");
  }
  await emu(fixture.profile, home, "capture", "--json", "--timeout", "300");
  for (let i = 0; i < BOOTS; i++) {
    row.resume.push(JSON.parse(await emu(fixture.profile, home, "start", "--json")).boot_ms);
    await emu(fixture.profile, home, "reset");
  }
}

console.log(`\nemu start under TCG, best of ${BOOTS} (boot_ms)`);
console.log("fixture | cold boot | resume + rotation | ratio");
for (const r of emuRows) {
  console.log(
    `${r.label} | ${best(r.cold)} | ${best(r.resume)} | ${
      (best(r.resume) / best(r.cold)).toFixed(3)
    }`,
  );
}
const by = (l: string) => emuRows.find((r) => r.label.startsWith(l))!;
console.log(
  `firmware vs direct kernel boot, cold: x86_64 ${
    (best(by("bootable x86_64").cold) / best(by("fast x86_64").cold)).toFixed(2)
  }×, ` +
    `arm64 ${(best(by("bootable arm64").cold) / best(by("fast arm64").cold)).toFixed(2)}×; ` +
    `arm64 vs x86_64 (direct) cold ${
      (best(by("fast arm64").cold) / best(by("fast x86_64").cold)).toFixed(2)
    }×, resume ${(best(by("fast arm64").resume) / best(by("fast x86_64").resume)).toFixed(2)}×`,
);
await Deno.remove(dir, { recursive: true });
