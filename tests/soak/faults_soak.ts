/**
 * Faults from outside emu: QEMU killed during capture and suspend, the guest agent
 * stopped inside the guest, the health service stopped after a resume, a host port taken
 * between emu's check and QEMU's start. Each command either works or fails with an
 * error emu explains (a code other than `internal`, no stack trace); the next start
 * recovers; nothing is left.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { needs, VM_TOOLS } from "../_helpers/require.ts";
import {
  assertNothingLeaked,
  explained,
  figure,
  freePort,
  ok,
  qemuProcessesWith,
  repeat,
  SEED,
  seeded,
  type SoakEnv,
  until,
  withSoakEnv,
} from "./_soak.ts";

/** What {@linkcode killQemuDuring} saw. */
interface QemuKill {
  code: number;
  stdout: string;
  stderr: string;
  /** The QEMU was killed before the command ended. */
  killedQemu: boolean;
  /** From the QEMU's appearance to the command's end, in ms. */
  windowMs: number;
}

/**
 * Runs `args`; once a QEMU of this environment whose command line has `needle` runs,
 * kills it after `delayMs` (never, with `Infinity`: a reference run).
 */
async function killQemuDuring(
  s: SoakEnv,
  args: string[],
  needle: string,
  delayMs: number,
): Promise<QemuKill> {
  const child = s.spawn(args);
  let done = false;
  const output = child.output().then((o) => (done = true, o));
  let killedQemu = false;
  let seenAt = performance.now();
  const killer = (async () => {
    let pids: number[] = [];
    const ours = async () => {
      const mine = new Set(await qemuProcessesWith(s.dir));
      return (await qemuProcessesWith(needle)).filter((p) => mine.has(p));
    };
    await until(async () => done || (pids = await ours()).length > 0, 120_000);
    seenAt = performance.now();
    if (done || pids.length === 0 || !Number.isFinite(delayMs)) return;
    await Promise.race([output, new Promise((r) => setTimeout(r, delayMs))]);
    if (done) return;
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
        killedQemu = true;
      } catch { /* already gone */ }
    }
  })();
  const out = await output;
  await killer;
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: decode(out.stdout),
    stderr: decode(out.stderr),
    killedQemu,
    windowMs: performance.now() - seenAt,
  };
}

Deno.test(
  "soak: QEMU killed during capture → an explained error, the old snapshot still resumes",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const rng = seeded(SEED + 10);
      const port = `http=${freePort()}`;
      ok(await s.emu(["capture"]), "first capture");
      const reference = await killQemuDuring(s, ["capture", "--force"], "emu-capture-", Infinity);
      ok(reference, "reference capture");
      const runs = repeat(4);
      const codes: string[] = [];
      for (let i = 0; i < runs; i++) {
        const at = rng() * reference.windowMs;
        const r = await killQemuDuring(s, ["capture", "--force"], "emu-capture-", at);
        codes.push(
          r.code === 0 ? "completed" : `${explained(r, `capture ${i}`)} at ${Math.round(at)} ms`,
        );
        const start = ok(await s.emu(["--json", "start", "--port", port]), `start after ${i}`);
        assert.equal(JSON.parse(start.stdout).boot, "resume", start.stderr);
        ok(await s.emu(["stop"]), `stop ${i}`);
        await assertNothingLeaked(s, `after ${i}`);
      }
      figure(
        "qemu killed in capture",
        `${runs} runs: ${codes.join(", ")}; the snapshot resumed after each`,
      );
    }),
);

