import assert from "node:assert/strict";
import { formatTimings, PhaseTimer } from "../../../src/vm/timings.ts";
import { dateArgument, hostNowNs } from "../../../src/vm/guest_clock.ts";

Deno.test("timings: a phase counts its time whether it succeeds or fails, in the order phases began", async () => {
  const timer = new PhaseTimer(0);
  await assert.rejects(
    timer.time("load", () => Promise.reject(new Error("state file truncated"))),
    /state file truncated/,
  );
  assert.equal(await timer.time("agent", () => Promise.resolve(7)), 7);
  timer.record("load", 100, 130.4);
  const t = timer.timings(1000);
  assert.deepEqual(Object.keys(t), ["load", "agent", "total"]);
  assert.ok(t.load >= 30 && Number.isInteger(t.load));
  assert.equal(t.total, 1000);
  assert.match(formatTimings(t), /^load \d+ ms · agent \d+ ms · total 1000 ms$/);
});

Deno.test("guest clock: date -s gets whole seconds and nine digits of nanoseconds", () => {
  assert.equal(dateArgument(0n), "@0.000000000");
  assert.equal(dateArgument(1_000_000_001n), "@1.000000001");
  assert.equal(dateArgument(1_733_100_000_999_999_999n), "@1733100000.999999999");
  // The host's time in nanoseconds agrees with Date.now() to the millisecond.
  const ms = Number(hostNowNs() / 1_000_000n);
  assert.ok(Math.abs(ms - Date.now()) < 50, `${ms} vs ${Date.now()}`);
});
