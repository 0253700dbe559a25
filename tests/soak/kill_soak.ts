/**
 * emu killed with SIGKILL at seeded random points of start, capture, suspend, pull and
 * image build (the point is a random fraction of how long the command took when left
 * alone, measured first in the same run). After each kill the next command must succeed,
 * with exactly one QEMU per running instance, the snapshot or image intact, nothing
 * half-published, and nothing left once the instance is stopped.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { find } from "../_helpers/find.ts";
import { startServer } from "../_helpers/http_server.ts";
import { needs, TOOLS, VM_TOOLS } from "../_helpers/require.ts";
import {
  assertNothingLeaked,
  figure,
  fixtureBuildArgs,
  freePort,
  ok,
  publishedFixtureProfile,
  qemuProcessesWith,
  repeat,
  SEED,
  seeded,
  type SoakEnv,
  withSoakEnv,
} from "./_soak.ts";

/**
 * When a command does its work: from the end of emu's own start-up (timed on
 * `emu status`, which does next to nothing) to the end of `args` run once alone.
 */
interface Window {
  from: number;
  to: number;
}

async function timed(s: SoakEnv, args: string[], what: string): Promise<Window> {
  let t = performance.now();
  await s.emu(["status"]);
  const from = performance.now() - t;
  t = performance.now();
  ok(await s.emu(args), what);
  return { from, to: Math.max(from + 1, performance.now() - t) };
}

/** A seeded point in the window. */
function pointIn(w: Window, rng: () => number): number {
  return w.from + rng() * (w.to - w.from);
}

/** Spawns `args` and kills it with SIGKILL after `delayMs` (if it is still running). */
async function killAfter(s: SoakEnv, args: string[], delayMs: number): Promise<boolean> {
  const child = s.spawn(args);
  let exited = false;
  const status = child.status.then((st) => (exited = true, st));
  await Promise.race([status, new Promise((r) => setTimeout(r, delayMs))]);
  let killed = !exited;
  if (killed) {
    try {
      child.kill("SIGKILL");
    } catch {
      // It ended between the race and the kill (the status callback had not run yet):
      // the kill came too late, as when it ends first.
      killed = false;
    }
  }
  await status;
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel().catch(() => {});
  return killed;
}

function report(scenario: string, runs: number, killed: number, points: number[], w: Window) {
  figure(
    scenario,
    `${runs} kills (seed ${SEED}; ${killed} landed before the command ended) at ${
      points.map((p) => `${Math.round(p)}`).join(", ")
    } ms, in a command that starts working at ${Math.round(w.from)} ms and ends at ${
      Math.round(w.to)
    } ms; every next command recovered`,
  );
}

Deno.test(
  "soak: emu killed at random points of start; the next start recovers with one QEMU",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const rng = seeded(SEED);
      const port = `http=${freePort()}`;
      ok(await s.emu(["capture"]), "capture");
      const ms = await timed(s, ["start", "--port", port], "reference start");
      ok(await s.emu(["stop"]), "reference stop");
      const runs = repeat(6);
      const points: number[] = [];
      let killed = 0;
      for (let i = 0; i < runs; i++) {
        const at = pointIn(ms, rng);
        points.push(at);
        if (await killAfter(s, ["start", "--port", port], at)) killed++;
        const again = ok(await s.emu(["--json", "start", "--port", port]), `start after kill ${i}`);
        assert.equal(JSON.parse(again.stdout).state, "running");
        assert.equal((await qemuProcessesWith(s.dir)).length, 1, `one QEMU after kill ${i}`);
        ok(await s.emu(["exec", "--", "true"]), `exec after kill ${i}`);
        ok(await s.emu(["stop"]), `stop after kill ${i}`);
        await assertNothingLeaked(s, `after kill ${i}`);
      }
      report("kill start", runs, killed, points, ms);
    }),
);