Deno.test(
  "soak: QEMU killed during suspend → an explained error; the next start brings the instance back",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const rng = seeded(SEED + 11);
      const port = `http=${freePort()}`;
      ok(await s.emu(["start", "--port", port]), "reference start");
      const reference = await killQemuDuring(s, ["suspend"], "process=emu-default", Infinity);
      ok(reference, "reference suspend");
      const runs = repeat(4);
      const codes: string[] = [];
      for (let i = 0; i < runs; i++) {
        ok(await s.emu(["start", "--port", port]), `start ${i}`);
        // The QEMU runs before the command does: the window is the command after emu's
        // own start-up (timed on `emu status`, which does next to nothing).
        const t = performance.now();
        await s.emu(["status"]);
        const startup = performance.now() - t;
        const at = startup + rng() * Math.max(1, reference.windowMs - startup);
        const r = await killQemuDuring(s, ["suspend"], "process=emu-default", at);
        codes.push(
          r.code === 0 ? "completed" : `${explained(r, `suspend ${i}`)} at ${Math.round(at)} ms`,
        );
        ok(await s.emu(["start", "--port", port]), `start after ${i}`);
        assert.equal((await qemuProcessesWith(s.dir)).length, 1);
        ok(await s.emu(["exec", "--", "true"]), `exec after ${i}`);
        ok(await s.emu(["stop"]), `stop ${i}`);
        await assertNothingLeaked(s, `after ${i}`);
      }
      figure(
        "qemu killed in suspend",
        `${runs} runs: ${codes.join(", ")}; the next start worked each time`,
      );
    }),
);

Deno.test(
  "soak: the guest agent stopped in the guest → exec fails in its timeout naming the agent; a suspended state without it falls back",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const port = `http=${freePort()}`;
      ok(await s.emu(["start", "--port", port]), "start");
      // The agent's reply may or may not make it out before it dies.
      await s.emu(["exec", "--timeout", "5", "--", "sh", "-c", "kill $(cat /run/qga.pid)"]);
      const t = performance.now();
      const r = await s.emu(["exec", "--timeout", "5", "--", "true"]);
      const ms = performance.now() - t;
      const code = explained(r, "exec without an agent");
      assert.match(r.stderr, /guest agent/i, r.stderr);
      assert.ok(ms < 30_000, `exec gave up after ${ms} ms`);
      // The suspended state has no agent: the start cannot settle it and resumes the snapshot.
      ok(await s.emu(["suspend"]), "suspend (QMP only)");
      const start = ok(
        await s.emu(["--json", "start", "--port", port, "--timeout", "60"]),
        "start after",
      );
      const record = JSON.parse(start.stdout);
      assert.equal(record.boot, "resume", start.stderr);
      assert.match(start.stderr, /suspended state/, start.stderr);
      ok(await s.emu(["exec", "--", "true"]), "the agent answers again");
      ok(await s.emu(["stop"]), "stop");
      await assertNothingLeaked(s, "at the end");
      figure(
        "guest agent stopped",
        `exec failed with ${code} after ${
          (ms / 1000).toFixed(1)
        } s (--timeout 5); the suspended state fell back to the snapshot`,
      );
    }),
);

Deno.test(
  "soak: the health service stopped after a resume → status says so; start waits, then explains",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const port = `http=${freePort()}`;
      ok(await s.emu(["start", "--port", port]), "start");
      ok(await s.emu(["exec", "--", "killall", "httpd"]), "stop httpd");
      const status = await s.emu(["status"]);
      assert.equal(status.code, 1, status.stdout);
      assert.match(status.stdout, /unhealthy|not healthy|failing/i, status.stdout);
      const again = await s.emu(["start", "--port", port, "--timeout", "3"]);
      assert.equal(explained(again, "start on an unhealthy instance"), "instance_not_running");
      assert.match(again.stderr, /hint: See `emu logs --name default`, or restart it/);
      ok(await s.emu(["stop"]), "stop");
      ok(await s.emu(["start", "--port", port]), "a fresh start is healthy");
      ok(await s.emu(["stop"]), "stop");
      await assertNothingLeaked(s, "at the end");
      figure(
        "health service stopped",
        "status exit 1; start explained instance_not_running; restart healthy",
      );
    }),
);

