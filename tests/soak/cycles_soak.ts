/**
 * Repetition: resume → exec → stop many times, and suspend → start, with emu in this
 * process so that a descriptor it leaks stays countable. After every cycle: no QEMU,
 * socket or temp file left; at the end: no more open descriptors than after the first
 * cycle, and the emu home no larger (within 1 MiB) than after the first cycle.
 */
import assert from "node:assert/strict";
import { needs, VM_TOOLS } from "../_helpers/require.ts";
import {
  allocatedBytes,
  assertNothingLeaked,
  figure,
  freePort,
  ok,
  openDescriptors,
  repeat,
  seconds,
  withSoakEnv,
} from "./_soak.ts";

const MiB = 1024 * 1024;

Deno.test(
  "soak: resume → exec → stop cycles leak nothing (processes, sockets, temp files, descriptors, disk)",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const cycles = repeat(50);
      const port = `http=${freePort()}`;
      // The first start captures the snapshot; the cycles all resume it.
      ok(await s.emuIn(["start", "--port", port]), "first start");
      ok(await s.emuIn(["stop"]), "first stop");
      let fdsAfterFirst = 0;
      let homeAfterFirst = 0;
      const started = performance.now();
      const resumeMs: number[] = [];
      for (let i = 1; i <= cycles; i++) {
        const start = ok(await s.emuIn(["--json", "start", "--port", port]), `start ${i}`);
        const record = JSON.parse(start.stdout);
        assert.equal(record.boot, "resume", `cycle ${i} resumed (${start.stderr})`);
        assert.equal(record.fallback, null);
        resumeMs.push(record.boot_ms);
        const exec = ok(await s.emuIn(["exec", "--", "echo", `cycle-${i}`]), `exec ${i}`);
        assert.equal(exec.stdout, `cycle-${i}\n`);
        ok(await s.emuIn(["stop"]), `stop ${i}`);
        await assertNothingLeaked(s, `after cycle ${i}`);
        if (i === 1) {
          fdsAfterFirst = openDescriptors();
          homeAfterFirst = await allocatedBytes(s.home);
        }
      }
      const fds = openDescriptors();
      const home = await allocatedBytes(s.home);
      assert.ok(fds <= fdsAfterFirst, `descriptors grew: ${fdsAfterFirst} → ${fds}`);
      assert.ok(
        home - homeAfterFirst < MiB,
        `the home grew by ${((home - homeAfterFirst) / MiB).toFixed(1)} MiB`,
      );
      resumeMs.sort((a, b) => a - b);
      figure(
        "cycles",
        `${cycles} resume → exec → stop cycles in ${seconds(started)} s; launch-to-healthy median ${
          resumeMs[Math.floor(cycles / 2)]
        } ms, max ${resumeMs.at(-1)} ms; descriptors ${fdsAfterFirst} → ${fds}; home ${
          (homeAfterFirst / MiB).toFixed(1)
        } → ${(home / MiB).toFixed(1)} MiB`,
      );
    }),
);

Deno.test(
  "soak: suspend → start cycles keep the guest's files and leak nothing",
  needs(...VM_TOOLS),
  () =>
    withSoakEnv(async (s) => {
      const cycles = repeat(20);
      const port = `http=${freePort()}`;
      ok(await s.emuIn(["start", "--port", port]), "first start");
      let fdsAfterFirst = 0;
      let homeAfterFirst = 0;
      const started = performance.now();
      for (let i = 1; i <= cycles; i++) {
        // A file on the data disk and one in RAM (/tmp is a tmpfs in the guest).
        ok(
          await s.emuIn([
            "exec",
            "--",
            "sh",
            "-c",
            `echo ${i} > /data/disk && echo ${i} > /tmp/ram`,
          ]),
          `write ${i}`,
        );
        ok(await s.emuIn(["suspend"]), `suspend ${i}`);
        await assertNothingLeaked(s, `after suspend ${i}`);
        const start = ok(await s.emuIn(["--json", "start", "--port", port]), `start ${i}`);
        assert.equal(JSON.parse(start.stdout).boot, "suspend", `cycle ${i}: ${start.stderr}`);
        const read = ok(
          await s.emuIn(["exec", "--", "sh", "-c", "cat /data/disk /tmp/ram"]),
          `read ${i}`,
        );
        assert.equal(read.stdout, `${i}\n${i}\n`);
        if (i === 1) {
          fdsAfterFirst = openDescriptors();
          homeAfterFirst = await allocatedBytes(s.home);
        }
      }
      ok(await s.emuIn(["stop"]), "last stop");
      await assertNothingLeaked(s, "after the last stop");
      const fds = openDescriptors();
      const home = await allocatedBytes(s.home);
      assert.ok(fds <= fdsAfterFirst, `descriptors grew: ${fdsAfterFirst} → ${fds}`);
      // The run disk grows with what the guest writes; each suspended state replaces the last.
      assert.ok(
        home - homeAfterFirst < 8 * MiB,
        `the home grew by ${((home - homeAfterFirst) / MiB).toFixed(1)} MiB`,
      );
      figure(
        "suspend",
        `${cycles} write → suspend → start → read cycles in ${
          seconds(started)
        } s; descriptors ${fdsAfterFirst} → ${fds}; home ${(homeAfterFirst / MiB).toFixed(1)} → ${
          (home / MiB).toFixed(1)
        } MiB`,
      );
    }),
);
