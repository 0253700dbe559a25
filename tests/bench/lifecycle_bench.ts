/**
 * Start to healthy under TCG, through the real `emu` process: cold boot vs resume (with
 * and without rotation), same run, for the fast fixture guest and for the demo stack
 * (Debian 12 + PostgreSQL + the API). Each iteration times `emu start` only; the reset
 * that follows is outside the measurement. Capture time, state size (raw, allocated, zstd)
 * and the zstd compression and sparse decompression times are printed. At the end, per
 * stack: the best `boot_ms` of `emu start --json` for each way of starting, its phase
 * timings, and the two ratios resume / cold boot (with and without rotation).
 * Run with `deno task bench` (builds the images first if needed; the demo needs root).
 */
import { join } from "node:path";
import { ensureDemoImage } from "../../fixtures/demo.ts";
import { ensureFastFixture } from "../../fixtures/fast.ts";
import { compressState, decompressStateSparse } from "../../src/vm/state_file.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const MIB = 2 ** 20;

interface Stack {
  label: string;
  profile: string;
  ports: string[];
  iterations: number;
}

const stacks: Stack[] = [
  {
    label: "fast fixture",
    profile: (await ensureFastFixture({ log: () => {} })).profile,
    ports: ["--port", "http=26890"],
    iterations: 5,
  },
  {
    label: "demo stack",
    profile: (await ensureDemoImage({ log: () => {} })).profile,
    ports: ["--port", "api=26891", "--port", "db=26892"],
    iterations: 3,
  },
];

const dir = await Deno.makeTempDir({ prefix: "emu-bench-" });

/** What `emu start --json` said, per stack and way of starting. */
type Mode = "cold" | "rotation" | "no rotation";
const starts = new Map<
  string,
  Record<Mode, { boot_ms: number; timings: Record<string, number> }[]>
>();

globalThis.addEventListener("unload", () => {
  for (const [label, modes] of starts) {
    const best = (mode: Mode) =>
      modes[mode].reduce((a, b) => (b.boot_ms < a.boot_ms ? b : a), modes[mode][0]);
    console.log(`\n${label}: best boot_ms of emu start --json (${modes.cold.length}+ runs each)`);
    for (const mode of ["cold", "rotation", "no rotation"] as const) {
      const b = best(mode);
      console.log(
        `  ${mode.padEnd(12)} ${String(b.boot_ms).padStart(6)} ms  ${
          Object.entries(b.timings).filter(([k]) => k !== "total").map(([k, v]) => `${k} ${v}`)
            .join(" · ")
        }`,
      );
    }
    const ratio = (mode: Mode) => (best(mode).boot_ms / best("cold").boot_ms).toFixed(3);
    console.log(
      `  resume + rotation / cold boot = ${ratio("rotation")}; without rotation = ${
        ratio("no rotation")
      }`,
    );
  }
  Deno.removeSync(dir, { recursive: true });
});

for (const stack of stacks) {
  const env = {
    EMU_HOME: join(dir, stack.label.replace(" ", "-")),
    EMU_RUNTIME_DIR: join(dir, `run-${stack.label.replace(" ", "-")}`),
    NO_COLOR: "1",
  };
  const emu = async (...args: string[]): Promise<string> => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, MAIN, "--config", stack.profile, ...args],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout);
  };

  const capture = JSON.parse(await emu("capture", "--json"));
  // What `emu capture --compress` adds, and what the first resume of such a snapshot pays.
  // The guest's RAM is the snapshot's own file (the state file holds only the devices).
  const raw = join(capture.dir, "ram.raw");
  const zst = join(dir, "ram.zst");
  let t = performance.now();
  const compressed = await compressState(raw, zst);
  const compressMs = performance.now() - t;
  t = performance.now();
  await decompressStateSparse(zst, join(dir, "state.check"));
  const decompressMs = performance.now() - t;
  await Deno.remove(zst);
  await Deno.remove(join(dir, "state.check"));
  console.log(
    `${stack.label}: capture saved the state in ${capture.capture_ms} ms; device state ${
      (capture.state.allocated_bytes / 1024).toFixed(0)
    } KiB; RAM file ${(capture.ram.logical_bytes / MIB).toFixed(0)} MiB logical, ${
      (capture.ram.allocated_bytes / MIB).toFixed(0)
    } MiB allocated, ${(compressed / MIB).toFixed(0)} MiB as zstd (compressed in ${
      compressMs.toFixed(0)
    } ms; sparse decompression ${decompressMs.toFixed(0)} ms)`,
  );

  const options = {
    group: `start to healthy (${stack.label}, TCG)`,
    n: stack.iterations,
    warmup: 1,
  };
  const modes: Record<Mode, { boot_ms: number; timings: Record<string, number> }[]> = {
    cold: [],
    rotation: [],
    "no rotation": [],
  };
  starts.set(stack.label, modes);
  const timed = (mode: Mode, ...args: string[]) => async (b: Deno.BenchContext) => {
    b.start();
    const out = await emu("start", "--json", ...args, ...stack.ports);
    b.end();
    const { boot_ms, timings } = JSON.parse(out);
    modes[mode].push({ boot_ms, timings });
    await emu("reset");
  };
  Deno.bench(
    `${stack.label}: cold boot (emu start --cold)`,
    { ...options, baseline: true },
    timed("cold", "--cold"),
  );
  Deno.bench(`${stack.label}: resume + rotation (emu start)`, options, timed("rotation"));
  Deno.bench(
    `${stack.label}: resume, no rotation (emu start --no-rotation)`,
    options,
    timed("no rotation", "--no-rotation"),
  );
}
