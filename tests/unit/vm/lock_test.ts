import assert from "node:assert/strict";
import { join } from "node:path";
import { InstanceLock } from "../../../src/vm/lock.ts";
import { EmuError } from "../../../src/errors.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "emu-lock-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("lock: a held lock refuses a second holder at once, naming the holder's pid", () =>
  withDir(async (dir) => {
    const path = join(dir, "lock");
    using _held = await InstanceLock.acquire(path, "instance x");
    assert.equal(await Deno.readTextFile(path), `${Deno.pid}\n`);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const err = await InstanceLock.acquire(path, "instance x").catch((e) => e);
    assert.ok(err instanceof EmuError);
    assert.equal(err.code, "instance_busy");
    assert.equal(
      err.message,
      `Cannot lock instance x: another emu (pid ${Deno.pid}) is working on it`,
    );
  }));

Deno.test("lock: a waiter gets the lock once the holder releases it", () =>
  withDir(async (dir) => {
    const path = join(dir, "lock");
    const held = await InstanceLock.acquire(path, "instance x");
    setTimeout(() => held.release(), 50);
    using second = await InstanceLock.acquire(path, "instance x", { waitMs: 10_000 });
    assert.ok(second);
  }));

/** This process's descriptors open on `path` (other tests' files do not count). */
function openDescriptorsOf(path: string): number {
  let n = 0;
  for (const fd of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${fd.name}`) === path) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

Deno.test({
  name: "lock: an aborted wait closes its file (the lock file is not held open)",
  // Descriptors are read from /proc: Linux only.
  ignore: Deno.build.os !== "linux",
}, () =>
  withDir(async (dir) => {
    const path = join(dir, "lock");
    const held = await InstanceLock.acquire(path, "instance x");
    assert.equal(openDescriptorsOf(path), 1);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const err = await InstanceLock.acquire(path, "instance x", {
      waitMs: 60_000,
      signal: controller.signal,
    }).catch((e) => e);
    assert.ok(err instanceof EmuError);
    assert.equal(err.code, "aborted");
    assert.equal(openDescriptorsOf(path), 1, "only the holder's descriptor is open");
    held.release();
    using again = await InstanceLock.acquire(path, "instance x");
    assert.ok(again);
  }));