Deno.test(
  "soak: emu killed at random points of capture; the snapshot stays usable, no staging left",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const rng = seeded(SEED + 1);
      const port = `http=${freePort()}`;
      ok(await s.emu(["capture"]), "first capture");
      const ms = await timed(s, ["capture", "--force"], "reference capture");
      const runs = repeat(6);
      const points: number[] = [];
      let killed = 0;
      for (let i = 0; i < runs; i++) {
        const at = pointIn(ms, rng);
        points.push(at);
        if (await killAfter(s, ["capture", "--force"], at)) killed++;
        // The next command resumes a complete snapshot (the old one, or the new one if
        // the kill came after it was published); never a cold boot.
        const start = ok(await s.emu(["--json", "start", "--port", port]), `start after ${i}`);
        const record = JSON.parse(start.stdout);
        assert.equal(record.boot, "resume", `resumed after kill ${i}: ${start.stderr}`);
        assert.equal((await qemuProcessesWith(s.dir)).length, 1, `one QEMU after kill ${i}`);
        assert.deepEqual(await find(s.home, /^\.capture-|\.old-/), [], "no staging left");
        const snapshots = await find(s.home, /^snapshot\.json$/);
        assert.equal(snapshots.length, 1, `one snapshot: ${snapshots}`);
        ok(await s.emu(["stop"]), `stop after ${i}`);
        await assertNothingLeaked(s, `after kill ${i}`);
      }
      report("kill capture", runs, killed, points, ms);
    }),
);

Deno.test(
  "soak: emu killed at random points of suspend; the next start brings the instance back",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const rng = seeded(SEED + 2);
      const port = `http=${freePort()}`;
      ok(await s.emu(["start", "--port", port]), "start");
      const ms = await timed(s, ["suspend"], "reference suspend");
      const runs = repeat(6);
      const points: number[] = [];
      let killed = 0;
      const boots: string[] = [];
      for (let i = 0; i < runs; i++) {
        ok(await s.emu(["start", "--port", port]), `start before ${i}`);
        ok(await s.emu(["exec", "--", "sh", "-c", `echo ${i} > /data/mark`]), `mark ${i}`);
        const at = pointIn(ms, rng);
        points.push(at);
        if (await killAfter(s, ["suspend"], at)) killed++;
        const start = ok(await s.emu(["--json", "start", "--port", port]), `start after ${i}`);
        const record = JSON.parse(start.stdout);
        const how = /had paused the guest; it runs on/.test(start.stderr)
          ? " (continued)"
          : /had saved the guest/.test(start.stderr)
          ? " (saved state resumed)"
          : "";
        boots.push(`${record.already_running ? "running" : record.boot}${how}`);
        assert.equal((await qemuProcessesWith(s.dir)).length, 1, `one QEMU after kill ${i}`);
        // The disk is either the suspended one or the running one: the mark survives
        // unless the instance was restarted from the snapshot (which starts pristine).
        const read = ok(await s.emu(["exec", "--", "sh", "-c", "cat /data/mark || true"]), "read");
        if (record.boot !== "resume" || record.already_running) {
          assert.equal(read.stdout, `${i}\n`, `the guest's file after kill ${i}`);
        }
      }
      ok(await s.emu(["stop"]), "stop");
      await assertNothingLeaked(s, "after the last stop");
      report("kill suspend", runs, killed, points, ms);
      figure("kill suspend", `the next start found: ${boots.join(", ")}`);
    }),
);

