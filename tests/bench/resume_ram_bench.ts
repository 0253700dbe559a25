/**
 * Resume cost against the amount of guest RAM in use: the fast fixture with 4.5 GiB of
 * guest RAM, of which 0, 0.5, 1, 2 and 4 GiB hold non-zero data before the capture (the
 * fixture's FIXTURE_DIRTY_MIB runtime value; zero pages are never saved, so an idle guest
 * of any size costs the same). Each row is `emu start --no-rotation` through the real
 * `emu` process; the table printed at the end has, per row, the best `load` phase and
 * the best `boot_ms` of `emu start --json`, the RAM file's allocated size (a snapshot
 * keeps the guest's RAM in its own file and resumes it as a private mapping), and the
 * slope in milliseconds per GiB (least squares over the rows).
 * Run with `deno task bench` (needs `deno task fixtures`; about 8 GiB of disk and RAM).
 */
import { join } from "node:path";
import { runEmu } from "./_emu.ts";
import { ensureFastFixture } from "../../fixtures/fast.ts";

const MIB = 2 ** 20;
const MEMORY_MIB = 4608;
const DIRTY_MIB = [0, 512, 1024, 2048, 4096];

const fixture = await ensureFastFixture({ log: () => {} });
const base = JSON.parse(await Deno.readTextFile(fixture.profile));
const dir = await Deno.makeTempDir({ prefix: "emu-ram-bench-" });

interface Row {
  dirtyMib: number;
  allocatedMib: number;
  load: number[];
  boot: number[];
}
const rows: Row[] = [];

const emu = runEmu;

for (const dirtyMib of DIRTY_MIB) {
  const home = join(dir, `dirty-${dirtyMib}`);
  const profile = join(dir, `dirty-${dirtyMib}.json`);
  await Deno.writeTextFile(
    profile,
    JSON.stringify({
      ...base,
      image: { ...base.image, source: join(fixture.profile, "..") },
      vm: { ...base.vm, memory_mib: MEMORY_MIB },
      runtime: { ...base.runtime, FIXTURE_DIRTY_MIB: String(dirtyMib) },
    }),
  );
  const capture = JSON.parse(await emu(profile, home, "capture", "--json", "--timeout", "900"));
  const row: Row = {
    dirtyMib,
    // The RAM the capture left in the snapshot's RAM file (the state file holds only devices).
    allocatedMib: capture.ram.allocated_bytes / MIB,
    load: [],
    boot: [],
  };
  rows.push(row);
  Deno.bench(
    `resume with ${dirtyMib} MiB of guest RAM in use (emu start --no-rotation)`,
    { group: "resume vs RAM in use (fast fixture, 4.5 GiB guest, TCG)", n: 3, warmup: 0 },
    async (b) => {
      b.start();
      const started = JSON.parse(
        await emu(profile, home, "start", "--no-rotation", "--json", "--port", "http=26894"),
      );
      b.end();
      row.load.push(started.timings.load);
      row.boot.push(started.boot_ms);
      await emu(profile, home, "reset");
    },
  );
}

globalThis.addEventListener("unload", () => {
  const best = (xs: number[]) => Math.min(...xs);
  console.log("\ndirtied MiB | RAM file allocated MiB | load ms (best) | boot_ms (best)");
  for (const r of rows) {
    console.log(
      `${r.dirtyMib} | ${r.allocatedMib.toFixed(0)} | ${best(r.load)} | ${best(r.boot)}`,
    );
  }
  const xs = rows.map((r) => r.allocatedMib / 1024);
  console.log(
    `load: ${slope(xs, rows.map((r) => best(r.load))).toFixed(0)} ms per GiB of state; ` +
      `boot_ms: ${slope(xs, rows.map((r) => best(r.boot))).toFixed(0)} ms per GiB`,
  );
  Deno.removeSync(dir, { recursive: true });
});

/** Least-squares slope of `ys` against `xs`. */
function slope(xs: number[], ys: number[]): number {
  const mean = (v: number[]) => v.reduce((a, b) => a + b) / v.length;
  const mx = mean(xs);
  const my = mean(ys);
  return xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0) /
    xs.reduce((s, x) => s + (x - mx) ** 2, 0);
}
