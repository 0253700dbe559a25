/**
 * Back to a seeded state, three ways, same run, with the demo stack (Debian 12 +
 * PostgreSQL + the API) under TCG: `emu checkpoint restore` of a checkpoint saved right
 * after seeding one note; `emu reset` + `emu start` + seeding again through the API;
 * and the stack's own way, on the running instance: `TRUNCATE notes` with psql through
 * the forwarded port, then the note through the API. Each through the real `emu`
 * process. `checkpoint save`'s time, pause and size are printed.
 * Run with `deno task bench` (builds the demo image first if needed; root).
 */
import { join } from "node:path";
import { ensureDemoImage } from "../../fixtures/demo.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const profile = (await ensureDemoImage({ log: () => {} })).profile;
const dir = await Deno.makeTempDir({ prefix: "emu-checkpoint-bench-" });
const env = { EMU_HOME: join(dir, "home"), EMU_RUNTIME_DIR: join(dir, "run"), NO_COLOR: "1" };
const API = 26911;
const DB = 26912;
const ports = ["--port", `api=${API}`, "--port", `db=${DB}`];

async function emu(...args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, "--config", profile, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

async function secrets(): Promise<{ api: string; db: string }> {
  const text = await Deno.readTextFile(join(env.EMU_HOME, "instances", "default", "secrets.env"));
  return {
    api: /^API_SECRET=(.*)$/m.exec(text)![1],
    db: /^DB_PASSWORD=(.*)$/m.exec(text)![1],
  };
}

async function seed(): Promise<void> {
  const { api } = await secrets();
  const res = await fetch(`http://127.0.0.1:${API}/notes`, {
    method: "POST",
    headers: { Authorization: `Bearer ${api}` },
    body: "seeded",
  });
  await res.body?.cancel();
  if (res.status !== 201) throw new Error(`seeding answered ${res.status}`);
}

await emu("start", "--save-secrets", ...ports);
await seed();
const saved = JSON.parse(await emu("checkpoint", "save", "seeded", "--json"));
console.log(
  `checkpoint save: ${saved.ms} ms (guest paused ${saved.paused_ms} ms), ${
    (saved.bytes / 2 ** 20).toFixed(0)
  } MiB (state allocated + disk copy)`,
);
globalThis.addEventListener("unload", () => {
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, "--config", profile, "reset", "--all"],
    env,
  }).outputSync();
  Deno.removeSync(dir, { recursive: true });
});

const group = { group: "back to the seeded state (demo stack, TCG)", n: 3, warmup: 1 };

Deno.bench(
  "emu reset + emu start + seed through the API",
  { ...group, baseline: true },
  async () => {
    await emu("reset");
    await emu("start", "--save-secrets", ...ports);
    await seed();
    // The checkpoint went with the reset: save it again, outside the timing.
  },
);

Deno.bench("the stack's own way: TRUNCATE with psql, seed through the API", group, async (b) => {
  // Saved once, after the reset above took the first one (not timed).
  await emu("checkpoint", "save", "seeded").catch(() => {});
  const { db } = await secrets();
  b.start();
  const child = new Deno.Command("psql", {
    args: [
      "-X",
      "-q",
      "-h",
      "127.0.0.1",
      "-p",
      String(DB),
      "-U",
      "app",
      "-d",
      "app",
      "-c",
      "TRUNCATE notes",
    ],
    env: { PGPASSWORD: db },
    stdout: "null",
    stderr: "piped",
  });
  const out = await child.output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  await seed();
  b.end();
});

Deno.bench("emu checkpoint restore", group, async (b) => {
  b.start();
  await emu("checkpoint", "restore", "seeded");
  b.end();
});