Deno.test(
  "soak: emu killed at random points of checkpoint save and restore; the guest runs on, no half checkpoint, the next restore works",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const rng = seeded(SEED + 5);
      const port = `http=${freePort()}`;
      ok(await s.emu(["start", "--port", port]), "start");
      ok(await s.emu(["exec", "--", "sh", "-c", "echo seeded > /data/mark"]), "seed");
      ok(await s.emu(["checkpoint", "save", "k"]), "save k");
      // Killed saves go to another name: the instance runs on k once restored, and the
      // checkpoint it runs on cannot be replaced.
      const save = await timed(s, ["checkpoint", "save", "other"], "reference save");
      const restore = await timed(s, ["checkpoint", "restore", "k"], "reference restore");
      const runs = repeat(4);
      const points: number[] = [];
      let killed = 0;
      const found: string[] = [];
      for (let i = 0; i < runs; i++) {
        // A save killed: the guest runs on (continued by the next command if it was left
        // paused); the listing has whole checkpoints only.
        const at = pointIn(save, rng);
        points.push(at);
        if (await killAfter(s, ["checkpoint", "save", "other", "--force"], at)) killed++;
        const again = ok(await s.emu(["--json", "start", "--port", port]), `start after ${i}`);
        found.push(JSON.parse(again.stdout).already_running ? "running" : "restarted");
        assert.equal((await qemuProcessesWith(s.dir)).length, 1, `one QEMU after kill ${i}`);
        const ls = JSON.parse(ok(await s.emu(["--json", "checkpoint", "ls"]), "ls").stdout);
        const names = ls.map((c: { name: string }) => c.name).sort();
        assert.ok(
          JSON.stringify(names) === '["k"]' || JSON.stringify(names) === '["k","other"]',
          `whole checkpoints after kill ${i}: ${names}`,
        );
        // A restore killed: the next restore brings the seeded guest back.
        const at2 = pointIn(restore, rng);
        points.push(at2);
        if (await killAfter(s, ["checkpoint", "restore", "k"], at2)) killed++;
        ok(await s.emu(["checkpoint", "restore", "k"]), `restore after kill ${i}`);
        assert.equal((await qemuProcessesWith(s.dir)).length, 1, `one QEMU after restore ${i}`);
        const read = ok(await s.emu(["exec", "--", "cat", "/data/mark"]), "read");
        assert.equal(read.stdout, "seeded\n", `the checkpoint's disk after kill ${i}`);
        ok(await s.emu(["checkpoint", "save", "other", "--force"]), `save after ${i}`);
        assert.deepEqual(await find(s.home, /\.tmp-/), [], "no staging left");
      }
      ok(await s.emu(["stop"]), "stop");
      await assertNothingLeaked(s, "after the last stop");
      report("kill checkpoint save/restore", runs * 2, killed, points, {
        from: Math.min(save.from, restore.from),
        to: Math.max(save.to, restore.to),
      });
      figure("kill checkpoint save", `the next start found: ${found.join(", ")}`);
    }),
);

Deno.test(
  "soak: emu killed at random points of pull; the next pull installs the verified image",
  needs(...VM_TOOLS, TOOLS.zstd),
  async () => {
    const server = startServer();
    try {
      await withSoakEnv(async (s) => {
        const rng = seeded(SEED + 3);
        const path = await publishedFixtureProfile(s, server);
        const pull = ["--config", path, "pull", "--skip-snapshot"];
        const ms = await timed(s, pull, "reference pull");
        const runs = repeat(6);
        const points: number[] = [];
        let killed = 0;
        for (let i = 0; i < runs; i++) {
          await Deno.remove(join(s.home, "images"), { recursive: true }).catch(() => {});
          const at = pointIn(ms, rng);
          points.push(at);
          if (await killAfter(s, pull, at)) killed++;
          const again = ok(await s.emu(pull), `pull after kill ${i}`);
          assert.doesNotMatch(again.stderr, /error/);
          assert.deepEqual(await find(s.home, /\.part$|\.tmp-/), [], "no part file");
        }
        // The pulled image boots.
        ok(
          await s.emu(["--config", path, "start", "--port", `http=${freePort()}`]),
          "start pulled",
        );
        ok(await s.emu(["--config", path, "stop"]), "stop pulled");
        report("kill pull", runs, killed, points, ms);
      });
    } finally {
      await server.close();
    }
  },
);

Deno.test(
  "soak: emu killed at random points of image build; no QEMU or output is left, the next build works",
  needs(...VM_TOOLS, TOOLS.qemuImg),
  () =>
    withSoakEnv(async (s) => {
      const rng = seeded(SEED + 4);
      const out = join(s.dir, "out", "stack.qcow2");
      const build = await fixtureBuildArgs(s, out);
      const ms = await timed(s, build, "reference build");
      const runs = repeat(4);
      const points: number[] = [];
      let killed = 0;
      for (let i = 0; i < runs; i++) {
        await Deno.remove(join(s.dir, "out"), { recursive: true });
        const at = pointIn(ms, rng);
        points.push(at);
        if (await killAfter(s, build, at)) {
          killed++;
          const names: string[] = await Array.fromAsync(Deno.readDir(join(s.dir, "out")))
            .then((es) => es.map((e) => e.name), () => []);
          assert.ok(!names.includes("stack.qcow2"), `no half-written output after kill ${i}`);
        }
        ok(await s.emu(build), `build after kill ${i}`);
        assert.deepEqual(await qemuProcessesWith(s.dir), [], `no build QEMU after kill ${i}`);
      }
      report("kill image build", runs, killed, points, ms);
    }),
);
