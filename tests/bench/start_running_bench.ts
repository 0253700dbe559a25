/**
 * `emu start` of an instance that is already running and healthy: the whole command path
 * (settings, profile, image, instance record and lock, health checks) without a boot,
 * each run its own `deno run` process; against the same in another checkout given by
 * EMU_BENCH_BASELINE, same run. Each tree gets its own emu home and instance of the fast
 * fixture (`deno task fixtures`). Apart from startup_bench.ts: the idle VMs would add
 * noise to its rows.
 */
import { join } from "node:path";

const HERE = new URL("../../", import.meta.url).pathname;
const BASELINE = Deno.env.get("EMU_BENCH_BASELINE");
const FIXTURE = join(HERE, "fixtures", "out", "fast", "emu.json");
const home = await Deno.makeTempDir({ prefix: "emu-start-bench-" });

const run = (tree: string, treeHome: string, args: string[]) =>
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", join(tree, "deno.json"), join(tree, "main.ts"), ...args],
    env: { EMU_HOME: treeHome, EMU_RUNTIME_DIR: join(home, "run") },
    stdout: "null",
    stderr: "null",
  });

if (!await Deno.stat(FIXTURE).then(() => true, () => false)) {
  console.error(`SKIPPED: ${FIXTURE} is missing; build it with \`deno task fixtures\``);
} else {
  const trees = BASELINE ? [[BASELINE, "baseline"], [HERE, "this tree"]] : [[HERE, "this tree"]];
  const started: [string, string][] = [];
  globalThis.addEventListener("unload", () => {
    // Stop the instances first, then remove their homes.
    for (const [tree, treeHome] of started) {
      run(tree, treeHome, ["--config", FIXTURE, "reset", "--all"]).outputSync();
    }
    Deno.removeSync(home, { recursive: true });
  });
  const group = { group: "emu start (already running)", n: 10, warmup: 2 };
  for (const [tree, label] of trees) {
    const treeHome = join(home, label.replace(/\W/g, "-"));
    const args = ["--config", FIXTURE, "start", "--port", `http=${27000 + started.length}`];
    if (!(await run(tree, treeHome, args).output()).success) {
      throw new Error(`start failed in ${tree}`);
    }
    started.push([tree, treeHome]);
    Deno.bench(label, { ...group, baseline: label === "baseline" || !BASELINE }, async () => {
      if (!(await run(tree, treeHome, args).output()).success) throw new Error("start failed");
    });
  }
}
