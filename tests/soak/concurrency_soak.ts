/**
 * Concurrency: four instances started at once by four emu processes (distinct names and
 * ports, one snapshot captured once for all), each `exec` reaching its own guest; and two
 * emu homes with the same instance name side by side, sharing one socket directory.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { needs, VM_TOOLS } from "../_helpers/require.ts";
import {
  assertNothingLeaked,
  figure,
  freePort,
  ok,
  qemuProcessesWith,
  repeat,
  seconds,
  withSoakEnv,
} from "./_soak.ts";

Deno.test(
  "soak: four instances started concurrently are all healthy, each exec reaches its own guest",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const rounds = repeat(2);
      const names = ["n1", "n2", "n3", "n4"];
      const ports = Object.fromEntries(names.map((n) => [n, freePort()]));
      const started = performance.now();
      const roundTimes: string[] = [];
      for (let round = 1; round <= rounds; round++) {
        const t = performance.now();
        const starts = await Promise.all(
          names.map((n) => s.emu(["--json", "start", "--name", n, "--port", `http=${ports[n]}`])),
        );
        starts.forEach((r, i) => ok(r, `start ${names[i]} (round ${round})`));
        const captures = starts.filter((r) => /capturing a snapshot/.test(r.stderr)).length;
        assert.equal(captures, round === 1 ? 1 : 0, "the snapshot is captured once, for all");
        roundTimes.push(seconds(t));
        assert.equal((await qemuProcessesWith(s.dir)).length, 4, "four QEMUs");
        // Each guest gets its own mark, then each reads back only its own.
        await Promise.all(names.map(async (n) =>
          ok(
            await s.emu(["exec", "--name", n, "--", "sh", "-c", `echo ${n} > /tmp/who`]),
            `mark ${n}`,
          )
        ));
        for (const n of names) {
          const r = ok(await s.emu(["exec", "--name", n, "--", "cat", "/tmp/who"]), `read ${n}`);
          assert.equal(r.stdout, `${n}\n`, `exec --name ${n} reached its own guest`);
          const res = await fetch(`http://127.0.0.1:${ports[n]}/cgi-bin/health`);
          await res.body?.cancel();
          assert.equal(res.status, 200, `${n} answers on its own port`);
        }
        const status = JSON.parse(ok(await s.emu(["--json", "status"]), "status").stdout);
        const running = (status.instances ?? status).filter((i: { state: string }) =>
          i.state === "running"
        );
        assert.equal(running.length, 4, JSON.stringify(status));
        const stops = await Promise.all(names.map((n) => s.emu(["stop", "--name", n])));
        stops.forEach((r, i) => ok(r, `stop ${names[i]}`));
        await assertNothingLeaked(s, `after round ${round}`);
      }
      figure(
        "concurrency",
        `${rounds} rounds of 4 concurrent starts (${
          roundTimes.join(" s, ")
        } s to all healthy; the first round captures the snapshot once) in ${
          seconds(started)
        } s; every exec reached its own guest`,
      );
    }),
);

Deno.test(
  "soak: two emu homes, the same instance name, one socket directory, started at once",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const rounds = repeat(2);
      const homes = [join(s.dir, "home-a"), join(s.dir, "home-b")];
      const ports = homes.map(() => freePort());
      const emuIn = (h: number, args: string[]) => s.emu(args, { EMU_HOME: homes[h] });
      for (let round = 1; round <= rounds; round++) {
        const starts = await Promise.all(
          homes.map((_, h) => emuIn(h, ["start", "--port", `http=${ports[h]}`])),
        );
        starts.forEach((r, h) => ok(r, `start in home ${h}`));
        await Promise.all(
          homes.map(async (_, h) =>
            ok(await emuIn(h, ["exec", "--", "sh", "-c", `echo home-${h} > /tmp/who`]), "mark")
          ),
        );
        for (const h of [0, 1]) {
          const r = ok(await emuIn(h, ["exec", "--", "cat", "/tmp/who"]), `read ${h}`);
          assert.equal(r.stdout, `home-${h}\n`, `home ${h} reached its own guest`);
        }
        // Stopping one leaves the other running.
        ok(await emuIn(0, ["stop"]), "stop a");
        ok(await emuIn(1, ["exec", "--", "true"]), "b still answers");
        ok(await emuIn(1, ["stop"]), "stop b");
        await assertNothingLeaked(s, `after round ${round}`);
      }
      for (const h of [0, 1]) await emuIn(h, ["reset", "--all"]);
      figure(
        "two homes",
        `${rounds} rounds: each home reached its own guest, stops were independent`,
      );
    }),
);