Deno.test(
  "soak: a host port taken between emu's check and QEMU's start → an explained error, nothing left",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const rng = seeded(SEED + 12);
      const port = freePort();
      ok(await s.emu(["capture"]), "capture");
      const t = performance.now();
      ok(await s.emu(["start", "--port", `http=${port}`]), "reference start");
      const ms = performance.now() - t;
      ok(await s.emu(["stop"]), "reference stop");
      const runs = repeat(6);
      const outcomes: string[] = [];
      for (let i = 0; i < runs; i++) {
        // A racer that grabs the port the moment it is free, from a random point on.
        let listener: Deno.Listener | null = null;
        let stop = false;
        const delay = rng() * ms * 0.5;
        const racer = (async () => {
          await new Promise((r) => setTimeout(r, delay));
          while (!stop && !listener) {
            try {
              listener = Deno.listen({ hostname: "127.0.0.1", port });
            } catch {
              await new Promise((r) => setTimeout(r, 0));
            }
          }
        })();
        const r = await s.emu(["start", "--port", `http=${port}`, "--timeout", "30"]);
        stop = true;
        await racer;
        if (r.code === 0) {
          outcomes.push("started");
          ok(await s.emu(["stop"]), `stop ${i}`);
        } else {
          outcomes.push(explained(r, `start ${i}`));
          assert.match(r.stderr, new RegExp(`${port}`), "the error names the port");
          assert.deepEqual(await qemuProcessesWith(s.dir), [], "no QEMU left behind");
        }
        (listener as Deno.Listener | null)?.close();
        await assertNothingLeaked(s, `after race ${i}`);
        ok(await s.emu(["start", "--port", `http=${port}`]), `start once the port is free ${i}`);
        ok(await s.emu(["stop"]), `stop ${i}`);
      }
      figure("port race", `${runs} races (seed ${SEED}): ${outcomes.join(", ")}`);
    }),
);

Deno.test(
  "soak: a guest whose agent never starts → start fails within its timeout naming the agent; the VM kept or stopped per --stop-on-failure",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const port = `http=${freePort()}`;
      // The fast fixture skips its agent when the profile's runtime values ask it to.
      const noAgent = join(s.dir, "no-agent.json");
      const profile = JSON.parse(await Deno.readTextFile(s.profile));
      profile.image.source = join(s.profile, "..");
      profile.runtime = { FIXTURE_NO_AGENT: "1" };
      await Deno.writeTextFile(noAgent, JSON.stringify(profile));
      const emu = (args: string[]) => s.emu(["--config", noAgent, ...args]);
      const times: string[] = [];
      for (const stopOnFailure of [false, true]) {
        const t = performance.now();
        const r = await emu([
          ...["start", "--cold", "--port", port, "--timeout", "15"],
          ...(stopOnFailure ? ["--stop-on-failure"] : []),
        ]);
        const ms = performance.now() - t;
        times.push(`${(ms / 1000).toFixed(1)} s`);
        assert.equal(explained(r, "start without an agent"), "health_timeout");
        assert.match(r.stderr, /the guest agent \(QGA\)/, r.stderr);
        assert.match(r.stderr, /Last serial console lines:\n(.*\n)*EMU_NO_AGENT\n/);
        assert.ok(ms < 45_000, `gave up after ${ms} ms with --timeout 15`);
        const running = (await qemuProcessesWith(s.dir)).length;
        if (stopOnFailure) {
          assert.match(r.stderr, /hint: The VM was stopped\./);
          assert.equal(running, 0, "--stop-on-failure stopped the VM");
        } else {
          assert.match(r.stderr, /hint: The VM is left running: `emu logs --name default`/);
          assert.equal(running, 1, "kept for emu logs");
          ok(await emu(["stop"]), "stop the kept VM");
        }
      }
      // Without --cold the first start captures: the capture fails the same way, stopped.
      const r = await emu(["start", "--port", port, "--timeout", "15"]);
      assert.equal(explained(r, "capture without an agent"), "snapshot_failed");
      assert.match(r.stderr, /the guest agent \(QGA\)/);
      assert.deepEqual(await qemuProcessesWith(s.dir), [], "the capture's QEMU stopped");
      await assertNothingLeaked(s, "at the end");
      figure(
        "agent never starts",
        `start --cold --timeout 15 failed with health_timeout naming the agent in ${
          times.join(" and ")
        } (kept, then stopped with --stop-on-failure); a capture failed with snapshot_failed`,
      );
    }),
);
