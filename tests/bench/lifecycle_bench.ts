/**
 * Start to healthy with the fast fixture guest under TCG, through the real `emu`
 * process: cold boot vs resume (with and without rotation), same run. Each iteration
 * times `emu start` only; the stop that follows is outside the measurement.
 * Run with `deno task bench` (builds the fixture first if needed).
 */
import { join } from "node:path";
import { ensureFastFixture } from "../../fixtures/fast.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const fixture = await ensureFastFixture({ log: () => {} });
const dir = await Deno.makeTempDir({ prefix: "emu-bench-" });
const env = { EMU_HOME: join(dir, "home"), EMU_RUNTIME_DIR: join(dir, "run"), NO_COLOR: "1" };

async function emu(...args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, "--config", fixture.profile, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

const capture = JSON.parse(await emu("capture", "--json"));
console.log(
  `capture: state saved in ${capture.capture_ms} ms; state file ${
    (capture.state.logical_bytes / 2 ** 20).toFixed(0)
  } MiB logical, ` +
    `${(capture.state.allocated_bytes / 2 ** 20).toFixed(0)} MiB allocated`,
);
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

const options = { group: "start to healthy (fast fixture, TCG)", n: 5, warmup: 1 };

Deno.bench("cold boot: emu start --cold", { ...options, baseline: true }, async (b) => {
  b.start();
  await emu("start", "--cold", "--port", "http=26890");
  b.end();
  await emu("reset");
});

Deno.bench("resume + rotation: emu start", options, async (b) => {
  b.start();
  await emu("start", "--port", "http=26890");
  b.end();
  await emu("reset");
});

Deno.bench("resume, no rotation: emu start --no-rotation", options, async (b) => {
  b.start();
  await emu("start", "--no-rotation", "--port", "http=26890");
  b.end();
  await emu("reset");
});
