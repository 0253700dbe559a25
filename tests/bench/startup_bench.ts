/**
 * Start-up: `emu --version`, and `emu config --json` (settings and the profile parsed and
 * validated), each its own `deno run` process, against the same commands in another
 * checkout of emu given by EMU_BENCH_BASELINE (e.g. a `git worktree` of the previous
 * release) in the same run. Without it only this tree is measured.
 */
import { join } from "node:path";

const HERE = new URL("../../", import.meta.url).pathname;
const BASELINE = Deno.env.get("EMU_BENCH_BASELINE");
const home = await Deno.makeTempDir({ prefix: "emu-startup-bench-" });
globalThis.addEventListener("unload", () => Deno.removeSync(home, { recursive: true }));

function emu(tree: string, args: string[]) {
  return async () => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", join(tree, "deno.json"), join(tree, "main.ts"), ...args],
      env: { EMU_HOME: home },
      stdout: "null",
      stderr: "null",
    }).output();
    if (!r.success) throw new Error(`emu ${args.join(" ")} failed in ${tree}`);
  };
}

for (const args of [["--version"], ["config", "--json"]]) {
  const group = { group: `emu ${args.join(" ")}`, n: 20, warmup: 3 };
  if (BASELINE) {
    Deno.bench(`baseline (${BASELINE})`, { ...group, baseline: true }, emu(BASELINE, args));
  }
  Deno.bench("this tree", { ...group, baseline: !BASELINE }, emu(HERE, args));
}
