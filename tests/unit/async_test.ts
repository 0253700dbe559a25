import assert from "node:assert/strict";
import { retryWithBackoff, sleep } from "../../src/async.ts";
import { EmuError } from "../../src/errors.ts";

Deno.test("retryWithBackoff: returns the first defined value", async () => {
  let n = 0;
  const v = await retryWithBackoff(
    () => {
      n++;
      return n === 5 ? "ready" : undefined;
    },
    () => new Error("late"),
    { delayMs: 5, maxDelayMs: 10, timeoutMs: 5_000 },
  );
  assert.equal(v, "ready");
  assert.equal(n, 5);
});

Deno.test("retryWithBackoff: the deadline gives onTimeout's error; timeoutMs 0 tries exactly once", async () => {
  let n = 0;
  await assert.rejects(
    retryWithBackoff(() => void n++, () => new Error("late"), {
      delayMs: 1,
      maxDelayMs: 1,
      timeoutMs: 0,
    }),
    /^Error: late$/,
  );
  assert.equal(n, 1);
});

Deno.test("retryWithBackoff: an error from the attempt ends the retries at once", async () => {
  let n = 0;
  await assert.rejects(
    retryWithBackoff(
      () => {
        n++;
        throw new Error("broken");
      },
      () => new Error("late"),
      { delayMs: 1, maxDelayMs: 1, timeoutMs: 1000 },
    ),
    /broken/,
  );
  assert.equal(n, 1);
});

Deno.test("retryWithBackoff: an abort ends the wait with the aborted error", async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 20);
  const err = await retryWithBackoff(() => undefined, () => new Error("late"), {
    delayMs: 10_000,
    maxDelayMs: 10_000,
    timeoutMs: 60_000,
    signal: controller.signal,
  }).catch((e) => e);
  assert.ok(err instanceof EmuError, String(err));
  assert.equal(err.code, "aborted");
});

Deno.test("retryWithBackoff: wake ends a long sleep early, then attempts follow without a pause", async () => {
  let wake!: () => void;
  const event = new Promise<void>((resolve) => wake = resolve);
  let n = 0;
  const started = performance.now();
  setTimeout(wake, 20);
  const v = await retryWithBackoff(() => ++n === 4 ? n : undefined, () => new Error("late"), {
    delayMs: 60_000,
    maxDelayMs: 60_000,
    timeoutMs: 600_000,
    wake: event,
  });
  assert.equal(v, 4);
  assert.ok(performance.now() - started < 10_000, "did not sleep the full delay");
});

Deno.test("sleep: an already aborted signal rejects at once", async () => {
  await assert.rejects(sleep(60_000, AbortSignal.abort()));
});
